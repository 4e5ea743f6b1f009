"""``frugalbench compress``: write a pruned, low-rank or int8 variant of a submission as a new submission."""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from frugalbench.cli.common import add_db_option, add_format_option, db_path, fmt, print_json, stderr
from frugalbench.cli.common import plain as escape  # markup, control and bidi characters made inert
from frugalbench.cli.train import training_progress
from frugalbench.errors import UsageError
from frugalbench.isolation import Limits

if TYPE_CHECKING:  # compression imports torch and mmseg: only when the command runs
    from frugalbench.compression import CompressionResult, CompressOptions


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'compress', help='write a pruned / low-rank / int8 variant of a submission as a new submission',
        description='Compress a submission\'s model in a limited child process and write the variant as a new '
                    'submission folder (config, plain checkpoint, manifest with technique, parent and the '
                    'compression record). Methods run in the order prune, low-rank, quantize. Evaluate the '
                    'variant with `frugalbench evaluate DIR`.')
    parser.add_argument('submission', type=Path, help='the parent submission folder (submissions/<id>)')
    parser.add_argument('--out', type=Path, default=None,
                        help='the new submission folder (must not exist yet); required unless --upgrade')
    parser.add_argument('--upgrade', action='store_true',
                        help='rewrite a variant written by an earlier frugalbench compress in place: drop its '
                             'copied frugalbench_compressed.py and custom_imports (checkpoint untouched)')
    parser.add_argument('--prune', type=float, metavar='RATIO', default=None,
                        help='magnitude pruning: fraction of weights zeroed, or of channels removed with --structured')
    parser.add_argument('--structured', action='store_true',
                        help='remove channels (torch-pruning) so that parameters and MACs fall')
    rank = parser.add_mutually_exclusive_group()
    rank.add_argument('--low-rank', type=float, metavar='RATIO', default=None,
                      help='truncated-SVD factorisation keeping this fraction of each layer\'s parameters')
    rank.add_argument('--rank-energy', type=float, metavar='E', default=None,
                      help='truncated-SVD factorisation keeping this fraction of each layer\'s singular-value energy')
    parser.add_argument('--quantize', metavar='SCHEME', default=None,
                        help='int8: store Conv2d/Linear weights as int8 (computation stays float32)')
    parser.add_argument('--finetune', type=int, metavar='ITERS', default=None,
                        help='recovery fine-tuning of the variant by `frugalbench train`, starting from the '
                             "compressed weights, on the parent's data/annotation budget, at 0.1 x its lr "
                             '(not with --quantize: fine-tune, then quantize the result)')
    parser.add_argument('--timeout', type=float, default=None, help='wall-clock limit of each child process (s)')
    parser.add_argument('--memory-limit', type=int, default=None, help='resident-memory limit (MB)')
    parser.add_argument('--threads', type=int, default=1, help='CPU threads of the compression process')
    add_db_option(parser)
    add_format_option(parser)
    parser.set_defaults(handler=run)


def options_from(args: argparse.Namespace) -> CompressOptions:
    from frugalbench.compression import CompressOptions
    if args.threads < 1:
        raise UsageError('--threads must be at least 1')
    if args.finetune is not None and args.finetune < 1:
        raise UsageError('--finetune must be at least 1 iteration')
    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_limit,
                    threads=args.threads)
    return CompressOptions(prune=args.prune, structured=args.structured, low_rank=args.low_rank,
                           rank_energy=args.rank_energy, quantize=args.quantize, finetune=args.finetune,
                           db_path=db_path(args), limits=limits)


def run(args: argparse.Namespace) -> int:
    if args.upgrade:
        return run_upgrade(args)
    if args.out is None:
        raise UsageError('--out DIR is required: the new submission folder (or --upgrade to rewrite an old variant)')
    from frugalbench.compression import compress_submission
    options = options_from(args)
    options.steps()  # usage errors before any work
    stderr.print(f'compressing {escape(str(args.submission))} ...')
    if options.finetune is None:
        result = compress_submission(args.submission, args.out, options)
    else:
        with training_progress(f'{Path(args.out).name} (fine-tuning)') as on_event:
            result = compress_submission(args.submission, args.out, replace(options, on_event=on_event))
    if args.format == 'json':
        print_json({'folder': str(result.folder), 'manifest': result.manifest.model_dump(mode='json'),
                    'log': str(result.log)})
    else:
        print_summary(result)
    return 0


def run_upgrade(args: argparse.Namespace) -> int:
    from frugalbench.compression.submission import upgrade_folder
    given = [flag for flag, value in (('--out', args.out), ('--prune', args.prune), ('--low-rank', args.low_rank),
                                      ('--rank-energy', args.rank_energy), ('--quantize', args.quantize),
                                      ('--finetune', args.finetune), ('--structured', args.structured or None))
             if value is not None]
    if given:
        raise UsageError(f'--upgrade rewrites SUBMISSION in place and takes no {", ".join(given)}')
    changes = upgrade_folder(args.submission)
    if args.format == 'json':
        print_json({'folder': str(args.submission), 'changes': changes})
    elif changes:
        stderr.print(f'upgraded {escape(str(args.submission))}: {escape("; ".join(changes))}')
    else:
        stderr.print(f'{escape(str(args.submission))} is already current: nothing to upgrade')
    return 0


def print_summary(result: CompressionResult) -> None:
    record = result.record
    compute = record.get('compute', {})
    parent, variant = compute.get('parent', {}), compute.get('compressed', {})
    table = Table(title=f'{escape(result.manifest.name)}  (parent {escape(str(result.manifest.parent))})')
    table.add_column('')
    table.add_column('parent', justify='right')
    table.add_column('compressed', justify='right')
    table.add_column('ratio', justify='right')
    rows: list[tuple[str, Any, Any]] = [(name, parent.get(name), variant.get(name))
                                        for name in ('params', 'macs', 'flops')]
    size = record.get('checkpoint_bytes', {})
    rows.append(('checkpoint bytes', size.get('parent'), size.get('compressed')))
    for name, before, after in rows:
        ratio = f'{after / before:.3f}' if isinstance(before, (int, float)) and before and after is not None else '-'
        table.add_row(name, fmt(before), fmt(after), ratio)
    stderr.print(table)
    for step in record.get('steps', []):
        stderr.print(f'[bold]{escape(step["method"])}[/] {escape(str(step["settings"]))}: '
                     f'{len(step["layers_changed"])} layers changed, {len(step["layers_skipped"])} skipped')
        for note in step.get('notes', []):
            stderr.print(f'  {escape(note)}')
    stderr.print(f'written: {escape(str(result.folder))}; evaluate it with '
                 f'`frugalbench evaluate {escape(str(result.folder))}`')
