"""int8 weight storage: the rounding, the checkpoint format, loading back, and float-graph counts."""
from __future__ import annotations

import io

import torch
from torch import nn

from frugalbench.compression.quantize import quantize_int8
from frugalbench.compression.rebuild import apply_plan, dequantize_weight, quantize_weight
from frugalbench.measurements.compute import InferenceForward, count_compute


def test_weights_are_rounded_symmetrically_per_output_channel():
    weight = torch.tensor([[0.5, -1.27, 0.0], [0.0, 0.0, 0.0], [0.2, 0.1, 0.05]])
    q, scale = quantize_weight(weight)
    # row 0: scale 1.27 / 127 = 0.01; row 1 all zero (scale 1, stays zero); row 2: scale 0.2 / 127
    assert q.dtype == torch.int8
    assert q.tolist() == [[50, -127, 0], [0, 0, 0], [127, 64, 32]]  # 63.5 -> 64, 31.75 -> 32
    assert torch.allclose(scale, torch.tensor([0.01, 1.0, 0.2 / 127]))
    assert torch.all((dequantize_weight(q, scale) - weight).abs() <= scale[:, None] / 2 + 1e-8)


def test_checkpoint_holds_int8_and_loads_back_dequantized(build_fast_scnn):
    model = build_fast_scnn()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    report = quantize_int8(model)
    state = model.state_dict()
    layer = 'backbone.learning_to_downsample.conv.conv'
    assert f'{layer}.weight' not in state
    assert state[f'{layer}.weight_int8'].dtype == torch.int8
    assert state[f'{layer}.weight_scale'].shape == (32,)
    assert torch.equal(state['backbone.learning_to_downsample.conv.bn.weight'],
                       original['backbone.learning_to_downsample.conv.bn.weight'])
    assert report.skipped['backbone.learning_to_downsample.conv.bn'] == (
        'BatchNorm2d parameters stay float32 (only Conv2d/Linear weights are quantized)')

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    fresh = build_fast_scnn()
    apply_plan(fresh, [report.plan_step])
    fresh.load_state_dict(loaded, strict=True)
    expected = dequantize_weight(state[f'{layer}.weight_int8'], state[f'{layer}.weight_scale'])
    assert torch.equal(fresh.get_submodule(layer).weight.detach(), expected)
    error = (expected - original[f'{layer}.weight']).abs().reshape(32, -1)
    assert torch.all(error <= state[f'{layer}.weight_scale'][:, None] / 2 + 1e-7)
    again = fresh.state_dict()  # saving the loaded model gives the same int8 values
    assert torch.equal(again[f'{layer}.weight_int8'], state[f'{layer}.weight_int8'])
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(InferenceForward(fresh)(x), InferenceForward(model)(x))


def test_int8_checkpoint_is_smaller_and_counts_are_the_float_graphs(build_fast_scnn):
    parent = build_fast_scnn()
    model = build_fast_scnn()
    quantize_int8(model)

    def size(module: nn.Module) -> int:
        buffer = io.BytesIO()
        torch.save(module.state_dict(), buffer)
        return buffer.tell()

    assert size(model) < 0.3 * size(parent)
    counts = {m.name: m.value for m in count_compute(model, (1, 3, 64, 64))}
    reference = {m.name: m.value for m in count_compute(parent, (1, 3, 64, 64))}
    assert counts == reference
