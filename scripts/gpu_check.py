"""Check the GPU measurement paths on a real NVIDIA GPU and print one JSON report.

    python scripts/gpu_check.py [--size 512] [--seconds 10] [--out report.json]

What it runs (each with the library code the harness uses, not a copy):
  * CUDA latency of a Fast-SCNN forward (built from the MMSeg zoo config, no weights) at
    batch 1 and batch 8, synchronised (`measure_latency` on a CUDA batch);
  * CUDA peak allocated memory of one batch-8 forward (`measure_cuda_peak`);
  * NVML energy over a window of at least ``--seconds`` (`open_meter('cuda')` +
    `measure_energy`: idle power subtracted), plus a raw trace of the NVML counter
    (time, millijoules) for use as recorded test data;
  * MACs/FLOPs on the GPU-resident model (`count_compute`), which must equal the CPU counts.
Exit code 0 when every check passed, 1 otherwise; without a GPU it says so and exits 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch


def build_fastscnn(num_classes: int = 11) -> torch.nn.Module:
    import mmseg
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    config = Path(mmseg.__file__).parent / '.mim/configs/fastscnn/fast_scnn_8xb4-160k_cityscapes-512x1024.py'
    cfg = Config.fromfile(str(config)).model
    cfg.decode_head.num_classes = num_classes
    for head in cfg.get('auxiliary_head') or []:
        head.num_classes = num_classes
    cfg.data_preprocessor = None
    return revert_sync_batchnorm(MODELS.build(cfg)).eval()


def nvml_trace(seconds: float, work: Any) -> list[list[float]]:
    """(monotonic seconds, millijoules) every 50 ms while `work()` runs repeatedly."""
    from frugalbench.measurements.energy import PynvmlReader

    reader = PynvmlReader(0)
    trace = [list(reader.read_millijoules())]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        work()
        torch.cuda.synchronize()
        t, mj = reader.read_millijoules()
        if t - trace[-1][0] >= 0.05:
            trace.append([t, mj])
    return trace


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=512, help='square input side (pixels)')
    parser.add_argument('--seconds', type=float, default=10.0, help='minimum energy window')
    parser.add_argument('--out', type=Path, default=None, help='also write the JSON report here')
    args = parser.parse_args()

    from frugalbench.measurements.compute import count_compute
    from frugalbench.measurements.energy import measure_energy, open_meter
    from frugalbench.measurements.latency import measure_latency
    from frugalbench.measurements.memory import measure_cuda_peak
    from frugalbench.measurements.protocol import load_protocol
    from frugalbench.measurements.provenance import provenance

    report: dict[str, Any] = {'provenance': provenance(), 'checks': {}}
    if not torch.cuda.is_available():
        report['error'] = 'torch.cuda.is_available() is False: no GPU (or a CPU-only torch build)'
        print(json.dumps(report, indent=2))
        return 2
    protocol = load_protocol()
    protocol = dataclasses.replace(protocol, energy=dataclasses.replace(
        protocol.energy, min_window_seconds=args.seconds, idle_window_seconds=2.0, poll_seconds=1.0))
    checks: dict[str, Any] = report['checks']
    model = build_fastscnn()
    shape = (1, 3, args.size, args.size)

    cpu_counts = {m.name: m.value for m in count_compute(model, shape)}
    model = model.cuda()
    gpu_counts = {m.name: m.value for m in count_compute(model, shape)}
    checks['compute_equal_on_cpu_and_gpu'] = {'ok': cpu_counts == gpu_counts, 'cpu': cpu_counts,
                                              'gpu': gpu_counts}

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(x, mode='tensor')

    for name, batch_size in (('latency_b1', 1), ('latency_throughput', 8)):
        batch = torch.randn(batch_size, 3, args.size, args.size, device='cuda')
        m = measure_latency(forward, batch, protocol, name=name)
        checks[name] = {'ok': m.value is not None and m.value > 0 and m.details['cuda_synchronized'],
                        'measurement': m.to_dict()}

    batch8 = torch.randn(8, 3, args.size, args.size, device='cuda')
    peak = measure_cuda_peak(lambda: forward(batch8), 'cuda')
    activation_floor = batch8.numel() * 4
    checks['cuda_peak_allocated'] = {'ok': peak.value is not None and peak.value > activation_floor,
                                     'measurement': peak.to_dict()}

    def eight_images() -> int:
        forward(batch8)
        torch.cuda.synchronize()
        return 8

    meter = open_meter(protocol, 'cuda')
    energy = measure_energy(eight_images, protocol, meter)
    per_image = next(m for m in energy if m.name == 'energy_per_image')
    checks['nvml_energy'] = {
        'ok': per_image.method == 'nvml' and per_image.measured and (per_image.value or 0) > 0,
        'measurements': [m.to_dict() for m in energy]}
    trace = nvml_trace(3.0, lambda: forward(batch8))
    increasing = all(b[1] >= a[1] for a, b in zip(trace, trace[1:], strict=False))
    checks['nvml_counter_monotonic'] = {'ok': increasing, 'trace_t_s_mj': trace}

    report['ok'] = all(c['ok'] for c in checks.values())
    text = json.dumps(report, indent=2)
    print(text)
    out = args.out or (Path(os.environ['OUT']) / 'gpu_check.json' if os.environ.get('OUT') else None)
    if out is not None:
        out.write_text(text)
    return 0 if report['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
