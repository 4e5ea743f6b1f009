"""Fixtures for the measurement tests: MMSeg zoo models built without weights, a fast protocol."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import support
import torch

from frugalbench.measurements.protocol import Protocol, load_protocol

ZOO = {
    'fastscnn': 'mmseg::fastscnn/fast_scnn_8xb4-160k_cityscapes-512x1024.py',
    'cgnet': 'mmseg::cgnet/cgnet_fcn_4xb8-60k_cityscapes-512x1024.py',
    'segformer-b0': 'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py',
}


def build_zoo_model(name: str, num_classes: int = 11) -> torch.nn.Module:
    """A zoo architecture by short name, with its auxiliary heads (see support.build_zoo_model)."""
    return support.build_zoo_model(ZOO[name], num_classes)


@pytest.fixture(scope='session')
def zoo_model() -> Callable[[str], torch.nn.Module]:
    cache: dict[str, torch.nn.Module] = {}

    def get(name: str) -> torch.nn.Module:
        if name not in cache:
            cache[name] = build_zoo_model(name)
        return cache[name]

    return get


@pytest.fixture(autouse=True)
def one_thread() -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def fast_protocol() -> Protocol:
    """The bundled protocol with windows short enough for tests."""
    p = load_protocol()
    return dataclasses.replace(
        p,
        latency=dataclasses.replace(p.latency, warmup=2, min_repeats=5, min_seconds=0.1),
        energy=dataclasses.replace(p.energy, min_window_seconds=0.3, idle_window_seconds=0.01,
                                   poll_seconds=60.0))
