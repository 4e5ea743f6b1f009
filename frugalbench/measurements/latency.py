"""Wall-clock latency of a callable under the protocol: warm-up, then repeats until both a
minimum count and a minimum duration are reached; median, p90 and IQR of the repeats.

The meter never lives inside the model: it wraps ``fn(batch)``. On CUDA it synchronises
before starting the clock and after each call, so queued kernels are inside the timed region.
Thread counts are recorded (`fixed_threads` sets them), and the machine's load around the
measurement is recorded with a ``busy`` flag (see `frugalbench.measurements.load`).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from frugalbench.measurements.load import load_details, snapshot
from frugalbench.measurements.protocol import Protocol
from frugalbench.measurements.record import Measurement

METHOD = 'time.perf_counter'
THREAD_ENV_VARS = ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'OMP_WAIT_POLICY')


@contextmanager
def fixed_threads(threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, restoring the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def thread_state() -> dict[str, Any]:
    """Torch's intra-/inter-op thread counts and the thread environment variables."""
    return {'torch_threads': torch.get_num_threads(),
            'torch_interop_threads': torch.get_num_interop_threads(),
            **{name.lower(): os.environ.get(name) for name in THREAD_ENV_VARS}}


def _batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() > 0 else 1
    try:
        return len(batch)
    except TypeError:
        return 1


def _device_of(batch: Any) -> torch.device:
    if isinstance(batch, torch.Tensor):
        return batch.device
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0].device
    return torch.device('cpu')


def summarize(times_s: list[float] | np.ndarray) -> dict[str, float]:
    """Median, p90, quartiles, IQR, mean, min and max of repeat times, in milliseconds."""
    ms = np.asarray(times_s, dtype=np.float64) * 1000.0
    if ms.size == 0:
        raise ValueError('no repeat times to summarise')
    q25, median, q75, p90 = np.percentile(ms, [25, 50, 75, 90])
    return {'median_ms': float(median), 'p90_ms': float(p90), 'q25_ms': float(q25),
            'q75_ms': float(q75), 'iqr_ms': float(q75 - q25), 'mean_ms': float(ms.mean()),
            'min_ms': float(ms.min()), 'max_ms': float(ms.max())}


def measure_latency(fn: Callable[[Any], Any], batch: Any, protocol: Protocol, *,
                    name: str = 'latency_b1', images: int | None = None,
                    device: str | torch.device | None = None,
                    threads: int | None = None) -> Measurement:
    """Time ``fn(batch)`` under the protocol; the value is the median milliseconds per call.

    ``images`` is how many images one call processes (default: the batch's first
    dimension); per-image figures are in details. ``device`` defaults to the batch's.
    Use ``name`` to tell batch-1, throughput and end-to-end latencies apart. Torch runs
    with ``threads`` intra-op threads (default: the protocol's) during warm-up and repeats.
    """
    with fixed_threads(threads if threads is not None else protocol.latency.threads):
        return _measure(fn, batch, protocol, name=name, images=images, device=device)


def _measure(fn: Callable[[Any], Any], batch: Any, protocol: Protocol, *, name: str,
             images: int | None, device: str | torch.device | None) -> Measurement:
    rules = protocol.latency
    dev = torch.device(device) if device is not None else _device_of(batch)
    cuda = dev.type == 'cuda'
    per_call_images = images if images is not None else _batch_size(batch)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(dev)

    for _ in range(rules.warmup):
        fn(batch)
    sync()
    before = snapshot()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < rules.min_repeats or time.perf_counter() - started < rules.min_seconds:
        t0 = time.perf_counter()
        fn(batch)
        sync()
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    after = snapshot()

    stats = summarize(times)
    details: dict[str, Any] = {
        **stats,
        'n': len(times),
        'warmup': rules.warmup,
        'total_seconds': total,
        'batch_size': per_call_images,
        'median_ms_per_image': stats['median_ms'] / per_call_images,
        'images_per_second': (per_call_images / (stats['median_ms'] / 1000.0)
                              if stats['median_ms'] > 0 else None),
        'device': str(dev),
        'cuda_synchronized': cuda,
        'protocol_version': protocol.version,
        **thread_state(),
        **load_details(before, after, protocol.busy),
    }
    return Measurement(name=name, value=stats['median_ms'], unit='ms', method=METHOD,
                       tool_version=None, measured=True, details=details)
