"""End to end in headless Chromium: the leaderboard's Zero-shot tab shows the zero-shot:u1 track with
seen mIoU, unseen mIoU and hIoU of a really evaluated run (a training-free model, declared 0 images and
annotation none, that paints the class it finds by name in dataset_meta), equal to the stored document.
Needs Debian's `chromium` and `chromium-driver` and selenium (skipped with the reason otherwise).
The screenshot goes to tests/output/leaderboard_zero_shot.png."""
from __future__ import annotations

from pathlib import Path

import browser
import pytest

from frugalbench.evaluation import EvaluationOptions, evaluate_submission

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_zero_shot_tab_shows_the_track_with_its_three_metrics(zs_benchmark: str, painter: Path,
                                                               isolated: Path) -> None:
    browser.require_browser()
    from selenium.webdriver.common.by import By
    db = isolated / 'data' / 'results.duckdb'
    outcome = evaluate_submission(painter, EvaluationOptions(db_path=db, measure=False))
    assert outcome.ok, outcome.document.get('failure_reason')
    scores = outcome.document['accuracy']['zero_shot']['u1']
    with browser.leaderboard_server(db, isolated / 'leaderboard.log') as (url, _):
        driver = browser.chrome()
        try:
            driver.get(url)
            tab = browser.wait_until(lambda: [t for t in driver.find_elements(By.CSS_SELECTOR, '[role="tab"]')
                                              if t.text.strip() == 'Zero-shot'], 'the Zero-shot tab')
            tab[-1].click()
            shot = lambda: browser.screenshot(driver, 'leaderboard_zero_shot.png')
            body = lambda: driver.find_element(By.TAG_NAME, 'body').text.replace('\u2060', '')
            browser.wait_until(lambda: 'zero-shot:u1 (unseen: bar)' in body(), 'the track heading', on_timeout=shot)
            cells = browser.wait_until(lambda: (c := browser.grid_cells(driver)) and 'painter' in c and c,
                                       'the painter run in the track table', on_timeout=shot)
            shot()
            headers = [h.get_attribute('textContent') for h in driver.find_elements(By.CSS_SELECTOR, 'th')]
            for column in ('hiou', 'seen_miou', 'unseen_miou'):
                assert column in headers
            numbers = [float(c) for c in cells if c.replace('.', '', 1).replace('e-', '', 1).isdigit()]
            for value in (scores['hiou'], scores['seen_miou'], scores['unseen_miou']):
                assert any(abs(n - value) < 1e-9 for n in numbers), (value, cells)
            assert 'training-free (declared)' in cells
        finally:
            driver.quit()
