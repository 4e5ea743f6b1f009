"""Fixtures for the pytest-benchmark suite (run: pytest tests/perf --benchmark-only)."""
from __future__ import annotations

import pytest
import support
import torch


def build_zoo_model(config: str, num_classes: int = 11) -> torch.nn.Module:
    """An MMSeg zoo architecture in eval mode, without auxiliary heads (see support.build_zoo_model)."""
    return support.build_zoo_model(config, num_classes, auxiliary_heads=False).eval()


@pytest.fixture(scope='session')
def zoo_model():
    """``zoo_model('mmseg::...config.py')`` builds (once) and returns that architecture."""
    cache: dict[str, torch.nn.Module] = {}

    def get(config: str) -> torch.nn.Module:
        if config not in cache:
            cache[config] = build_zoo_model(config)
        return cache[config]

    return get


@pytest.fixture(autouse=True)
def one_thread():
    """Benchmarks run at one torch thread (the protocol's latency setting)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
