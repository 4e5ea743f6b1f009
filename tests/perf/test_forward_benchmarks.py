"""Forward-pass timings of tiny MMSeg models (pytest-benchmark; skipped in ordinary runs).

    pytest tests/perf --benchmark-only --benchmark-json perf.json
"""
from __future__ import annotations

import pytest
import torch

ARCHS = {
    'fastscnn': 'mmseg::fastscnn/fast_scnn_8xb4-160k_cityscapes-512x1024.py',
    'cgnet': 'mmseg::cgnet/cgnet_fcn_4xb8-60k_cityscapes-512x1024.py',
}


@pytest.mark.benchmark(group='forward-64x64')
@pytest.mark.parametrize('arch', sorted(ARCHS))
def test_forward_tiny_input(benchmark, zoo_model, arch: str) -> None:
    model = zoo_model(ARCHS[arch])
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return model(x, mode='tensor')

    benchmark.extra_info.update(arch=arch, input_shape=list(x.shape), threads=torch.get_num_threads())
    out = benchmark(forward)
    assert out.shape[:2] == (1, 11)
