"""End to end: `frugalbench leaderboard` serves the real app; headless Chromium shows the ranking.

Needs Debian's `chromium` and `chromium-driver` (`make setup-browser`) and selenium; skipped with
the reason when they are missing. The screenshot goes to tests/output/leaderboard.png.
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
import yaml

CHROMIUM = Path('/usr/bin/chromium')
CHROMEDRIVER = Path('/usr/bin/chromedriver')
OUTPUT = Path(__file__).resolve().parents[1] / 'output'
CHROME_ARGS = ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
               '--disable-component-update', '--disable-sync', '--no-first-run', '--window-size=1600,1300')
TINY_REFERENCES = {'macs': 1.0e9, 'params': 1.0e6}

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _browser_or_skip() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not (p.is_file() or shutil.which(p.name))]
    if missing:
        pytest.skip(f'no headless browser: {", ".join(missing)} missing; run `make setup-browser` '
                    '(Debian packages chromium and chromium-driver) to enable this test')
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip('selenium is not installed: `pip install selenium` to enable this test')


def _number_among(value: float, cells: list[str]) -> bool:
    """Whether a cell holds ``value`` (the grid's accessible cells carry the stored number)."""
    for cell in cells:
        try:
            if abs(float(cell) - value) < 1e-9:
                return True
        except ValueError:
            continue
    return False


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
def chromium() -> None:
    """Skip (saying why and how to fix it) unless Chromium, its driver and selenium are present."""
    _browser_or_skip()


@pytest.fixture
def browser_db(chromium: None, isolated: Path, tiny_benchmark: str, make_submission, quick_protocol: Path,
               kit) -> tuple[Path, list[tuple[str, float]]]:
    """One real evaluated run (Fast-SCNN, random weights, on the tiny benchmark, measured with the
    short test protocol) plus three runs written with save_run; returns the database and the
    (name, mIoU) pairs to look for."""
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
    expected = [(outcome.document['manifest']['name'], outcome.document['accuracy']['miou'])]
    expected += [(run.name, run.document()['accuracy']['miou']) for run in stored]
    return db, expected


@pytest.fixture
def server(browser_db: tuple[Path, list], isolated: Path) -> Iterator[str]:
    """`frugalbench leaderboard --no-browser` on a free port, in its own process group."""
    port = _free_port()
    log = (isolated / 'leaderboard.log').open('w')
    env = {k: v for k, v in os.environ.items() if k != 'FRUGALBENCH_DB'}  # the database comes from --db
    process = subprocess.Popen(
        [sys.executable, '-m', 'frugalbench', 'leaderboard', '--db', str(browser_db[0]), '--port', str(port),
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


def test_leaderboard_shows_stored_runs_in_chromium(server: str, browser_db: tuple[Path, list]) -> None:
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
        expected = browser_db[1]
        deadline = time.monotonic() + 90
        while True:
            cells = [c.get_attribute('textContent') or ''
                     for c in driver.find_elements(By.CSS_SELECTOR, 'td[role="gridcell"]')]
            missing = [name for name, _ in expected if name not in cells]
            missing += [f'mIoU {miou!r}' for _, miou in expected if not _number_among(miou, cells)]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        OUTPUT.mkdir(exist_ok=True)
        time.sleep(1.0)  # let the charts finish drawing for the screenshot
        driver.save_screenshot(str(OUTPUT / 'leaderboard.png'))
        assert not missing, f'not shown in the table after 90 s: {missing}'
        # submission text is shown as text: the <i> of 'CGNet <i>tiny</i> **v2**' is not an element
        assert not driver.find_elements(By.XPATH, "//i[normalize-space()='tiny']")
    finally:
        driver.quit()
