"""The ``frugalbench`` command line: thin argparse front-ends over library functions.

Each subcommand group lives in its own module exposing ``register(subparsers)``; a handler
returns the process exit code (0 ok, 1 the work failed and was recorded, 2 usage error).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from frugalbench.errors import FrugalbenchError, UsageError

# Modules that add subcommands, in help order.
COMMAND_MODULES = (
    'frugalbench.cli.evaluate',
    'frugalbench.cli.results',
    'frugalbench.cli.submissions',
    'frugalbench.cli.data',
    'frugalbench.cli.train',
    'frugalbench.cli.rank',
    'frugalbench.cli.compress',
    'frugalbench.cli.leaderboard',
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors; keep it one line
        self.print_usage(sys.stderr)
        print(f'frugalbench: error: {message}', file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog='frugalbench', description='Evaluate and rank frugal segmentation models.')
    subparsers = parser.add_subparsers(dest='command', required=True, parser_class=_Parser)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # a subcommand not written yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except UsageError as exc:
        print(f'frugalbench: error: {exc}', file=sys.stderr)
        return 2
    except FrugalbenchError as exc:
        print(f'frugalbench: {exc}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('frugalbench: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
