"""Leaderboard test data: stored runs written with the real store (``save_run``), from evaluation
documents shaped like ``evaluate_submission``'s, with per-image areas whose dataset-level mIoU
is computed by MMSegmentation's ``IoUMetric`` (``frugalbench.accuracy.summarize``).

Benchmarks (YAML files under $FRUGALBENCH_DATA/benchmarks):
- ``street``: real-looking, reference values and a ``tiny`` track (<= 1 M params);
- ``toyshapes``: ``synthetic: true``, fewer runs (so ``street`` is the default view).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from frugalbench.measurements.record import Measurement
from frugalbench.store import connect, save_run

STREET_CLASSES = ['road', 'car', 'sky']
STREET_REFERENCES = {'macs': 1.0e9, 'params': 1.0e6, 'latency_ms': 50.0, 'peak_rss_mb': 512.0,
                     'energy_joules_per_image': 1.0, 'train_images': 100.0, 'annotation_seconds': 3600.0}
CPU = {'cpu_model': 'Intel(R) Xeon(R) Processor', 'cpu_physical_cores': 2, 'cpu_logical': 2, 'cpu_usable': 2,
       'virtualized': True, 'ram_bytes': 25276510208, 'gpus': [], 'os': 'Debian GNU/Linux 12 (bookworm)',
       'kernel': '6.18.44', 'machine': 'x86_64', 'fingerprint': 'cpu0fingerpr'}
GPU = {**CPU, 'cpu_logical': 16, 'gpus': [{'name': 'NVIDIA H100 80GB HBM3', 'memory_mb': 81559}],
       'fingerprint': 'gpu0fingerpr'}
VERSIONS = {'python': '3.11.7', 'torch': '2.13.0+cpu', 'mmcv': '2.1.0', 'mmengine': '0.10.7',
            'mmseg': '1.2.2', 'numpy': '2.4.6', 'duckdb': '2.0.1', 'frugalbench': '0.1.0'}
START = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


@dataclass
class Run:
    """What a test says about one run; ``document()`` and ``measurements()`` expand it."""

    run_id: str
    submission: str
    name: str
    benchmark: str = 'street'
    quality: float = 0.6             # fraction of each class's union that the prediction gets right
    technique: str = 'lightweight'
    params: int = 1_460_000
    macs: float | None = 9.0e8
    latency_ms: float | None = 40.0
    peak_rss_bytes: float | None = 300 * 2**20
    energy_j: float | None = 0.5
    energy_measured: bool = False
    train_images: int = 367
    annotation: str = 'full'
    verified_budget: dict[str, Any] | None = None  # training.record: what the harness recorded
    store_interval: bool = True      # accuracy.miou_ci, as evaluations since issue 4 store it
    parent: str | None = None
    hardware: dict[str, Any] = field(default_factory=lambda: dict(CPU))
    status: str = 'ok'
    failure_reason: str | None = None
    minutes: int = 0                 # created_at = START + minutes
    classes: list[str] = field(default_factory=lambda: list(STREET_CLASSES))
    synthetic: bool = False
    images: int = 6
    untrusted_reason: str | None = None  # compute.untrusted_reason: the run ran submission code (custom_imports)
    measurement_protocol: int | None = None  # measurement_protocol.protocol_version (None: stored before it)

    def areas(self) -> list[Any]:
        """Per-image areas: each class's intersection is ``quality`` of its union, give or take."""
        from frugalbench.accuracy import ImageAreas
        rng = np.random.default_rng(zlib.crc32(self.run_id.encode()))
        result = []
        for index in range(self.images):
            union = rng.integers(200, 1200, len(self.classes)).astype(np.float64)
            share = np.clip(self.quality + rng.normal(0, 0.08, len(self.classes)), 0.02, 0.98)
            intersect = np.round(union * share)
            label = np.round(union * 0.8)
            result.append(ImageAreas(image=f'img{index}.png', intersect=intersect, union=union,
                                     pred=union - label + intersect, label=label))
        return result

    def measurements(self) -> list[dict[str, Any]]:
        out = [Measurement('params', float(self.params), 'parameters', 'torch.nn.Module.parameters',
                           '2.13.0', True).to_dict()]
        optional = [('macs', self.macs, 'MACs', 'mmengine.analysis.get_model_complexity_info', True),
                    ('latency_b1', self.latency_ms, 'ms', 'perf_counter median of 30 after 5 warm-up', True),
                    ('peak_rss', self.peak_rss_bytes, 'bytes', 'VmHWM after clear_refs', True),
                    ('energy_per_image', self.energy_j, 'J',
                     'rapl' if self.energy_measured else 'estimate-cpu-time-tdp', self.energy_measured)]
        for name, value, unit, method, measured in optional:
            if value is None:
                out.append(Measurement.unavailable(name, unit, f'{name} was not measured on this machine')
                           .to_dict())
            else:
                out.append(Measurement(name, float(value), unit, method, '1.0', measured,
                                       details={'repeats': 30}).to_dict())
        return out

    def document(self) -> dict[str, Any]:
        created = (START + timedelta(minutes=self.minutes)).isoformat(timespec='seconds')
        common = dict(run_id=self.run_id, status=self.status, failure_reason=self.failure_reason,
                      created_at=created, device='cpu', split='test', reused=False,
                      hardware=self.hardware, versions=VERSIONS)
        manifest = dict(name=self.name, authors=['Test Author'],
                        description=f'{self.name}: a *test* submission with <b>markup</b> in its text',
                        technique=self.technique, benchmark=self.benchmark, classes=self.classes,
                        config='config.py', checkpoint='model.pth',
                        training=dict(images=self.train_images, annotation=self.annotation, notes=''),
                        parent=self.parent, compression=None)
        if self.status != 'ok':
            return {**common, 'submission': self.submission, 'benchmark': self.benchmark,
                    'manifest': {'name': self.name, 'technique': self.technique}, 'timings': {'total': 0.4}}
        from frugalbench.accuracy import summarize
        from frugalbench.scores import bootstrap_miou_ci
        from frugalbench.summary import resource_summary
        areas = self.areas()
        accuracy = summarize(areas, self.classes).to_dict()
        if self.store_interval:
            interval = bootstrap_miou_ci(np.array([a.intersect for a in areas]), np.array([a.union for a in areas]))
            accuracy['miou_ci'] = [interval.low, interval.high]
        training: dict[str, Any] = {'declared': manifest['training'], 'verified': False}
        if self.verified_budget is not None:
            training = {**training, 'verified': True, 'record': self.verified_budget}
        return {
            **common, 'submission': self.submission, 'benchmark': self.benchmark, 'protocol_version': 1,
            'synthetic': self.synthetic, 'manifest': manifest, 'accuracy': accuracy,
            **resource_summary(self.measurements(), self.params, untrusted_reason=self.untrusted_reason),
            'measurements': self.measurements(), 'training': training,
            **({'measurement_protocol': {'protocol_version': self.measurement_protocol, 'protocol_sha256': 'p' * 64,
                                         'measured': True}} if self.measurement_protocol else {}),
            'custom_code': self.untrusted_reason is not None,
            'custom_imports': ['mymodels.net'] if self.untrusted_reason else [],
            'hashes': {'checkpoint_sha256': f'{self.run_id:0<64}'[:64], 'config_sha256': 'c' * 64,
                       'benchmark_sha256': 'b' * 64},
            'run_key': f'key-{self.run_id}', 'limits': {'timeout_s': 3600, 'memory_mb': 8192, 'threads': 1},
            'model_process': {'peak_rss_mb': 412.5, 'cpu_seconds': 3.2, 'wall_seconds': 3.4, 'log': '/tmp/x.log'},
            'timings': {'accuracy_inference': 3.4, 'total': 4.0},
        }


