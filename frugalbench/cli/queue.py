"""``frugalbench queue``: list the submission queue; ``queue cancel ID`` (issue 17)."""
from __future__ import annotations

import argparse
from pathlib import Path

from frugalbench.cli.common import (
    add_db_option,
    add_format_option,
    db_path,
    fmt,
    plain,
    print_json,
    stderr,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('queue', help='list submitted entries and their states; queue cancel ID')
    add_db_option(parser)
    add_format_option(parser)
    parser.add_argument('--state', choices=('queued', 'running', 'done', 'failed', 'cancelled'), default=None)
    parser.set_defaults(handler=run_list)
    inner = parser.add_subparsers(dest='queue_command', required=False)
    cancel = inner.add_parser('cancel', help='cancel a queued entry')
    cancel.add_argument('entry_id')
    # the same options after the subcommand; SUPPRESS keeps a value given before it
    cancel.add_argument('--db', type=Path, default=argparse.SUPPRESS, help='results database')
    cancel.add_argument('--format', choices=('table', 'json'), default=argparse.SUPPRESS, help='output format')
    cancel.set_defaults(handler=run_cancel)


def run_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from frugalbench.platform.queue import list_entries
    entries = list_entries(db_path(args), args.state)
    if args.format == 'json':
        print_json(entries)
        return 0
    table = Table(title='frugalbench queue')
    for column in ('id', 'position', 'name', 'benchmark', 'state', 'attempts', 'submitted', 'run', 'reason'):
        table.add_column(column, overflow='fold')
    for e in entries:
        table.add_row(plain(e['id']), fmt(e['position']), plain(e['name']), plain(e['benchmark']), plain(e['state']),
                      fmt(e['attempts']), plain(e['submitted_at']), plain(e['run_id'] or ''), plain(e['reason'] or ''))
    Console().print(table)
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from frugalbench.platform.queue import cancel
    entry = cancel(db_path(args), args.entry_id)
    if args.format == 'json':
        print_json(entry)
    else:
        stderr.print(f'cancelled {plain(entry["id"])} {plain(entry["name"])}')
    return 0
