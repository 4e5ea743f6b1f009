"""A tiny Fast-SCNN built in the test process (our own config: no submission code runs here)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

FAST_SCNN = """\
_base_ = ['mmseg::_base_/models/fast_scnn.py']
norm_cfg = dict(type='BN', requires_grad=True, momentum=0.01)
model = dict(backbone=dict(norm_cfg=norm_cfg), decode_head=dict(num_classes=3, norm_cfg=norm_cfg),
             auxiliary_head=None, test_cfg=dict(mode='whole'))
"""


@pytest.fixture
def build_fast_scnn(tmp_path: Path) -> Callable[[], torch.nn.Module]:
    """Builds 3-class Fast-SCNNs in eval mode (seeded weights, non-trivial BN statistics)."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    torch.set_num_threads(1)
    register_all_modules()
    path = tmp_path / 'fast_scnn.py'
    path.write_text(FAST_SCNN)
    config = Config.fromfile(str(path))

    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        model = MODELS.build(config.model)
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.1, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
        return model.eval()

    return build
