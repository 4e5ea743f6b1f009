"""Post-training int8 quantization of weights (storage), with float32 computation.

Every Conv2d and Linear weight (auxiliary heads excepted) is quantized symmetrically per
output channel to int8 (``scale = max|w| / 127``): the checkpoint stores ``weight_int8`` and
``weight_scale`` instead of the float weight, about a quarter of its bytes, and the model
dequantizes them when the state dict is loaded (``rebuild.store_weights_as_int8``). Biases,
normalisation layers, PReLU slopes and any other parameters stay float32 (listed in the
report). The forward runs in float32 on the dequantized weights, so:

* MACs/FLOPs measured by ``frugalbench evaluate`` are those of the float-equivalent graph;
* latency is measured, and is that of the float model (no int8 kernels run);
* accuracy reflects the int8 rounding of the weights.

Why not ``torch.ao.quantization.quantize_dynamic``: on torch 2.13 it is deprecated (it warns
that eager-mode quantization is being removed), it covers only Linear layers (convolutional
models would not shrink), its quantized modules' state dicts hold packed objects that a
weights-only plain state dict cannot carry, and the MAC counters skip its
``quantized::linear_dynamic`` operator, which would under-count compute.
"""
from __future__ import annotations

from collections import Counter

from torch import nn

from frugalbench.compression.rebuild import dequantize_weight, quantize_weight, store_weights_as_int8
from frugalbench.compression.report import CompressionError, StepReport, is_auxiliary, weighted_layers


def quantize_int8(model: nn.Module) -> StepReport:
    """Store every Conv2d/Linear weight as int8 + per-channel scales; the model keeps the dequantized values."""
    report = StepReport(method='quantize', settings={
        'scheme': 'int8', 'weights': 'symmetric, per output channel, scale = max|w| / 127',
        'activations': 'float32 (not quantized)', 'execution': 'float32 on weights dequantized at load'})
    layers = []
    for name, layer in weighted_layers(model):
        q, scale = quantize_weight(layer.weight)
        error = float((dequantize_weight(q, scale) - layer.weight.detach().float()).abs().max())
        report.changed[name] = f'{layer.weight.numel():,} weights int8, max abs rounding error {error:.3g}'
        layers.append(name)
    if not layers:
        raise CompressionError('int8 quantization found no Conv2d or Linear weight in this model')
    store_weights_as_int8(model, layers)
    model.load_state_dict(model.state_dict())  # the model now holds exactly what the checkpoint will
    _record_float_layers(model, set(layers), report)
    report.plan_step = {'op': 'int8_weights', 'layers': layers}
    return report


def _record_float_layers(model: nn.Module, quantized: set[str], report: StepReport) -> None:
    """Name every module whose own parameters stay float32, and why; summarise by type."""
    kinds: Counter[str] = Counter()
    bias_values = 0
    for name, module in model.named_modules():
        if is_auxiliary(name):
            continue
        own = {k: p for k, p in module._parameters.items() if p is not None}
        if name in quantized:
            bias_values += sum(p.numel() for k, p in own.items() if k != 'weight')
            continue
        if own:
            kind = type(module).__name__
            kinds[kind] += sum(p.numel() for p in own.values())
            report.skipped[name] = f'{kind} parameters stay float32 (only Conv2d/Linear weights are quantized)'
    float_parts = [f'{kind}: {values:,} values' for kind, values in sorted(kinds.items())]
    report.notes.append('stayed float32: biases of the quantized layers '
                        f'({bias_values:,} values)' + ''.join(f'; {part}' for part in float_parts))
    report.notes.append('computation is float32: weights are dequantized when the checkpoint is loaded, so '
                        'latency is that of the float model and MACs/FLOPs are those of the float graph')

