"""Options and output helpers shared by subcommands."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape as _markup_escape

from frugalbench.settings import default_db_path
from frugalbench.text import visible

stderr = Console(stderr=True)


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--db', type=Path, default=None,
                        help='results database (default: $FRUGALBENCH_DB or data/frugalbench.duckdb)')


def db_path(args: argparse.Namespace) -> Path:
    return args.db or default_db_path()


def add_format_option(parser: argparse.ArgumentParser, choices: tuple[str, ...] = ('table', 'json')) -> None:
    parser.add_argument('--format', choices=choices, default=choices[0], help='output format')


def print_json(value: Any) -> None:
    """Exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + '\n')
    sys.stdout.flush()


def plain(value: Any) -> str:
    """``value`` as terminal text for rich: control characters, escape sequences and bidi controls
    shown as visible escapes (``frugalbench.text.visible``), rich markup brackets escaped. Every
    string that comes from a submission, a benchmark file, a path or an error goes through it."""
    return _markup_escape(visible(value))


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    if isinstance(value, int):
        return f'{value:,}'
    return plain(value)
