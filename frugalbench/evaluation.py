"""The evaluation pipeline: submission -> model (child) -> accuracy -> store.

``evaluate_submission`` validates a submission, executes its config and model only in limited
child processes, computes accuracy in this process from the label maps the model returns,
and writes one run (``ok`` or ``failed`` with its reason) to DuckDB in one transaction.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from frugalbench.benchmarks import Benchmark, Sample, load_benchmark
from frugalbench.errors import (
    BenchmarkError,
    FrugalbenchError,
    NotRecordedError,
    StoreError,
    SubmissionError,
)
from frugalbench.isolation import ChildResult, Limits
from frugalbench.measurements.protocol import Protocol, load_protocol
from frugalbench.measurements.record import Measurement
from frugalbench.model import ModelConfig, config_from, protected_folders, start_config_reader, start_model
from frugalbench.overlays import OVERLAY_COUNT, class_colours, render_overlay
from frugalbench.scores.uncertainty import bootstrap_miou_ci
from frugalbench.settings import data_dir, default_db_path, work_dir
from frugalbench.summary import MB, resource_summary
from frugalbench.store.trainings import latest_training
from frugalbench.store import connect, find_reusable_run, store_run_or_spool
from frugalbench.store.spool import run_payload
from frugalbench.submission import (
    Submission,
    is_cascade_folder,
    load_submission,
    read_manifest_loosely,
    read_training_record,
)
from frugalbench.text import cap, cap_strings
from frugalbench.zero_shot import zero_shot_accuracy

if TYPE_CHECKING:   # torch and MMSeg load after the model process has started (it imports them too)
    from frugalbench.accuracy import AccuracyResult
    from frugalbench.measurements.one_pass import PassOutcome

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
    keep_work: bool = False           # keep the run's work folder (logs) for debugging
    confidence_bins: int = 0          # > 0: answers carry confidence histograms, stored (cascade members)
    detached: Detached | None = None   # neither read nor write the database (see Detached)


@dataclass(frozen=True)
class Detached:
    """An evaluation that never opens the database (``frugalbench serve``'s Ray tasks, on any node):
    the caller looked up the checkpoint's harness training beforehand, and stores the run itself
    from ``EvaluationOutcome.payload`` (a spool payload, ``frugalbench.store.spool.run_payload``)."""

    training: dict[str, Any] | None = None


@dataclass(frozen=True)
class EvaluationOutcome:
    document: dict[str, Any]
    reused: bool = False
    payload: dict[str, Any] | None = None   # detached evaluations: what the caller stores

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
    """Evaluate one submission folder; failures are recorded, never raised (but BenchmarkError, and
    StoreError when the database cannot be used: before the model runs, nothing is lost)."""
    run_id = uuid.uuid4().hex
    clock = _Clock()
    folder = Path(folder)
    benchmark_name = options.benchmark
    if is_cascade_folder(folder):  # issue 19: a cascade of submissions (frugalbench.cascades)
        from frugalbench.cascades.evaluate import evaluate_cascade
        return evaluate_cascade(folder, options, on_progress)
    try:
        submission = load_submission(folder)
        benchmark_name = benchmark_name or submission.manifest.benchmark
        benchmark = load_benchmark(benchmark_name)
        samples = _samples(benchmark, options)
        check_classes(submission, benchmark)
        return _evaluate(run_id, submission, benchmark, samples, options, clock, on_progress)
    except (BenchmarkError, StoreError):  # a database that cannot be used: nothing to record (exit 4)
        raise
    except FrugalbenchError as exc:
        document = _failed_document(run_id, folder, benchmark_name, options, str(exc), clock)
        return EvaluationOutcome(document, payload=_record(options, document))


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
    work = work_dir() / 'runs' / run_id
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _run_model(run_id, submission, benchmark, samples, options, clock, on_progress, work)
    finally:
        _tidy_work(work, options.keep_work)


def _run_model(run_id: str, submission: Submission, benchmark: Benchmark, samples: list[Sample],
               options: EvaluationOptions, clock: _Clock, on_progress: ProgressCallback | None,
               work: Path) -> EvaluationOutcome:
    since = time.perf_counter()
    protected = protected_folders(options.db_path, *{s.image.parent for s in samples},
                                  *{s.annotation.parent for s in samples})
    limits = options.limits.or_defaults(benchmark.limits.evaluation_timeout_s, benchmark.limits.evaluation_memory_mb,
                                        benchmark.limits.evaluation_threads)
    model = start_model(submission, benchmark, work, limits, protected)   # imports torch while we go on
    try:
        with start_config_reader(submission, work, limits, protected) as reader:  # executes the config meanwhile
            from frugalbench.measurements import provenance
            from frugalbench.measurements.one_pass import PassSettings, run_pass
            checkpoint_sha = submission.checkpoint_sha256()
            fingerprint = provenance.hardware_fingerprint()
            since = clock.lap('hashing', since)
            config = config_from(reader)
        since = clock.lap('config_read', since)
        protocol = load_protocol(options.protocol_path)
        with contextlib.nullcontext() if options.detached else connect(options.db_path) as connection:
            training = options.detached.training if options.detached else latest_training(
                connection, None, checkpoint_sha)
            key = run_key(submission.id, checkpoint_sha, config.sha256, benchmark.name, benchmark.definition_hash,
                          benchmark.protocol_version, fingerprint, options.device, options.split, len(samples),
                          protocol.source_hash if options.measure else 'no-measurements',
                          training['training_id'] if training else 'not-trained-by-harness', limits.threads,
                          *([f'confidence-{options.confidence_bins}'] if options.confidence_bins else []))
            stored = None if options.force or options.detached else find_reusable_run(connection, key)
        if stored is not None:
            return EvaluationOutcome({**stored, 'reused': True}, reused=True)
        model.load(submission, config, options.device)
        since = clock.lap('model_load', since)
        outcome = run_pass(model, samples, benchmark, protocol, PassSettings(
            measure=options.measure, device=options.device, threads=limits.threads, keep=OVERLAY_COUNT,
            compute_trusted=not config.custom_code, untrusted_reason=_untrusted_reason(config),
            confidence_bins=options.confidence_bins), on_progress)
        child, done = model.finish()
        since = clock.lap('model_process', since)
    finally:
        model.close()
    for stage, seconds in outcome.timings.items():
        clock.timings[f'pass_{stage}'] = seconds
    measurements = [*outcome.measurements, *_parent_measurements(submission, child, done, config)]
    document = _ok_document(run_id, submission, benchmark, options, config, checkpoint_sha, key,
                            child, outcome, measurements, protocol)
    document['training'] = training_section(submission, training, checkpoint_sha)
    if outcome.confidence is not None:
        document['confidence'] = confidence_section(samples, outcome.confidence, options.confidence_bins)
    document['overlays'] = store_overlays(outcome.kept, samples[:OVERLAY_COUNT], benchmark,
                                          data_dir() / 'overlays' / run_id)
    document['timings'] = {**clock.timings, 'total': clock.total()}
    payload = _record(options, document, benchmark.classes, outcome.accuracy, measurements)
    document['timings']['bookkeeping'] = round(time.perf_counter() - since, 3)
    return EvaluationOutcome(document, payload=payload)


def confidence_section(samples: list[Sample], histograms: list[np.ndarray], bins: int) -> dict[str, Any]:
    """Per-image confidence histograms (sample order, as the per-image areas) for cascade gates."""
    return {'statistic': 'per-pixel max softmax probability (sigmoid for one channel), computed in the model process',
            'bins': bins, 'range': [0.0, 1.0],
            'images': [[s.name, h.tolist()] for s, h in zip(samples, histograms)]}


def _untrusted_reason(config: ModelConfig) -> str | None:
    if not config.custom_code:
        return None
    return (f'the submission runs its own code in the model process (custom_imports: '
            f'{", ".join(config.custom_imports)[:200]}), which could alter counts taken there and build weights '
            'the checkpoint does not hold: params, MACs and FLOPs are shown, never ranked')


def _parent_measurements(submission: Submission, child: ChildResult, done: dict[str, Any],
                         config: ModelConfig) -> list[dict[str, Any]]:
    """What the parent measures itself: params from the checkpoint, size on disk, peak memory by the kernel."""
    from frugalbench.measurements.compute import checkpoint_params
    from frugalbench.measurements.memory import size_on_disk
    params = checkpoint_params(submission.checkpoint_path)
    peak = Measurement('peak_rss', child.peak_rss_mb * MB, 'bytes',
                       'kernel: wait4 ru_maxrss of the model process (the whole run: interpreter, libraries, model, '
                       'every query)', measured=True,
                       details={'control_group_peak_mb': child.group_peak_mb,
                                'control_group_peak_note': 'the whole group, page cache included'})
    items = [params.to_dict(), size_on_disk(submission.checkpoint_path).to_dict(), peak.to_dict()]
    cuda = done.get('cuda_peak_allocated_bytes')
    if isinstance(cuda, int) and cuda >= 0:
        items.append(Measurement('cuda_peak_allocated', cuda, 'bytes', 'torch.cuda.max_memory_allocated in the '
                                 'model process', measured=True,
                                 details={'trusted': not config.custom_code}).to_dict())
    return items


def _tidy_work(work: Path, keep: bool) -> None:
    """Remove the run's work folder (its logs), or keep it and prune the oldest kept ones."""
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
        return
    kept = sorted((p for p in work.parent.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in kept[:-KEPT_WORK_FOLDERS]:
        shutil.rmtree(old, ignore_errors=True)


KEPT_WORK_FOLDERS = 20  # --keep-work keeps at most this many run folders (the newest)


def store_overlays(kept: dict[int, np.ndarray], samples: list[Sample], benchmark: Benchmark,
                   folder: Path) -> list[dict[str, str]]:
    """Image | ground truth | prediction panels for the first test images (paths in the document).

    They belong to their run: ``_store`` keeps them with the stored or spooled run and removes
    them when the run is not recorded; a failure here removes the ones already written."""
    colours = class_colours(benchmark.palette, benchmark.num_classes)
    overlays = []
    try:
        for index, sample in enumerate(samples):
            prediction = kept[index]
            path = render_overlay(sample.image, benchmark.read_label(sample), prediction, colours,
                                  benchmark.ignore_index, folder / f'{index:03d}.png')
            overlays.append({'image': sample.name, 'path': str(path),
                             'panels': 'image | ground truth | prediction'})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return overlays


def _remove_overlays(document: dict[str, Any]) -> None:
    """Delete the overlay folder of a run that is not recorded (only under the overlay folder)."""
    root = (data_dir() / 'overlays').resolve()
    for overlay in document.get('overlays') or []:
        folder = Path(str(overlay.get('path', ''))).parent.resolve()
        if folder.parent == root and folder.name == document.get('run_id'):
            shutil.rmtree(folder, ignore_errors=True)


BUDGET_STATES = ('verified', 'recorded', 'declared')  # strongest first; docs/metrics.md, "Budget states"


def training_section(submission: Submission, training: dict[str, Any] | None,
                     checkpoint_sha: str | None = None) -> dict[str, Any]:
    """The training budget and its state (``state``; ``verified`` stays true for verified only):

    - ``verified``: this database holds the harness's own training that produced this checkpoint;
    - ``recorded``: the folder ships the ``training_record.json`` that ``frugalbench train`` wrote,
      and its checkpoint hash matches the evaluated checkpoint; not re-verified here: a record in a
      folder can be forged, so tracks admit this state only when their benchmark file says so;
    - ``declared``: what the manifest says (a record that is unreadable or names another
      checkpoint leaves the budget declared, with a note saying why).
    """
    section: dict[str, Any] = {'declared': submission.manifest.training.model_dump(mode='json'),
                               'state': 'declared', 'verified': False}
    if training is not None:
        section.update(state='verified', verified=True, record=_record_summary(training))
        return section
    try:
        shipped = read_training_record(submission.folder)
    except SubmissionError as exc:
        section['note'] = f'{exc}: the budget is shown as declared'
        return section
    if shipped is None:
        return section
    checkpoint_sha = checkpoint_sha or submission.checkpoint_sha256()
    if shipped.hashes.checkpoint_sha256 != checkpoint_sha:
        section['note'] = ('training_record.json describes another checkpoint (sha256 '
                           f'{shipped.hashes.checkpoint_sha256[:12]}..., the evaluated one is '
                           f'{checkpoint_sha[:12]}...): the budget is shown as declared')
        return section
    section.update(state='recorded', record=_record_summary(shipped.model_dump(mode='json')),
                   note='training_record.json shipped with the submission (written by `frugalbench train`, '
                        'checkpoint hash matches); the training was not re-run or re-verified here')
    return section


def _record_summary(training: dict[str, Any]) -> dict[str, Any]:
    budget, totals = training.get('budget') or {}, training.get('totals') or {}
    return {
        'training_id': training.get('training_id'), 'benchmark': training.get('benchmark'),
        'subset_id': budget.get('subset_id'), 'images': budget.get('images'),
        'annotation': budget.get('annotation'), 'annotator_seconds': budget.get('annotator_seconds'),
        'labelled_pixels': budget.get('labelled_pixels'), 'seed': training.get('seed'),
        'iterations': training.get('iterations'), 'wall_seconds': totals.get('wall_seconds'),
        'cpu_seconds': totals.get('cpu_seconds'), 'energy_joules': totals.get('energy_joules'),
        'energy_method': totals.get('energy_method'), 'energy_measured': totals.get('energy_measured'),
        'zero_shot_split': (training.get('zero_shot') or {}).get('split')}


def _common(run_id: str, options: EvaluationOptions, status: str, reason: str | None) -> dict[str, Any]:
    from frugalbench.measurements import provenance
    return dict(run_id=run_id, status=status, failure_reason=reason,
                created_at=datetime.now(timezone.utc).isoformat(timespec='seconds'),
                device=options.device, split=options.split, reused=False,
                hardware={**provenance.hardware(), 'fingerprint': provenance.hardware_fingerprint()},
                versions=provenance.software_versions())


def _ok_document(run_id: str, submission: Submission, benchmark: Benchmark, options: EvaluationOptions,
                 config: ModelConfig, checkpoint_sha: str, key: str, child: ChildResult, outcome: PassOutcome,
                 measurements: list[dict[str, Any]], protocol: Protocol) -> dict[str, Any]:
    manifest = submission.manifest
    accuracy = outcome.accuracy
    interval = bootstrap_miou_ci(np.array([a.intersect for a in accuracy.images]),
                                 np.array([a.union for a in accuracy.images]))
    return {
        **_common(run_id, options, 'ok', None),
        'submission': submission.id, 'benchmark': benchmark.name,
        'protocol_version': benchmark.protocol_version, 'synthetic': benchmark.synthetic,
        'manifest': manifest.model_dump(mode='json'),
        'accuracy': {**accuracy.to_dict(), 'miou_ci': [interval.low, interval.high],
                     'miou_ci_method': 'bootstrap over test images, 1000 resamples, 95 %, seed 0',
                     'determinism': outcome.determinism,
                     'zero_shot': zero_shot_accuracy(benchmark, np.sum([a.intersect for a in accuracy.images], axis=0),
                                                     np.sum([a.union for a in accuracy.images], axis=0))},
        **resource_summary(measurements, untrusted_reason=_untrusted_reason(config)),
        'measurements': measurements,
        'measurement_protocol': {'protocol_version': protocol.version, 'protocol_sha256': protocol.source_hash,
                                 'measured': options.measure},
        'training': {'declared': manifest.training.model_dump(mode='json'), 'verified': False},
        'custom_code': config.custom_code, 'custom_imports': list(config.custom_imports),
        'architecture': config.architecture(),
        'hashes': {'checkpoint_sha256': checkpoint_sha, 'config_sha256': config.sha256,
                   'benchmark_sha256': benchmark.definition_hash},
        'run_key': key,
        'limits': child.enforced,
        'model_process': {'peak_rss_mb': round(child.peak_rss_mb, 1), 'group_peak_mb': child.group_peak_mb,
                          'cpu_seconds': round(child.cpu_seconds, 3),
                          'wall_seconds': round(child.wall_seconds, 3),
                          'log': str(child.log_path) if options.keep_work else None},
    }


def _failed_document(run_id: str, folder: Path, benchmark_name: str | None, options: EvaluationOptions,
                     reason: str, clock: _Clock) -> dict[str, Any]:
    """A failed run: the reason, and labels read from the manifest only if it can be read safely
    (inside the folder, no link, no alias, size-capped), each capped (200 characters)."""
    raw = read_manifest_loosely(folder)
    manifest = {k: cap(raw[k], FAILED_LABEL_CHARS) for k in ('name', 'technique', 'parent')
                if isinstance(raw.get(k), str)}
    benchmark = benchmark_name or (raw.get('benchmark') if isinstance(raw.get('benchmark'), str) else None)
    return {
        **_common(run_id, options, 'failed', cap(reason)),
        'submission': cap(Path(folder).absolute().name or str(folder), FAILED_LABEL_CHARS),
        'benchmark': cap(benchmark, FAILED_LABEL_CHARS) if benchmark else 'unknown',
        'manifest': manifest, 'timings': {**clock.timings, 'total': clock.total()},
    }


FAILED_LABEL_CHARS = 200  # the manifest's name limit


def _record(options: EvaluationOptions, document: dict[str, Any], class_names: list[str] | None = None,
            accuracy: AccuracyResult | None = None,
            measurements: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """Store the run (None), or, detached, return what the caller stores (strings capped alike)."""
    if options.detached is None:
        _store(options.db_path, document, class_names, accuracy, measurements)
        return None
    capped = cap_strings(document)
    document.clear()
    document.update(capped)
    return run_payload(document, class_names or [], accuracy.images if accuracy else [], measurements or [])


def _store(db_path: Path, document: dict[str, Any], class_names: list[str] | None = None,
           accuracy: AccuracyResult | None = None, measurements: list[dict[str, Any]] | None = None) -> None:
    """Store the run in one transaction; nothing finished is lost (``frugalbench.store.spool``).

    The document's strings are capped in place (so what is printed is what is stored). When
    another process holds the database, the run waits (backoff, a notice on stderr) up to
    ``FRUGALBENCH_STORE_WAIT`` seconds, then goes to the spool that the next command opening the
    database stores; its overlays stay with it. When it can be neither stored nor spooled, its
    overlays are removed and NotRecordedError is raised (exit code 4).
    """
    capped = cap_strings(document)
    document.clear()
    document.update(capped)
    try:
        store_run_or_spool(db_path, document, class_names or [], accuracy.images if accuracy else [],
                           measurements or [])
    except NotRecordedError:
        _remove_overlays(document)
        raise
