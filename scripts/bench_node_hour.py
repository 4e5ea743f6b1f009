"""Evaluations per node-hour for bundled submissions, measured (issue 18, docs/scale.md).

    .venv/bin/python scripts/bench_node_hour.py [--submissions synthetic_fcn fastscnn_camvid ...]
                                                [--no-measure] [--format table|json]

In a temporary data folder and database, ``frugalbench evaluate SUBMISSION --force --format json``
(measured unless ``--no-measure``; the benchmark's threads; the whole test split) runs once per
submission, one after another, timed from outside (interpreter start included). A measured run takes
its machine's one measurement slot, so a node does one at a time: evaluations per node-hour =
3600 / wall seconds. CamVid submissions are skipped (with a message) unless FRUGALBENCH_CAMVID is set.
The load average is printed beside: on a busy machine every figure is slower than on a quiet one.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ['synthetic_fcn', 'synthetic_cgnet', 'synthetic_segformer', 'synthetic_bisenetv2', 'fastscnn_camvid',
           'cgnet_camvid']


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--submissions', nargs='+', default=DEFAULT)
    parser.add_argument('--no-measure', action='store_true')
    parser.add_argument('--format', choices=('table', 'json'), default='table')
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix='bench-node-hour-') as temporary:
        base = Path(temporary)
        env = dict(os.environ, FRUGALBENCH_DATA=str(base / 'data'), FRUGALBENCH_WORK=str(base / 'work'),
                   FRUGALBENCH_DB=str(base / 'data' / 'results.duckdb'))
        (base / 'data').mkdir()
        subprocess.run([sys.executable, '-m', 'frugalbench', 'data', 'prepare', 'synthetic'], env=env, check=True,
                       capture_output=True)
        for name in args.submissions:
            folder = ROOT / 'submissions' / name
            benchmark = yaml.safe_load((folder / 'submission.yaml').read_text())['benchmark']
            if benchmark == 'camvid' and not os.environ.get('FRUGALBENCH_CAMVID'):
                print(f'skipped {name}: set FRUGALBENCH_CAMVID to the CamVid folder', file=sys.stderr)
                continue
            load = os.getloadavg()[0]
            started = time.perf_counter()
            result = subprocess.run([sys.executable, '-m', 'frugalbench', 'evaluate', str(folder), '--force',
                                     '--format', 'json', *(['--no-measure'] if args.no_measure else [])],
                                    env=env, capture_output=True, text=True, check=False)
            wall = time.perf_counter() - started
            if result.returncode != 0:
                print(f'{name} failed: {result.stderr[-2000:]}', file=sys.stderr)
                continue
            document = json.loads(result.stdout)
            rows.append({'submission': name, 'benchmark': benchmark, 'images': document['accuracy'].get('num_images'),
                         'measured': not args.no_measure, 'wall_s': round(wall, 1),
                         'evaluation_total_s': document['timings']['total'],
                         'evaluations_per_node_hour': round(3600 / wall, 1),
                         'load_average_1min_before': round(load, 2)})
            print(json.dumps(rows[-1]), file=sys.stderr)
    if args.format == 'json':
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print('  '.join(f'{k}={v}' for k, v in row.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
