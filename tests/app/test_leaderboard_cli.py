"""`frugalbench leaderboard`: the Streamlit command it runs, and its usage errors.
(The browser test starts the real server through this command.)"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from frugalbench.cli import build_parser, main
from frugalbench.cli.leaderboard import APP, streamlit_command


def test_streamlit_runs_the_app_headless_offline_on_the_port_with_the_database() -> None:
    command = streamlit_command(Path('/data/results.duckdb'), 8765)
    assert command == [sys.executable, '-m', 'streamlit', 'run', str(APP), '--server.headless', 'true',
                       '--browser.gatherUsageStats', 'false', '--server.address', '127.0.0.1',
                       '--server.port', '8765', '--', '--db', '/data/results.duckdb']
    assert APP.is_file()


def test_the_leaderboard_listens_on_this_machine_only_unless_host_says_otherwise() -> None:
    assert build_parser().parse_args(['leaderboard']).host == '127.0.0.1'
    assert build_parser().parse_args(['leaderboard', '--host', '0.0.0.0']).host == '0.0.0.0'
    command = streamlit_command(Path('x.duckdb'), 8765, host='0.0.0.0')
    assert command[command.index('--server.address') + 1] == '0.0.0.0'


def test_options_and_defaults() -> None:
    args = build_parser().parse_args(['leaderboard'])
    assert (args.db, args.port, args.no_browser) == (None, 8501, False)
    args = build_parser().parse_args(['leaderboard', '--db', 'x.duckdb', '--port', '9000', '--no-browser'])
    assert (args.db, args.port, args.no_browser) == (Path('x.duckdb'), 9000, True)


@pytest.mark.parametrize('port', ['0', '70000'])
def test_an_impossible_port_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['leaderboard', '--port', port, '--no-browser']) == 2
    assert f'--port must be between 1 and 65535, got {port}' in capsys.readouterr().err


def test_a_snapshot_is_served_with_snapshot_and_not_with_a_database(capsys: pytest.CaptureFixture[str]) -> None:
    command = streamlit_command(Path('/data/results.duckdb'), 8765, snapshot=Path('/srv/public'))
    assert command[command.index('--'):] == ['--', '--snapshot', '/srv/public']
    assert main(['leaderboard', '--db', 'x.duckdb', '--snapshot', 'public', '--no-browser']) == 2
    assert 'give --db or --snapshot, not both' in capsys.readouterr().err
