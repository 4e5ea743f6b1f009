"""Re-evaluate the bundled submissions and compare with the mIoU stated in submissions/results.yaml.

    FRUGALBENCH_CAMVID=../shared/datasets/camvid .venv/bin/python scripts/check_baselines.py [--format json]

Each submission listed there is evaluated by `frugalbench evaluate` on its benchmark's whole test
split (accuracy only; a stored identical run is reused). A difference above 0.0005 fails (exit 1).
Submissions whose benchmark data is missing here are reported as skipped, with the reason.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from frugalbench.errors import FrugalbenchError
from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.settings import default_db_path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / 'submissions' / 'results.yaml'
TOLERANCE = 5e-4


def stated_results(path: Path = RESULTS) -> dict[str, dict]:
    """``{submission id: {benchmark, test_images, miou}}`` as written in ``path``."""
    return yaml.safe_load(path.read_text()) or {}


def check(submission: str, stated: dict, db_path: Path) -> dict:
    row = {'submission': submission, 'benchmark': stated['benchmark'], 'stated_miou': stated['miou']}
    try:
        outcome = evaluate_submission(ROOT / 'submissions' / submission,
                                      EvaluationOptions(db_path=db_path, measure=False))
    except FrugalbenchError as exc:
        return {**row, 'status': 'skipped', 'reason': str(exc)}
    document = outcome.document
    if not outcome.ok:
        return {**row, 'status': 'failed', 'reason': document.get('failure_reason')}
    accuracy = document['accuracy']
    difference = accuracy['miou'] - stated['miou']
    matches = (abs(difference) <= TOLERANCE and accuracy['num_images'] == stated['test_images']
               and document.get('architecture') == stated.get('architecture'))
    return {**row, 'measured_miou': accuracy['miou'], 'difference': difference,
            'test_images': accuracy['num_images'], 'architecture': document.get('architecture'), 'status': 'ok' if matches else 'mismatch',
            'reused': bool(document.get('reused'))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--db', type=Path, default=None, help='results database (default: the project one)')
    parser.add_argument('--format', choices=('table', 'json'), default='table')
    args = parser.parse_args()
    console = Console(stderr=True)
    results = stated_results()
    rows = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task('evaluating', total=len(results))
        for submission, stated in results.items():
            progress.update(task, description=f'evaluating {submission}')
            rows.append(check(submission, stated, args.db or default_db_path()))
            progress.advance(task)
    if args.format == 'json':
        print(json.dumps(rows, indent=2))
    else:
        table = Table('submission', 'benchmark', 'stated', 'measured', 'difference', 'status')
        for row in rows:
            measured = row.get('measured_miou')
            table.add_row(row['submission'], row['benchmark'], f"{row['stated_miou']:.4f}",
                          '-' if measured is None else f'{measured:.4f}',
                          '-' if measured is None else f"{row['difference']:+.5f}",
                          row['status'] + (f" ({row['reason']})" if row.get('reason') else ''))
        Console().print(table)
    return 1 if any(row['status'] in ('mismatch', 'failed') for row in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
