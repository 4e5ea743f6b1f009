"""``frugalbench evaluate``: evaluate one or more submissions and store the runs."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from frugalbench.cli.common import plain as escape  # markup, control and bidi characters made inert
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from frugalbench.cli.common import add_db_option, add_format_option, db_path, fmt, print_json, stderr
from frugalbench.errors import UsageError
from frugalbench.isolation import Limits
from frugalbench.settings import PROJECT_ROOT

if TYPE_CHECKING:  # the evaluation stage imports torch and mmseg: only when a command runs it
    from frugalbench.evaluation import EvaluationOptions, EvaluationOutcome


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('evaluate', help='evaluate submissions on a benchmark and store the runs')
    parser.add_argument('submissions', nargs='*', type=Path, help='submission folders (submissions/<id>)')
    parser.add_argument('--all', action='store_true', help='evaluate every folder under submissions/')
    parser.add_argument('--benchmark', help="benchmark name (default: the manifest's benchmark)")
    add_db_option(parser)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--force', action='store_true', help='re-run even if an identical run is stored')
    parser.add_argument('--split', default='test')
    parser.add_argument('--max-images', type=int, default=None, help='only the first N images of the split')
    parser.add_argument('--timeout', type=float, default=None,
                        help="wall-clock limit of the model process (s; default: the benchmark's, e.g. 1800)")
    parser.add_argument('--memory-limit', type=int, default=None,
                        help="resident-memory limit (MB; default: the benchmark's, e.g. 8192)")
    parser.add_argument('--threads', type=int, default=None,
                        help="CPU threads of the model process (default: the benchmark's, 2 unless it says)")
    parser.add_argument('--no-measure', action='store_true',
                        help='accuracy and parameters only (no latency, memory, energy, MACs)')
    parser.add_argument('--protocol', type=Path, default=None,
                        help='measurement protocol file (default: the bundled protocol.yaml)')
    parser.add_argument('--keep-work', action='store_true',
                        help='keep the run\'s work folder (child logs) for debugging; the newest 20 are kept')
    add_format_option(parser)
    parser.set_defaults(handler=run)


def _folders(args: argparse.Namespace) -> list[Path]:
    folders = list(args.submissions)
    if args.all:
        folders += sorted(p for p in (PROJECT_ROOT / 'submissions').iterdir()
                          if p.is_dir() and (p / 'submission.yaml').exists())
    if not folders:
        raise UsageError('name at least one submission folder, or pass --all')
    return folders


def _limits(args: argparse.Namespace) -> Limits:
    if args.max_images is not None and args.max_images < 1:
        raise UsageError('--max-images must be at least 1')
    if args.threads is not None and args.threads < 1:
        raise UsageError('--threads must be at least 1')
    return Limits(timeout_s=args.timeout, memory_mb=args.memory_limit, threads=args.threads)


def run(args: argparse.Namespace) -> int:
    from frugalbench.evaluation import EvaluationOptions
    options = EvaluationOptions(benchmark=args.benchmark, db_path=db_path(args), device=args.device,
                                force=args.force, split=args.split, max_images=args.max_images,
                                limits=_limits(args), measure=not args.no_measure,
                                protocol_path=args.protocol.resolve() if args.protocol else None,
                                keep_work=args.keep_work)
    outcomes = [evaluate_with_progress(folder, options) for folder in _folders(args)]
    documents = [o.document for o in outcomes]
    if args.format == 'json':
        print_json(documents[0] if len(documents) == 1 else documents)
    else:
        stderr.print(results_table(documents))
    return exit_code(outcomes, options.db_path)


def exit_code(outcomes: list[EvaluationOutcome], db: Path) -> int:
    """4 when a run waits in the spool (not in the database yet), else 0 when all are ok, else 1."""
    from frugalbench.cli import EXIT_FAILED, EXIT_NOT_RECORDED, EXIT_OK
    from frugalbench.store import is_spooled
    if any(is_spooled(db, str(o.document.get('run_id'))) for o in outcomes if not o.reused):
        return EXIT_NOT_RECORDED
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILED


def evaluate_with_progress(folder: Path, options: EvaluationOptions) -> EvaluationOutcome:
    from frugalbench.evaluation import evaluate_submission
    with Progress(TextColumn('[bold]{task.description}'), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=stderr, transient=True) as progress:
        task = progress.add_task(escape(f'{folder.name}: starting'), total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            progress.update(task, description=escape(f'{folder.name}: {stage}'), completed=done, total=total)

        outcome = evaluate_submission(folder, options, on_progress)
    document = outcome.document
    if outcome.ok:
        note = ' (stored run reused; --force re-runs)' if outcome.reused else ''
        stderr.print(f'[green]ok[/green] {escape(document["submission"])}: '
                     f'mIoU {document["accuracy"]["miou"]:.4f}{note}')
    else:
        stderr.print(f'[red]failed[/red] {escape(document["submission"])}: {escape(str(document["failure_reason"]))}')
    return outcome


def results_table(documents: list[dict]) -> Table:
    table = Table(title='frugalbench runs')
    for column in ('submission', 'benchmark', 'status', 'mIoU', 'mAcc', 'aAcc', 'params', 'images', 'reason'):
        table.add_column(column, overflow='fold')
    for d in documents:
        accuracy = d.get('accuracy') or {}
        table.add_row(escape(str(d.get('submission'))), escape(str(d.get('benchmark'))), escape(str(d.get('status'))),
                      fmt(accuracy.get('miou')), fmt(accuracy.get('macc')), fmt(accuracy.get('aacc')),
                      fmt((d.get('compute') or {}).get('params')), fmt(accuracy.get('num_images')),
                      escape(str(d.get('failure_reason') or '')))
    return table
