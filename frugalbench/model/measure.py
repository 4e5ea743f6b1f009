"""Resource measurements of a built model, taken by the harness inside the model child.

The model only predicts; these meters wrap it: compute counters on the inference forward
(``mode='tensor'``, auxiliary heads excluded), latency (batch 1, throughput batch and end to end),
user-space instructions per image (perf, from a separate perf process), peak RSS of inference
(high-water mark reset first), CUDA peak memory, and energy (hardware counter or a labelled
estimate). Each result is a ``Measurement`` with its unit and method; stage timings are returned.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch

from frugalbench.measurements.compute import count_compute
from frugalbench.measurements.energy import measure_energy, open_meter
from frugalbench.measurements.instructions import count_instructions, per_image
from frugalbench.measurements.latency import fixed_threads, measure_latency
from frugalbench.measurements.memory import measure_cuda_peak, measure_peak_rss
from frugalbench.measurements.protocol import Protocol
from frugalbench.measurements.record import Measurement
from frugalbench.model.channel import emit, reply_channel, wait_for_reply
from frugalbench.model.outside import GO


def preprocessed_batch(model: Any, pipeline: Callable[[dict], dict], image_path: str) -> torch.Tensor:
    """One test image through the benchmark pipeline and the model's data preprocessor."""
    data = pipeline(dict(img_path=image_path))
    batch = model.data_preprocessor(dict(inputs=[data['inputs']], data_samples=[data['data_samples']]), False)
    return batch['inputs']


def measure_model(model: Any, pipeline: Callable[[dict], dict], image_paths: list[str], protocol: Protocol,
                  device: str) -> tuple[list[Measurement], dict[str, float]]:
    """All model-side measurements, and the seconds each stage took."""
    timings: dict[str, float] = {}
    batch = preprocessed_batch(model, pipeline, image_paths[0])

    @torch.no_grad()
    def forward(x: torch.Tensor) -> Any:
        return model(x, mode='tensor')

    @torch.no_grad()
    def end_to_end(path: str) -> Any:
        data = pipeline(dict(img_path=path))
        return model.test_step(dict(inputs=[data['inputs']], data_samples=[data['data_samples']]))

    def timed(stage: str, fn: Callable[[], list[Measurement]]) -> list[Measurement]:
        started = time.perf_counter()
        result = fn()
        timings[stage] = round(time.perf_counter() - started, 3)
        return result

    throughput = batch.repeat(protocol.latency.throughput_batch_size, 1, 1, 1)
    results = timed('compute', lambda: count_compute(model, tuple(batch.shape)))
    results += timed('latency', lambda: [
        measure_latency(forward, batch, protocol, name='latency_b1', device=device),
        measure_latency(forward, throughput, protocol, name='latency_throughput', device=device),
        measure_latency(end_to_end, image_paths[0], protocol, name='latency_end_to_end', images=1,
                        device=device)])
    results += timed('instructions', lambda: count_forward_instructions(forward, batch, protocol))
    results += timed('memory', lambda: memory_measurements(forward, batch, device))
    results += timed('energy', lambda: energy_measurements(forward, batch, protocol, device))
    return results, timings


def count_forward_instructions(forward: Callable[[torch.Tensor], Any], batch: torch.Tensor,
                               protocol: Protocol) -> list[Measurement]:
    """User-space instructions per image at the protocol's thread count (attached after warm-up).

    With a reply channel, the parent counts from outside (frugalbench.model.outside) and this
    returns nothing; without one (a process measuring itself), perf attaches to this process.
    """
    images = protocol.instructions.images
    with fixed_threads(protocol.instructions.threads):
        forward(batch)
        if reply_channel() is not None:
            emit('instructions_ready', images=images * int(batch.shape[0]))
            if wait_for_reply(protocol.instructions.attach_timeout_seconds + 30) == GO:
                for _ in range(images):
                    forward(batch)
                emit('instructions_done')
                wait_for_reply(protocol.instructions.attach_timeout_seconds + 30)
            return []
        with count_instructions(os.getpid(), protocol) as perf:
            for _ in range(images):
                forward(batch)
    assert perf.count is not None
    return [per_image(perf.count, images * int(batch.shape[0]),
                      method_extra={'threads': protocol.instructions.threads, 'forward': "model(x, mode='tensor')"})]


def memory_measurements(forward: Callable[[torch.Tensor], Any], batch: torch.Tensor,
                        device: str) -> list[Measurement]:
    results = [measure_peak_rss(lambda: forward(batch))]
    if device.startswith('cuda'):
        results.append(measure_cuda_peak(lambda: forward(batch), device))
    return results


def energy_measurements(forward: Callable[[torch.Tensor], Any], batch: torch.Tensor, protocol: Protocol,
                        device: str) -> list[Measurement]:
    meter = open_meter(protocol, device)

    def work() -> int:
        forward(batch)
        return int(batch.shape[0])

    return measure_energy(work, protocol, meter)
