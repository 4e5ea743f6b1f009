"""Memory: peak resident set size of inference, CUDA peak allocation, model size on disk.

Peak RSS is the kernel's high-water mark ``VmHWM`` from ``/proc/<pid>/status``. Inside one
process the mark is reset by writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0), so
the peak covers only what runs afterwards; from the outside the parent reads the child's
``VmHWM``/``VmRSS`` by PID. `tracemalloc` cannot see torch's allocations and ``ru_maxrss``
cannot be reset, so neither is used. All sizes are bytes (1 MB = 10**6 bytes in reports).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from frugalbench.measurements.record import Measurement

VMHWM_METHOD = '/proc/PID/status VmHWM'
CLEAR_REFS_METHOD = '/proc/self/clear_refs=5 then /proc/self/status VmHWM'
CUDA_METHOD = 'torch.cuda.max_memory_allocated'
BYTES_PER_MB = 1_000_000


def read_status(pid: int | str = 'self', proc: Path = Path('/proc')) -> dict[str, int]:
    """The ``Vm*``/``Rss*`` lines of /proc/PID/status, in bytes (the kernel writes kB = KiB)."""
    values: dict[str, int] = {}
    text = (proc / str(pid) / 'status').read_text()
    for line in text.splitlines():
        key, _, rest = line.partition(':')
        parts = rest.split()
        if key.startswith(('Vm', 'Rss')) and len(parts) == 2 and parts[1] == 'kB':
            values[key] = int(parts[0]) * 1024
    return values


def reset_peak_rss(pid: int | str = 'self') -> bool:
    """Reset a process's high-water mark to its current RSS; False where the kernel refuses.

    Another process's mark can be reset from outside (same user, or root).
    """
    try:
        with open(f'/proc/{pid}/clear_refs', 'w') as handle:
            handle.write('5')
    except OSError:
        return False
    return True


def peak_rss_of(pid: int | str = 'self') -> Measurement:
    """Peak RSS (``VmHWM``) of a process since it started or since its last reset."""
    try:
        status = read_status(pid)
    except OSError as exc:
        return Measurement.unavailable('peak_rss', 'bytes', f'cannot read /proc/{pid}/status: '
                                       f'{exc.strerror} (Linux only; is the process alive?)')
    if 'VmHWM' not in status:
        return Measurement.unavailable('peak_rss', 'bytes', f'/proc/{pid}/status has no VmHWM line')
    return Measurement(name='peak_rss', value=status['VmHWM'], unit='bytes', method=VMHWM_METHOD,
                       measured=True, details={'pid': str(pid), 'rss_now': status.get('VmRSS')})


def measure_peak_rss(fn: Callable[[], Any]) -> Measurement:
    """Peak RSS while ``fn()`` runs in this process (mark reset first; baseline in details).

    ``baseline`` is the RSS right after the reset (model and runtime already loaded);
    the value is the absolute peak, which is what a machine must provide.
    """
    was_reset = reset_peak_rss()
    before = read_status()
    fn()
    after = read_status()
    peak = after['VmHWM']
    details: dict[str, Any] = {'reset': was_reset, 'baseline': before.get('VmRSS'),
               'increase': peak - before.get('VmRSS', 0)}
    if not was_reset:
        details['note'] = 'clear_refs refused: the peak covers the whole process lifetime'
    return Measurement(name='peak_rss', value=peak, unit='bytes',
                       method=CLEAR_REFS_METHOD if was_reset else VMHWM_METHOD,
                       measured=True, details=details)


def measure_cuda_peak(fn: Callable[[], Any], device: str | torch.device = 'cuda') -> Measurement:
    """Peak bytes allocated by torch on a CUDA device while ``fn()`` runs."""
    dev = torch.device(device)
    if dev.type != 'cuda':
        return Measurement.unavailable('cuda_peak_allocated', 'bytes', f'device {dev} is not CUDA')
    if not torch.cuda.is_available():
        return Measurement.unavailable('cuda_peak_allocated', 'bytes',
                                       'torch.cuda.is_available() is False (no GPU or CPU-only torch)')
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    baseline = torch.cuda.memory_allocated(dev)
    fn()
    torch.cuda.synchronize(dev)
    return Measurement(name='cuda_peak_allocated', value=torch.cuda.max_memory_allocated(dev),
                       unit='bytes', method=CUDA_METHOD, tool_version=torch.__version__,
                       measured=True, details={'device': str(dev), 'baseline': baseline,
                                               'peak_reserved': torch.cuda.max_memory_reserved(dev)})


def size_on_disk(paths: str | Path | list[str | Path], name: str = 'model_size_on_disk') -> Measurement:
    """Total bytes of the given files (folders: every file below them), each listed in details."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files: dict[str, int] = {}
    for item in items:
        path = Path(item)
        if path.is_dir():
            for child in sorted(p for p in path.rglob('*') if p.is_file()):
                files[str(child)] = child.stat().st_size
        elif path.is_file():
            files[str(path)] = path.stat().st_size
        else:
            return Measurement.unavailable(name, 'bytes', f'{path} does not exist')
    return Measurement(name=name, value=sum(files.values()), unit='bytes', method='os.stat st_size',
                       measured=True, details={'files': files})

