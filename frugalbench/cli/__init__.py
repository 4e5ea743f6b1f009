"""The ``frugalbench`` command line: thin argparse front-ends over library functions.

Each subcommand group lives in its own module exposing ``register(subparsers)``; a handler
returns the process exit code (README, "Exit codes"):

    0  ok
    1  the work failed, for the reason printed (an evaluation: failed, and recorded as failed)
    2  usage error (bad arguments or options)
    3  internal error: a bug in frugalbench (traceback on stderr); nothing is claimed recorded
    4  not recorded: the results database could not be read or written (held by another process
       for longer than the wait, damaged, unwritable); a finished result waits in the spool for
       the next command, or, when even that failed, is lost (the message says which)
"""
from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from frugalbench.errors import FrugalbenchError, StoreError, UsageError
from frugalbench.text import visible

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_NOT_RECORDED = 0, 1, 2, 3, 4

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
    'frugalbench.cli.submit',
    'frugalbench.cli.queue',
    'frugalbench.cli.serve',
    'frugalbench.cli.cascade',
    'frugalbench.cli.label',
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors; keep it one line
        self.print_usage(sys.stderr)
        print(f'frugalbench: error: {message}', file=sys.stderr)
        raise SystemExit(2)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser. Given the arguments, only the named command's module is imported
    (each module is named after its command), so a command starts without the others' imports."""
    parser = _Parser(prog='frugalbench', description='Evaluate and rank frugal segmentation models.')
    subparsers = parser.add_subparsers(dest='command', required=True, parser_class=_Parser)
    for module_name in _command_modules(argv):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # a subcommand not written yet
                continue
            raise
        module.register(subparsers)
    return parser


def _command_modules(argv: Sequence[str] | None) -> tuple[str, ...]:
    named = tuple(m for m in COMMAND_MODULES if argv and m.rsplit('.', 1)[-1] == argv[0])
    return named or COMMAND_MODULES


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except UsageError as exc:
        print(f'frugalbench: error: {visible(exc)}', file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f'frugalbench: not recorded: {visible(exc)}', file=sys.stderr)
        return EXIT_NOT_RECORDED
    except FrugalbenchError as exc:
        print(f'frugalbench: {visible(exc)}', file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print('frugalbench: interrupted', file=sys.stderr)
        return 130
    except Exception:  # a bug: say so, with the traceback, and never claim anything was recorded
        print(visible(traceback.format_exc(), keep_newlines=True), file=sys.stderr, end='')
        print(f'frugalbench: internal error (exit {EXIT_INTERNAL}): this is a bug in frugalbench, please report '
              'it with the traceback above', file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == '__main__':
    sys.exit(main())
