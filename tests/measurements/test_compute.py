"""Compute counts equal the two reference counters on real MMSeg architectures."""
from __future__ import annotations

import pytest
import torch
from mmengine.analysis import get_model_complexity_info
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from frugalbench.measurements.compute import count_compute, example_input

SHAPE = (1, 3, 64, 64)


@pytest.mark.parametrize('arch', ['fastscnn', 'cgnet', 'segformer-b0'])
def test_counts_equal_the_reference_counters(zoo_model, arch: str) -> None:
    model = zoo_model(arch)
    params, macs, flops = count_compute(model, SHAPE)

    x = example_input(model, SHAPE)
    model.eval()
    with torch.no_grad():
        # as MMSeg's get_flops.py calls it: the segmentor's default forward is mode='tensor'
        reference = get_model_complexity_info(model, inputs=(x,), show_table=False, show_arch=False)
        with FlopCounterMode(display=False) as counter:
            model(x, mode='tensor')
    assert macs.value == reference['flops'] and macs.unit == 'MACs'
    assert flops.value == counter.get_total_flops() and flops.unit == 'FLOPs'
    assert params.value == sum(p.numel() for p in model.parameters())
    assert macs.value > 0 and flops.value > macs.value  # 2 FLOPs per MAC on the convolutions


def test_tensor_mode_excludes_the_auxiliary_heads(zoo_model) -> None:
    model = zoo_model('fastscnn')
    assert model.auxiliary_head is not None
    params, macs, flops = count_compute(model, SHAPE)
    aux, model.auxiliary_head = model.auxiliary_head, None
    try:
        _, macs_without, flops_without = count_compute(model, SHAPE)
    finally:
        model.auxiliary_head = aux
    assert (macs.value, flops.value) == (macs_without.value, flops_without.value)
    assert params.details['auxiliary_head'] == sum(p.numel() for p in aux.parameters()) > 0
    assert macs.details['forward'] == "model(x, mode='tensor')"


def test_skipped_operators_are_listed_per_counter(zoo_model) -> None:
    _, macs, flops = count_compute(zoo_model('cgnet'), SHAPE)
    # CGNet's PReLU and its context-guided sigmoid gates are counted by neither counter
    skipped_macs, skipped_flops = macs.details['skipped_ops'], flops.details['skipped_ops']
    assert skipped_macs['aten::prelu'] == skipped_flops['aten._prelu_kernel'] > 0
    assert 'aten::sigmoid' in macs.details['skipped_ops'] and 'aten.sigmoid' in flops.details['skipped_ops']
    # mmengine counts batch norm, FlopCounterMode does not
    assert 'aten::batch_norm' not in macs.details['skipped_ops']
    assert '_native_batch_norm_legit_no_training' in ' '.join(flops.details['skipped_ops'])
    # views and copies are not "skipped arithmetic"
    assert 'aten.view' in flops.details['data_movement_ops']
    assert 'aten.view' not in flops.details['skipped_ops']


def test_hand_computed_counts_of_a_convolution_and_a_linear_layer() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 8 * 8, 5))
    model.train()
    params, macs, flops = count_compute(model, (1, 3, 8, 8))
    conv = 8 * 8 * 8 * 3 * 3 * 3   # output pixels x output channels x (in channels x kernel)
    linear = 512 * 5
    assert params.value == (3 * 9 * 8 + 8) + (512 * 5 + 5)
    assert macs.value == conv + linear
    assert flops.value == 2 * (conv + linear)
    assert macs.details['forward'] == 'model(x)'
    assert model.training  # the count restores the training flag


def test_input_shape_must_be_nchw() -> None:
    with pytest.raises(ValueError, match='N, C, H, W'):
        count_compute(nn.Conv2d(3, 3, 1), (3, 8, 8))


class _DictOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> dict:
        return {'logits': self.conv(x), 'scale': 2}  # a non-tensor output: untraceable


def test_an_untraceable_forward_gives_macs_unavailable_and_flops_still() -> None:
    _, macs, flops = count_compute(_DictOutput(), (1, 3, 4, 4))
    assert macs.value is None and 'torch.jit.trace' in macs.unavailable_reason
    assert flops.value == 2 * (4 * 4 * 4 * 3)
