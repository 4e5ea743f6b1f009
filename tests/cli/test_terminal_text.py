"""Text is text in the terminal and in CSV (issue 15, item 3): names from submissions and failure
reasons with terminal escape sequences, bidi controls or rich markup are printed as visible
escapes by `evaluate`, `results` and `rank`; CSV exports neutralise formula prefixes."""
from __future__ import annotations

import csv
import io
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from frugalbench.store import connect, save_run
from frugalbench.text import csv_cell, visible

# a hyperlink (OSC 8), a screen clear, a colour, a bell, a C1 CSI, a right-to-left override, rich markup
HOSTILE = 'evil\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07\x1b[2J\x1b[31mRED\x07\x9b1m\u202eRTL[bold]b[/bold]'
FORMULAS = ['=HYPERLINK("http://evil.example","x")', '+1+1', '-2+3', '@SUM(A1)', '\tTAB', '\rCR']
RAW = ('\x1b]8;;http://evil', '\x1b[2J', '\x1b[31m', '\x07', '\x9b', '\u202e')


def _document(run_id: str, submission: str, name: str, reason: str | None = None) -> dict:
    common = {'run_id': run_id, 'created_at': '2026-11-30T10:00:00+00:00', 'submission': submission,
              'benchmark': 'street', 'manifest': {'name': name, 'technique': 'lightweight'}}
    if reason is not None:
        return {**common, 'status': 'failed', 'failure_reason': reason}
    return {**common, 'status': 'ok', 'failure_reason': None, 'protocol_version': 1,
            'hardware': {'fingerprint': 'hw'}, 'accuracy': {'miou': 0.5, 'num_images': 2},
            'compute': {'params': 1000}, 'run_key': f'key-{run_id}'}


@pytest.fixture
def hostile_db(isolated: Path) -> Path:
    benchmarks = isolated / 'data' / 'benchmarks'
    benchmarks.mkdir(parents=True)
    (benchmarks / 'street.yaml').write_text(yaml.safe_dump(dict(
        name='street', protocol_version=1, root='street', layout='mmseg', splits={'test': 'test'},
        classes=['road', 'car'], references={'params': 1.0e6})))
    db = isolated / 'data' / 'results.duckdb'
    with connect(db) as connection:
        save_run(connection, _document('r0', HOSTILE, HOSTILE))
        save_run(connection, _document('r1', 'failing', 'Failing', reason=f'broken: {HOSTILE}'))
        for index, formula in enumerate(FORMULAS):
            save_run(connection, _document(f'f{index}', f'formula{index}', formula))
    return db


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'frugalbench', *args], capture_output=True, text=True,
                          env={**os.environ, 'COLUMNS': '1000'}, timeout=300)


def _in_a_terminal(*args: str) -> str:
    """stdout and stderr of the command run on a pseudo-terminal (rich then writes its own colours)."""
    main, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, '-m', 'frugalbench', *args], stdout=secondary, stderr=secondary,
                               env={**os.environ, 'COLUMNS': '1000', 'TERM': 'xterm-256color'})
    os.close(secondary)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(main)
    return b''.join(chunks).decode('utf-8', 'replace')


def test_results_table_shows_escape_sequences_and_bidi_controls_as_visible_text(hostile_db: Path) -> None:
    result = _run('results', '--db', str(hostile_db))
    assert result.returncode == 0, result.stderr
    assert '\x1b' not in result.stdout and '\u202e' not in result.stdout and '\x9b' not in result.stdout
    assert '\\x1b]8;;http://evil.example/\\x07click' in result.stdout
    assert '\\u202eRTL[bold]b[/bold]' in result.stdout  # rich markup printed, not applied
    assert 'broken: evil\\x1b' in result.stdout  # the failure reason too


def test_results_in_a_real_terminal_never_pass_the_submissions_sequences_through(hostile_db: Path) -> None:
    output = _in_a_terminal('results', '--db', str(hostile_db))
    assert 'frugalbench runs' in output
    assert not [raw for raw in RAW if raw in output]
    assert '\\x1b[2J' in output


def test_rank_table_shows_names_as_visible_text(hostile_db: Path) -> None:
    result = _run('rank', '--db', str(hostile_db), '--resource', 'params')
    assert result.returncode == 0, result.stderr
    assert '\\u202eRTL' in result.stdout
    assert not [raw for raw in RAW if raw in result.stdout + result.stderr]


def test_evaluate_prints_a_hostile_folder_name_as_visible_text(isolated: Path) -> None:
    folder = isolated / f'sub{HOSTILE.replace("/", "_")}'
    folder.mkdir()
    result = _run('evaluate', str(folder), '--db', str(isolated / 'data' / 'results.duckdb'))
    assert result.returncode == 1  # failed (no manifest), and recorded as failed
    assert not [raw for raw in RAW if raw in result.stdout + result.stderr]
    assert '\\x1b[31mRED' in result.stderr and 'is missing' in result.stderr


def test_csv_export_neutralises_formula_prefixes(hostile_db: Path) -> None:
    result = _run('results', '--db', str(hostile_db), '--format', 'csv')
    assert result.returncode == 0, result.stderr
    rows = {row['run_id']: row for row in csv.DictReader(io.StringIO(result.stdout))}
    for index, formula in enumerate(FORMULAS):
        cell = rows[f'f{index}']['submission_name']
        assert not cell.startswith(('=', '+', '-', '@', '\t', '\r'))
        # a leading = + - @ gets a quote; a leading tab or CR is already written as a visible escape
        assert cell == ("'" + formula if formula[0] in '=+-@' else visible(formula))
    assert rows['r0']['submission_name'].startswith('evil\\x1b]8;;')
    assert rows['f0']['miou'] == '0.5'  # numbers stay numbers
    assert not [raw for raw in RAW if raw in result.stdout]


def test_csv_cell_prefixes_exactly_the_formula_starts() -> None:
    assert [csv_cell(v) for v in ('=1', '+1', '-1', '@x', '\t1', '\r1')] == [
        "'=1", "'+1", "'-1", "'@x", "'\t1", "'\r1"]
    assert [csv_cell(v) for v in ('a=1', ' =1', '1', 2, None)] == ['a=1', ' =1', '1', 2, None]
