"""Leaderboard queries on 10,000 stored runs (pytest-benchmark; target < 200 ms per query).

A benchmark, not a timed test: nothing fails on time. Run with
`pytest tests/perf/test_leaderboard_queries.py --benchmark-only` and read the table.

The database is written once per module with DuckDB SQL from pandas frames (seconds, not the
minutes 10,000 `save_run` transactions would take); its rows are shaped like those `save_run`
writes: the typed columns come from `frugalbench.store.runs.run_row` of each document.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from frugalbench import app_data as data
from frugalbench.measurements.record import Measurement
from frugalbench.store import connect
from frugalbench.store.runs import RUN_COLUMNS, run_row
from frugalbench.summary import resource_summary

N_RUNS = 10_000
N_CAMVID = 9_000  # the default view's benchmark holds most runs (worst case for its queries)
N_AREA_RUNS = 50  # runs with per-image areas: the app bootstraps intervals for at most 50 per view
N_TEST_IMAGES = 233  # CamVid's test split
CLASSES = ['sky', 'building', 'pole', 'road', 'pavement', 'tree', 'sign_symbol', 'fence', 'car',
           'pedestrian', 'bicyclist']
TECHNIQUES = ['lightweight', 'pruned', 'low-rank', 'quantized', 'distilled']
HARDWARE = [
    {'cpu_model': 'Intel(R) Xeon(R) Processor', 'cpu_physical_cores': 2, 'cpu_logical': 2, 'cpu_usable': 2,
     'virtualized': True, 'ram_bytes': 25276510208, 'gpus': [], 'os': 'Debian GNU/Linux 12 (bookworm)',
     'kernel': '6.18.44', 'machine': 'x86_64', 'fingerprint': f'{k:012x}'} for k in range(3)]
VERSIONS = {'python': '3.11.7', 'torch': '2.13.0+cpu', 'mmcv': '2.1.0', 'mmengine': '0.10.7', 'mmseg': '1.2.2',
            'numpy': '2.4.6', 'duckdb': '2.0.1', 'codecarbon': '3.3.2', 'pyjoules': '0.5.1', 'frugalbench': '0.1.0'}


def measurements(params: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """The measurements an evaluation stores (issue 4's names and units), as ``Measurement.to_dict``."""
    rows = [('params', params, 'parameters', 'torch.nn.Module.parameters', True, {}),
            ('macs', rng.uniform(1e8, 1e10), 'MACs', 'mmengine.analysis.get_model_complexity_info', True,
             {'input_shape': [1, 3, 360, 480], 'skipped_ops': {}}),
            ('flops', rng.uniform(2e8, 2e10), 'FLOPs', 'torch.utils.flop_counter.FlopCounterMode', True, {}),
            ('latency_b1', rng.uniform(5, 500), 'ms', 'perf_counter median', True,
             {'p90_ms': 1.0, 'iqr_ms': 0.1, 'repeats': 30, 'warmup': 5, 'torch_threads': 1, 'busy': False}),
            ('peak_rss', rng.uniform(2e8, 4e9), 'bytes', 'VmHWM after clear_refs', True, {}),
            ('energy_per_image', rng.uniform(0.01, 5), 'J', 'estimate-cpu-time-tdp', False,
             {'tdp_w': 4.0, 'grid_gco2_per_kwh': 56}),
            ('energy_run', rng.uniform(1, 500), 'J', 'estimate-cpu-time-tdp', False, {})]
    return [Measurement(name, float(value), unit, method, '1.0', measured, details=details).to_dict()
            for name, value, unit, method, measured, details in rows]


def document(i: int, rng: np.random.Generator) -> dict[str, Any]:
    """An evaluation document of the shape `evaluate_submission` stores (about 6 KB of JSON)."""
    benchmark = 'camvid' if i < N_CAMVID else 'synthetic'
    ok = i % 50 != 0
    iou = {c: float(v) for c, v in zip(CLASSES, rng.uniform(0.05, 0.9, len(CLASSES)))}
    images = int(rng.choice([10, 50, 100, 367]))
    manifest = {'name': f'Submission {i:05d}', 'authors': ['Perf Author'],
                'description': 'A generated submission for the leaderboard benchmark. ' * 4,
                'technique': TECHNIQUES[i % len(TECHNIQUES)], 'benchmark': benchmark, 'classes': CLASSES,
                'config': 'config.py', 'checkpoint': 'model.pth',
                'training': {'images': images, 'annotation': 'full', 'notes': 'seed 0'},
                'parent': f'sub{i - 1:05d}' if i % 7 == 0 and i else None, 'compression': None}
    doc: dict[str, Any] = {
        'run_id': f'run{i:05d}', 'status': 'ok' if ok else 'failed',
        'failure_reason': None if ok else 'the model process ran out of memory (limit 8192 MB)',
        'created_at': (datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=i)).isoformat(),
        'device': 'cpu', 'split': 'test', 'reused': False, 'hardware': HARDWARE[i % 3], 'versions': VERSIONS,
        'submission': f'sub{i:05d}', 'benchmark': benchmark, 'manifest': manifest,
        'timings': {'hashing': 0.1, 'config_read': 0.5, 'model_process': 21.3, 'accuracy_scoring': 1.2,
                    'total': 23.4},
    }
    if ok:
        miou = float(np.mean(list(iou.values())))
        params = int(rng.integers(200_000, 15_000_000))
        stored = measurements(params, rng)
        doc.update({
            'protocol_version': 1, 'synthetic': benchmark == 'synthetic',
            'accuracy': {'miou': miou, 'macc': 0.6, 'aacc': 0.8, 'per_class_iou': iou, 'per_class_acc': iou,
                         'num_images': N_TEST_IMAGES, 'miou_ci': [miou - 0.02, miou + 0.02],
                         'miou_ci_method': 'bootstrap over test images, 1000 resamples, 95 %, seed 0'},
            **resource_summary(stored, params), 'measurements': stored,
            'training': {'declared': manifest['training'], 'verified': False},
            'custom_code': False, 'custom_imports': [],
            'hashes': {'checkpoint_sha256': f'{i:064x}', 'config_sha256': 'c' * 64, 'benchmark_sha256': 'b' * 64},
            'run_key': f'{i:032x}', 'limits': {'timeout_s': 3600, 'memory_mb': 8192, 'threads': 1},
            'model_process': {'peak_rss_mb': 612.4, 'cpu_seconds': 20.1, 'wall_seconds': 21.3,
                              'log': f'/root/.cache/frugalbench/work/runs/run{i:05d}/child.log'},
        })
        if i % 10 == 0:  # trained by the harness: a verified budget
            doc['training'] = {**doc['training'], 'verified': True, 'record': {
                'images': images, 'annotation': 'full', 'annotator_seconds': 240.0 * images,
                'wall_seconds': 3600.0, 'energy_joules': 5.0e4}}
    return doc


