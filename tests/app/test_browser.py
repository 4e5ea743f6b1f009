"""End to end: `frugalbench leaderboard` serves the real app; headless Chromium shows the ranking.

Needs Debian's `chromium` and `chromium-driver` (`make setup-browser`) and selenium; skipped with
the reason when they are missing. The screenshot goes to tests/output/leaderboard.png.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import browser
import pytest
import yaml

TINY_REFERENCES = {'macs': 1.0e9, 'params': 1.0e6}

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _number_among(value: float, cells: list[str]) -> bool:
    """Whether a cell holds ``value`` (the grid's accessible cells carry the stored number)."""
    for cell in cells:
        try:
            if abs(float(cell) - value) < 1e-9:
                return True
        except ValueError:
            continue
    return False


@pytest.fixture
def browser_db(isolated: Path, tiny_benchmark: str, make_submission, quick_protocol: Path,
               kit) -> tuple[Path, list[tuple[str, float]]]:
    """One real evaluated run (Fast-SCNN, random weights, on the tiny benchmark, measured with the
    short test protocol) plus three runs written with save_run; returns the database and the
    (name, mIoU) pairs to look for. Skipped first, with the reason, when there is no browser."""
    browser.require_browser()
    import torch
    torch.set_num_threads(1)
    from frugalbench.evaluation import EvaluationOptions, evaluate_submission
    benchmark_file = isolated / 'data' / 'benchmarks' / f'{tiny_benchmark}.yaml'
    definition = yaml.safe_load(benchmark_file.read_text())
    benchmark_file.write_text(yaml.safe_dump({**definition, 'references': TINY_REFERENCES}))
    db = isolated / 'data' / 'results.duckdb'
    outcome = evaluate_submission(make_submission(name='Real Fast-SCNN run'),
                                  EvaluationOptions(db_path=db, protocol_path=quick_protocol))
    assert outcome.ok, outcome.document.get('failure_reason')
    classes = definition['classes']
    Run = kit.Run
    stored = [Run('t1cgnet000', 'cgnet_tiny', 'CGNet <i>tiny</i> **v2**', benchmark='tiny', classes=classes,
                  quality=0.55, params=500_000, macs=1.8e9, minutes=1),
              Run('t2pruned00', 'pruned_tiny', 'Pruned tiny model', benchmark='tiny', classes=classes,
                  technique='pruned', quality=0.45, params=300_000, macs=2.0e8, minutes=2),
              Run('t3points00', 'points_tiny', 'Points-supervised tiny', benchmark='tiny', classes=classes,
                  quality=0.3, train_images=4, annotation='points', minutes=3)]
    kit.store_runs(db, stored)
    _store_cascade_curve(db)
    expected = [(outcome.document['manifest']['name'], outcome.document['accuracy']['miou'])]
    expected += [(run.name, run.document()['accuracy']['miou']) for run in stored]
    return db, expected


def _store_cascade_curve(db: Path) -> None:
    """A cascade curve (issue 19) fitted by frugalbench.cascades on a small synthetic val/test pair
    of members (the members' evaluation is tested in tests/cascades), stored for the Cascades tab."""
    import numpy as np

    from frugalbench.cascades.evaluate import curve_document
    from frugalbench.cascades.policy import SplitData
    from frugalbench.cascades.store import save_curve
    rng = np.random.default_rng(0)

    def split(name: str) -> SplitData:
        union = rng.integers(50, 100, (2, 8, 3)).astype(float)
        better = np.array([0.5, 0.8])[:, None, None]
        return SplitData(tuple(f'{name}{i}' for i in range(8)), union * better * rng.uniform(0.6, 1.0, union.shape),
                         union, rng.uniform(0.5, 1.0, (2, 8)))
    singles = [{'submission': 'tiny_cheap', 'test_miou': 0.4}, {'submission': 'tiny_costly', 'test_miou': 0.7}]
    val, test = split('val'), split('test')
    for single, member in zip(singles, range(2)):
        single['test_miou'] = float(np.nanmean(test.intersect[member].sum(0) / test.union[member].sum(0)))
    save_curve(db, curve_document('tiny_cascade', 'tiny', 'macs', {'statistic': 'mean_max_prob', 'level': 0.5},
                                  singles, [2.0e8, 1.8e9], val, test, [5.0e8, 1.0e9, 2.0e9]))


@pytest.fixture
def server(browser_db: tuple[Path, list], isolated: Path) -> Iterator[str]:
    """`frugalbench leaderboard --no-browser` on the database, on a free port, in its own process group."""
    with browser.leaderboard_server(browser_db[0], isolated / 'leaderboard.log') as (url, _):
        yield url


def test_leaderboard_shows_stored_runs_in_chromium(server: str, browser_db: tuple[Path, list]) -> None:
    from selenium.webdriver.common.by import By
    driver = browser.chrome()
    try:
        driver.get(server)
        expected = browser_db[1]
        deadline = time.monotonic() + 90
        while True:
            cells = browser.grid_cells(driver)
            missing = [name for name, _ in expected if name not in cells]
            missing += [f'mIoU {miou!r}' for _, miou in expected if not _number_among(miou, cells)]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(1.0)  # let the charts finish drawing for the screenshot
        browser.screenshot(driver, 'leaderboard.png')
        assert not missing, f'not shown in the table after 90 s: {missing}'
        # submission text is shown as text: the <i> of 'CGNet <i>tiny</i> **v2**' is not an element
        assert not driver.find_elements(By.XPATH, "//i[normalize-space()='tiny']")
        # the Cascades tab: the stored curve, its headline numbers and its table (issue 19)
        tab = [t for t in driver.find_elements(By.CSS_SELECTOR, '[role="tab"]') if t.text.strip() == 'Cascades']
        tab[-1].click()
        browser.wait_until(lambda: 'Against the best single member' in driver.page_source
                           and 'tiny_costly' in driver.page_source, 'the cascade headline',
                           on_timeout=lambda: browser.screenshot(driver, 'leaderboard-cascades.png'))
        browser.wait_until(lambda: any(c.startswith('budget ') for c in browser.grid_cells(driver)),
                           'the cascade curve table')
        assert driver.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"], .vega-embed')
        browser.screenshot(driver, 'leaderboard-cascades.png')
    finally:
        driver.quit()
