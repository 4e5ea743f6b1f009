"""`make demo`: prepare the offline default benchmark, evaluate every bundled submission whose
benchmark data is present (stored runs are reused), and print the results table."""
from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from frugalbench.benchmarks import load_benchmark
from frugalbench.cli.evaluate import evaluate_with_progress, results_table
from frugalbench.errors import BenchmarkError
from frugalbench.evaluation import EvaluationOptions
from frugalbench.settings import PROJECT_ROOT, default_db_path
from frugalbench.submission import read_manifest_loosely

console = Console(stderr=True)


def prepare_synthetic() -> None:
    try:
        from frugalbench.benchmarks.prepare import ensure_prepared
    except ImportError:
        return
    ensure_prepared(load_benchmark('synthetic'))


def bundled_submissions() -> list[Path]:
    root = PROJECT_ROOT / 'submissions'
    return sorted(p for p in root.iterdir() if (p / 'submission.yaml').is_file())


def has_data(benchmark_name: str) -> bool:
    try:
        load_benchmark(benchmark_name).data_root()
    except BenchmarkError as exc:
        console.print(f'[yellow]skipping {benchmark_name}[/yellow]: {exc}')
        return False
    return True


def main() -> int:
    prepare_synthetic()
    documents = []
    for folder in bundled_submissions():
        benchmark = str(read_manifest_loosely(folder).get('benchmark', ''))
        if not has_data(benchmark):
            continue
        console.print(f'evaluating [bold]{folder.name}[/bold] on {benchmark} ...')
        outcome = evaluate_with_progress(folder, EvaluationOptions(db_path=default_db_path()))
        documents.append(outcome.document)
    Console().print(results_table(documents))
    console.print(f'results stored in {default_db_path()} (`frugalbench results` lists them)')
    return 0 if all(d['status'] == 'ok' for d in documents) else 1


if __name__ == '__main__':
    sys.exit(main())
