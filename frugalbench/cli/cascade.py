"""``frugalbench cascade fit``: a cascade's budget-mIoU curve (thresholds fitted on val, scored on test)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from frugalbench.cli.common import (
    add_db_option,
    add_format_option,
    db_path,
    fmt,
    print_json,
    stderr,
)
from frugalbench.cli.common import plain as escape
from frugalbench.errors import UsageError
from frugalbench.isolation import Limits


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('cascade', help='cascades of submissions: fit budget-mIoU curves (docs/cascades.md)')
    actions = parser.add_subparsers(dest='action', required=True)
    fit = actions.add_parser('fit', help='for each budget, the val-fitted policy and its test mIoU and cost')
    fit.add_argument('cascade', type=Path, help='the cascade submission folder (technique: cascade)')
    fit.add_argument('--resource', required=True, choices=('latency_ms', 'macs', 'energy_joules_per_image'))
    fit.add_argument('--budgets', required=True, type=float, nargs='+', help='expected cost per image, in the '
                     "resource's unit (ms, MACs, J)")
    fit.add_argument('--max-images', type=int, default=None, help='only the first N images of each split')
    fit.add_argument('--threads', type=int, default=None, help="threads of the members' model processes")
    fit.add_argument('--force', action='store_true', help='re-evaluate the members even if runs are stored')
    fit.add_argument('--protocol', type=Path, default=None,
                     help='measurement protocol file of the members\' runs (default: the bundled protocol.yaml)')
    add_db_option(fit)
    add_format_option(fit)
    fit.set_defaults(handler=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    from frugalbench.cascades.evaluate import fit_curve
    from frugalbench.evaluation import EvaluationOptions
    if args.max_images is not None and args.max_images < 1:
        raise UsageError('--max-images must be at least 1')
    options = EvaluationOptions(db_path=db_path(args), force=args.force, max_images=args.max_images,
                                limits=Limits(threads=args.threads),
                                protocol_path=args.protocol.resolve() if args.protocol else None)
    curve = _with_progress(args.cascade, lambda progress: fit_curve(args.cascade, options, args.resource,
                                                                     args.budgets, progress))
    if args.format == 'json':
        print_json(curve)
    else:
        stderr.print(curve_table(curve))
    return 0


def _with_progress(folder: Path, work: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    with Progress(TextColumn('[bold]{task.description}'), BarColumn(), MofNCompleteColumn(), console=stderr,
                  transient=True) as progress:
        task = progress.add_task(escape(f'{folder.name}: members'), total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            progress.update(task, description=escape(f'{folder.name}: member {stage}'), completed=done, total=total)
        return work(on_progress)


def curve_table(curve: dict[str, Any]) -> Table:
    unit = curve['unit']
    table = Table(title=escape(f'{curve["cascade"]}: test mIoU vs expected {curve["resource"]} ({unit}) per image'))
    for column in ('budget', 'thresholds (val-fitted)', 'val mIoU', 'test mIoU', f'test cost ({unit})',
                   'escalation rate'):
        table.add_column(column)
    for point in curve['points']:
        if not point['feasible']:
            table.add_row(f'{point["budget"]:.4g}', escape(point['reason']), '', '', '', '')
            continue
        table.add_row(f'{point["budget"]:.4g}', ', '.join(f'{t:.4f}' for t in point['thresholds']),
                      fmt(point['val']['miou']), fmt(point['test']['miou']), f'{point["test"]["cost"]:.4g}',
                      f'{point["test"]["escalation_rate"]:.3f}')
    head = curve['headline']
    saving = head['cost_saving_at_best_accuracy']
    table.caption = escape(
        f'best single member {head["best_single"]}: mIoU {head["best_single_miou"]:.4f} at {head["best_single_cost"]:.4g} '
        f'{unit}; cost saved at its accuracy: {"n/a" if saving is None else f"{saving:.1%}"}; mIoU gained at its '
        f'cost: {head["miou_gain_at_best_cost"]:+.4f}; oracle: mIoU {curve["oracle"]["miou"]:.4f}')
    return table
