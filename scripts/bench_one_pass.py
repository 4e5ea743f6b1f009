"""One-pass evaluation against plain MMSegmentation, side by side in one run (issue 16).

    FRUGALBENCH_CAMVID=../shared/datasets/camvid .venv/bin/python scripts/bench_one_pass.py \
        [--threads 2] [--submissions fastscnn_camvid cgnet_camvid] [--repeat N] [--format json]

For each submission, three fresh processes run one after another on the whole CamVid test split,
each timed from outside (wall clock, interpreter start and imports included):

1. plain MMSeg: ``init_model`` + ``inference_model`` per image + a dataset-level confusion matrix
   (MMSeg's ``IoUMetric.intersect_and_union``), timing each ``inference_model`` call with
   ``time.perf_counter``: the accuracy pass a user would write;
2. ``frugalbench evaluate --threads N --force``: the whole measured evaluation (protocol v2);
3. ``frugalbench evaluate --threads N --force --no-measure``.

With ``--repeat N`` the three run N times, interleaved, and each keeps its fastest wall time (the
usual estimate on a shared machine, where noise only ever adds time). It prints the ratios (2)/(1) and (3)/(1), checks that the mIoUs are identical, that the run has
protocol version 2, latency, MACs and energy figures, and compares the run's median query latency
with the plain loop's median ``inference_model`` time (same images, same threads).
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

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {'evaluate': 1.15, 'no_measure': 1.05, 'latency_agreement': 0.10}

PLAIN = r'''
import json, sys, time
import numpy as np, torch
from mmseg.apis import inference_model
sys.path.insert(0, {tests!r})
from support import reference_model
from frugalbench.accuracy import image_areas, summarize
from frugalbench.benchmarks import load_benchmark
from frugalbench.model import evaluation_pipeline
torch.set_num_threads({threads})
benchmark = load_benchmark('camvid')
model = reference_model(__import__('pathlib').Path({folder!r}))
model.cfg.test_pipeline = evaluation_pipeline(benchmark)
areas, times = [], []
for sample in benchmark.samples('test'):
    started = time.perf_counter()
    result = inference_model(model, str(sample.image))
    times.append(time.perf_counter() - started)
    prediction = result.pred_sem_seg.data[0].numpy().astype(np.uint8)
    areas.append(image_areas(prediction, benchmark.read_label(sample), benchmark.num_classes, benchmark.ignore_index))
print(json.dumps({{'miou': summarize(areas, benchmark.classes).miou, 'median_ms': float(np.median(times) * 1000),
                  'images': len(times)}}))
'''


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f'{" ".join(argv[:4])} failed ({result.returncode}): {result.stderr[-2000:]}')
    return seconds, result.stdout


def bench(submission: str, threads: int, env: dict[str, str], repeat: int = 1) -> dict:
    folder = ROOT / 'submissions' / submission
    code = PLAIN.format(tests=str(ROOT / 'tests'), threads=threads, folder=str(folder))
    # the thread environment the harness gives its model process, so both run the same way
    threaded = {**env, 'OMP_NUM_THREADS': str(threads), 'MKL_NUM_THREADS': str(threads), 'OMP_WAIT_POLICY': 'PASSIVE'}
    evaluate = [sys.executable, '-m', 'frugalbench', 'evaluate', str(folder), '--threads', str(threads),
                '--force', '--format', 'json']
    plain_s = measured_s = bare_s = float('inf')
    for _ in range(repeat):
        seconds, out = timed([sys.executable, '-c', code], threaded)
        if seconds < plain_s:
            plain_s, plain = seconds, json.loads(out.strip().splitlines()[-1])
        seconds, out = timed(evaluate, env)
        if seconds < measured_s:
            measured_s, run = seconds, json.loads(out)
        seconds, out = timed([*evaluate, '--no-measure'], env)
        if seconds < bare_s:
            bare_s, bare = seconds, json.loads(out)
    agreement = abs(run['latency']['median_ms'] - plain['median_ms']) / plain['median_ms']
    return {
        'submission': submission, 'threads': threads, 'images': plain['images'], 'repeat': repeat,
        'plain_pass_s': round(plain_s, 2), 'evaluate_s': round(measured_s, 2), 'no_measure_s': round(bare_s, 2),
        'evaluate_ratio': round(measured_s / plain_s, 3), 'no_measure_ratio': round(bare_s / plain_s, 3),
        'miou_plain': plain['miou'], 'miou_evaluate': run['accuracy']['miou'], 'miou_no_measure': bare['accuracy']['miou'],
        'miou_identical': plain['miou'] == run['accuracy']['miou'] == bare['accuracy']['miou'],
        'protocol_version': run['measurement_protocol']['protocol_version'],
        'latency_median_ms': run['latency']['median_ms'], 'plain_loop_median_ms': round(plain['median_ms'], 2),
        'latency_agreement': round(agreement, 3), 'macs': run['compute']['macs'],
        'energy_j_per_image': run['energy']['joules_per_image'], 'energy_method': run['energy']['method'],
        'timings': run['timings'],
    }


def verdict(row: dict) -> list[str]:
    problems = []
    if row['evaluate_ratio'] > TARGETS['evaluate']:
        problems.append(f"evaluate {row['evaluate_ratio']}x > {TARGETS['evaluate']}x")
    if row['no_measure_ratio'] > TARGETS['no_measure']:
        problems.append(f"--no-measure {row['no_measure_ratio']}x > {TARGETS['no_measure']}x")
    if not row['miou_identical']:
        problems.append('mIoU differs from the plain pass')
    if row['latency_agreement'] > TARGETS['latency_agreement']:
        problems.append(f"latency differs from the plain loop by {row['latency_agreement']:.0%}")
    if row['protocol_version'] != 2 or row['macs'] is None or row['energy_j_per_image'] is None:
        problems.append('protocol 2 with MACs and energy expected')
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--submissions', nargs='+', default=['fastscnn_camvid', 'cgnet_camvid'])
    parser.add_argument('--repeat', type=int, default=1, help='rounds; each command keeps its fastest')
    parser.add_argument('--format', choices=('table', 'json'), default='table')
    args = parser.parse_args()
    if not os.environ.get('FRUGALBENCH_CAMVID'):
        raise SystemExit('set FRUGALBENCH_CAMVID to the CamVid folder')
    console = Console(stderr=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix='frugalbench-bench-') as scratch:
        env = {**os.environ, 'FRUGALBENCH_DB': f'{scratch}/bench.duckdb', 'FRUGALBENCH_DATA': f'{scratch}/data',
               'FRUGALBENCH_WORK': f'{scratch}/work'}
        for submission in args.submissions:
            console.print(f'[bold]{submission}[/]: plain MMSeg pass, evaluate, evaluate --no-measure ...')
            row = bench(submission, args.threads, env, args.repeat)
            row['problems'] = verdict(row)
            rows.append(row)
            console.print({k: v for k, v in row.items() if k != 'timings'})
    if args.format == 'json':
        print(json.dumps(rows, indent=2))
    else:
        table = Table(title=f'one pass vs plain MMSeg ({args.threads} threads, wall seconds incl. start-up)')
        for column in ('submission', 'plain pass', 'evaluate', 'ratio', '--no-measure', 'ratio',
                       'mIoU equal', 'latency (plain loop)', 'problems'):
            table.add_column(column)
        for r in rows:
            table.add_row(r['submission'], f"{r['plain_pass_s']}", f"{r['evaluate_s']}", f"{r['evaluate_ratio']}x",
                          f"{r['no_measure_s']}", f"{r['no_measure_ratio']}x", str(r['miou_identical']),
                          f"{r['latency_median_ms']:.1f} ms ({r['plain_loop_median_ms']:.1f} ms)",
                          '; '.join(r['problems']) or 'none')
        Console().print(table)
    return 1 if any(r['problems'] for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
