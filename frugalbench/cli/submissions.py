"""``frugalbench submissions validate``: check a submission folder without running it."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from frugalbench.cli.common import plain as escape  # markup, control and bidi characters made inert

from frugalbench.benchmarks import load_benchmark
from frugalbench.cli.common import print_json
from frugalbench.errors import FrugalbenchError
from frugalbench.submission import is_cascade_folder, load_submission


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('submissions', help='work with submission folders')
    inner = parser.add_subparsers(dest='submissions_command', required=True)
    validate = inner.add_parser('validate', help='check submission folders without running them')
    validate.add_argument('folders', nargs='+', type=Path)
    validate.add_argument('--format', choices=('table', 'json'), default='table')
    validate.set_defaults(handler=run_validate)


def validate_folder(folder: Path) -> str | None:
    """None when the folder is a valid submission, else the one-line problem."""
    from frugalbench.evaluation import check_classes  # imports torch: only when validating
    try:
        if is_cascade_folder(folder):  # issue 19: a manifest naming member submissions
            from frugalbench.cascades.evaluate import check_cascade
            check_cascade(folder)
            return None
        submission = load_submission(folder)
        check_classes(submission, load_benchmark(submission.manifest.benchmark))
    except FrugalbenchError as exc:
        return str(exc)
    return None


def run_validate(args: argparse.Namespace) -> int:
    problems = {str(folder): validate_folder(folder) for folder in args.folders}
    if args.format == 'json':
        print_json([{'submission': k, 'valid': v is None, 'problem': v} for k, v in problems.items()])
    else:
        console = Console()
        for folder, problem in problems.items():
            console.print(f'[green]valid[/green] {escape(folder)}' if problem is None
                          else f'[red]invalid[/red] {escape(folder)}: {escape(problem)}')
    return 0 if all(p is None for p in problems.values()) else 1
