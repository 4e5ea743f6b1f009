"""``frugalbench leaderboard``: serve the Streamlit leaderboard (offline) on a local port.

It listens on 127.0.0.1 only (this machine) unless ``--host`` names another address (e.g.
``--host 0.0.0.0`` for every interface: anyone who can reach the port then sees the results).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
import urllib.request
import webbrowser
from pathlib import Path

from frugalbench.cli.common import add_db_option, db_path, plain, stderr
from frugalbench.errors import UsageError
from frugalbench.settings import PROJECT_ROOT

APP = PROJECT_ROOT / 'app' / 'leaderboard.py'
DEFAULT_PORT = 8501
DEFAULT_HOST = '127.0.0.1'


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('leaderboard', help='serve the leaderboard web app (Streamlit)')
    add_db_option(parser)
    parser.add_argument('--snapshot', type=Path, default=None, metavar='DIR',
                        help='serve a public snapshot (frugalbench results export --public DIR) instead of a '
                             'database: read-only, no Submit or Queue page')
    parser.add_argument('--port', type=int, default=DEFAULT_PORT, help=f'local port (default {DEFAULT_PORT})')
    parser.add_argument('--host', default=DEFAULT_HOST,
                        help=f'address to listen on (default {DEFAULT_HOST}: this machine only; '
                             '0.0.0.0 serves every interface)')
    parser.add_argument('--no-browser', action='store_true', help='do not open a web browser')
    parser.set_defaults(handler=run)


def streamlit_command(db: Path, port: int, app: Path = APP, host: str = DEFAULT_HOST,
                      snapshot: Path | None = None) -> list[str]:
    """The command that serves ``app`` on ``host:port``, headless and without usage statistics,
    on the database ``db`` or, when given, the snapshot folder ``snapshot``."""
    source = ['--snapshot', str(snapshot)] if snapshot is not None else ['--db', str(db)]
    return [sys.executable, '-m', 'streamlit', 'run', str(app), '--server.headless', 'true',
            '--browser.gatherUsageStats', 'false', '--server.address', host, '--server.port', str(port),
            '--', *source]


def url(port: int, host: str = DEFAULT_HOST) -> str:
    shown = 'localhost' if host in (DEFAULT_HOST, 'localhost', '0.0.0.0', '::') else host
    return f'http://{f"[{shown}]" if ":" in shown else shown}:{port}'


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise UsageError(f'--port must be between 1 and 65535, got {args.port}')
    if not APP.is_file():
        raise UsageError(f'the leaderboard app is missing ({APP}): run from a frugalbench source checkout')
    if not args.host or any(c.isspace() for c in args.host):
        raise UsageError(f'--host must be an address such as 127.0.0.1 or 0.0.0.0, got {args.host!r}')
    db, snapshot = db_path(args).resolve(), None
    if args.snapshot is not None:
        if args.db is not None:
            raise UsageError('give --db or --snapshot, not both')
        from frugalbench.store.snapshot import verify_snapshot
        snapshot = args.snapshot.resolve()
        verify_snapshot(snapshot)  # a tampered or incomplete snapshot is refused here, naming the file
    address = url(args.port, args.host)
    where = 'this machine only' if args.host == DEFAULT_HOST else f'listening on {args.host}'
    serving = f'snapshot {plain(snapshot)}, read-only' if snapshot else f'database {plain(db)}'
    stderr.print(f'leaderboard: {address}  ({where}; {serving}; Ctrl+C stops it)')
    print(address, flush=True)
    if not args.no_browser:
        threading.Thread(target=_open_when_up, args=(address,), daemon=True).start()
    try:
        return subprocess.call(streamlit_command(db, args.port, host=args.host, snapshot=snapshot))
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
