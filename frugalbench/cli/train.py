"""``frugalbench train``: train a submission under a data and annotation budget (resumable)."""
from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frugalbench.cli.common import plain as escape  # markup, control and bidi characters made inert
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from frugalbench.cli.common import add_db_option, add_format_option, db_path, fmt, print_json, stderr
from frugalbench.errors import UsageError
from frugalbench.isolation import Limits
from frugalbench.benchmarks.annotations import MASK_KINDS

if TYPE_CHECKING:  # the training stage imports torch and mmseg: only when a command runs it
    from frugalbench.training import TrainingRecord, TrainOptions


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'train', help='train a submission under a data/annotation budget and record it (resumable)',
        description='Train a submission with MMEngine on a budgeted subset and annotation type, in a '
                    'limited child process. Re-running the same command after an interruption resumes '
                    'from the last saved iteration.')
    parser.add_argument('submission', type=Path, help='submission folder (submissions/<id>)')
    parser.add_argument('--benchmark', help="benchmark name (default: the manifest's benchmark)")
    parser.add_argument('--images', default=None,
                        help='data budget: number of training images, or "all" (default: all)')
    parser.add_argument('--annotation', choices=MASK_KINDS, default='full',
                        help='annotation budget: labels derived from the full masks (default: full)')
    parser.add_argument('--seed', type=int, default=0, help='picks the subset and point positions; seeds training')
    parser.add_argument('--iters', type=int, default=None, help="iterations (default: the config's train_schedule)")
    parser.add_argument('--checkpoint-interval', type=int, default=None,
                        help='iterations between resumable checkpoints (default: train_schedule or iters/10)')
    parser.add_argument('--out', type=Path, default=None,
                        help='write the trained submission (a copy with the new checkpoint and record) here '
                             'instead of into the submission folder')
    add_db_option(parser)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--threads', type=int, default=1, help='CPU threads of the training process')
    parser.add_argument('--timeout', type=float, default=None,
                        help="wall-clock limit of the training process in s (default: the benchmark's, e.g. 86400)")
    parser.add_argument('--memory-limit', type=int, default=None, help='resident-memory limit (MB)')
    parser.add_argument('--restart', action='store_true',
                        help="discard this training's saved checkpoints and start from iteration 0")
    parser.add_argument('--init-checkpoint', type=Path, default=None, metavar='PTH',
                        help='start from these weights (a plain state dict, loaded weights-only) instead of '
                             'random initialisation: fine-tuning; the record says so')
    parser.add_argument('--zero-shot', default=None, metavar='SPLIT',
                        help="train under the benchmark's zero-shot split SPLIT: every unseen-class pixel "
                             'becomes the ignore index (docs/zero-shot.md)')
    parser.add_argument('--zero-shot-mode', choices=('ignore', 'drop-images'), default='ignore',
                        help='under --zero-shot: ignore unseen pixels (default), or also drop every image '
                             'that holds one')
    add_format_option(parser)
    parser.set_defaults(handler=run)


def parse_images(value: str | None) -> int | None:
    if value is None or value == 'all':
        return None
    try:
        images = int(value)
    except ValueError:
        raise UsageError(f'--images takes a number of images or "all", not {value!r}') from None
    if images < 1:
        raise UsageError('--images must be at least 1')
    return images


def options_from(args: argparse.Namespace) -> TrainOptions:
    from frugalbench.training import TrainOptions
    if args.threads < 1:
        raise UsageError('--threads must be at least 1')
    if args.iters is not None and args.iters < 1:
        raise UsageError('--iters must be at least 1')
    if args.checkpoint_interval is not None and args.checkpoint_interval < 1:
        raise UsageError('--checkpoint-interval must be at least 1')
    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_limit,
                    threads=args.threads)
    return TrainOptions(benchmark=args.benchmark, images=parse_images(args.images), annotation=args.annotation,
                        seed=args.seed, iters=args.iters, checkpoint_interval=args.checkpoint_interval,
                        out=args.out, db_path=db_path(args), device=args.device, restart=args.restart,
                        init_checkpoint=args.init_checkpoint, limits=limits,
                        zero_shot=args.zero_shot, zero_shot_mode=args.zero_shot_mode)


