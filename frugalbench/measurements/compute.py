"""Compute counts of a model's inference forward: parameters, MACs and FLOPs.

Two reference counters, each reported in its own unit, never converted into each other:

* **MACs** as `mmengine.analysis.get_model_complexity_info` counts them (the counter that
  MMSegmentation's ``tools/analysis_tools/get_flops.py`` uses, which calls one multiply-add
  one "flop"). It traces the forward with ``torch.jit.trace``; operators without a handle
  are listed by `FlopAnalyzer.unsupported_ops` (its own zero-cost list is ignored silently).
* **FLOPs** as `torch.utils.flop_counter.FlopCounterMode` counts them (2 per multiply-add,
  only the operators in ``flop_registry``: convolutions, matmuls, attention). It skips every
  other operator without saying so: we record every ATen operator that ran (a dispatch mode
  around the counter sees exactly the operators it executes after its own decompositions)
  and list those outside its registry that do arithmetic (views, copies and allocations are
  left out of that list).

For an MMSeg segmentor the forward is ``model(x, mode='tensor')``: backbone, neck and decode
head, without auxiliary heads, data pre-processing, resizing or argmax.
"""
from __future__ import annotations

import importlib.metadata
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from frugalbench.measurements.record import Measurement

MMENGINE_METHOD = 'mmengine.analysis.get_model_complexity_info'
TORCH_METHOD = 'torch.utils.flop_counter.FlopCounterMode'

# ATen operators that move, view, allocate or compare data without arithmetic on it: they
# are not reported as "skipped" by the FlopCounterMode count (ops that return an alias of
# their input, such as view/transpose/select, are recognised from their schema).
DATA_MOVEMENT_OPS = frozenset({
    'aten._to_copy', 'aten._unsafe_view', 'aten.alias', 'aten.cat', 'aten.clone',
    'aten.constant_pad_nd', 'aten.copy_', 'aten.detach', 'aten.empty', 'aten.empty_like',
    'aten.empty_strided', 'aten.expand_copy', 'aten.fill_', 'aten.full', 'aten.full_like',
    'aten.gather', 'aten.index', 'aten.index_select', 'aten.lift_fresh', 'aten.lift_fresh_copy',
    'aten.new_empty', 'aten.new_empty_strided', 'aten.new_full', 'aten.new_ones',
    'aten.new_zeros', 'aten.ones', 'aten.ones_like', 'aten.scalar_tensor', 'aten.stack',
    'aten.zero_', 'aten.zeros', 'aten.zeros_like', 'aten.arange', 'aten.masked_fill',
    'aten.repeat', 'aten.roll', 'aten.flip', 'aten._reshape_copy', 'aten.view_copy',
    'aten.split_with_sizes_copy', 'aten.slice_scatter', 'aten.select_scatter',
})

def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None

def is_mmseg_segmentor(model: nn.Module) -> bool:
    """True for MMSegmentation segmentors (whose forward takes ``mode='tensor'``)."""
    try:
        from mmseg.models.segmentors import BaseSegmentor
    except ImportError:  # MMSeg is optional for plain torch modules
        return False
    return isinstance(model, BaseSegmentor)

class InferenceForward(nn.Module):
    """The inference forward of ``model`` as a one-argument module (what the counters trace)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.tensor_mode = is_mmseg_segmentor(model)

    def forward(self, x: torch.Tensor) -> Any:
        if self.tensor_mode:
            return self.model(x, mode='tensor')
        return self.model(x)

def _aliases_input(op: Any) -> bool:
    schema = getattr(op, '_schema', None)
    if schema is None:
        return False
    return any(r.alias_info is not None and not r.alias_info.is_write for r in schema.returns)

class _OperatorLog(TorchDispatchMode):
    """Counts every ATen operator executed under it (by overload packet)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[Any] = Counter()
        self.views: set[Any] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        packet = func._overloadpacket
        self.counts[packet] += 1
        if _aliases_input(func):
            self.views.add(packet)
        return func(*args, **(kwargs or {}))

@contextmanager
def _inference_state(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)

