"""The evaluation pipeline: submission -> model (child) -> accuracy -> store.

``evaluate_submission`` validates a submission, executes its config and model only in limited
child processes, computes accuracy in this process from the label maps the model returns,
and writes one run (``ok`` or ``failed`` with its reason) to DuckDB in one transaction.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from frugalbench.accuracy import AccuracyResult, image_areas, summarize
from frugalbench.benchmarks import Benchmark, Sample, load_benchmark
from frugalbench.errors import BenchmarkError, ChildProcessError_, FrugalbenchError, SubmissionError
from frugalbench.isolation import Limits
from frugalbench.measurements import provenance
from frugalbench.measurements.memory import size_on_disk
from frugalbench.measurements.protocol import load_protocol
from frugalbench.model import ModelConfig, Predictions, predict, protected_folders, read_config
from frugalbench.overlays import OVERLAY_COUNT, class_colours, render_overlay
from frugalbench.scores.uncertainty import bootstrap_miou_ci
from frugalbench.settings import data_dir, default_db_path, work_dir
from frugalbench.summary import resource_summary
from frugalbench.store.trainings import latest_training
from frugalbench.store import connect, find_reusable_run, save_run
from frugalbench.submission import Submission, load_submission, read_manifest_loosely

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EvaluationOptions:
    """What to evaluate on, where to store it, and under which limits."""

    benchmark: str | None = None      # default: the manifest's benchmark
    db_path: Path = field(default_factory=default_db_path)
    device: str = 'cpu'
    force: bool = False
    split: str = 'test'
    max_images: int | None = None     # evaluate the first N images only (tests, quick looks)
    limits: Limits = field(default_factory=Limits)
    measure: bool = True              # resource measurements (compute, latency, memory, energy, ...)
    protocol_path: Path | None = None  # measurement protocol file (default: the bundled one)


@dataclass(frozen=True)
class EvaluationOutcome:
    document: dict[str, Any]
    reused: bool = False

    @property
    def ok(self) -> bool:
        return self.document.get('status') == 'ok'


class _Clock:
    """Seconds spent per stage, reported in the run's ``timings``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()

    def lap(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + now - since, 3)
        return now

    def total(self) -> float:
        return round(time.perf_counter() - self._start, 3)


def evaluate_submission(folder: Path, options: EvaluationOptions,
                        on_progress: ProgressCallback | None = None) -> EvaluationOutcome:
    """Evaluate one submission folder; failures are recorded, never raised (but BenchmarkError)."""
    run_id = uuid.uuid4().hex
    clock = _Clock()
    folder = Path(folder)
    benchmark_name = options.benchmark
    try:
        submission = load_submission(folder)
        benchmark_name = benchmark_name or submission.manifest.benchmark
        benchmark = load_benchmark(benchmark_name)
        samples = _samples(benchmark, options)
        check_classes(submission, benchmark)
        return _evaluate(run_id, submission, benchmark, samples, options, clock, on_progress)
    except BenchmarkError:
        raise
    except FrugalbenchError as exc:
        document = _failed_document(run_id, folder, benchmark_name, options, str(exc), clock)
        _store(options.db_path, document)
        return EvaluationOutcome(document)


def check_classes(submission: Submission, benchmark: Benchmark) -> None:
    declared, expected = list(submission.manifest.classes), list(benchmark.classes)
    if declared == expected:
        return
    if len(declared) != len(expected):
        problem = f'{len(declared)} classes declared, the benchmark has {len(expected)}'
    else:
        index = next(i for i, (a, b) in enumerate(zip(declared, expected)) if a != b)
        problem = f'class {index} is {declared[index]!r}, the benchmark calls it {expected[index]!r}'
    raise SubmissionError(f'field \'classes\' does not match benchmark {benchmark.name!r}: {problem}; '
                          f'use the benchmark\'s class names in its order: {", ".join(expected)}')


def run_key(*parts: object) -> str:
    """Idempotency key: submission, checkpoint, config, benchmark, protocols, hardware, device, split, size."""
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:32]


def _samples(benchmark: Benchmark, options: EvaluationOptions) -> list[Sample]:
    samples = benchmark.samples(options.split)
    return samples[:options.max_images] if options.max_images else samples


