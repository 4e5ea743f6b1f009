"""``frugalbench label RUN_ID``: a run's frugality label (SVG, PNG, JSON) or README badge (SVG).

The run is read from the results database (``--db``) or from a public snapshot (``--snapshot``,
verified against its manifest first): a label made from a snapshot is the same as the one made
from the database it was exported from, so a reader can check a published label.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from frugalbench.cli.common import add_db_option, db_path, plain, stderr
from frugalbench.errors import FrugalbenchError


def register(subparsers: argparse._SubParsersAction) -> None:
    from frugalbench.labels import FORMATS
    parser = subparsers.add_parser('label', help="a run's frugality label (svg, png, json) or README badge")
    parser.add_argument('run_id', metavar='RUN_ID', help='a stored run id, or a unique start of one')
    add_db_option(parser)
    parser.add_argument('--snapshot', type=Path, default=None, metavar='DIR',
                        help='read the run from a public snapshot (frugalbench results export --public DIR)')
    parser.add_argument('--format', choices=FORMATS, default='svg',
                        help='svg (default), png, json, or badge (a one-line SVG badge for READMEs)')
    parser.add_argument('--out', type=Path, default=None, metavar='FILE', help='write here instead of stdout')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from frugalbench.app_data import StoreUnavailable
    from frugalbench.labels import label_for_run, render
    from frugalbench.store.snapshot import snapshot_manifest
    if args.snapshot is not None:
        if args.db is not None:
            from frugalbench.errors import UsageError
            raise UsageError('give --db or --snapshot, not both')
        snapshot_manifest(args.snapshot)  # SnapshotError (exit 1) naming the file that fails
        source = args.snapshot
    else:
        source = db_path(args)
    try:
        label = label_for_run(source, args.run_id)
    except StoreUnavailable as exc:
        if exc.status.state == 'invalid':
            raise FrugalbenchError(str(exc)) from None
        raise
    content = render(label, args.format)
    if args.out is not None:
        args.out.write_bytes(content)
        stderr.print(f'label of run {plain(label.run_id)} ({plain(label.model)}) written to {plain(args.out)}')
    else:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
    return 0
