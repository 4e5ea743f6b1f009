"""perf counts: parsing perf's CSV, attaching to a process, and honest 'unavailable'."""
from __future__ import annotations

import os
import time

import pytest

from frugalbench.measurements.instructions import (PerfAttach, count_command, parse_perf_csv, per_image,
                                                   perf_executable, perf_unavailable_reason)

needs_perf = pytest.mark.skipif(perf_executable() is None, reason='perf is not installed')

# recorded `perf stat -x,` outputs (a machine with PMU counters, and this VM without)
RECORDED = """# started on Fri Nov 27 17:42:21 2026

1843211307,,instructions:u,990418474,100.00,,
990.42,msec,task-clock,990418474,100.00,0.762,CPUs utilized
"""
NOT_SUPPORTED = '<not supported>,,instructions:u,0,100.00,,\n'


def test_parses_recorded_counts() -> None:
    count = parse_perf_csv(RECORDED, 'instructions:u')
    assert count.value == 1843211307 and count.running_percent == 100.0 and count.reason is None
    clock = parse_perf_csv(RECORDED, 'task-clock')
    assert clock.value == pytest.approx(990.42) and clock.unit == 'msec'
    m = per_image(count, images=4)
    assert m.value == pytest.approx(1843211307 / 4) and m.measured and m.unit == 'instructions'
    assert m.method == 'perf stat -e instructions:u' and m.details['total'] == 1843211307


def test_not_supported_counter_gives_none_with_the_reason() -> None:
    count = parse_perf_csv(NOT_SUPPORTED, 'instructions:u')
    assert count.value is None and '<not supported>' in count.reason
    m = per_image(count, images=4)
    assert m.value is None and not m.measured and 'not supported' in m.unavailable_reason
    assert parse_perf_csv('', 'instructions:u').reason.startswith('perf printed no line')


@needs_perf
def test_attach_counts_only_the_enabled_region() -> None:
    # task-clock is a software event: it works even where the PMU is hidden
    busy_s = 0.3
    with PerfAttach(os.getpid(), event='task-clock') as perf:
        start = time.process_time()
        while time.process_time() - start < busy_s:
            pass
    assert perf.count.unit == 'msec'
    assert busy_s * 1000 * 0.9 <= perf.count.value <= busy_s * 1000 * 1.5


@needs_perf
def test_attach_to_a_missing_process_says_why() -> None:
    with PerfAttach(2**22 + 12345, event='task-clock', timeout_s=5) as perf:
        pass
    assert perf.count.value is None and 'perf exited' in perf.count.reason


@needs_perf
def test_instructions_are_counted_or_unavailable_with_the_reason() -> None:
    reason = perf_unavailable_reason()
    counts = []
    for _ in range(2):
        with PerfAttach(os.getpid()) as perf:
            sum(i * i for i in range(200_000))
        counts.append(perf.count)
    if reason is None:  # a machine with PMU counters: deterministic to well under 1 %
        a, b = (c.value for c in counts)
        assert a > 200_000 and abs(a - b) / a < 0.01
    else:
        assert all(c.value is None and c.reason for c in counts)
        assert 'not supported' in reason or 'not counted' in reason


@needs_perf
def test_count_command_returns_the_exit_code() -> None:
    count, code = count_command(['sh', '-c', 'exit 3'], event='task-clock')
    assert code == 3 and count.value is not None and count.value > 0
