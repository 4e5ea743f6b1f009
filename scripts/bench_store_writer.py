"""What one DuckDB writer (``frugalbench serve``'s driver) sustains: queue entries per second (issue 18).

    .venv/bin/python scripts/bench_store_writer.py [--entries 300] [--submission synthetic_fcn] [--format json]

In a temporary data folder it evaluates one bundled synthetic submission for real
(``frugalbench evaluate --no-measure``, whole test split) to get a real run payload, then drives the
database exactly as ``serve``'s driver does for each entry, each operation opening and closing the
database (``frugalbench.store.connect``: migrations checked, spool looked at):

    enqueue (what submit writes) -> claim_next -> record_start -> store the run (run, class scores,
    per-image areas, measurements, in one transaction) -> finish

for ``--entries`` entries, every one with a fresh run id (the runs table grows as it goes). It prints
entries per second overall and for the last tenth (the table fullest), per day, and the time of each
operation. Evaluation itself is not included: this is the ceiling of the single writer.
"""
from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--entries', type=int, default=300)
    parser.add_argument('--submission', default='synthetic_fcn')
    parser.add_argument('--format', choices=('table', 'json'), default='table')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='bench-writer-') as temporary:
        base = Path(temporary)
        os.environ.update(FRUGALBENCH_DATA=str(base / 'data'), FRUGALBENCH_WORK=str(base / 'work'),
                          FRUGALBENCH_DB=str(base / 'data' / 'results.duckdb'))
        (base / 'data').mkdir()
        for command in (['data', 'prepare', 'synthetic'],
                        ['evaluate', str(ROOT / 'submissions' / args.submission), '--no-measure']):
            result = subprocess.run([sys.executable, '-m', 'frugalbench', *command], capture_output=True, text=True,
                                    check=False, env=dict(os.environ))
            if result.returncode != 0:
                raise SystemExit(f'{command} failed:\n{result.stderr[-3000:]}')
        report = drive(Path(os.environ['FRUGALBENCH_DB']), args.entries)
    report['submission'] = args.submission
    if args.format == 'json':
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f'{key:>32}: {value}')
    return 0


def drive(db: Path, entries: int) -> dict:
    import duckdb
    import numpy as np

    from frugalbench.platform import queue
    from frugalbench.store import connect
    from frugalbench.store.runs import save_run
    from frugalbench.store.spool import SpooledAreas
    with duckdb.connect(str(db), read_only=True) as connection:
        run_id, = connection.execute('SELECT run_id FROM runs').fetchone()
        document = json.loads(connection.execute('SELECT document FROM runs').fetchone()[0])
        classes = [r[0] for r in connection.execute('SELECT class_name FROM class_scores WHERE run_id = ? '
                                                    'ORDER BY class_index', [run_id]).fetchall()]
        areas = [SpooledAreas(r[0], *(np.asarray(x, dtype=np.float64) for x in r[1:])) for r in connection.execute(
            'SELECT image, intersect_, union_, pred, label FROM image_areas WHERE run_id = ? ORDER BY image_index',
            [run_id]).fetchall()]
        measurements = [dict(zip(('name', 'value', 'unit', 'method', 'tool_version', 'measured',
                                  'unavailable_reason'), r)) for r in connection.execute(
            'SELECT name, value, unit, method, tool_version, measured, unavailable_reason FROM measurements '
            'WHERE run_id = ?', [run_id]).fetchall()]
    timings: dict[str, list[float]] = {k: [] for k in ('enqueue', 'claim', 'record_start', 'store_run', 'finish')}
    per_entry = []
    for index in range(entries):
        started = time.perf_counter()
        marks = [started]
        queue.enqueue(db, uuid.uuid4().hex + uuid.uuid4().hex, f'bench {index}', 'synthetic')
        marks.append(time.perf_counter())
        entry = queue.claim_next(db, 'bench:1:ray')
        marks.append(time.perf_counter())
        queue.record_start(db, entry['id'], 'bench:1:ray/node', False)
        marks.append(time.perf_counter())
        run = copy.deepcopy(document)
        run['run_id'] = uuid.uuid4().hex
        with connect(db) as connection:
            save_run(connection, run, classes, areas, measurements)
        marks.append(time.perf_counter())
        queue.finish(db, entry['id'], 'done', run['run_id'])
        marks.append(time.perf_counter())
        for key, (a, b) in zip(timings, itertools.pairwise(marks)):
            timings[key].append(b - a)
        per_entry.append(marks[-1] - started)
    tenth = max(1, entries // 10)
    rate = entries / sum(per_entry)
    last = tenth / sum(per_entry[-tenth:])
    return {'entries': entries, 'image_areas_per_run': len(areas), 'classes': len(classes),
            'measurements_per_run': len(measurements), 'entries_per_s': round(rate, 1),
            'entries_per_s_last_tenth': round(last, 1), 'entries_per_day_last_tenth': int(last * 86400),
            'median_ms': {k: round(statistics.median(v) * 1000, 1) for k, v in timings.items()},
            'database_mb': round(db.stat().st_size / 1e6, 1), 'load_average': [round(x, 2) for x in os.getloadavg()]}


if __name__ == '__main__':
    sys.exit(main())
