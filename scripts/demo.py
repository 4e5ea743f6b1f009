"""`make demo`: prepare the offline default benchmark, train-or-load and evaluate every bundled
submission whose benchmark data is present (stored runs are reused, so a second demo is quick),
print the results table, then start the leaderboard and print its URL.

    python scripts/demo.py [--no-leaderboard] [--port 8501] [--host 127.0.0.1]

The leaderboard listens on 127.0.0.1 (this machine only) unless --host says otherwise.
"""
from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from frugalbench.benchmarks import load_benchmark
from frugalbench.cli.evaluate import evaluate_with_progress, results_table
from frugalbench.cli.leaderboard import DEFAULT_HOST, url
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


def train_if_missing(folder: Path, benchmark: str) -> None:
    """Bundled synthetic baselines ship weights; train one with the harness if they are absent."""
    if (folder / 'model.pth').exists():
        return
    from frugalbench.training import TrainOptions, train_submission
    console.print(f'training [bold]{folder.name}[/bold] on {benchmark} (no model.pth yet) ...')
    train_submission(folder, TrainOptions(benchmark=benchmark))


def start_leaderboard(port: int, host: str = DEFAULT_HOST) -> int:
    import subprocess
    console.print(f'starting the leaderboard: {url(port, host)}  (Ctrl-C stops it)')
    return subprocess.call([sys.executable, '-m', 'frugalbench', 'leaderboard', '--port', str(port),
                            '--host', host, '--db', str(default_db_path()), '--no-browser'])


def main() -> int:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--no-leaderboard', action='store_true', help='stop after the results table')
    parser.add_argument('--port', type=int, default=8501)
    parser.add_argument('--host', default=DEFAULT_HOST,
                        help=f'address the leaderboard listens on (default {DEFAULT_HOST}: this machine only)')
    args = parser.parse_args()
    prepare_synthetic()
    documents = []
    for folder in bundled_submissions():
        benchmark = str(read_manifest_loosely(folder).get('benchmark', ''))
        if not has_data(benchmark):
            continue
        if benchmark == 'synthetic':
            train_if_missing(folder, benchmark)
        console.print(f'evaluating [bold]{folder.name}[/bold] on {benchmark} ...')
        outcome = evaluate_with_progress(folder, EvaluationOptions(db_path=default_db_path()))
        documents.append(outcome.document)
    Console().print(results_table(documents))
    console.print(f'results stored in {default_db_path()} (`frugalbench results` lists them)')
    status = 0 if all(d['status'] == 'ok' for d in documents) else 1
    if args.no_leaderboard:
        return status
    return start_leaderboard(args.port, args.host)


if __name__ == '__main__':
    sys.exit(main())
