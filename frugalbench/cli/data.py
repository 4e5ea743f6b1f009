"""``frugalbench data``: list benchmarks, prepare their data, show data budgets, register datasets.

    frugalbench data list [--format table|json]
    frugalbench data download NAME [--dest DIR] [--source ARCHIVE] [--keep-archive] [--format table|json]
    frugalbench data prepare NAME [--source DIR] [--seed S] [--force] [--format table|json]
    frugalbench data subset NAME --images N|all [--seed S] [--annotation KIND] [--write DIR] [--format ...]
    frugalbench data add NAME --root DIR --classes FILE [--ignore-index I] [--img-suffix S] [--seg-suffix S]

Results go to stdout; progress bars and notes go to stderr.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from frugalbench.benchmarks import synthetic
from frugalbench.benchmarks.annotations import (
    MANIFEST_NAME,
    annotation_budget,
    write_annotation_set,
)
from frugalbench.benchmarks.definition import (
    ANNOTATION_KINDS,
    Benchmark,
    benchmark_files,
    load_benchmark,
    load_benchmark_file,
)
from frugalbench.benchmarks.download import (
    DownloadResult,
    default_dest,
    download,
    effective_url,
)
from frugalbench.benchmarks.prepare import (
    PrepareReport,
    add_benchmark,
    generated_root,
    prepare,
    read_record,
    split_sizes,
)
from frugalbench.benchmarks.sources import MANUAL_STEPS, SOURCES
from frugalbench.benchmarks.subsets import select_subset, subset_id
from frugalbench.cli.common import add_format_option, plain, print_json, stderr
from frugalbench.errors import BenchmarkError, UsageError

CLASSES_SHOWN = 12   # data list: class names shown per benchmark (ADE20K has 150)


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser('data', help='list, prepare and subset benchmark data',
                                 description='Benchmarks and their data: list, prepare, subset, add.')
    commands = data.add_subparsers(dest='data_command', required=True, parser_class=type(data))

    p = commands.add_parser('list', help='benchmarks with their classes, split sizes and data status')
    add_format_option(p)
    p.set_defaults(handler=run_list)

    p = commands.add_parser('download', help='download a public dataset (camvid, ade20k, voc2012), verify and '
                            'prepare it', description='Fetch the official archive (resumable), check its checksum, '
                            'unpack the dataset folder and run `data prepare` on it. `cityscapes`: prints the '
                            'manual steps (login required).')
    p.add_argument('name')
    p.add_argument('--dest', type=Path, help='the dataset folder to create (default: $FRUGALBENCH_DATA/NAME)')
    p.add_argument('--source', type=Path, metavar='ARCHIVE',
                   help='an archive fetched by hand, used instead of downloading')
    p.add_argument('--keep-archive', action='store_true',
                   help='keep the downloaded archive in $FRUGALBENCH_DATA/downloads/ (default: removed once prepared)')
    add_format_option(p)
    p.set_defaults(handler=run_download)

    p = commands.add_parser('prepare', help='generate (synthetic) or locate, then verify a benchmark\'s data')
    p.add_argument('name')
    p.add_argument('--source', type=Path, help='the dataset folder (instead of the benchmark\'s variable/root)')
    p.add_argument('--seed', type=int, help='generator seed (synthetic benchmarks; default: the benchmark\'s)')
    p.add_argument('--force', action='store_true', help='regenerate synthetic data even if present')
    add_format_option(p)
    p.set_defaults(handler=run_prepare)

    p = commands.add_parser('subset', help='the training images of a data budget (nested, seeded)')
    p.add_argument('name')
    p.add_argument('--images', required=True, type=_image_count, help='number of images, or "all"')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--split', default='train')
    p.add_argument('--annotation', choices=ANNOTATION_KINDS, default=None,
                   help='also estimate the annotation budget of this type (table output)')
    p.add_argument('--write', type=Path, metavar='DIR',
                   help='write the annotation set (--annotation, default full) into DIR for training')
    p.add_argument('--format', choices=('table', 'json'), default='table',
                   help='output format; json prints a JSON list of the chosen image file names')
    p.set_defaults(handler=run_subset)

    p = commands.add_parser('add', help='register a dataset in MMSeg layout (img_dir/<split>, ann_dir/<split>)')
    p.add_argument('name')
    p.add_argument('--root', required=True, type=Path, help='the folder holding img_dir/ and ann_dir/')
    p.add_argument('--classes', required=True, type=Path, help='class names: one per line, or a YAML/JSON list')
    p.add_argument('--ignore-index', type=int, default=255)
    p.add_argument('--img-suffix', help='image file suffix (default: detected, e.g. .jpg)')
    p.add_argument('--seg-suffix', help='annotation file suffix (default: detected, e.g. .png)')
    p.add_argument('--description', default='')
    p.add_argument('--force', action='store_true', help='overwrite a benchmark of the same name')
    add_format_option(p)
    p.set_defaults(handler=run_add)


def _image_count(value: str) -> int | None:
    if value == 'all':
        return None
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number of images or "all", got {value!r}') from None
    if count < 1:
        raise argparse.ArgumentTypeError('a data budget needs at least 1 image')
    return count


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int], Callable[[], None]]]:
    """Rich progress bars on stderr (shown on a terminal only); yields ``start(description, total)``."""
    columns = (TextColumn('{task.description}'), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr, disable=not stderr.is_terminal) as bars:
        def start(description: str, total: int) -> Callable[[], None]:
            task = bars.add_task(description, total=total)
            return lambda: bars.advance(task)
        yield start


def _note(message: str) -> None:
    stderr.print(message, highlight=False)


# --- list ---------------------------------------------------------------------------------------

def benchmark_rows() -> list[dict]:
    """One summary per benchmark file; counts come from list files and folders (nothing is opened)."""
    rows = []
    for name, path in benchmark_files().items():
        try:
            benchmark = load_benchmark_file(path)
        except BenchmarkError as exc:
            rows.append({'name': name, 'file': str(path), 'status': f'invalid: {exc}'})
            continue
        rows.append(_summary(benchmark))
    return rows


def _summary(benchmark: Benchmark) -> dict:
    sizes = split_sizes(benchmark)
    try:
        root: str | None = str(benchmark.data_root())
        status = 'verified' if read_record(benchmark.name) else 'found'
    except BenchmarkError:
        root, status = None, f'missing: {benchmark.missing_hint()}'
    if benchmark.generated and root is not None:
        marker = synthetic.read_marker(generated_root(benchmark))
        status = f'generated (seed {marker["seed"]})' if marker else 'incomplete: run `frugalbench data prepare ' \
                                                                     f'{benchmark.name} --force`'
    return {'name': benchmark.name, 'synthetic': benchmark.synthetic,
            'protocol_version': benchmark.protocol_version, 'num_classes': benchmark.num_classes,
            'classes': list(benchmark.classes), 'splits': sizes, 'status': status, 'root': root,
            'description': benchmark.description, 'file': str(benchmark.source_file)}


def run_list(args: argparse.Namespace) -> int:
    rows = benchmark_rows()
    if args.format == 'json':
        print_json(rows)
        return 0
    table = Table(title='Benchmarks')
    for column in ('name', 'data', 'protocol', 'classes', 'splits'):
        table.add_column(column)
    table.add_column('status', overflow='fold')
    for row in rows:
        if 'classes' not in row:
            table.add_row(row['name'], '', '', '', '', row['status'])
            continue
        splits = ', '.join(f'{k} {v}' for k, v in row['splits'].items()) if row['splits'] else '-'
        names = row['classes'] if len(row['classes']) <= CLASSES_SHOWN else [*row['classes'][:CLASSES_SHOWN], '…']
        classes = f'{row["num_classes"]}: {", ".join(names)}'
        table.add_row(row['name'], 'SYNTHETIC' if row['synthetic'] else 'real', f'v{row["protocol_version"]}',
                      classes, splits, row['status'])
    Console().print(table)
    return 0


# --- prepare ------------------------------------------------------------------------------------

def run_prepare(args: argparse.Namespace) -> int:
    benchmark = load_benchmark(args.name)
    with progress_bars() as start:
        report = prepare(benchmark, source=args.source, seed=args.seed, force=args.force, progress=start)
    if args.format == 'json':
        print_json(report.to_dict())
    else:
        _print_prepare_table(benchmark, report)
    return 0


def _print_prepare_table(benchmark: Benchmark, report: PrepareReport) -> None:
    console = Console()
    what = f'generated with seed {report.seed}' if report.generated else 'verified'
    console.print(f'{benchmark.name}: {what} at {report.root}' +
                  (' (SYNTHETIC data)' if benchmark.synthetic else ''))
    table = Table(title=f'{benchmark.name}: class pixel share per split')
    table.add_column('class')
    for split, split_report in report.splits.items():
        table.add_column(f'{split} ({split_report.images} images)', justify='right')
    totals = {split: max(sum(r.class_pixels) + r.ignored_pixels, 1) for split, r in report.splits.items()}
    for index, name in enumerate(benchmark.classes):
        table.add_row(f'{index} {name}', *(f'{100 * r.class_pixels[index] / totals[s]:.2f} %'
                                           for s, r in report.splits.items()))
    table.add_row(f'ignored ({benchmark.ignore_index})',
                  *(f'{100 * r.ignored_pixels / totals[s]:.2f} %' for s, r in report.splits.items()))
    console.print(table)
    if report.manifest:
        console.print(f'{report.manifest["files_checked"]} files match the manifest {plain(report.manifest["file"])} '
                      f'({report.manifest["hashed_now"]} hashed now, the others unchanged since the last check)',
                      highlight=False)
    console.print(f'fingerprint {report.fingerprint[:16]}…  protocol v{report.protocol_version}')


# --- download -----------------------------------------------------------------------------------

@contextmanager
def byte_bars() -> Iterator[Callable[[str, int | None, int], Callable[[int], None]]]:
    """A rich transfer bar on stderr (terminal only); yields ``start(description, total_bytes, done)``."""
    columns = (TextColumn('{task.description}'), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=stderr, disable=not stderr.is_terminal) as bars:
        def start(description: str, total: int | None, done: int) -> Callable[[int], None]:
            task = bars.add_task(description, total=total, completed=done)
            return lambda n: bars.advance(task, n)
        yield start


def run_download(args: argparse.Namespace) -> int:
    if args.name in MANUAL_STEPS:
        print(MANUAL_STEPS[args.name])
        return 1   # nothing was downloaded: the steps above do it
    source = SOURCES.get(args.name)
    if source is not None and args.source is None:
        _note(f'{plain(source.title)}\n  from {plain(effective_url(source))} ({source.size_hint})\n'
              f'  into {plain(args.dest or default_dest(args.name))}\n  terms: {plain(source.terms)}')
    with progress_bars() as start, byte_bars() as start_bytes:
        result = download(args.name, dest=args.dest, archive=args.source, keep_archive=args.keep_archive,
                          progress=start, byte_progress=start_bytes)
    if args.format == 'json':
        print_json(result.to_dict())
    else:
        _print_download(result)
    return 0


def _print_download(result: DownloadResult) -> None:
    console = Console()
    resumed = f', resumed at {result.resumed_from:,} bytes' if result.resumed_from else ''
    console.print(f'{result.name}: {plain(result.archive)} ({result.archive_bytes:,} bytes{resumed})', highlight=False)
    console.print(f'  sha256 {result.sha256}', highlight=False)
    console.print(f'  checked against: {plain(result.checksum)}', highlight=False)
    manifest = result.prepare.get('manifest')
    if manifest:
        console.print(f'  {manifest["files_checked"]} files match the manifest {plain(manifest["file"])}',
                      highlight=False)
    sizes = ', '.join(f'{k} {v["images"]}' for k, v in result.prepare['splits'].items())
    console.print(f'  prepared at {plain(result.root)}: {sizes}; fingerprint {result.prepare["fingerprint"][:16]}…',
                  highlight=False)
    console.print(f'next: frugalbench evaluate --all --benchmark {result.name}   (or `make demo`)', highlight=False)


# --- subset -------------------------------------------------------------------------------------

def run_subset(args: argparse.Namespace) -> int:
    benchmark = load_benchmark(args.name)
    samples = select_subset(benchmark, args.images, seed=args.seed, split=args.split)
    ident = subset_id(benchmark, samples, args.seed, split=args.split)
    budget = None
    kind = args.annotation or ('full' if args.write else None)
    with progress_bars() as start:
        if args.write is not None:
            out = write_annotation_set(benchmark, samples, kind, args.write, args.seed, subset_id=ident,
                                       on_image=start(f'writing {kind} annotations', len(samples)))
            budget = json.loads((out / MANIFEST_NAME).read_text())['budget']
            _note(f'wrote {kind} annotations of {ident} to {out}')
        elif kind is not None and args.format == 'table':
            budget = annotation_budget(benchmark, samples, kind, args.seed, subset_id=ident,
                                       on_image=start(f'measuring {kind} annotations', len(samples))).to_dict()
    if args.format == 'json':
        print_json([s.name for s in samples])
        return 0
    console = Console()
    console.print(f'{ident}: {len(samples)} {args.split} image(s) of {benchmark.name}, seed {args.seed}')
    if budget is not None:
        share = 100 * budget['labelled_pixels'] / max(budget['total_pixels'], 1)
        console.print(f'{budget["kind"]} annotation: {budget["labelled_pixels"]} labelled pixels ({share:.2f} %), '
                      f'about {budget["annotator_seconds"] / 3600:.2f} annotator hours (estimate)')
    table = Table()
    table.add_column('#', justify='right')
    table.add_column('image')
    for rank, sample in enumerate(samples, start=1):
        table.add_row(str(rank), sample.name)
    console.print(table)
    return 0


# --- add ----------------------------------------------------------------------------------------

def run_add(args: argparse.Namespace) -> int:
    if args.ignore_index < 0 or args.ignore_index > 255:
        raise UsageError(f'--ignore-index must be in 0..255, got {args.ignore_index}')
    path = add_benchmark(args.name, args.root, args.classes, ignore_index=args.ignore_index,
                         img_suffix=args.img_suffix, seg_suffix=args.seg_suffix,
                         description=args.description, force=args.force)
    benchmark = load_benchmark(args.name)
    summary = _summary(benchmark)
    if 'val' in benchmark.splits and benchmark.splits.get('test') == benchmark.splits['val']:
        _note(f'no test folder: {benchmark.splits["val"]!r} is evaluated as the test split (edit `splits:` in {path})')
    if args.format == 'json':
        print_json({**summary, 'file': str(path)})
    else:
        splits = ', '.join(f'{k} {v}' for k, v in (summary['splits'] or {}).items())
        Console().print(f'wrote {path}: {args.name} with {summary["num_classes"]} classes ({splits})')
    _note(f'next: frugalbench data prepare {args.name}   (verifies the files and counts the classes)')
    return 0
