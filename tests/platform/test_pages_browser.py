"""The leaderboard's Submit page and Queue view in a real browser (headless Chromium via Selenium):
an archive uploaded through the page is checked and spooled, `serve`'s upload pass queues it, a
hostile archive is refused on the page; the Queue view shows states, positions and reasons."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from frugalbench.platform import queue, uploads
from frugalbench.platform.submit import submit

CHROMIUM = Path('/usr/bin/chromium')
CHROMEDRIVER = Path('/usr/bin/chromedriver')
OUTPUT = Path(__file__).resolve().parents[1] / 'output'
CHROME_ARGS = ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
               '--disable-component-update', '--disable-sync', '--no-first-run', '--window-size=1600,1300')

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.skip(f'no headless browser: {", ".join(missing)} missing; run `make setup-browser`')
    pytest.importorskip('selenium', reason='selenium is not installed: `pip install selenium`')


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def server(chromium: None, isolated: Path) -> Iterator[str]:
    import urllib.request
    port = _free_port()
    db = Path(os.environ['FRUGALBENCH_DB'])
    log = (isolated / 'leaderboard.log').open('w')
    env = {k: v for k, v in os.environ.items() if k != 'FRUGALBENCH_DB'}
    process = subprocess.Popen([sys.executable, '-m', 'frugalbench', 'leaderboard', '--db', str(db), '--port',
                                str(port), '--no-browser'], stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True, env=env)
    url = f'http://localhost:{port}'
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, 'the leaderboard server exited'
            try:
                with urllib.request.urlopen(f'{url}/_stcore/health', timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, 'the leaderboard did not answer'
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in CHROME_ARGS:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def _wait(driver, predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            OUTPUT.mkdir(exist_ok=True)
            driver.save_screenshot(str(OUTPUT / 'platform-failure.png'))
            raise AssertionError(f'not shown after {timeout:.0f} s: {what}')
        time.sleep(0.5)


def _tab(driver, label: str) -> None:
    from selenium.webdriver.common.by import By
    tab = _wait(driver, lambda: [t for t in driver.find_elements(By.CSS_SELECTOR, '[role="tab"]')
                                 if t.text.strip() == label], f'the {label} tab')
    tab[-1].click()


def _cells(driver) -> list[str]:
    from selenium.webdriver.common.by import By
    return [c.get_attribute('textContent') or '' for c in driver.find_elements(By.CSS_SELECTOR, 'td[role="gridcell"]')]


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

    driver = _driver()
    try:
        driver.get(server)
        _tab(driver, 'Queue')
        _wait(driver, lambda: {'queued first', 'broke <b>bold</b>', 'failed', 'queued',
                               'checkpoint could not be loaded: bad bytes'} <= set(_cells(driver)),
              'the queue entries, states and reason')
        assert not driver.find_elements(By.XPATH, "//b[normalize-space()='bold']")   # text, not HTML
        OUTPUT.mkdir(exist_ok=True)
        driver.save_screenshot(str(OUTPUT / 'platform-queue.png'))

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
        driver.save_screenshot(str(OUTPUT / 'platform-submit.png'))

        _tab(driver, 'Queue')
        _wait(driver, lambda: 'uploaded via page' in _cells(driver), 'the uploaded entry in the queue view')
        assert broken['id'] in _cells(driver)
    finally:
        driver.quit()
