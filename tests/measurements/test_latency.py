"""Latency: warm-up, repeats to a minimum count and duration, robust statistics, load."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch

from frugalbench.measurements.latency import fixed_threads, measure_latency, summarize
from frugalbench.measurements.load import LoadSnapshot, load_details, parse_proc_stat, snapshot


def test_summary_statistics_match_numpy_on_known_times() -> None:
    stats = summarize([t / 1000 for t in range(1, 11)])  # 1..10 ms
    assert stats['median_ms'] == pytest.approx(5.5)
    assert stats['p90_ms'] == pytest.approx(9.1)          # numpy linear interpolation
    assert stats['iqr_ms'] == pytest.approx(7.75 - 3.25)
    assert (stats['min_ms'], stats['max_ms']) == pytest.approx((1.0, 10.0))


def test_warmup_then_repeats_until_count_and_duration(fast_protocol) -> None:
    calls = []
    seen_threads = set()

    def fn(batch: torch.Tensor) -> None:
        calls.append(time.perf_counter())
        seen_threads.add(torch.get_num_threads())
        time.sleep(0.004)

    protocol = dataclasses.replace(fast_protocol, latency=dataclasses.replace(
        fast_protocol.latency, warmup=3, min_repeats=5, min_seconds=0.15, threads=2))
    before = torch.get_num_threads()
    m = measure_latency(fn, torch.zeros(4, 3, 8, 8), protocol, name='latency_throughput')
    d = m.details
    assert len(calls) == 3 + d['n']
    assert d['n'] >= 5 and d['total_seconds'] >= 0.15
    assert d['n'] >= 0.15 / 0.02  # the duration, not the count, decided here (4 ms calls)
    assert m.name == 'latency_throughput' and m.unit == 'ms' and m.measured
    assert 4.0 <= m.value < 100.0 and d['p90_ms'] >= m.value
    assert d['batch_size'] == 4 and d['median_ms_per_image'] == pytest.approx(m.value / 4)
    assert seen_threads == {2} and d['torch_threads'] == 2 and torch.get_num_threads() == before
    assert d['device'] == 'cpu' and d['cuda_synchronized'] is False
    assert isinstance(d['busy'], bool) and d['logical_cpus'] >= 1


def test_fixed_threads_restores_the_previous_count() -> None:
    before = torch.get_num_threads()
    with fixed_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_proc_stat_parsing_of_a_recorded_line() -> None:
    text = 'cpu  51632 0 6274 86922 268 0 94 50 0 0\ncpu0 23393 0 2904 46110 135 0 52 23 0 0\n'
    cpu = parse_proc_stat(text)
    ticks = 100  # the kernel's USER_HZ on Linux
    assert cpu.busy == pytest.approx((51632 + 6274 + 94) / ticks)
    assert cpu.idle == pytest.approx((86922 + 268) / ticks)
    assert cpu.steal == pytest.approx(50 / ticks)


def test_busy_flag_and_fractions(fast_protocol) -> None:
    from frugalbench.measurements.load import CpuTimes, logical_cpus
    cpus = logical_cpus()
    quiet = LoadSnapshot(0.0, 0.0, (0.0, 0.0, 0.0), CpuTimes(0.0, 0.0, 0.0))
    # 10 s of wall time on n CPUs: we used 5 CPU-s, others n CPU-s (10 %), steal 1 % of the total
    after = LoadSnapshot(10.0, 5.0, (0.1, 0.1, 0.1),
                         CpuTimes(busy=5.0 + cpus, idle=10.0 * cpus - 5.0 - cpus - 0.1 * cpus,
                                  steal=0.1 * cpus))
    d = load_details(quiet, after, fast_protocol.busy)
    assert d['steal_fraction'] == pytest.approx(0.01)
    assert d['other_cpu_fraction'] == pytest.approx(0.1)
    assert d['busy'] is False and d['busy_reasons'] == []
    loaded = LoadSnapshot(0.0, 0.0, (10.0 * cpus, 0.0, 0.0), CpuTimes(0.0, 0.0, 0.0))
    d = load_details(loaded, after, fast_protocol.busy)
    assert d['busy'] is True and 'load average' in d['busy_reasons'][0]


def test_real_snapshot_reads_this_machine() -> None:
    s = snapshot()
    assert s.load_average is not None and len(s.load_average) == 3
    assert s.cpu_times is not None and s.cpu_times.total > 0
    assert np.isfinite(s.own_cpu_seconds)
