"""Text is text in a real browser (issue 15, item 3): names, techniques, hardware labels, class,
track and benchmark names, failure reasons and image names holding Markdown, HTML, Streamlit colour
directives and bidi controls are shown as the characters they are in every element of the
leaderboard (sidebar selectors, captions, tables, charts, the submission page), in headless
Chromium; and the server listens on 127.0.0.1 only.

Needs Debian's `chromium` and `chromium-driver` (`make setup-browser`) and selenium; skipped with
the reason when they are missing. The screenshots go to tests/output/hostile_text*.png.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import browser
import numpy as np
import pytest
import yaml
from PIL import Image

from frugalbench.store import connect, save_run

EVIL = 'evil.example'
NAME = f'Name **boldname** [namelink](http://{EVIL}/n) :red[rednamex] <b>htmlname</b> \u202eRTL'
TECHNIQUE = '<i>itech</i> **boldtech**'
CPU = f'**boldcpu** [cpulink](http://{EVIL}/c)'
CLASS = f'**boldclass** [classlink](http://{EVIL}/k)'
TRACK = f'**boldtrack** [tracklink](http://{EVIL}/t) :red[redtrackx]'
REASON = f'broken **boldreason** [reasonlink](http://{EVIL}/r) <b>htmlreason</b>'
IMAGE = f'**boldimage** [imagelink](http://{EVIL}/i) :red[redimagex]'
BENCHMARK = f'**boldbench** [benchlink](http://{EVIL}/b) :red[redbenchx]'
# words that would appear as an element of their own if the Markdown or HTML around them were rendered
MARKED = ('boldname', 'namelink', 'rednamex', 'htmlname', 'itech', 'boldtech', 'boldcpu', 'cpulink', 'boldclass',
          'classlink', 'boldtrack', 'tracklink', 'redtrackx', 'boldreason', 'reasonlink', 'htmlreason',
          'boldimage', 'imagelink', 'redimagex', 'boldbench', 'benchlink', 'redbenchx')

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def hostile_db(isolated: Path, kit) -> Path:
    browser.require_browser()
    benchmarks = isolated / 'data' / 'benchmarks'
    benchmarks.mkdir(parents=True)
    classes = ['road', CLASS]
    (benchmarks / 'street.yaml').write_text(yaml.safe_dump(dict(
        name='street', protocol_version=1, description='street scenes', root='street', layout='mmseg',
        splits={'test': 'test'}, classes=classes, references={'params': 1.0e6, 'macs': 1.0e9},
        tracks={TRACK: {'description': 'hostile track name', 'max_params': 1.0e9}}), allow_unicode=True))
    overlay = isolated / 'data' / 'overlays' / 'h1hostile0' / '000.png'
    overlay.parent.mkdir(parents=True)
    Image.fromarray(np.full((8, 24, 3), 120, np.uint8)).save(overlay)
    Run = kit.Run
    runs = [Run('h1hostile0', 'hostile_sub', NAME, technique=TECHNIQUE, quality=0.9, classes=classes,
                hardware={**kit.Run('x', 'x', 'x').hardware, 'cpu_model': CPU, 'fingerprint': 'hostilehw01'},
                parent=f'**boldparent** [p](http://{EVIL}/p)', minutes=1),
            Run('h2plain000', 'plain_sub', 'Plain model', quality=0.5, classes=classes, minutes=2),
            Run('h3failed00', 'failing_sub', 'Failing model', status='failed', failure_reason=REASON,
                classes=classes, minutes=3),
            Run('h4bench000', 'bench_sub', 'Bench model', benchmark=BENCHMARK, status='failed',
                failure_reason='no benchmark file', classes=classes, minutes=4)]
    db = isolated / 'data' / 'results.duckdb'
    with connect(db) as connection:
        for run in runs:
            document = run.document()
            if run.run_id == 'h1hostile0':
                document['manifest']['description'] = f'<script>alert(1)</script> **bolddescription** {NAME}'
                document['overlays'] = [{'image': IMAGE, 'path': str(overlay), 'panels': 'image'}]
            ok = run.status == 'ok'
            save_run(connection, document, run.classes if ok else [], run.areas() if ok else [],
                     run.measurements() if ok else [])
    return db


@pytest.fixture
def server(hostile_db: Path, isolated: Path) -> Iterator[tuple[str, int]]:
    # no --host: the leaderboard's default, which the test checks listens on 127.0.0.1 only
    with browser.leaderboard_server(hostile_db, isolated / 'leaderboard.log') as (url, port):
        yield url, port


def _listening(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(':', 1)
            if state == '0A' and int(port_hex, 16) == port:
                found.add(address)
    return found


def _marked_elements(driver) -> list[str]:
    """Elements that rendering the Markdown or HTML would have made: links to the evil site, bold,
    italic or coloured elements holding exactly one of the marked words."""
    from selenium.webdriver.common.by import By
    found = [f'link {a.get_attribute("href")}' for a in driver.find_elements(By.CSS_SELECTOR, f'a[href*="{EVIL}"]')]
    for word in MARKED:
        for element in driver.find_elements(By.XPATH, f"//*[normalize-space(text())='{word}']"):
            found.append(f'<{element.tag_name}>{word}')
    found += [f'<script> {s.get_attribute("textContent")[:40]}' for s in driver.find_elements(By.TAG_NAME, 'script')
              if 'alert(1)' in (s.get_attribute('textContent') or '')]
    return found


def _text(driver) -> str:
    """Everything the page holds as text, visible or not (cells of the grids included), without the
    invisible word joiners that keep Markdown from linking URLs (frugalbench.text.markdown_literal)."""
    return (driver.execute_script('return document.body.textContent') or '').replace('\u2060', '')


def _wait_for(driver, predicate, what: str) -> None:
    browser.wait_until(predicate, what, 90.0,
                       on_timeout=lambda: browser.screenshot(driver, 'hostile_text_timeout.png'))


def _choose(driver, label: str, option: str) -> None:
    """Open the sidebar selectbox ``label`` and click the option whose text holds ``option``."""
    from selenium.webdriver.common.by import By
    box = driver.find_element(By.CSS_SELECTOR, f'input[role="combobox"][aria-label="{label}"]')
    box.find_element(By.XPATH, './following-sibling::button').click()  # "Open": the whole list
    deadline = time.monotonic() + 30
    while True:
        options = [o for o in driver.find_elements(By.CSS_SELECTOR, '[role="option"]')
                   if option in (o.get_attribute('textContent') or '')]
        if options:
            break
        assert time.monotonic() < deadline, f'no option holding {option!r} in {label!r}'
        time.sleep(0.3)
    assert not _marked_elements(driver)  # the open list of options holds the names as text too
    options[0].click()


def test_hostile_text_is_shown_as_text_in_every_element(server: tuple[str, int]) -> None:
    from selenium.webdriver.common.by import By
    url, port = server
    assert _listening(port) == {'0100007F'}, 'the leaderboard must listen on 127.0.0.1 only'
    driver = browser.chrome()
    try:
        driver.get(url)
        # ranking table, Pareto and budget charts, submission page: names, technique, hardware, classes
        _wait_for(driver, lambda: 'Name **boldname** [namelink]' in _text(driver), 'the hostile run name')
        _wait_for(driver, lambda: '**bolddescription**' in _text(driver), 'the submission page')
        _wait_for(driver, lambda: '**boldimage** [imagelink]' in _text(driver), "the overlay's caption")
        time.sleep(2.0)  # let the charts and images finish drawing
        text = _text(driver)
        assert '\\u202eRTL' in text  # the bidi override is shown, not obeyed
        assert '\u202e' not in text, [text[max(0, i - 80):i + 20] for i in range(len(text)) if text[i] == '\u202e']
        assert '<script>alert(1)</script>' in text  # the description, as characters
        # the failure reason, in the table of runs left out of the ranking (an expander)
        driver.find_element(By.XPATH, "//summary[contains(., 'not ranked here')]").click()
        _wait_for(driver, lambda: 'broken **boldreason** [reasonlink]' in _text(driver), 'the failure reason')
        assert '**boldparent**' in text
        browser.screenshot(driver, 'hostile_text.png')
        assert not _marked_elements(driver)
        # the track selector and the ranking caption that names the chosen track
        _choose(driver, 'Track', 'boldtrack')
        _wait_for(driver, lambda: 'in track **boldtrack** [tracklink]' in _text(driver), 'the track caption')
        assert not _marked_elements(driver)
        # a benchmark that exists only as a name in a failed run: its selector option and the sidebar note
        _choose(driver, 'Benchmark', 'boldbench')
        _wait_for(driver, lambda: 'benchmark file not readable here' in _text(driver), 'the benchmark note')
        time.sleep(1.0)
        assert '**boldbench** [benchlink](http://evil.example/b) :red[redbenchx]' in _text(driver)
        browser.screenshot(driver, 'hostile_text_benchmark.png')
        assert not _marked_elements(driver)
    finally:
        driver.quit()
