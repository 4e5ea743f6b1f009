"""``frugalbench submit``: validate a submission folder or archive, store it, queue it (issue 17)."""
from __future__ import annotations

import argparse
from pathlib import Path

from frugalbench.cli.common import (
    add_db_option,
    add_format_option,
    db_path,
    plain,
    print_json,
    stderr,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('submit', help='validate a submission (folder, .zip or .tar.gz), store it and '
                                                  'queue it for `frugalbench serve`')
    parser.add_argument('source', type=Path, help='a submission folder or an archive of it (.zip, .tar.gz)')
    parser.add_argument('--benchmark', help="benchmark name (default: the manifest's benchmark)")
    add_db_option(parser)
    add_format_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from frugalbench.errors import UsageError
    from frugalbench.platform.submit import submit
    if not args.source.exists() and not args.source.is_symlink():
        raise UsageError(f'{args.source} does not exist: pass a submission folder or a .zip/.tar.gz archive')
    done = submit(args.source, db_path(args), args.benchmark)
    entry = done.entry
    if args.format == 'json':
        print_json({**entry, 'new': done.new_entry, 'stored_folder': str(done.folder)})
    else:
        where = f'position {entry["position"]} in the queue' if entry.get('position') else f'state {entry["state"]}'
        what = 'queued' if done.new_entry else 'already submitted (same content): entry'
        stderr.print(f'[green]{what}[/green] {plain(entry["id"])} {plain(entry["name"])} '
                     f'on {plain(entry["benchmark"])}, {where}')
        print(entry['id'])
    return 0
