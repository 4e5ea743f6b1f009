"""The model stage: read a submission's config and run its model, each in a limited child.

The parent process (this module) never executes submission code; it prepares requests,
starts children (frugalbench.isolation) and collects their events.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from frugalbench.benchmarks import Benchmark
from frugalbench.isolation import ChildResult, Limits, run_child
from frugalbench.submission import Submission

CONFIG_READ_TIMEOUT_S = 120.0  # reading a config takes seconds; a hang is stopped here

__all__ = ['ModelConfig', 'Predictions', 'read_config', 'predict', 'evaluation_pipeline']


@dataclass(frozen=True)
class ModelConfig:
    """A submission's config, executed in a child and kept as plain data."""

    path: Path          # the JSON dump
    sha256: str         # hash of the canonical JSON
    custom_imports: tuple[str, ...]

    @property
    def custom_code(self) -> bool:
        return bool(self.custom_imports)


@dataclass(frozen=True)
class Predictions:
    """Label maps written by the model child, one PNG per image, in input order."""

    folder: Path
    count: int
    params: int
    child: ChildResult
    measurements: list[dict] = field(default_factory=list)   # Measurement.to_dict() items
    measurement_timings: dict[str, float] = field(default_factory=dict)
    protocol: dict[str, object] = field(default_factory=dict)

    def path(self, index: int) -> Path:
        return self.folder / f'{index:06d}.png'


def evaluation_pipeline(benchmark: Benchmark) -> list[dict]:
    """The test-time data pipeline the benchmark fixes (a submission's own is ignored)."""
    steps: list[dict] = [dict(type='LoadImageFromFile')]
    if benchmark.eval_size is not None:
        steps.append(dict(type='Resize', scale=tuple(benchmark.eval_size), keep_ratio=False))
    steps.append(dict(type='PackSegInputs'))
    return steps


def read_config(submission: Submission, work: Path, limits: Limits) -> ModelConfig:
    """Execute the config in a throw-away child and return it as data."""
    out = work / 'config.json'
    result = run_child('frugalbench.model.config_reader', [str(submission.config_path), str(out)],
                       limits=replace(limits, timeout_s=min(limits.timeout_s, CONFIG_READ_TIMEOUT_S)), log_path=work / 'config_reader.log', cwd=submission.folder)
    text = out.read_text()
    done = result.last('done') or {}
    return ModelConfig(path=out, sha256=hashlib.sha256(text.encode()).hexdigest(),
                       custom_imports=tuple(done.get('custom_imports', ())))


def predict(submission: Submission, config: ModelConfig, benchmark: Benchmark, images: list[Path],
            work: Path, limits: Limits, device: str = 'cpu',
            on_progress: Callable[[int, int], None] | None = None, measure: bool = False,
            protocol_path: Path | None = None) -> Predictions:
    """Run the model over ``images`` in a child; only image paths cross the boundary."""
    out_dir = work / 'predictions'
    out_dir.mkdir(parents=True, exist_ok=True)
    request = dict(config=str(config.path), checkpoint=str(submission.checkpoint_path),
                   images=[str(p) for p in images], out_dir=str(out_dir), device=device,
                   threads=limits.threads, num_classes=benchmark.num_classes,
                   pipeline=evaluation_pipeline(benchmark),
                   code_dir=str(submission.folder) if config.custom_code else None,
                   measure=measure, protocol_path=str(protocol_path) if protocol_path else None)
    request_path = work / 'predict_request.json'
    request_path.write_text(json.dumps(request))

    def on_event(event: dict) -> None:
        if on_progress is None:
            return
        if event.get('event') == 'progress':
            on_progress(int(event['done']), int(event['total']))
        elif event.get('event') == 'stage':
            on_progress(0, 0)

    result = run_child('frugalbench.model.worker', [str(request_path)], limits=limits,
                       log_path=work / 'worker.log', on_event=on_event)
    done = result.last('done') or {}
    measured = result.last('measurements') or {}
    return Predictions(folder=out_dir, count=len(images), params=int(done.get('params', 0)), child=result,
                       measurements=list(measured.get('items', [])),
                       measurement_timings=dict(measured.get('timings', {})),
                       protocol={k: measured[k] for k in ('protocol_version', 'protocol_sha256') if k in measured})
