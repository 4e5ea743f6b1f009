"""Fixtures for the measurement tests: MMSeg zoo models built without weights, a fast protocol."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch

from frugalbench.measurements.protocol import Protocol, load_protocol

ZOO = {
    'fastscnn': 'mmseg::fastscnn/fast_scnn_8xb4-160k_cityscapes-512x1024.py',
    'cgnet': 'mmseg::cgnet/cgnet_fcn_4xb8-60k_cityscapes-512x1024.py',
    'segformer-b0': 'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py',
}


def build_zoo_model(name: str, num_classes: int = 11) -> torch.nn.Module:
    """A zoo architecture, random init (no download), SyncBN -> BN, ``num_classes`` outputs."""
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    cfg = Config.fromstring(f"_base_ = ['{ZOO[name]}']\n", '.py').model
    cfg.decode_head.num_classes = num_classes
    aux = cfg.get('auxiliary_head')
    for head in (aux if isinstance(aux, list) else [aux] if aux else []):
        head.num_classes = num_classes
    if cfg.backbone.get('init_cfg'):
        cfg.backbone.init_cfg = None  # no pretrained download
    cfg.pop('pretrained', None)
    cfg.data_preprocessor = None
    torch.manual_seed(0)
    return revert_sync_batchnorm(MODELS.build(cfg))


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
