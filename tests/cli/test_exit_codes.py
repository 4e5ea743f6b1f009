"""Exit codes (issue 15, item 5; README "Exit codes"): 0 ok, 1 failed (an evaluation: and recorded
as failed), 2 usage error, 3 internal error (a bug: traceback, nothing claimed recorded), 4 not
recorded (the database could not be read or written; a finished run is spooled). The spooled
evaluation (exit 4) is in tests/test_no_run_lost.py."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from frugalbench.cli import EXIT_FAILED, EXIT_INTERNAL, EXIT_NOT_RECORDED, EXIT_OK, EXIT_USAGE
from frugalbench.store import connect, list_run_documents


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'frugalbench', *args], capture_output=True, text=True,
                          env={**os.environ, 'COLUMNS': '300', **(env or {})}, timeout=300)


def test_the_codes_are_distinct() -> None:
    assert (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_NOT_RECORDED) == (0, 1, 2, 3, 4)


def test_a_usage_error_exits_2(isolated: Path) -> None:
    result = _run('evaluate')
    assert result.returncode == 2 and 'name at least one submission folder' in result.stderr


def test_a_failed_evaluation_exits_1_and_is_recorded(isolated: Path) -> None:
    folder = isolated / 'not_a_submission'
    folder.mkdir()
    db = isolated / 'data' / 'results.duckdb'
    result = _run('evaluate', str(folder), '--db', str(db))
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    with connect(db) as connection:
        [document] = list_run_documents(connection)
    assert document['status'] == 'failed' and 'submission.yaml is missing' in document['failure_reason']


def test_a_database_held_by_another_process_exits_4_saying_it_is_not_recorded(isolated: Path) -> None:
    db = isolated / 'data' / 'results.duckdb'
    with connect(db):
        pass
    holder = subprocess.Popen([sys.executable, '-c', 'import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); '
                               'print("held", flush=True); time.sleep(120)', str(db)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == 'held'
        result = _run('results', '--db', str(db))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 4
    assert 'not recorded' in result.stderr and f'(PID {holder.pid})' in result.stderr
    assert 'Traceback' not in result.stderr


def test_an_unexpected_exception_exits_3_with_the_traceback(tmp_path: Path) -> None:
    # a subcommand with a bug, added the way frugalbench's own are (COMMAND_MODULES), run by the real main()
    (tmp_path / 'buggy_command.py').write_text(textwrap.dedent('''
        def register(subparsers):
            subparsers.add_parser('buggy').set_defaults(handler=lambda args: {}['missing'])
    '''))
    code = ('import sys, frugalbench.cli as cli\n'
            "cli.COMMAND_MODULES = (*cli.COMMAND_MODULES, 'buggy_command')\n"
            "sys.exit(cli.main(['buggy']))\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, 'PYTHONPATH': str(tmp_path)})
    assert result.returncode == 3
    assert "KeyError: 'missing'" in result.stderr and 'Traceback' in result.stderr
    assert 'internal error (exit 3): this is a bug in frugalbench' in result.stderr
