"""End to end in headless Chromium: a run whose compute counts are untrusted (it ran its own code,
``custom_imports``) is left out of the ranking on params, and the page says why. The same flow
then takes the board away (issue 22): the Submission page's label download is the label of the
chosen run, and a public snapshot of the database, served by `frugalbench leaderboard --snapshot`,
shows the same ranking, read-only.

The runs are evaluation documents written with the real store (``save_run``) into a DuckDB file;
`frugalbench leaderboard` serves the real app on it. Needs Debian's `chromium` and
`chromium-driver` and selenium (skipped with the reason otherwise, see tests/browser.py).
The screenshot goes to tests/output/leaderboard_untrusted.png.
"""
from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import browser
import pytest

from frugalbench import labels
from frugalbench.store.snapshot import export_snapshot

REASON = ('the submission runs its own code in the model process (custom_imports: mymodels.net), which could '
          'alter counts taken there and build weights the checkpoint does not hold: params, MACs and FLOPs are '
          'shown, never ranked')
UNTRUSTED_NAME = 'Custom-code model'
WORD_JOINER = '\u2060'

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def untrusted_db(isolated: Path, kit) -> Path:
    """The street runs plus a custom-code run that would lead the params ranking (best mIoU, fewest
    parameters) if its counts were ranked. Skipped first, with the reason, when there is no browser."""
    browser.require_browser()
    kit.write_benchmarks(isolated / 'data')
    db = isolated / 'data' / 'results.duckdb'
    untrusted = kit.Run('u7custom00', 'custom_street', UNTRUSTED_NAME, quality=0.8, params=300_000, macs=2.0e8,
                        latency_ms=10.0, untrusted_reason=REASON, measurement_protocol=2, minutes=7)
    kit.store_runs(db, kit.street_runs() + [untrusted])
    return db


@pytest.fixture
def server(untrusted_db: Path, isolated: Path) -> Iterator[str]:
    """`frugalbench leaderboard --no-browser` on the database, on a free port, in its own process group."""
    with browser.leaderboard_server(untrusted_db, isolated / 'leaderboard.log') as (url, _):
        yield url


@contextlib.contextmanager
def snapshot_server(folder: Path, log_path: Path) -> Iterator[str]:
    """`frugalbench leaderboard --snapshot folder` on a free port, in its own process group (as
    ``browser.leaderboard_server`` serves a database); yields its URL once it answers."""
    port = browser.free_port()
    command = [sys.executable, '-m', 'frugalbench', 'leaderboard', '--snapshot', str(folder), '--port', str(port),
               '--no-browser']
    with log_path.open('w') as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            browser._wait_for_health(f'http://127.0.0.1:{port}', process)
            yield f'http://127.0.0.1:{port}'
        finally:
            browser._stop_group(process)


def click_tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By
    browser.wait_until(lambda: [t for t in driver.find_elements(By.CSS_SELECTOR, '[role="tab"]')
                                if t.text.strip() == name], f'the {name} tab')[-1].click()


def test_untrusted_run_shows_its_reason_and_is_not_ranked_on_params(server: str, untrusted_db: Path,
                                                                    isolated: Path) -> None:
    from selenium.webdriver.common.by import By
    driver = browser.chrome()
    downloads = isolated / 'downloads'
    downloads.mkdir()
    driver.execute_cdp_cmd('Browser.setDownloadBehavior', {'behavior': 'allow', 'downloadPath': str(downloads)})
    try:
        driver.get(server)
        grids = lambda: driver.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')
        grid_holding = lambda text: next((g for g in grids() if text in browser.grid_cells(g)), None)
        # the ranking (on params, the default resource) lists the trusted runs, not the custom-code one
        ranking = browser.wait_until(lambda: grid_holding('Fast-SCNN street'),
                                     'the ranking table with Fast-SCNN street')
        assert UNTRUSTED_NAME not in browser.grid_cells(ranking)
        # a caption says which run is not ranked on its compute counts, and why
        page = lambda: (driver.find_element(By.TAG_NAME, 'body').get_attribute('textContent')
                        or '').replace(WORD_JOINER, '')  # captions carry invisible word joiners after ':' and '.'
        browser.wait_until(lambda: 'with untrusted compute counts' in page(), 'the untrusted-compute caption')
        assert f'{UNTRUSTED_NAME} [u7custom]: params, MACs: {REASON}' in page()
        # the runs left out, with the reason
        toggle = next(e for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stExpander"] summary')
                      if 'not ranked here' in (e.text or ''))
        toggle.click()
        left_out = browser.wait_until(lambda: grid_holding(UNTRUSTED_NAME),
                                      'the custom-code run among the runs not ranked')
        assert f'params is not ranked: untrusted compute counts ({REASON})' in browser.wait_until(
            lambda: browser.grid_cells(left_out), 'the left-out table cells')
        driver.execute_script('arguments[0].scrollIntoView()', left_out)
        time.sleep(1.0)
        browser.screenshot(driver, 'leaderboard_untrusted.png')
        ranked_cells = browser.grid_cells(ranking)

        # the Submission page (best mIoU first: the custom-code run) downloads that run's label
        click_tab(driver, 'Submission')
        button = browser.wait_until(lambda: [b for b in driver.find_elements(By.TAG_NAME, 'button')
                                             if b.text.strip() == 'Download label (SVG)' and b.is_displayed()],
                                    'the label download button')[0]
        button.click()
        saved = downloads / 'frugalbench-label-u7custom00.svg'
        browser.wait_until(lambda: saved.is_file() and saved.stat().st_size > 0, f'the downloaded {saved.name}')
        time.sleep(0.5)  # let Chromium finish writing it
        svg = saved.read_text()
        assert svg == labels.render_svg(labels.label_for_run(untrusted_db, 'u7custom00'))
        shown = {e.get('id'): ''.join(e.itertext()) for e in ET.fromstring(svg).iter('{http://www.w3.org/2000/svg}text')}
        assert shown['field-model'] == UNTRUSTED_NAME and 'untrusted' in shown['field-params']

        # a public snapshot of the database: the same ranking, served without it, read-only
        export_snapshot(untrusted_db, isolated / 'public')
        with snapshot_server(isolated / 'public', isolated / 'snapshot.log') as url:
            driver.get(url)
            public = browser.wait_until(lambda: grid_holding('Fast-SCNN street'),
                                        'the ranking table of the snapshot with Fast-SCNN street')
            browser.wait_until(lambda: browser.grid_cells(public) == ranked_cells,
                               'the same ranking as the database', timeout=30,
                               on_timeout=lambda: browser.screenshot(driver, 'leaderboard_snapshot.png'))
            assert 'Read-only public snapshot' in page()
            click_tab(driver, 'Submit')
            browser.wait_until(lambda: 'read-only public snapshot: submitting and the queue are not part of it'
                               in page(), 'the read-only note on the Submit page')
            assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stFileUploader"]')
            click_tab(driver, 'Ranking')
            time.sleep(1.0)
            browser.screenshot(driver, 'leaderboard_snapshot.png')
    finally:
        driver.quit()
