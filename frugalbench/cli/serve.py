"""``frugalbench serve``: evaluate queued submissions as Ray tasks, locally or on a cluster (issue 18)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from frugalbench.cli.common import add_db_option, db_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('serve', help='evaluate queued submissions as Ray tasks, on this machine or a '
                                                 'Ray cluster (Ctrl-C or SIGTERM stops; running entries go back '
                                                 'to the queue)')
    add_db_option(parser)
    parser.add_argument('--ray-address', default=None, metavar='ADDRESS',
                        help='join this Ray cluster (host:port of its head); default: a local Ray instance for '
                             'this server only')
    parser.add_argument('--slots', type=int, default=None,
                        help='evaluations in flight (default: 1 locally, the cluster\'s CPUs when joined)')
    parser.add_argument('--poll', type=float, default=2.0, help='seconds between looks at the queue')
    parser.add_argument('--exit-when-empty', action='store_true',
                        help='stop once nothing is queued or running')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--max-images', type=int, default=None, help='only the first N images of the split')
    parser.add_argument('--no-measure', action='store_true',
                        help='accuracy and parameters only (no latency, memory, energy, MACs); such runs may '
                             'share a machine')
    parser.add_argument('--protocol', type=Path, default=None, help='measurement protocol file')
    parser.add_argument('--timeout', type=float, default=None, help='wall-clock limit of a model process (s)')
    parser.add_argument('--memory-limit', type=int, default=None, help='memory limit of a model process (MB)')
    parser.add_argument('--threads', type=int, default=None,
                        help='CPUs (and threads) of each --no-measure evaluation (default 1); a measured one '
                             'uses the benchmark\'s thread count')
    parser.add_argument('--no-uploads', action='store_true', help="don't submit the leaderboard's uploads")
    parser.add_argument('--log', type=Path, default=None,
                        help='JSON lines of state changes (default $FRUGALBENCH_DATA/platform/serve-events.jsonl)')
    parser.add_argument('--format', choices=('table', 'json'), default='table',
                        help='table: a live view on a terminal; json: state changes as JSON lines on stdout')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from frugalbench.errors import UsageError
    from frugalbench.platform.serve import ServeOptions, Server
    if args.slots is not None and args.slots < 1:
        raise UsageError('--slots must be at least 1')
    if args.max_images is not None and args.max_images < 1:
        raise UsageError('--max-images must be at least 1')
    if args.poll <= 0:
        raise UsageError('--poll must be positive')
    if args.threads is not None and args.threads < 1:
        raise UsageError('--threads must be at least 1')
    if args.threads is not None and not args.no_measure:
        raise UsageError("--threads applies to --no-measure runs: a measured run uses the benchmark's thread "
                         'count, so that runs compare across machines')
    options = ServeOptions(db_path=db_path(args).resolve(), ray_address=args.ray_address, slots=args.slots,
                           poll_s=args.poll, exit_when_empty=args.exit_when_empty, device=args.device,
                           max_images=args.max_images, measure=not args.no_measure,
                           protocol_path=args.protocol.resolve() if args.protocol else None,
                           timeout_s=args.timeout, memory_mb=args.memory_limit, threads=args.threads,
                           ingest_uploads=not args.no_uploads, log_path=args.log,
                           json_events=args.format == 'json', live=args.format == 'table' and sys.stderr.isatty())
    return Server(options).run()