@pytest.fixture(scope='module')
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp('leaderboard-perf') / 'results.duckdb'
    rng = np.random.default_rng(0)
    documents = [document(i, rng) for i in range(N_RUNS)]
    runs = pd.DataFrame([run_row(d) for d in documents], columns=list(RUN_COLUMNS))
    runs['created_at'] = pd.to_datetime(runs['created_at'])
    runs['document'] = [json.dumps(d) for d in documents]
    ok = [d for d in documents if d['status'] == 'ok']
    measured = pd.DataFrame([[d['run_id'], m['name'], m['value'], m['unit'], m['method'], m['tool_version'],
                              m['measured'], m['unavailable_reason'], json.dumps(m['details'])]
                             for d in ok for m in d['measurements']],
                            columns=['run_id', 'name', 'value', 'unit', 'method', 'tool_version', 'measured',
                                     'unavailable_reason', 'details'])
    classes = pd.DataFrame([[d['run_id'], k, c, d['accuracy']['per_class_iou'][c], 0.5]
                            for d in ok for k, c in enumerate(CLASSES)],
                           columns=['run_id', 'class_index', 'class_name', 'iou', 'acc'])
    area_runs = [d['run_id'] for d in ok if d['benchmark'] == 'camvid'][:N_AREA_RUNS]
    union = rng.integers(1000, 50000, (N_TEST_IMAGES, len(CLASSES))).astype(float)
    areas = pd.DataFrame([[run_id, k, f'img{k}.png', list(union[k] * 0.6), list(union[k]), list(union[k] * 0.8),
                           list(union[k] * 0.8)] for run_id in area_runs for k in range(N_TEST_IMAGES)],
                         columns=['run_id', 'image_index', 'image', 'intersect_', 'union_', 'pred', 'label'])
    with connect(db) as connection:
        for table, frame in (('runs', runs), ('measurements', measured), ('class_scores', classes),
                             ('image_areas', areas)):
            connection.register('frame', frame)
            connection.execute(f'INSERT INTO {table} BY NAME SELECT * FROM frame')
            connection.unregister('frame')
        assert connection.execute('SELECT count(*) FROM runs').fetchone() == (N_RUNS,)
    return db