def street_runs() -> list[Run]:
    """Five runs on ``street`` (one failed), one on other hardware, one derived, one with a
    verified budget; names with markup characters; plus two older/duplicate runs."""
    return [
        Run('a1fastscnn', 'fastscnn_street', 'Fast-SCNN street', quality=0.62, minutes=1),
        Run('b2cgnet000', 'cgnet_street', 'CGNet <i>street</i> **v2**', quality=0.55, params=500_000,
            macs=1.8e9, latency_ms=None, peak_rss_bytes=200 * 2**20, energy_j=None, minutes=2),
        Run('c3pruned00', 'fastscnn_street_pruned', 'Fast-SCNN pruned 50%', technique='pruned',
            quality=0.50, params=430_000, macs=3.0e8, latency_ms=25.0, parent='fastscnn_street', minutes=3),
        Run('d4points10', 'fastscnn_points10', 'Fast-SCNN 10 images, points', quality=0.35, train_images=10,
            annotation='points', verified_budget={'images': 10, 'annotation': 'points', 'annotator_seconds': 221.0,
                                                  'wall_seconds': 600.0}, store_interval=False, minutes=4),
        Run('e5gpu00000', 'fastscnn_street', 'Fast-SCNN street', quality=0.62, hardware=dict(GPU),
            latency_ms=3.0, energy_j=0.05, energy_measured=True, minutes=5),
        Run('f6failed00', 'broken_street', 'Broken submission', status='failed',
            failure_reason='config.py: model.decode_head.num_classes is 19, the benchmark has 3 classes',
            minutes=6),
    ]