def run(args: argparse.Namespace) -> int:
    from frugalbench.cli import EXIT_NOT_RECORDED, EXIT_OK
    from frugalbench.store import is_spooled
    options = options_from(args)
    record = train_with_progress(args.submission, options)
    if args.format == 'json':
        print_json(record.to_dict())
    else:
        stderr.print(record_table(record))
    return EXIT_NOT_RECORDED if is_spooled(options.db_path, record.training_id) else EXIT_OK


def _minutes(seconds: Any) -> str:
    if seconds is None:
        return '-'
    seconds = int(seconds)
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def train_with_progress(folder: Path, options: TrainOptions) -> TrainingRecord:
    from frugalbench.training import train_submission
    """Train with a rich progress bar (iterations, loss, ETA) on stderr."""
    with training_progress(folder.name) as on_event:
        record = train_submission(folder, options, on_event)
    stderr.print(f'[green]trained[/green] {escape(record.source_submission)} -> {escape(record.submission)}: '
                 f'{record.iterations} iterations, {record.budget["images"]} images, {record.budget["annotation"]} '
                 f'annotation; checkpoint sha256 {record.checkpoint_sha256[:12]}')
    return record


@contextlib.contextmanager
def training_progress(name: str) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A rich progress bar (iterations, loss, ETA) on stderr, fed by training events."""
    columns = (TextColumn('[bold]{task.description}'), BarColumn(), MofNCompleteColumn(),
               TextColumn('loss {task.fields[loss]}'), TextColumn('eta {task.fields[eta]}'), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task(escape(f'{name}: starting'), total=None, loss='-', eta='-')
        yield lambda event: _show(progress, task, name, event)


def _show(progress: Progress, task: TaskID, name: str, event: dict[str, Any]) -> None:
    kind = event.get('event')
    if kind == 'stage':
        progress.update(task, description=escape(f'{name}: {event["stage"]}'))
    elif kind == 'started':
        start = int(event.get('start_iteration') or 0)
        if event.get('resumed_from'):
            progress.console.print(f'resuming from iteration {start} ({escape(str(event["resumed_from"]))})')
        progress.update(task, description=escape(f'{name}: training'), total=event.get('max_iters'),
                        completed=start)
    elif kind == 'progress':
        loss = event.get('loss')
        progress.update(task, completed=event['iteration'], loss=f'{loss:.4f}' if loss is not None else '-',
                        eta=_minutes(event.get('eta_seconds')))


def record_table(record: TrainingRecord) -> Table:
    budget, totals = record.budget, record.totals
    energy = ('unavailable: ' + str(totals.energy_unavailable_reason) if totals.energy_joules is None else
              f'{totals.energy_joules:.1f} J ({totals.energy_method}, '
              f'{"measured" if totals.energy_measured else "estimate"})')
    rows = [
        ('submission', record.submission), ('trained config', record.source_submission),
        ('benchmark', f'{record.benchmark} (protocol v{record.protocol_version})'
                      + (' [SYNTHETIC]' if record.synthetic else '')),
        ('subset', budget['subset_id']), ('images', fmt(budget['images'])),
        ('annotation', budget['annotation']),
        ('labelled pixels', f'{fmt(budget["labelled_pixels"])} of {fmt(budget["total_pixels"])}'),
        ('annotator seconds', f'{budget["annotator_seconds"]:.1f} (estimate)'),
        ('seed', str(record.seed)), ('iterations', f'{record.iterations} (batch {record.schedule["batch_size"]})'),
        ('resumed from', ', '.join(map(str, record.resumed_from_iterations)) or '-'),
        ('final loss', fmt(record.final_loss)),
        ('wall time', f'{totals.wall_seconds:.1f} s over {totals.segments} process(es)'),
        ('CPU time', f'{fmt(totals.cpu_seconds, 1)} s'), ('peak RSS', f'{fmt(totals.peak_rss_mb, 1)} MB'),
        ('energy', energy),
        ('checkpoint', f'{record.checkpoint["file"]} ({fmt(record.checkpoint["bytes"])} bytes, '
                       f'sha256 {record.checkpoint_sha256[:16]}...)'),
        ('verified', 'yes: the harness chose the data and labels and ran the training'),
    ]
    table = Table(title='frugalbench training record', show_header=False)
    table.add_column('field', style='bold')
    table.add_column('value', overflow='fold')
    for key, value in rows:
        table.add_row(key, escape(str(value)))
    return table