def run(benchmark: Any, fn: Callable[[], Any]) -> Any:
    """Time ``fn`` over a few rounds (each query opens and closes the database)."""
    return benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)


def test_store_status(benchmark: Any, big_db: Path) -> None:
    assert run(benchmark, lambda: data.store_status(big_db)).runs == N_RUNS


def test_benchmarks(benchmark: Any, big_db: Path) -> None:
    frame = run(benchmark, lambda: data.benchmarks(big_db))
    assert frame['benchmark'].tolist() == ['camvid', 'synthetic']


def test_runs_of_the_default_benchmark_first_read(benchmark: Any, big_db: Path) -> None:
    """The first read parses every run's document (a few KB of JSON each)."""
    frame = run(benchmark, lambda: data.runs(big_db, 'camvid'))
    assert len(frame) == N_CAMVID and frame['macs'].notna().sum() == N_CAMVID - N_CAMVID // 50
    assert frame['budget_verified'].sum() == sum(1 for i in range(0, N_CAMVID, 10) if i % 50)


def test_runs_of_the_default_benchmark_on_refresh(benchmark: Any, big_db: Path) -> None:
    """What the app pays on each refresh: documents read before come from its cache; one run is
    new (its document is parsed)."""
    cache: dict = {}
    first = data.runs(big_db, 'camvid', cache)

    def one_new_run() -> None:
        del cache['run00011']

    frame = benchmark.pedantic(lambda: data.runs(big_db, 'camvid', cache), setup=one_new_run, rounds=5,
                               iterations=1, warmup_rounds=1)
    pd.testing.assert_frame_equal(frame, first)


def test_run_detail(benchmark: Any, big_db: Path) -> None:
    detail = run(benchmark, lambda: data.run_detail(big_db, 'run04321'))
    assert detail is not None and len(detail.class_scores) == len(CLASSES) and len(detail.measurements) == 7


def test_lineage(benchmark: Any, big_db: Path) -> None:
    frame = run(benchmark, lambda: data.lineage(big_db, 'sub04318', 'Submission 04318', None))
    assert frame['run_id'].tolist() == ['run04319']


def test_image_areas_of_the_runs_a_view_bootstraps(benchmark: Any, big_db: Path) -> None:
    ids = [f'run{i:05d}' for i in range(N_CAMVID) if i % 50][:N_AREA_RUNS]
    areas = run(benchmark, lambda: data.image_areas(big_db, ids))
    assert len(areas) == N_AREA_RUNS and areas[ids[0]][0].shape == (N_TEST_IMAGES, len(CLASSES))


def test_ranking_of_1000_runs(benchmark: Any, big_db: Path) -> None:
    """Not a query: frugalbench.scores.rank_runs on 1,000 runs, which the app does on every rerun
    (its rank and tie loops are quadratic in the number of runs of a group)."""
    runs = data.runs(big_db, 'camvid').head(1000)
    ranked = run(benchmark, lambda: data.ranking(runs, 'macs', 0.5, {'macs': 1e9}))
    assert len(ranked) == 1000 - 1000 // 50
