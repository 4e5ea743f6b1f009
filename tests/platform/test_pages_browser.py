"""The leaderboard's Submit page and Queue view in a real browser (headless Chromium via Selenium):
an archive uploaded through the page is checked and spooled, `serve`'s upload pass queues it, a
hostile archive is refused on the page; the Queue view shows states, positions and reasons.

Skipped with the reason when Chromium, its driver or selenium is missing (see tests/browser.py). The
screenshots go to tests/output/platform-*.png."""
from __future__ import annotations

import os
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import browser
import pytest

from frugalbench.platform import queue, uploads
from frugalbench.platform.submit import submit

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(isolated: Path) -> Iterator[str]:
    """`frugalbench leaderboard --no-browser` on the test's database, on a free port, in its own process group."""
    browser.require_browser()
    db = Path(os.environ['FRUGALBENCH_DB'])
    with browser.leaderboard_server(db, isolated / 'leaderboard.log') as (url, _):
        yield url


def _wait(driver, predicate, what: str):
    return browser.wait_until(predicate, what, 60.0,
                              on_timeout=lambda: browser.screenshot(driver, 'platform-failure.png'))


def _tab(driver, label: str) -> None:
    from selenium.webdriver.common.by import By
    tab = _wait(driver, lambda: [t for t in driver.find_elements(By.CSS_SELECTOR, '[role="tab"]')
                                 if t.text.strip() == label], f'the {label} tab')
    tab[-1].click()


def _click_button(driver, label: str) -> None:
    from selenium.webdriver.common.by import By
    buttons = [b for b in driver.find_elements(By.CSS_SELECTOR, 'button') if b.text.strip() == label
               and b.is_displayed()]
    buttons[0].click()


def test_submit_page_and_queue_view_in_chromium(tiny_benchmark, make_submission, isolated, tmp_path,
                                                server: str) -> None:
    from selenium.webdriver.common.by import By
    db = Path(os.environ['FRUGALBENCH_DB'])
    first = submit(make_submission('queued first'), db).entry
    broken = submit(make_submission('broke <b>bold</b>'), db).entry
    claimed = queue.claim_next(db, 'test-node')
    assert claimed['id'] == first['id']
    queue.finish(db, first['id'], 'failed', None, 'checkpoint could not be loaded: bad bytes')
    folder = make_submission('uploaded via page')
    good = tmp_path / 'good.tar.gz'
    with tarfile.open(good, 'w:gz') as bundle:
        bundle.add(folder, arcname='uploaded')
    hostile = tmp_path / 'hostile.zip'
    with zipfile.ZipFile(hostile, 'w') as bundle:
        bundle.writestr('uploaded/submission.yaml', 'name: x')
        bundle.writestr('../../outside.txt', 'x')

    driver = browser.chrome()
    try:
        driver.get(server)
        _tab(driver, 'Queue')
        _wait(driver, lambda: {'queued first', 'broke <b>bold</b>', 'failed', 'queued',
                               'checkpoint could not be loaded: bad bytes'} <= set(browser.grid_cells(driver)),
              'the queue entries, states and reason')
        assert not driver.find_elements(By.XPATH, "//b[normalize-space()='bold']")   # text, not HTML
        browser.screenshot(driver, 'platform-queue.png')

        _tab(driver, 'Submit')
        upload = _wait(driver, lambda: driver.find_elements(By.CSS_SELECTOR, 'input[type="file"]'), 'the uploader')
        upload[0].send_keys(str(hostile))
        _wait(driver, lambda: 'archive hostile.zip refused' in driver.page_source and '".."' in driver.page_source,
              'the refusal of the hostile archive, naming the file and the problem')
        assert not (isolated / 'outside.txt').exists()
        assert [p for p in uploads.uploads_dir().glob('*')] == [] if uploads.uploads_dir().exists() else True

        upload = driver.find_elements(By.CSS_SELECTOR, 'input[type="file"]')
        upload[0].send_keys(str(good))
        _wait(driver, lambda: 'waiting for the server' in driver.page_source, 'the valid upload, spooled')
        assert len([p for p in uploads.uploads_dir().iterdir() if uploads.token_of(p)]) == 1
        uploads.ingest_uploads(db)            # what `frugalbench serve` does on each pass
        new = [e for e in queue.list_entries(db) if e['name'] == 'uploaded via page']
        assert len(new) == 1 and new[0]['state'] == 'queued'
        _click_button(driver, 'Refresh')
        _wait(driver, lambda: f'queued as {new[0]["id"]}' in driver.page_source, 'the upload queued, with its id')
        browser.screenshot(driver, 'platform-submit.png')

        _tab(driver, 'Queue')
        _wait(driver, lambda: 'uploaded via page' in browser.grid_cells(driver),
              'the uploaded entry in the queue view')
        assert broken['id'] in browser.grid_cells(driver)
    finally:
        driver.quit()
