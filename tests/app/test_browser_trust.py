"""End to end in headless Chromium: a run whose compute counts are untrusted (it ran its own code,
``custom_imports``) is left out of the ranking on params, and the page says why.

The runs are evaluation documents written with the real store (``save_run``) into a DuckDB file;
`frugalbench leaderboard` serves the real app on it. Needs Debian's `chromium` and
`chromium-driver` and selenium (skipped with the reason otherwise, see tests/browser.py).
The screenshot goes to tests/output/leaderboard_untrusted.png.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import browser
import pytest

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


def test_untrusted_run_shows_its_reason_and_is_not_ranked_on_params(server: str) -> None:
    from selenium.webdriver.common.by import By
    driver = browser.chrome()
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
    finally:
        driver.quit()
