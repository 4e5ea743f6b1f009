"""``frugalbench serve`` (Ray, 2 one-CPU slots) against ``frugalbench evaluate`` one after another (issue 18).

    .venv/bin/python scripts/bench_serve.py [--entries 8] [--slots 2] [--max-images 4]
                                            [--submission synthetic_fcn] [--format table|json]

In a fresh temporary data folder and database (the synthetic benchmark is generated there), it
makes ``--entries`` copies of a bundled synthetic submission (each with its own description, so
each is its own queue entry), then

1. **sequential**: ``frugalbench evaluate COPY --no-measure --threads 1 --max-images N`` for every
   copy, one process after another, timed from outside (interpreter start and imports included);
2. **serve**: ``frugalbench submit`` every copy, then ``frugalbench serve --slots S --no-measure
   --threads 1 --max-images N --exit-when-empty --format json`` (a local Ray instance started and
   stopped by serve), timed from outside.

It prints both wall times, the speed-up (1)/(2) (target >= 1.5 on 2 cores), serve's start-up (process
start -> the ``serving`` event: imports and Ray), and the **dispatch overhead per entry**: for each
entry, (``done`` event - ``running`` event) minus the evaluation's own ``timings.total`` from its
stored run (Ray scheduling, a worker's imports, shipping the submission, storing the run), averaged.
For comparison, the sequential per-process overhead: evaluate's wall time minus its ``timings.total``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
TARGET_SPEEDUP = 1.5


def frugalbench(env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, '-m', 'frugalbench', *args], env=env, capture_output=True, text=True,
                            check=False, cwd=ROOT)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f'frugalbench {" ".join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}')
    return wall, result


def copies(source: Path, folder: Path, count: int) -> list[Path]:
    made = []
    for index in range(count):
        target = folder / f'{source.name}_{index}'
        shutil.copytree(source, target)
        manifest = yaml.safe_load((target / 'submission.yaml').read_text())
        manifest['description'] = f'{manifest.get("description", "")} (bench_serve copy {index})'
        (target / 'submission.yaml').write_text(yaml.safe_dump(manifest, sort_keys=False))
        made.append(target)
    return made


def environment(base: Path, name: str) -> dict[str, str]:
    env = dict(os.environ, FRUGALBENCH_DATA=str(base / name / 'data'), FRUGALBENCH_WORK=str(base / name / 'work'),
               FRUGALBENCH_DB=str(base / name / 'data' / 'results.duckdb'), RAY_USAGE_STATS_ENABLED='0')
    (base / name / 'data').mkdir(parents=True)
    return env


def run_totals(env: dict[str, str]) -> dict[str, float]:
    import duckdb
    with duckdb.connect(env['FRUGALBENCH_DB'], read_only=True) as connection:
        rows = connection.execute('SELECT run_id, status, document FROM runs').fetchall()
    bad = [run_id for run_id, status, _ in rows if status != 'ok']
    if bad:
        raise SystemExit(f'runs failed: {bad}')
    return {run_id: float(json.loads(document)['timings']['total']) for run_id, _, document in rows}


def stamp(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--entries', type=int, default=8)
    parser.add_argument('--slots', type=int, default=2)
    parser.add_argument('--max-images', type=int, default=4)
    parser.add_argument('--submission', default='synthetic_fcn')
    parser.add_argument('--format', choices=('table', 'json'), default='table')
    args = parser.parse_args()
    common = ['--no-measure', '--threads', '1', '--max-images', str(args.max_images)]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix='bench-serve-') as temporary:
        base = Path(temporary)
        folders = copies(ROOT / 'submissions' / args.submission, base / 'submissions', args.entries)

        sequential_env = environment(base, 'sequential')
        frugalbench(sequential_env, 'data', 'prepare', 'synthetic')
        sequential_walls = [frugalbench(sequential_env, 'evaluate', str(f), *common)[0] for f in folders]
        sequential_totals = run_totals(sequential_env)

        serve_env = environment(base, 'serve')
        frugalbench(serve_env, 'data', 'prepare', 'synthetic')
        for folder in folders:
            frugalbench(serve_env, 'submit', str(folder))
        serve_wall, served = frugalbench(serve_env, 'serve', '--slots', str(args.slots), '--exit-when-empty',
                                         '--poll', '0.5', '--no-uploads', '--format', 'json', *common)
        started_at = time.time() - serve_wall
        serve_totals = run_totals(serve_env)
    events = [json.loads(line) for line in served.stdout.splitlines() if line.startswith('{')]
    running = {e['entry']: stamp(e['time']) for e in events if e['event'] == 'running'}
    done = {e['entry']: (stamp(e['time']), e['run_id']) for e in events if e['event'] == 'done'}
    if len(done) != args.entries:
        raise SystemExit(f'serve finished {len(done)} of {args.entries} entries:\n{served.stderr[-3000:]}')
    overheads = [end - running[entry] - serve_totals[run_id] for entry, (end, run_id) in done.items()]
    serving = next(stamp(e['time']) for e in events if e['event'] == 'serving')
    sequential_wall = sum(sequential_walls)
    report = {
        'entries': args.entries, 'slots': args.slots, 'max_images': args.max_images, 'submission': args.submission,
        'cpus': os.cpu_count(), 'load_average_before': [round(x, 2) for x in load_before],
        'load_average_after': [round(x, 2) for x in os.getloadavg()],
        'sequential_wall_s': round(sequential_wall, 2), 'serve_wall_s': round(serve_wall, 2),
        'speedup': round(sequential_wall / serve_wall, 3), 'target_speedup': TARGET_SPEEDUP,
        'serve_startup_s': round(serving - started_at, 2),
        'dispatch_overhead_per_entry_s': round(sum(overheads) / len(overheads), 2),
        'dispatch_overhead_max_s': round(max(overheads), 2),
        'evaluation_total_mean_s': {'sequential': round(sum(sequential_totals.values()) / len(sequential_totals), 2),
                                    'serve': round(sum(serve_totals.values()) / len(serve_totals), 2)},
        'sequential_process_overhead_per_entry_s': round(
            (sequential_wall - sum(sequential_totals.values())) / args.entries, 2),
    }
    report['meets_target'] = report['speedup'] >= TARGET_SPEEDUP
    if args.format == 'json':
        print(json.dumps(report, indent=2))
        return 0
    table = Table(title=f'{args.entries} --no-measure evaluations of {args.submission} ({args.max_images} images each)')
    table.add_column('figure')
    table.add_column('value', justify='right')
    rows = [('sequential `frugalbench evaluate` (s)', report['sequential_wall_s']),
            (f'`frugalbench serve --slots {args.slots}` (s)', report['serve_wall_s']),
            ('speed-up (sequential / serve)', f'{report["speedup"]}x (target >= {TARGET_SPEEDUP}x)'),
            ('serve start-up: imports + Ray (s)', report['serve_startup_s']),
            ('dispatch overhead per entry, mean / max (s)',
             f'{report["dispatch_overhead_per_entry_s"]} / {report["dispatch_overhead_max_s"]}'),
            ('sequential process overhead per entry (s)', report['sequential_process_overhead_per_entry_s']),
            ('evaluation timings.total mean, sequential / serve (s)',
             f'{report["evaluation_total_mean_s"]["sequential"]} / {report["evaluation_total_mean_s"]["serve"]}'),
            ('load average before / after', f'{report["load_average_before"]} / {report["load_average_after"]}')]
    for name, value in rows:
        table.add_row(name, str(value))
    Console().print(table)
    return 0


if __name__ == '__main__':
    sys.exit(main())