def _evaluate(run_id: str, submission: Submission, benchmark: Benchmark, samples: list[Sample],
              options: EvaluationOptions, clock: _Clock,
              on_progress: ProgressCallback | None) -> EvaluationOutcome:
    since = time.perf_counter()
    work = work_dir() / 'runs' / run_id
    work.mkdir(parents=True, exist_ok=True)
    checkpoint_sha = submission.checkpoint_sha256()
    fingerprint = provenance.hardware_fingerprint()
    since = clock.lap('hashing', since)
    protected = protected_folders(options.db_path, *{s.image.parent for s in samples},
                                  *{s.annotation.parent for s in samples})
    limits = options.limits.or_defaults(benchmark.limits.evaluation_timeout_s, benchmark.limits.evaluation_memory_mb)
    config = read_config(submission, work, limits, protected)
    since = clock.lap('config_read', since)
    protocol = load_protocol(options.protocol_path)
    with connect(options.db_path) as connection:
        training = latest_training(connection, None, checkpoint_sha)
        key = run_key(submission.id, checkpoint_sha, config.sha256, benchmark.name, benchmark.definition_hash,
                      benchmark.protocol_version, fingerprint, options.device, options.split, len(samples),
                      protocol.source_hash if options.measure else 'no-measurements',
                      training['training_id'] if training else 'not-trained-by-harness')
        stored = None if options.force else find_reusable_run(connection, key)
    if stored is not None:
        shutil.rmtree(work, ignore_errors=True)
        return EvaluationOutcome({**stored, 'reused': True}, reused=True)
    predictions = predict(submission, config, benchmark, [s.image for s in samples], work,
                          limits, options.device,
                          on_progress=lambda done, total: on_progress and on_progress(
                              'predict' if total else 'measuring', done, total),
                          measure=options.measure, protocol_path=options.protocol_path, protected=protected)
    since = clock.lap('model_process', since)
    for stage, seconds in predictions.measurement_timings.items():
        clock.timings[f'measure_{stage}'] = seconds
    accuracy = score_predictions(predictions, samples, benchmark)
    since = clock.lap('accuracy_scoring', since)
    measurements = predictions.measurements + [size_on_disk(submission.checkpoint_path).to_dict()]
    document = _ok_document(run_id, submission, benchmark, options, config, checkpoint_sha, key,
                            predictions, accuracy, measurements)
    document['training'] = training_section(submission, training)
    document['overlays'] = store_overlays(predictions, samples[:OVERLAY_COUNT], benchmark,
                                          data_dir() / 'overlays' / run_id)
    document['timings'] = {**clock.timings, 'total': clock.total()}
    _store(options.db_path, document, benchmark.classes, accuracy, measurements)
    document['timings']['bookkeeping'] = round(time.perf_counter() - since, 3)
    shutil.rmtree(predictions.folder.parent, ignore_errors=True)  # the model child's folder
    return EvaluationOutcome(document)


def score_predictions(predictions: Predictions, samples: list[Sample], benchmark: Benchmark) -> AccuracyResult:
    """Compare the child's label maps with the ground truth, which only this process reads."""
    areas = []
    for index, sample in enumerate(samples):
        try:
            prediction = predictions.label_map(index)
        except ChildProcessError_ as exc:
            raise SubmissionError(f'no usable prediction for {sample.name}: {exc}') from None
        label = benchmark.read_label(sample)
        areas.append(image_areas(prediction, label, benchmark.num_classes, benchmark.ignore_index, sample.name))
    return summarize(areas, benchmark.classes)


def store_overlays(predictions: Predictions, samples: list[Sample], benchmark: Benchmark,
                   folder: Path) -> list[dict[str, str]]:
    """Image | ground truth | prediction panels for the first test images (paths in the document)."""
    colours = class_colours(benchmark.palette, benchmark.num_classes)
    overlays = []
    for index, sample in enumerate(samples):
        prediction = predictions.label_map(index)
        path = render_overlay(sample.image, benchmark.read_label(sample), prediction, colours,
                              benchmark.ignore_index, folder / f'{index:03d}.png')
        overlays.append({'image': sample.name, 'path': str(path), 'panels': 'image | ground truth | prediction'})
    return overlays


