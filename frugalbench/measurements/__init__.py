"""The measurement library: meters that wrap a model run, each returning `Measurement` values.

    record.py           Measurement: value, unit, method, tool version, measured?, reason, details
    protocol.py/.yaml   the versioned protocol constants (load_protocol)
    compute.py          params, MACs (mmengine), FLOPs (torch FlopCounterMode), skipped operators
    latency.py          warm-up + repeats to a minimum count and duration; median, p90, IQR, load
    load.py             load average, CPU steal, other processes' CPU around a measurement
    memory.py           peak RSS (VmHWM after clear_refs, or of another PID), CUDA peak, file sizes
    instructions.py     perf stat instructions:u, for a command or attached to a PID
    energy.py           RAPL / NVML / pyJoules counters (idle subtracted), else codecarbon estimate
    provenance.py       hardware, software versions, threads, hardware fingerprint
    benchmark_report.py pytest-benchmark JSON -> flat rows

Only the light modules are imported here; import the meters from their modules
(they pull in torch and MMEngine).
"""
from __future__ import annotations

from frugalbench.measurements.protocol import Protocol, load_protocol
from frugalbench.measurements.record import Measurement, by_name

__all__ = ['Measurement', 'Protocol', 'by_name', 'load_protocol']
