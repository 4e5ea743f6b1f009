"""How busy the machine was around a measurement: load average, CPU steal, other processes' CPU.

Read from ``/proc/loadavg`` and ``/proc/stat`` (Linux) before and after a timed region; the
CPU time of the measuring process itself comes from `os.times`, so the CPU used by *other*
processes can be told apart from ours. Elsewhere the figures are None, never guessed.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugalbench.measurements.protocol import BusyThresholds

_CLOCK_TICKS = os.sysconf('SC_CLK_TCK') if hasattr(os, 'sysconf') else 100


@dataclass(frozen=True)
class CpuTimes:
    """The aggregate ``cpu`` line of /proc/stat, in seconds."""

    busy: float   # user + nice + system + irq + softirq (guest time is inside user)
    idle: float   # idle + iowait
    steal: float

    @property
    def total(self) -> float:
        return self.busy + self.idle + self.steal


def parse_proc_stat(text: str) -> CpuTimes:
    """Parse the first ``cpu`` line of /proc/stat."""
    for line in text.splitlines():
        if line.startswith('cpu '):
            ticks = [int(v) for v in line.split()[1:]] + [0] * 10
            user, nice, system, idle, iowait, irq, softirq, steal = ticks[:8]
            scale = 1.0 / _CLOCK_TICKS
            return CpuTimes(busy=(user + nice + system + irq + softirq) * scale,
                            idle=(idle + iowait) * scale, steal=steal * scale)
    raise ValueError('no aggregate "cpu" line in /proc/stat text')


@dataclass(frozen=True)
class LoadSnapshot:
    """The machine's state at one instant."""

    wall: float
    own_cpu_seconds: float
    load_average: tuple[float, float, float] | None
    cpu_times: CpuTimes | None


def snapshot(proc: Path = Path('/proc')) -> LoadSnapshot:
    """Read load average, /proc/stat and this process's CPU time now."""
    try:
        load: tuple[float, float, float] | None = os.getloadavg()
    except OSError:
        load = None
    try:
        cpu: CpuTimes | None = parse_proc_stat((proc / 'stat').read_text())
    except (OSError, ValueError):
        cpu = None
    times = os.times()
    return LoadSnapshot(wall=time.monotonic(), own_cpu_seconds=times.user + times.system,
                        load_average=load, cpu_times=cpu)


def logical_cpus() -> int:
    return os.cpu_count() or 1


def load_details(before: LoadSnapshot, after: LoadSnapshot, thresholds: BusyThresholds) -> dict[str, Any]:
    """Load figures over [before, after] and a ``busy`` flag with the reasons."""
    cpus = logical_cpus()
    details: dict[str, Any] = {
        'logical_cpus': cpus,
        'load_average_before': list(before.load_average) if before.load_average else None,
        'load_average_after': list(after.load_average) if after.load_average else None,
        'steal_fraction': None,
        'other_cpu_fraction': None,
    }
    reasons: list[str] = []
    if before.load_average is not None:
        per_cpu = before.load_average[0] / cpus
        if per_cpu > thresholds.load_per_cpu:
            reasons.append(f'1-min load average {before.load_average[0]:.2f} on {cpus} CPUs '
                           f'> {thresholds.load_per_cpu} per CPU before the run')
    if before.cpu_times is not None and after.cpu_times is not None:
        total = after.cpu_times.total - before.cpu_times.total
        busy = after.cpu_times.busy - before.cpu_times.busy
        steal = after.cpu_times.steal - before.cpu_times.steal
        wall = after.wall - before.wall
        own = after.own_cpu_seconds - before.own_cpu_seconds
        if total > 0:
            details['steal_fraction'] = steal / total
            if steal / total > thresholds.steal_fraction:
                reasons.append(f'CPU steal {steal / total:.1%} > {thresholds.steal_fraction:.0%}')
        if wall > 0:
            other = max(0.0, busy - own) / (wall * cpus)
            details['other_cpu_fraction'] = other
            if other > thresholds.other_cpu_fraction:
                reasons.append(f'other processes used {other:.0%} of the CPUs '
                               f'> {thresholds.other_cpu_fraction:.0%}')
    details['busy'] = bool(reasons)
    details['busy_reasons'] = reasons
    return details

