"""``frugalbench results``: list or export stored runs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console

from frugalbench.cli.common import (
    add_db_option,
    add_format_option,
    db_path,
    plain,
    print_json,
)
from frugalbench.cli.evaluate import results_table
from frugalbench.errors import UsageError
from frugalbench.store import connect, list_run_documents
from frugalbench.store.runs import RUN_COLUMNS
from frugalbench.text import csv_safe


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('results', help='list or export stored runs')
    add_db_option(parser)
    parser.add_argument('--benchmark', help='only runs on this benchmark')
    parser.add_argument('--submission', help='only runs of this submission id')
    add_format_option(parser, ('table', 'json', 'csv', 'parquet'))
    parser.add_argument('--out', type=Path, help='write to this file instead of stdout (required for parquet)')
    parser.set_defaults(handler=run)
    inner = parser.add_subparsers(dest='results_command')
    ingest = inner.add_parser('ingest-benchmark', help='store a pytest --benchmark-json report beside the runs')
    ingest.add_argument('report', type=Path, help='the JSON file pytest-benchmark wrote')
    add_db_option(ingest)
    ingest.set_defaults(handler=run_ingest)
    export = inner.add_parser('export', help='write a public, read-only snapshot (Parquet files + manifest)')
    export.add_argument('--public', type=Path, required=True, metavar='DIR',
                        help='the snapshot folder (new, empty, or an earlier snapshot to replace)')
    add_db_option(export)
    add_format_option(export)
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """``results export --public DIR``: the snapshot that ``frugalbench leaderboard --snapshot DIR``
    serves without a database (frugalbench.store.snapshot)."""
    from rich.progress import Progress

    from frugalbench.store.snapshot import TABLES, export_snapshot, manifest_sha256
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task('exporting tables', total=len(TABLES))
        manifest = export_snapshot(db_path(args), args.public, on_table=lambda _: progress.advance(task))
    digest = manifest_sha256(args.public)
    if args.format == 'json':
        print_json({'folder': str(args.public), 'manifest_sha256': digest, 'manifest': manifest})
        return 0
    console = Console(stderr=True)
    for name, entry in sorted(manifest['files'].items()):
        console.print(f"  {plain(name)}: {entry['rows']} rows, {entry['bytes']:,} bytes, sha256 {entry['sha256'][:16]}...")
    console.print(f'snapshot written to {plain(args.public)}; manifest.json sha256 {digest} (publish it beside the '
                  f'snapshot); serve it with `frugalbench leaderboard --snapshot {plain(args.public)}`')
    return 0


def run_ingest(args: argparse.Namespace) -> int:
    from frugalbench.measurements.benchmark_report import ingest_benchmark_json
    from frugalbench.store.runs import save_perf_report
    rows = ingest_benchmark_json(args.report)
    with connect(db_path(args)) as connection:
        report_id = save_perf_report(connection, rows, str(args.report))
    Console(stderr=True).print(f'stored {len(rows)} benchmark rows from {plain(args.report)} as report {report_id}')
    return 0


def run(args: argparse.Namespace) -> int:
    path = db_path(args)
    if not path.exists():
        Console(stderr=True).print(f'no results database at {plain(path)}: run `frugalbench evaluate` first')
        documents: list[dict] = []
    else:
        with connect(path) as connection:
            documents = list_run_documents(connection, args.benchmark, args.submission)
    if args.format == 'json':
        if args.out:
            import json
            args.out.write_text(json.dumps(documents, indent=2, default=str) + '\n')
        else:
            print_json(documents)
    elif args.format in ('csv', 'parquet'):
        _export_flat(documents, args.format, args.out)
    else:
        console = Console(file=args.out.open('w') if args.out else sys.stdout)
        console.print(results_table(documents))
    return 0


def flat_rows(documents: list[dict]) -> pd.DataFrame:
    """One row per run with the typed columns and per-class IoU columns."""
    from frugalbench.store.runs import run_row
    rows = []
    for document in documents:
        row = dict(zip(RUN_COLUMNS, run_row(document)))
        for name, value in ((document.get('accuracy') or {}).get('per_class_iou') or {}).items():
            row[f'iou_{name}'] = value
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else list(RUN_COLUMNS))


def _export_flat(documents: list[dict], kind: str, out: Path | None) -> None:
    """Parquet keeps the stored values; CSV (read by spreadsheets) has every text cell made inert:
    a leading ``= + - @``, tab or CR prefixed with ``'``, control and bidi characters escaped."""
    frame = flat_rows(documents)
    if kind == 'parquet':
        if out is None:
            raise UsageError('--format parquet needs --out FILE')
        frame.to_parquet(out, index=False)
    elif out is not None:
        csv_safe(frame).to_csv(out, index=False)
    else:
        csv_safe(frame).to_csv(sys.stdout, index=False)
