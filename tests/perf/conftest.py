"""Fixtures for the pytest-benchmark suite (run: pytest tests/perf --benchmark-only)."""
from __future__ import annotations

import pytest
import torch


def build_zoo_model(config: str, num_classes: int = 11) -> torch.nn.Module:
    """An MMSeg zoo architecture in eval mode: random init, SyncBN -> BN, no auxiliary heads."""
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    cfg = Config.fromstring(f"_base_ = ['{config}']\n", '.py').model
    cfg.decode_head.num_classes = num_classes
    cfg.auxiliary_head = None
    cfg.data_preprocessor = None
    torch.manual_seed(0)
    return revert_sync_batchnorm(MODELS.build(cfg)).eval()


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
