"""One pass (measurement protocol v2): the accuracy pass is the measurement.

The parent sends the test images to the model process one at a time, in an order drawn at
random for each run (the model cannot predict it, and never holds an image before it is
asked), and times each answer on its own clock: latency is a distribution over the real test
images, batch 1, at the evaluation's thread count. The answers are the label maps that are
scored. Energy is read over the same window (a hardware counter read by the parent, else an
estimate from the CPU time the kernel accounted to the model process), extended with repeated
queries only when the protocol's minimum window is not met. A few images are queried again at
the end: their answers must not change. MACs/FLOPs are counted once, on one image, and
instructions once, by ``perf`` attached from outside. Nothing here takes a figure from the model
process except the compute counts, which are trusted only when no submission code runs there.
"""
from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from frugalbench.accuracy import AccuracyResult, ImageAreas, image_areas, summarize
from frugalbench.benchmarks import Benchmark, Sample
from frugalbench.errors import OutputError
from frugalbench.measurements.energy import open_outside_meter
from frugalbench.measurements.instructions import PerfAttach, PerfCount, per_image, perf_unavailable_reason
from frugalbench.measurements.latency import fixed_threads
from frugalbench.measurements.latency import summarize as summarize_times
from frugalbench.measurements.load import LoadSnapshot, load_details, snapshot
from frugalbench.measurements.protocol import Protocol
from frugalbench.measurements.record import Measurement
from frugalbench.model import ModelProcess

LATENCY_METHOD = 'parent clock per query (time.perf_counter): encoded image sent -> label map received'
ProgressCallback = Callable[[str, int, int], None]


@dataclass
class PassOutcome:
    """What one pass yields: the accuracy, the kept answers, the measurements and stage timings."""

    accuracy: AccuracyResult
    kept: dict[int, np.ndarray]
    measurements: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    determinism: dict[str, Any] = field(default_factory=dict)
    confidence: list[np.ndarray] | None = None     # per image, in sample order (PassSettings.confidence_bins)


@dataclass(frozen=True)
class PassSettings:
    measure: bool
    device: str
    threads: int
    keep: int                                      # answers kept for overlays (the first test images)
    compute_trusted: bool                          # no submission code runs in the model process
    untrusted_reason: str | None = None
    confidence_bins: int = 0                       # > 0: each answer carries a confidence histogram (cascades)


