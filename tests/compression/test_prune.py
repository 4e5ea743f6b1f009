"""Magnitude pruning: unstructured zeros, structured channel removal replayed on a fresh model, refusals."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from frugalbench.compression.prune import structured_prune, unstructured_prune
from frugalbench.compression.rebuild import apply_plan
from frugalbench.compression.report import CompressionError
from frugalbench.measurements.compute import InferenceForward, count_compute

INPUT = (1, 3, 64, 64)


def _counts(model: nn.Module) -> dict[str, float | None]:
    return {m.name: m.value for m in count_compute(model, INPUT)}


def test_unstructured_pruning_zeroes_the_ratio_of_each_layer_and_keeps_the_architecture(build_fast_scnn):
    model = build_fast_scnn()
    before = _counts(model)
    report = unstructured_prune(model, 0.3)
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and name != 'decode_head.conv_seg':
            # torch's l1_unstructured prunes round(amount x n) weights
            assert int((module.weight == 0).sum()) == round(0.3 * module.weight.numel()), name
    assert 'decode_head.conv_seg' in report.skipped
    assert report.plan_step is None
    assert _counts(model) == before  # dense counts do not see zeros


def test_structured_pruning_shrinks_the_model_and_replays_on_a_fresh_one(build_fast_scnn):
    model = build_fast_scnn()
    before = _counts(model)
    x = torch.randn(*INPUT, generator=torch.Generator().manual_seed(0))
    report = structured_prune(model, 0.5, x)
    after = _counts(model)
    assert after['params'] < 0.5 * before['params']
    assert after['macs'] < 0.5 * before['macs']
    assert model.decode_head.conv_seg.out_channels == 3
    assert report.changed['backbone.learning_to_downsample.conv.conv'] == 'out_channels 32 -> 16'
    assert report.plan_step['modules']['backbone.learning_to_downsample.conv.bn'] == {
        'attributes': {'num_features': 16},
        'tensors': {'weight': [16], 'bias': [16], 'running_mean': [16], 'running_var': [16]}}

    fresh = build_fast_scnn()
    apply_plan(fresh, [report.plan_step])
    fresh.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(InferenceForward(fresh)(x), InferenceForward(model)(x))
    assert _counts(fresh) == after


class _Shuffle(nn.Module):
    """A channel shuffle with its channel count written into the forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        return x.reshape(n, 2, 4, h, w).transpose(1, 2).reshape(n, 8, h, w)


class _HardCoded(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.shuffle = _Shuffle()
        self.conv_seg = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_seg(self.shuffle(self.conv1(x)))


def test_structured_pruning_names_the_layer_it_cannot_handle():
    with pytest.raises(CompressionError) as error:
        structured_prune(_HardCoded(), 0.5, torch.randn(1, 3, 8, 8))
    assert str(error.value) == (
        "the pruned model fails in layer shuffle (_Shuffle): RuntimeError: shape '[1, 2, 4, 8, 8]' is invalid "
        'for input of size 256; this layer uses channel counts that pruning changed')


class _Multiplier(nn.Module):
    """A depthwise convolution with a channel multiplier (6 outputs per input), as in BiSeNetV2's GE layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 1)
        self.bn1 = nn.BatchNorm2d(8)
        self.dwconv = nn.Conv2d(8, 48, 3, padding=1, groups=8)
        self.conv_seg = nn.Conv2d(48, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_seg(self.dwconv(self.bn1(self.conv1(x))))


def test_structured_pruning_names_the_channel_group_torch_pruning_fails_on():
    with pytest.raises(CompressionError) as error:
        structured_prune(_Multiplier().eval(), 0.5, torch.randn(1, 3, 8, 8))
    assert str(error.value) == (
        'torch-pruning could not prune the channel group of layers conv1, bn1, dwconv (IndexError: index 1 is out '
        'of bounds for dimension 0 with size 1); dwconv is a grouped convolution whose outputs outnumber its '
        'inputs (a depthwise convolution with a channel multiplier), which torch-pruning cannot shrink consistently')
