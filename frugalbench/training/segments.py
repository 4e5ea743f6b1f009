"""Bookkeeping of a training that may be interrupted: one segment per training process.

A training killed mid-way and resumed runs as several child processes ("segments"). The
parent keeps ``segments.json`` in the work folder up to date while a segment runs (last
iteration seen, wall time so far, the CPU time the child last reported), so that the record
of the finished training can account for every segment, including those whose parent was
killed before it could measure them from outside. What was measured from outside and what
was only observed is kept apart (``measured_from_outside``).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

WRITE_EVERY_SECONDS = 2.0

RUNNING, COMPLETED, INTERRUPTED, FAILED = 'running', 'completed', 'interrupted', 'failed'


@dataclass
class Segment:
    """One training process: where it started and ended, and what it cost."""

    index: int
    started_at: str
    status: str = RUNNING
    start_iteration: int | None = None
    resumed_from: str | None = None
    last_iteration: int | None = None
    wall_seconds: float = 0.0
    cpu_seconds: float | None = None
    peak_rss_mb: float | None = None
    measured_from_outside: bool = False   # True: wall/CPU/peak RSS from run_child (rusage, watchdog)
    energy: list[dict[str, Any]] = field(default_factory=list)  # Measurement.to_dict() values
    failure: str | None = None


class SegmentLog:
    """``segments.json`` of one training work folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.segments: list[Segment] = []
        if path.is_file():
            self.segments = [Segment(**item) for item in json.loads(path.read_text())]
        self._clock = 0.0
        self._last_write = 0.0

    @property
    def current(self) -> Segment:
        return self.segments[-1]

    def begin(self) -> Segment:
        """Start a segment; a segment still marked running belonged to a killed process."""
        for segment in self.segments:
            if segment.status == RUNNING:
                segment.status = INTERRUPTED
        self.segments.append(Segment(index=len(self.segments),
                                     started_at=datetime.now(timezone.utc).isoformat(timespec='seconds')))
        self._clock = time.monotonic()
        self.write()
        return self.current

    def observe(self, event: dict[str, Any]) -> None:
        """Update the running segment from a child event (written at most every few seconds)."""
        segment = self.current
        kind = event.get('event')
        if kind == 'started':
            segment.start_iteration = int(event.get('start_iteration') or 0)
            segment.resumed_from = event.get('resumed_from')
            segment.last_iteration = segment.start_iteration
        elif kind in ('progress', 'checkpoint'):
            segment.last_iteration = int(event['iteration'])
            if event.get('cpu_seconds') is not None:
                segment.cpu_seconds = float(event['cpu_seconds'])
        segment.wall_seconds = round(time.monotonic() - self._clock, 3)
        now = time.monotonic()
        if kind in ('started', 'checkpoint') or now - self._last_write >= WRITE_EVERY_SECONDS:
            self.write()

    def finish(self, *, status: str, wall_seconds: float | None = None, cpu_seconds: float | None = None,
               peak_rss_mb: float | None = None, energy: list[dict[str, Any]] | None = None,
               failure: str | None = None) -> Segment:
        segment = self.current
        segment.status = status
        segment.failure = failure
        if wall_seconds is not None:
            segment.wall_seconds = round(wall_seconds, 3)
            segment.cpu_seconds = round(cpu_seconds, 3) if cpu_seconds is not None else None
            segment.peak_rss_mb = round(peak_rss_mb, 1) if peak_rss_mb is not None else None
            segment.measured_from_outside = True
        else:
            segment.wall_seconds = round(time.monotonic() - self._clock, 3)
        segment.energy = list(energy or [])
        self.write()
        return segment

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f'{self.path.name}.tmp-{os.getpid()}')
        tmp.write_text(json.dumps([asdict(s) for s in self.segments], indent=2) + '\n')
        tmp.replace(self.path)
        self._last_write = time.monotonic()
