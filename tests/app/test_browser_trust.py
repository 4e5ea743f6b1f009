"""End to end in headless Chromium: a run whose compute counts are untrusted (it ran its own code,
``custom_imports``) is left out of the ranking on params, and the page says why.

The runs are evaluation documents written with the real store (``save_run``) into a DuckDB file;
`frugalbench leaderboard` serves the real app on it. Needs Debian's `chromium` and
`chromium-driver` and selenium (skipped with the reason otherwise, as tests/app/test_browser.py).
The screenshot goes to tests/output/leaderboard_untrusted.png.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path('/usr/bin/chromium')
CHROMEDRIVER = Path('/usr/bin/chromedriver')
OUTPUT = Path(__file__).resolve().parents[1] / 'output'
CHROME_ARGS = ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
               '--disable-component-update', '--disable-sync', '--no-first-run', '--window-size=1600,1300')
REASON = ('the submission runs its own code in the model process (custom_imports: mymodels.net), which could '
          'alter counts taken there and build weights the checkpoint does not hold: params, MACs and FLOPs are '
          'shown, never ranked')
UNTRUSTED_NAME = 'Custom-code model'
WORD_JOINER = '\u2060'

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not (p.is_file() or shutil.which(p.name))]
    if missing:
        pytest.skip(f'no headless browser: {", ".join(missing)} missing; run `make setup-browser` '
                    '(Debian packages chromium and chromium-driver) to enable this test')
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip('selenium is not installed: `pip install selenium` to enable this test')


@pytest.fixture
def untrusted_db(chromium: None, isolated: Path, kit) -> Path:
    """The street runs plus a custom-code run that would lead the params ranking (best mIoU, fewest
    parameters) if its counts were ranked."""
    kit.write_benchmarks(isolated / 'data')
    db = isolated / 'data' / 'results.duckdb'
    untrusted = kit.Run('u7custom00', 'custom_street', UNTRUSTED_NAME, quality=0.8, params=300_000, macs=2.0e8,
                        latency_ms=10.0, untrusted_reason=REASON, measurement_protocol=2, minutes=7)
    kit.store_runs(db, kit.street_runs() + [untrusted])
    return db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _wait_for_health(url: str, server: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f'the leaderboard server exited with {server.returncode}')
        try:
            with urllib.request.urlopen(f'{url}/_stcore/health', timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f'the leaderboard did not answer at {url} within {timeout:.0f} s')


@pytest.fixture
def server(untrusted_db: Path, isolated: Path) -> Iterator[str]:
    """`frugalbench leaderboard --no-browser` on a free port, in its own process group."""
    port = _free_port()
    log = (isolated / 'leaderboard.log').open('w')
    env = {k: v for k, v in os.environ.items() if k != 'FRUGALBENCH_DB'}  # the database comes from --db
    process = subprocess.Popen(
        [sys.executable, '-m', 'frugalbench', 'leaderboard', '--db', str(untrusted_db), '--port', str(port),
         '--no-browser'], stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    url = f'http://localhost:{port}'
    try:
        _wait_for_health(url, process)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _grid_cells(grid) -> list[str]:
    from selenium.webdriver.common.by import By
    return [c.get_attribute('textContent') or '' for c in grid.find_elements(By.CSS_SELECTOR, 'td[role="gridcell"]')]


def _wait(condition, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            assert value, f'not shown after {timeout:.0f} s: {what}'
            return value
        time.sleep(0.5)


def test_untrusted_run_shows_its_reason_and_is_not_ranked_on_params(server: str) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in CHROME_ARGS:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(server)
        grids = lambda: driver.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')
        # the ranking (on params, the default resource) lists the trusted runs, not the custom-code one
        ranking = _wait(lambda: next((g for g in grids() if 'Fast-SCNN street' in _grid_cells(g)), None),
                        'the ranking table with Fast-SCNN street')
        assert UNTRUSTED_NAME not in _grid_cells(ranking)
        # a caption says which run is not ranked on its compute counts, and why
        page = lambda: (driver.find_element(By.TAG_NAME, 'body').get_attribute('textContent')
                        or '').replace(WORD_JOINER, '')  # captions carry invisible word joiners after ':' and '.'
        _wait(lambda: 'with untrusted compute counts' in page(), 'the untrusted-compute caption')
        assert f'{UNTRUSTED_NAME} [u7custom]: params, MACs: {REASON}' in page()
        # the runs left out, with the reason
        toggle = next(e for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stExpander"] summary')
                      if 'not ranked here' in (e.text or ''))
        toggle.click()
        left_out = _wait(lambda: next((g for g in grids() if UNTRUSTED_NAME in _grid_cells(g)), None),
                         'the custom-code run among the runs not ranked')
        assert f'params is not ranked: untrusted compute counts ({REASON})' in _wait(
            lambda: _grid_cells(left_out), 'the left-out table cells')
        OUTPUT.mkdir(exist_ok=True)
        driver.execute_script('arguments[0].scrollIntoView()', left_out)
        time.sleep(1.0)
        driver.save_screenshot(str(OUTPUT / 'leaderboard_untrusted.png'))
    finally:
        driver.quit()
