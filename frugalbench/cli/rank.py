"""``frugalbench rank``: rank stored runs by frugality score on one resource."""
from __future__ import annotations

import argparse

from rich.console import Console
from frugalbench.cli.common import plain as escape  # markup, control and bidi characters made inert
from rich.table import Table

from frugalbench.cli.common import add_db_option, add_format_option, db_path, fmt, print_json
from frugalbench.ranking import rank_stored_runs, untrusted_stored_runs
from frugalbench.scores import RESOURCES

MEASUREMENT_CAPTION = ('runs measured under different measurement protocol versions are ranked in '
                       'separate groups (measurement=vN in the group)')


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('rank', help='rank stored runs by frugality score on a resource')
    parser.add_argument('--benchmark', help='only this benchmark (default: every benchmark with runs)')
    parser.add_argument('--track', default='open', help='budget track (see the benchmark file; default open)')
    parser.add_argument('--resource', default='macs', choices=sorted(RESOURCES),
                        help='the resource R in  score = mIoU - w / (1 + 1/R)')
    parser.add_argument('--w', type=float, default=0.5, help='weight of the resource against accuracy (>= 0)')
    parser.add_argument('--reference', type=float, default=None,
                        help="override the benchmark file's reference value for this resource")
    add_db_option(parser)
    add_format_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rows = rank_stored_runs(db_path(args), resource=args.resource, w=args.w, benchmark=args.benchmark,
                            track=args.track, reference=args.reference)
    for left_out in untrusted_stored_runs(db_path(args), resource=args.resource, benchmark=args.benchmark):
        Console(stderr=True).print(f"not ranked: {escape(left_out['submission'])} (run {escape(left_out['run_id'])}) "
                                   f"on {escape(left_out['benchmark'])}: {escape(left_out['reason'])}")
    if args.format == 'json':
        print_json(rows)
        return 0
    table = Table(title=f'frugality ranking: resource {args.resource}, w = {args.w}, track {args.track}',
                  caption=MEASUREMENT_CAPTION if RESOURCES[args.resource].protocol_measured else None)
    for column in ('rank', 'submission', 'benchmark', 'mIoU', 'mIoU 95% CI', 'resource', 'R', 'score',
                   'pareto', 'tied with', 'group'):
        table.add_column(column, overflow='fold')
    for row in rows:
        interval = row.get('miou_ci')
        table.add_row(str(row['rank']), escape(row['submission']), escape(row['benchmark']), fmt(row['miou']),
                      f'{interval[0]:.3f}-{interval[1]:.3f}' if interval else '-',
                      fmt(row['resource_value'], 3), fmt(row['normalized_resource'], 4), fmt(row['score']),
                      'yes' if row['pareto'] else '', str(len(row.get('tied_with') or [])), escape(str(row['group'])))
    Console().print(table)
    if not rows:
        Console(stderr=True).print('no ranked runs: evaluate submissions first (`frugalbench evaluate --all`)')
    return 0