class _Stopwatch:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def run(self, stage: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return fn()
        finally:
            self.timings[stage] = round(self.timings.get(stage, 0.0) + time.perf_counter() - started, 3)


def run_pass(model: ModelProcess, samples: list[Sample], benchmark: Benchmark, protocol: Protocol,
             settings: PassSettings, on_progress: ProgressCallback | None = None) -> PassOutcome:
    """Query every test image once (scoring each answer), then check, count and measure.

    The parent scores at one torch thread: its own thread pool would otherwise compete (spin) for
    the cores the model process is being timed on.
    """
    with fixed_threads(1):
        return _run_pass(model, samples, benchmark, protocol, settings, on_progress)


def _run_pass(model: ModelProcess, samples: list[Sample], benchmark: Benchmark, protocol: Protocol,
              settings: PassSettings, on_progress: ProgressCallback | None) -> PassOutcome:
    watch = _Stopwatch()
    cpu_seconds = model.cpu_seconds
    items: list[Measurement] = []
    if settings.measure:
        items += watch.run('compute', lambda: _compute(model, samples[0], settings))
    meter = open_outside_meter(protocol, settings.device, cpu_seconds) if settings.measure else None
    if meter is not None:
        watch.run('energy_idle', meter.measure_idle)
        meter.start()
    before = _snapshot(cpu_seconds)
    keep = max(settings.keep, protocol.queries.determinism_images)
    queries = watch.run('queries', lambda: _query_all(model, samples, benchmark, keep, on_progress,
                                                      settings.confidence_bins))
    after = _snapshot(cpu_seconds)
    images = len(samples)
    if meter is not None:
        images += watch.run('energy_window', lambda: _extend_window(model, samples, benchmark, protocol, meter,
                                                                  before.wall))
        meter.stop()
        items += meter.measurements(images)
    determinism = watch.run('determinism', lambda: _check_determinism(model, samples, benchmark, protocol,
                                                                       queries.kept))
    items.insert(0, _latency(queries.seconds, queries.pass_seconds, protocol, settings, before, after))
    if settings.measure:
        items.append(watch.run('instructions', lambda: _instructions(model, samples[0], protocol)))
    accuracy = summarize(queries.areas, benchmark.classes)
    kept = {i: a for i, a in queries.kept.items() if i < settings.keep}
    return PassOutcome(accuracy=accuracy, kept=kept, measurements=[m.to_dict() for m in items],
                       timings=watch.timings, determinism=determinism, confidence=queries.confidence)


@dataclass
class _Queries:
    areas: list[ImageAreas]
    seconds: list[float]      # per query, in the order sent
    kept: dict[int, np.ndarray]
    pass_seconds: float
    confidence: list[np.ndarray] | None = None


def _query_all(model: ModelProcess, samples: list[Sample], benchmark: Benchmark, keep: int,
               on_progress: ProgressCallback | None, confidence_bins: int = 0) -> _Queries:
    order = list(range(len(samples)))
    secrets.SystemRandom().shuffle(order)
    areas: list[ImageAreas | None] = [None] * len(samples)
    confidence: list[np.ndarray | None] = [None] * len(samples)
    seconds, kept = [], {}
    started = time.perf_counter()
    for done, index in enumerate(order, start=1):
        sample = samples[index]
        label = benchmark.read_label(sample)
        prediction, confidence[index], took = model.answer_with_confidence(sample.image.read_bytes(), label.shape,
                                                                           confidence_bins)
        seconds.append(took)
        areas[index] = image_areas(prediction, label, benchmark.num_classes, benchmark.ignore_index, sample.name)
        if index < keep:
            kept[index] = prediction
        if on_progress is not None:
            on_progress('predict', done, len(samples))
    return _Queries(areas=[a for a in areas if a is not None], seconds=seconds, kept=kept,
                    pass_seconds=time.perf_counter() - started,
                    confidence=[c for c in confidence if c is not None] if confidence_bins else None)


def _extend_window(model: ModelProcess, samples: list[Sample], benchmark: Benchmark, protocol: Protocol,
                   meter: Any, window_started: float) -> int:
    """Repeat queries (not scored again) until the energy window reaches the protocol minimum."""
    extra = 0
    while time.monotonic() - window_started < protocol.energy.min_window_seconds:
        sample = samples[extra % len(samples)]
        model.answer(sample.image.read_bytes(), _label_shape(sample))
        extra += 1
    return extra


def _label_shape(sample: Sample) -> tuple[int, int]:
    """The (height, width) of a sample's label map, from its header only."""
    from PIL import Image
    with Image.open(sample.annotation) as img:
        return img.height, img.width


def _check_determinism(model: ModelProcess, samples: list[Sample], benchmark: Benchmark, protocol: Protocol,
                       first: dict[int, np.ndarray]) -> dict[str, Any]:
    """Query the first N test images again; an answer may change at most ``max_changed_pixels`` pixels."""
    rules = protocol.queries
    checked = []
    for index in range(min(rules.determinism_images, len(samples))):
        again, _ = model.answer(samples[index].image.read_bytes(), first[index].shape)
        changed = int((again != first[index]).sum())
        checked.append({'image': samples[index].name, 'changed_pixels': changed})
        if changed > rules.max_changed_pixels:
            raise OutputError(f'the model is not deterministic: asked {samples[index].name} twice, {changed} pixels '
                              f'of its prediction changed (the protocol allows {rules.max_changed_pixels})')
    return {'images': checked, 'max_changed_pixels': rules.max_changed_pixels}


def _snapshot(cpu_seconds: Callable[[], float | None]) -> LoadSnapshot:
    """The machine's load, with the model process's CPU time counted as our own."""
    base = snapshot()
    return dataclasses.replace(base, own_cpu_seconds=base.own_cpu_seconds + (cpu_seconds() or 0.0))


def _latency(seconds: list[float], pass_seconds: float, protocol: Protocol, settings: PassSettings,
             before: LoadSnapshot, after: LoadSnapshot) -> Measurement:
    warmup = min(protocol.queries.warmup, max(0, len(seconds) - 1))
    timed = seconds[warmup:]
    stats = summarize_times(timed)
    details: dict[str, Any] = {
        **stats, 'n': len(timed), 'warmup': warmup, 'batch_size': 1, 'torch_threads': settings.threads,
        'device': settings.device, 'images': 'the test split, one query per image, in a random order',
        'includes': 'image decoding, the benchmark pipeline, the forward pass, argmax and the transfer',
        'pass_seconds': pass_seconds, 'pass_ms_per_image': pass_seconds / len(seconds) * 1000.0,
        'images_per_second': len(seconds) / pass_seconds if pass_seconds > 0 else None,
        'protocol_version': protocol.version,
        **load_details(before, after, protocol.busy),
    }
    return Measurement(name='latency_b1', value=stats['median_ms'], unit='ms', method=LATENCY_METHOD,
                       measured=True, details=details)


def _compute(model: ModelProcess, sample: Sample, settings: PassSettings) -> list[Measurement]:
    """MACs and FLOPs, counted in the model process: trusted only when no submission code runs there."""
    results = []
    for item in model.count(sample.image.read_bytes()):
        try:
            measurement = Measurement.from_dict(item)
        except (KeyError, TypeError, ValueError) as exc:
            raise OutputError(f'the model process sent a malformed compute count ({exc})') from None
        if measurement.name not in ('macs', 'flops'):
            raise OutputError(f'the model process sent an unexpected count {measurement.name[:40]!r}')
        trust = {'trusted': settings.compute_trusted, 'counted_in': 'the model process'}
        if settings.untrusted_reason:
            trust['untrusted_reason'] = settings.untrusted_reason
        results.append(dataclasses.replace(measurement, details={**measurement.details, **trust}))
    return results


def _instructions(model: ModelProcess, sample: Sample, protocol: Protocol) -> Measurement:
    """Instructions per forward pass at one thread, counted by perf attached to the model process."""
    rules = protocol.instructions
    extra = {'threads': rules.threads, 'forward': "model(x, mode='tensor')",
             'counted_by': 'the parent: perf stat -p on the model process (its PID from Popen)'}
    reason = perf_unavailable_reason(rules.event)
    if reason is not None:
        return per_image(PerfCount(rules.event, None, '', None, reason), rules.images, method_extra=extra)
    image = sample.image.read_bytes()
    model.repeat(image, 1, rules.threads)   # warm-up: the thread pool exists before perf attaches
    perf = PerfAttach(model.pid, event=rules.event, timeout_s=rules.attach_timeout_seconds)
    perf.start()
    try:
        model.repeat(image, rules.images, rules.threads)
    finally:
        count = perf.stop()
    return per_image(count, rules.images, method_extra={**extra, 'note': 'includes decoding the image once'})
