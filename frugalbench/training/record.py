"""The training record: what the harness trained, under which budget, and what it cost.

Written as ``training_record.json`` beside the checkpoint and as a row of the ``trainings``
table. ``verified`` is True because the harness itself chose the images, derived the
annotations and ran the training; the checkpoint's sha256 ties the record to the weights.
Resource figures are totals over every training process (segment) of a resumed training;
``totals.complete`` says whether each was measured from outside the training process.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from frugalbench.training.segments import COMPLETED, Segment

RECORD_FILE = 'training_record.json'
RECORD_VERSION = 1
ENERGY_NAME = 'energy_run'
CO2E_NAME = 'co2e_run'


@dataclass(frozen=True)
class Totals:
    """Resources of the whole training, summed over its segments."""

    wall_seconds: float
    cpu_seconds: float | None
    peak_rss_mb: float | None
    energy_joules: float | None
    energy_method: str | None
    energy_measured: bool             # True only when a hardware counter was read for every segment
    energy_unavailable_reason: str | None
    co2e_grams: float | None
    segments: int
    complete: bool                    # every segment's wall/CPU/peak RSS measured from outside
    notes: list[str] = field(default_factory=list)


def totals_of(segments: list[Segment]) -> Totals:
    """Sum wall and CPU time, take the peak memory, and add energy only if every segment has it."""
    notes = []
    outside = [s for s in segments if s.measured_from_outside]
    if len(outside) < len(segments):
        missing = [s.index for s in segments if not s.measured_from_outside]
        notes.append(f'segment(s) {missing} ended without the parent measuring them (killed): their wall '
                     'time is as last observed by the parent, their CPU time as last reported by the '
                     'training process itself, and their peak memory is unknown')
    cpu = [s.cpu_seconds for s in segments]
    peaks = [s.peak_rss_mb for s in outside if s.peak_rss_mb is not None]
    energy, method, measured, reason, co2e = _energy_total(segments)
    return Totals(
        wall_seconds=round(sum(s.wall_seconds for s in segments), 3),
        cpu_seconds=round(sum(c for c in cpu if c is not None), 3) if any(c is not None for c in cpu) else None,
        peak_rss_mb=max(peaks) if peaks else None,
        energy_joules=energy, energy_method=method, energy_measured=measured,
        energy_unavailable_reason=reason, co2e_grams=co2e,
        segments=len(segments), complete=len(outside) == len(segments), notes=notes)


def _energy_total(segments: list[Segment]) -> tuple[float | None, str | None, bool, str | None, float | None]:
    joules, co2e, methods, measured = 0.0, 0.0, set(), True
    for segment in segments:
        by_name = {m['name']: m for m in segment.energy}
        run = by_name.get(ENERGY_NAME)
        if segment.status != COMPLETED or run is None:
            return None, None, False, (f'segment {segment.index} ({segment.status}) has no energy figure: '
                                       'energy is only known for trainings whose every process finished '
                                       'under the meter'), None
        if run.get('value') is None:
            return None, run.get('method'), False, run.get('unavailable_reason'), None
        joules += float(run['value'])
        co2e += float((by_name.get(CO2E_NAME) or {}).get('value') or 0.0)
        methods.add(str(run['method']))
        measured = measured and bool(run.get('measured'))
    method = methods.pop() if len(methods) == 1 else ' + '.join(sorted(methods))
    return round(joules, 3), method, measured, None, round(co2e, 6)


@dataclass(frozen=True)
class TrainingRecord:
    """One verified training run (``to_dict`` is the JSON written and stored)."""

    training_id: str
    created_at: str
    submission: str                 # the folder the checkpoint was written to
    source_submission: str          # the folder whose config was trained
    benchmark: str
    benchmark_sha256: str
    protocol_version: int
    synthetic: bool
    budget: dict[str, Any]          # Budget.to_dict(): subset, images, annotation, annotator seconds
    seed: int
    schedule: dict[str, Any]        # Schedule.to_dict()
    iterations: int
    resumed_from_iterations: list[int]
    final_loss: float | None
    params: int
    initialisation: dict[str, Any]
    totals: Totals
    segments: list[dict[str, Any]]
    device: str
    threads: int
    limits: dict[str, Any]
    hardware: dict[str, Any]
    versions: dict[str, Any]
    hashes: dict[str, str]          # config_sha256, checkpoint_sha256, benchmark_sha256
    checkpoint: dict[str, Any]      # file, bytes, dtype, auxiliary heads dropped
    work_folder: str
    log: str
    zero_shot: dict[str, Any] | None = None   # the split trained under: unseen classes, mode, what was removed
    verified: bool = True
    record_version: int = RECORD_VERSION

    @property
    def checkpoint_sha256(self) -> str:
        return self.hashes['checkpoint_sha256']

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