def toyshapes_runs() -> list[Run]:
    classes = ['background', 'disc']
    return [Run(f'toy{i}000000', f'toy{i}', f'Toy model {i}', benchmark='toyshapes', quality=0.4 + 0.1 * i,
                classes=classes, synthetic=True, minutes=10 + i) for i in range(2)]


def write_benchmarks(data: Path) -> None:
    folder = data / 'benchmarks'
    folder.mkdir(parents=True, exist_ok=True)
    street = dict(name='street', protocol_version=1, description='street scenes for tests', synthetic=False,
                  root='street', layout='mmseg', splits={'test': 'test'}, classes=STREET_CLASSES,
                  references=STREET_REFERENCES,
                  tracks={'tiny': {'description': 'at most 1 M parameters', 'max_params': 1_000_000}})
    toy = dict(name='toyshapes', protocol_version=1, description='SYNTHETIC toy shapes', synthetic=True,
               root='toyshapes', layout='mmseg', splits={'test': 'test'}, classes=['background', 'disc'],
               references={'macs': 1.0e9}, generator={'seed': 0, 'image_size': [32, 32],
                                                      'split_sizes': {'test': 2}})
    (folder / 'street.yaml').write_text(yaml.safe_dump(street, sort_keys=False))
    (folder / 'toyshapes.yaml').write_text(yaml.safe_dump(toy, sort_keys=False))


def store_runs(db: Path, runs: list[Run]) -> None:
    with connect(db) as connection:
        for run in runs:
            areas = run.areas() if run.status == 'ok' else []
            save_run(connection, run.document(), run.classes if run.status == 'ok' else [], areas,
                     run.measurements() if run.status == 'ok' else [])


@pytest.fixture
def leaderboard_db(isolated: Path) -> Path:
    """The runs of ``street_runs()`` and ``toyshapes_runs()`` in $FRUGALBENCH_DB, with their
    benchmark files; returns the database path."""
    write_benchmarks(isolated / 'data')
    db = isolated / 'data' / 'results.duckdb'
    store_runs(db, street_runs() + toyshapes_runs())
    return db


@pytest.fixture
def street() -> dict[str, Run]:
    """The street runs by run id (what the tests compare the app's output with)."""
    return {run.run_id: run for run in street_runs()}


@dataclass(frozen=True)
class Kit:
    """The builders above, for test modules (conftest modules cannot be imported by name)."""

    Run: type[Run]
    store_runs: Any
    street_runs: Any
    toyshapes_runs: Any
    write_benchmarks: Any


@pytest.fixture
def kit() -> Kit:
    return Kit(Run, store_runs, street_runs, toyshapes_runs, write_benchmarks)
