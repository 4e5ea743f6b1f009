"""``frugalbench leaderboard``: serve the Streamlit leaderboard (offline) on a local port."""
from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
import urllib.request
import webbrowser
from pathlib import Path

from frugalbench.cli.common import add_db_option, db_path, stderr
from frugalbench.errors import UsageError
from frugalbench.settings import PROJECT_ROOT

APP = PROJECT_ROOT / 'app' / 'leaderboard.py'
DEFAULT_PORT = 8501


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('leaderboard', help='serve the leaderboard web app (Streamlit)')
    add_db_option(parser)
    parser.add_argument('--port', type=int, default=DEFAULT_PORT, help=f'local port (default {DEFAULT_PORT})')
    parser.add_argument('--no-browser', action='store_true', help='do not open a web browser')
    parser.set_defaults(handler=run)


def streamlit_command(db: Path, port: int, app: Path = APP) -> list[str]:
    """The command that serves ``app`` on ``port``, headless and without usage statistics."""
    return [sys.executable, '-m', 'streamlit', 'run', str(app), '--server.headless', 'true',
            '--browser.gatherUsageStats', 'false', '--server.port', str(port), '--', '--db', str(db)]


def url(port: int) -> str:
    return f'http://localhost:{port}'


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise UsageError(f'--port must be between 1 and 65535, got {args.port}')
    if not APP.is_file():
        raise UsageError(f'the leaderboard app is missing ({APP}): run from a frugalbench source checkout')
    db = db_path(args).resolve()
    address = url(args.port)
    stderr.print(f'leaderboard: {address}  (database {db}; Ctrl+C stops it)')
    print(address, flush=True)
    if not args.no_browser:
        threading.Thread(target=_open_when_up, args=(address,), daemon=True).start()
    try:
        return subprocess.call(streamlit_command(db, args.port))
    except KeyboardInterrupt:
        return 0


def _open_when_up(address: str, timeout: float = 30.0) -> None:
    """Open the page in the user's browser once the server answers its health check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f'{address}/_stcore/health', timeout=1):
                webbrowser.open(address)
                return
        except OSError:
            time.sleep(0.3)
