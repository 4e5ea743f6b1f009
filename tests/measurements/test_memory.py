"""Peak RSS (reset inside a process, read from outside), CUDA peak, size on disk."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from frugalbench.measurements.memory import (measure_cuda_peak, measure_peak_rss, peak_rss_of,
                                             read_status, reset_peak_rss, size_on_disk)

pytestmark = pytest.mark.skipif(not Path('/proc/self/status').exists(), reason='needs Linux /proc')
MB = 1_000_000


def _touch(nbytes: int) -> np.ndarray:
    return np.ones(nbytes // 8, dtype=np.float64)  # written pages are resident


def test_peak_covers_the_allocation_and_not_earlier_ones() -> None:
    big = _touch(300 * MB)
    del big
    assert read_status()['VmHWM'] >= 300 * MB
    m = measure_peak_rss(lambda: _touch(60 * MB))
    assert m.details['reset'] is True and m.method.startswith('/proc/self/clear_refs')
    assert m.unit == 'bytes' and m.measured
    assert m.details['increase'] >= 60 * MB * 0.95
    # the earlier 300 MB peak was forgotten by the reset
    assert m.value < m.details['baseline'] + 200 * MB


def test_reset_brings_the_high_water_mark_down_to_the_current_rss() -> None:
    _touch(100 * MB)
    assert reset_peak_rss()
    status = read_status()
    assert status['VmHWM'] - status['VmRSS'] < 5 * MB


def test_reads_and_resets_the_peak_of_another_process_from_outside() -> None:
    code = ('import sys, time\n'
            'b = bytearray(80_000_000); b[::4096] = b"x" * len(b[::4096]); del b\n'
            'print("ready", flush=True); sys.stdin.readline()\n'
            'c = bytearray(30_000_000); c[::4096] = b"x" * len(c[::4096])\n'
            'print("again", flush=True); time.sleep(30)\n')
    child = subprocess.Popen([sys.executable, '-c', code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == 'ready'
        m = peak_rss_of(child.pid)
        assert m.value >= 80 * MB and m.details['rss_now'] < 40 * MB
        assert m.method == '/proc/PID/status VmHWM'
        assert reset_peak_rss(child.pid)
        child.stdin.write('go\n')
        child.stdin.flush()
        assert child.stdout.readline().strip() == 'again'
        after = peak_rss_of(child.pid)
        assert 30 * MB <= after.value < 80 * MB
    finally:
        child.kill()
        child.wait()
    gone = peak_rss_of(child.pid)
    assert gone.value is None and 'cannot read' in gone.unavailable_reason


def test_cuda_peak_is_unavailable_without_cuda_and_on_cpu() -> None:
    m = measure_cuda_peak(lambda: None, 'cpu')
    assert m.value is None and 'not CUDA' in m.unavailable_reason
    if not torch.cuda.is_available():
        m = measure_cuda_peak(lambda: None, 'cuda')
        assert m.value is None and 'cuda.is_available' in m.unavailable_reason


def test_size_on_disk_sums_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'model.pth').write_bytes(b'x' * 1000)
    (tmp_path / 'sub' / 'a.bin').write_bytes(b'y' * 234)
    assert size_on_disk(tmp_path / 'model.pth').value == 1000
    m = size_on_disk(tmp_path)
    assert m.value == 1234 and len(m.details['files']) == 2
    missing = size_on_disk([tmp_path / 'model.pth', tmp_path / 'nope'])
    assert missing.value is None and 'does not exist' in missing.unavailable_reason
