"""Support for the real-browser tests (importable: pytest puts tests/ on sys.path): headless Chromium
(Debian's `chromium` and `chromium-driver`, `make setup-browser`) driven by selenium, against
`frugalbench leaderboard` served in a process group of its own.

- ``require_browser()``: skip, saying why and how to fix it, unless Chromium, its driver and selenium
  are present (call it before building anything costly);
- ``leaderboard_server(db, log_path)``: serve the leaderboard on ``db`` on a free port, yield
  ``(url, port)`` once it answers, then stop the whole process group;
- ``chrome()``: a headless Chromium driver (the caller quits it);
- ``wait_until(predicate, what)``: poll until ``predicate()`` holds, else fail saying what was missing;
- ``screenshot(driver, name)`` writes tests/output/``name``; ``grid_cells(root)`` reads the grids' cells.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

CHROMIUM = Path('/usr/bin/chromium')
CHROMEDRIVER = Path('/usr/bin/chromedriver')
OUTPUT = Path(__file__).resolve().parent / 'output'
CHROME_ARGS = ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
               '--disable-component-update', '--disable-sync', '--no-first-run', '--window-size=1600,1300')
STARTUP_TIMEOUT = 90.0  # seconds for the leaderboard to answer its health check
STOP_TIMEOUT = 15.0     # seconds between SIGTERM and SIGKILL

T = TypeVar('T')


def _found(program: Path) -> str | None:
    """``program`` where it is, or the one of that name on PATH; None when neither exists."""
    return str(program) if program.is_file() else shutil.which(program.name)


def require_browser() -> None:
    """Skip (saying why and how to fix it) unless Chromium, its driver and selenium are present."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not _found(p)]
    if missing:
        pytest.skip(f'no headless browser: {", ".join(missing)} missing; run `make setup-browser` '
                    '(Debian packages chromium and chromium-driver) to enable this test')
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip('selenium is not installed: `pip install selenium` to enable this test')


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _wait_for_health(url: str, process: subprocess.Popen, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f'the leaderboard server exited with {process.returncode}')
        try:
            with urllib.request.urlopen(f'{url}/_stcore/health', timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f'the leaderboard did not answer at {url} within {timeout:.0f} s')


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, then SIGKILL if it has not ended within STOP_TIMEOUT."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:  # the group is gone already (the server exited on its own)
        process.wait()


@contextmanager
def leaderboard_server(db: Path, log_path: Path, host: str | None = None) -> Iterator[tuple[str, int]]:
    """`frugalbench leaderboard --db db --no-browser` on a free port, in its own process group, its
    output in ``log_path``; yields ``(url, port)`` once /_stcore/health answers and always stops the
    group. ``host`` is passed as ``--host``; None keeps the default (127.0.0.1 only). The database
    comes from ``--db`` alone: FRUGALBENCH_DB is not passed on."""
    port = free_port()
    command = [sys.executable, '-m', 'frugalbench', 'leaderboard', '--db', str(db), '--port', str(port),
               '--no-browser']
    if host is not None:
        command += ['--host', host]
    address = '127.0.0.1' if host in (None, '0.0.0.0', '::') else host
    url = f'http://[{address}]:{port}' if ':' in address else f'http://{address}:{port}'
    env = {k: v for k, v in os.environ.items() if k != 'FRUGALBENCH_DB'}
    with log_path.open('w') as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        try:
            _wait_for_health(url, process)
            yield url, port
        finally:
            _stop_group(process)


def chrome() -> Any:
    """A headless Chromium selenium driver (CHROME_ARGS); the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = _found(CHROMIUM) or str(CHROMIUM)
    for argument in CHROME_ARGS:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(_found(CHROMEDRIVER) or str(CHROMEDRIVER)), options=options)


def wait_until(predicate: Callable[[], T], what: str, timeout: float = 90.0,
               on_timeout: Callable[[], object] | None = None) -> T:
    """``predicate()``'s first true value, polled every 0.5 s; after ``timeout`` seconds calls
    ``on_timeout`` (e.g. a screenshot) and fails with 'not shown after N s: ``what``'."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            if on_timeout is not None:
                on_timeout()
            raise AssertionError(f'not shown after {timeout:.0f} s: {what}')
        time.sleep(0.5)


def screenshot(driver: Any, name: str) -> None:
    """Save the page as tests/output/``name``."""
    OUTPUT.mkdir(exist_ok=True)
    driver.save_screenshot(str(OUTPUT / name))


def grid_cells(root: Any) -> list[str]:
    """The text of every data-grid cell under ``root`` (a driver or an element)."""
    from selenium.webdriver.common.by import By
    return [c.get_attribute('textContent') or '' for c in root.find_elements(By.CSS_SELECTOR, 'td[role="gridcell"]')]