def training_section(submission: Submission, training: dict[str, Any] | None) -> dict[str, Any]:
    """Declared budget, and the harness's own training record when it produced this checkpoint."""
    section: dict[str, Any] = {'declared': submission.manifest.training.model_dump(mode='json'),
                               'verified': training is not None}
    if training is not None:
        budget, totals = training.get('budget') or {}, training.get('totals') or {}
        section['record'] = {
            'training_id': training.get('training_id'), 'benchmark': training.get('benchmark'),
            'subset_id': budget.get('subset_id'), 'images': budget.get('images'),
            'annotation': budget.get('annotation'), 'annotator_seconds': budget.get('annotator_seconds'),
            'labelled_pixels': budget.get('labelled_pixels'), 'seed': training.get('seed'),
            'iterations': training.get('iterations'), 'wall_seconds': totals.get('wall_seconds'),
            'cpu_seconds': totals.get('cpu_seconds'), 'energy_joules': totals.get('energy_joules'),
            'energy_method': totals.get('energy_method'), 'energy_measured': totals.get('energy_measured')}
    elif (submission.folder / 'training_record.json').exists():
        section['note'] = ('training_record.json is present, but this database holds no harness training '
                           'that produced this checkpoint: the budget is shown as declared')
    return section


def _common(run_id: str, options: EvaluationOptions, status: str, reason: str | None) -> dict[str, Any]:
    return dict(run_id=run_id, status=status, failure_reason=reason,
                created_at=datetime.now(timezone.utc).isoformat(timespec='seconds'),
                device=options.device, split=options.split, reused=False,
                hardware={**provenance.hardware(), 'fingerprint': provenance.hardware_fingerprint()},
                versions=provenance.software_versions())


def _ok_document(run_id: str, submission: Submission, benchmark: Benchmark, options: EvaluationOptions,
                 config: ModelConfig, checkpoint_sha: str, key: str, predictions: Predictions,
                 accuracy: AccuracyResult, measurements: list[dict[str, Any]]) -> dict[str, Any]:
    manifest = submission.manifest
    interval = bootstrap_miou_ci(np.array([a.intersect for a in accuracy.images]),
                                 np.array([a.union for a in accuracy.images]))
    return {
        **_common(run_id, options, 'ok', None),
        'submission': submission.id, 'benchmark': benchmark.name,
        'protocol_version': benchmark.protocol_version, 'synthetic': benchmark.synthetic,
        'manifest': manifest.model_dump(mode='json'),
        'accuracy': {**accuracy.to_dict(), 'miou_ci': [interval.low, interval.high],
                     'miou_ci_method': 'bootstrap over test images, 1000 resamples, 95 %, seed 0'},
        **resource_summary(measurements, predictions.params),
        'measurements': measurements,
        'measurement_protocol': predictions.protocol,
        'training': {'declared': manifest.training.model_dump(mode='json'), 'verified': False},
        'custom_code': config.custom_code, 'custom_imports': list(config.custom_imports),
        'architecture': config.architecture(),
        'hashes': {'checkpoint_sha256': checkpoint_sha, 'config_sha256': config.sha256,
                   'benchmark_sha256': benchmark.definition_hash},
        'run_key': key,
        'limits': predictions.child.enforced,
        'model_process': {'peak_rss_mb': round(predictions.child.peak_rss_mb, 1),
                          'cpu_seconds': round(predictions.child.cpu_seconds, 3),
                          'wall_seconds': round(predictions.child.wall_seconds, 3),
                          'log': str(predictions.child.log_path)},
    }


def _failed_document(run_id: str, folder: Path, benchmark_name: str | None, options: EvaluationOptions,
                     reason: str, clock: _Clock) -> dict[str, Any]:
    raw = read_manifest_loosely(folder)
    manifest = {k: raw.get(k) for k in ('name', 'technique', 'parent') if isinstance(raw.get(k), str)}
    return {
        **_common(run_id, options, 'failed', reason),
        'submission': folder.resolve().name,
        'benchmark': benchmark_name or (raw.get('benchmark') if isinstance(raw.get('benchmark'), str) else None)
        or 'unknown',
        'manifest': manifest, 'timings': {**clock.timings, 'total': clock.total()},
    }


def _store(db_path: Path, document: dict[str, Any], class_names: list[str] | None = None,
           accuracy: AccuracyResult | None = None, measurements: list[dict[str, Any]] | None = None) -> None:
    with connect(db_path) as connection:
        save_run(connection, document, class_names or [], accuracy.images if accuracy else [],
                 measurements or [])