def example_input(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """A fixed pseudo-random input on the model's device (counts do not depend on values)."""
    generator = torch.Generator().manual_seed(0)
    device = next((p.device for p in model.parameters()), torch.device('cpu'))
    return torch.randn(*input_shape, generator=generator).to(device)

def count_params(model: nn.Module) -> Measurement:
    """All parameters of the model as given (auxiliary heads included; listed in details)."""
    total = sum(p.numel() for p in model.parameters())
    details: dict[str, Any] = {
        'trainable': sum(p.numel() for p in model.parameters() if p.requires_grad),
        'buffers': sum(b.numel() for b in model.buffers()),
    }
    auxiliary = getattr(model, 'auxiliary_head', None)
    if isinstance(auxiliary, nn.Module):
        details['auxiliary_head'] = sum(p.numel() for p in auxiliary.parameters())
    return Measurement(name='params', value=total, unit='parameters', method='torch.nn.Module.parameters',
                       tool_version=torch.__version__, measured=True, details=details)

def count_macs(model: nn.Module, x: torch.Tensor) -> Measurement:
    """MACs with mmengine's `FlopAnalyzer` (the engine of `get_model_complexity_info`).

    A forward that ``torch.jit.trace`` cannot trace gives an unavailable measurement with
    the tracer's message (the FLOP count, which needs no tracing, is still taken).
    """
    from mmengine.analysis import FlopAnalyzer

    forward = InferenceForward(model)
    with _inference_state(model):
        analyzer = FlopAnalyzer(forward, (x,))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        try:
            total = analyzer.total()
        except (RuntimeError, TypeError, ValueError) as exc:
            first_line = (str(exc).strip().splitlines() or [''])[0][:300]
            return Measurement.unavailable(
                'macs', 'MACs', f'torch.jit.trace could not trace the forward: {type(exc).__name__}: '
                f'{first_line}', method=MMENGINE_METHOD, tool_version=_version('mmengine'),
                details={'input_shape': list(x.shape), 'forward': _forward_name(forward)})
        skipped = analyzer.unsupported_ops()
    return Measurement(
        name='macs', value=total, unit='MACs', method=MMENGINE_METHOD,
        tool_version=_version('mmengine'), measured=True,
        details={'input_shape': list(x.shape), 'forward': _forward_name(forward),
                 'skipped_ops': dict(sorted(skipped.items())),
                 'multiply_add_counts_as': 1})

def count_flops(model: nn.Module, x: torch.Tensor) -> Measurement:
    """FLOPs with `FlopCounterMode`, listing the arithmetic operators outside its registry."""
    forward = InferenceForward(model)
    log = _OperatorLog()
    with _inference_state(model), log:
        with FlopCounterMode(display=False) as counter:
            forward(x)
    skipped: dict[str, int] = {}
    movement: dict[str, int] = {}
    for packet, n in log.counts.items():
        if packet in flop_registry:
            continue
        name = str(packet)
        target = movement if (packet in log.views or name in DATA_MOVEMENT_OPS) else skipped
        target[name] = target.get(name, 0) + n
    return Measurement(
        name='flops', value=counter.get_total_flops(), unit='FLOPs', method=TORCH_METHOD,
        tool_version=torch.__version__, measured=True,
        details={'input_shape': list(x.shape), 'forward': _forward_name(forward),
                 'skipped_ops': dict(sorted(skipped.items())),
                 'data_movement_ops': dict(sorted(movement.items())),
                 'multiply_add_counts_as': 2})

def _forward_name(forward: InferenceForward) -> str:
    return "model(x, mode='tensor')" if forward.tensor_mode else 'model(x)'

def count_compute(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 512, 512)) -> list[Measurement]:
    """Parameters, MACs (mmengine) and FLOPs (torch) of the inference forward at ``input_shape``.

    ``input_shape`` is (N, C, H, W), normally (1, 3, H, W) at the benchmark's test size.
    The model is put in eval mode for the count and its training flag restored afterwards.
    """
    if len(input_shape) != 4:
        raise ValueError(f'input_shape must be (N, C, H, W), not {input_shape}')
    x = example_input(model, tuple(input_shape))
    return [count_params(model), count_macs(model, x), count_flops(model, x)]


NORM_STATISTICS = ('running_mean', 'running_var', 'num_batches_tracked')
AUXILIARY_PREFIX = 'auxiliary_head.'


def checkpoint_params(path: Path) -> Measurement:
    """Parameters counted by the parent from the checkpoint's tensors (never from the model process).

    Every tensor the evaluated model loads counts, buffers included (a model cannot hide weights by
    keeping them as buffers); normalisation running statistics and counters, and training-only
    auxiliary heads, do not. The file is opened weights-only and memory-mapped.
    """
    state = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    if not isinstance(state, dict):
        raise ValueError('the checkpoint is not a state dict')
    counted = excluded = 0
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            continue
        if str(key).startswith(AUXILIARY_PREFIX) or str(key).rsplit('.', 1)[-1] in NORM_STATISTICS:
            excluded += tensor.numel()
        else:
            counted += tensor.numel()
    return Measurement(name='params', value=counted, unit='parameters',
                       method='checkpoint tensors, counted by the harness (torch.load weights_only)',
                       tool_version=torch.__version__, measured=True,
                       details={'excluded': 'normalisation running statistics, auxiliary heads',
                                'excluded_elements': excluded, 'buffers_included': True})
