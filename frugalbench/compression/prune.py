"""Magnitude pruning: unstructured (weights zeroed) and structured (channels removed).

* Unstructured: ``torch.nn.utils.prune.l1_unstructured`` zeroes the RATIO smallest-magnitude
  weights of every Conv2d/Linear, made permanent with ``prune.remove``. The architecture is
  unchanged, so dense counters (parameters, MACs) do not fall: the report records how many
  weights are zero.
* Structured: torch-pruning's ``MetaPruner`` with L2 magnitude importance removes RATIO of
  the channels of every prunable layer group (its dependency graph keeps coupled layers
  consistent: a convolution's output channels with the next layer's inputs, batch norms,
  depthwise groups, residual additions). It traces ``model(x, mode='tensor')``; the decode
  head's classifier (``conv_seg``) keeps its outputs (one per class). The new widths are read
  back by comparing every module's integer attributes and tensor shapes before and after,
  and recorded as a ``reshape`` step that ``rebuild.apply_plan`` replays on a fresh model.
"""
from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from itertools import chain
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from frugalbench.compression.report import CompressionError, StepReport, is_auxiliary, is_classifier, weighted_layers
from frugalbench.measurements.compute import InferenceForward

Snapshot = dict[str, dict[str, dict[str, Any]]]


def unstructured_prune(model: nn.Module, ratio: float) -> StepReport:
    """Zero the ``ratio`` smallest weights (by magnitude) of every layer but the classifier."""
    report = StepReport(method='prune', settings={'ratio': ratio, 'structured': False,
                                                  'criterion': 'L1 magnitude, per layer'})
    zeros = total = 0
    for name, layer in weighted_layers(model):
        if is_classifier(name):
            report.skipped[name] = 'the classifier (one output per class) is not pruned'
            continue
        torch_prune.l1_unstructured(layer, 'weight', amount=ratio)
        torch_prune.remove(layer, 'weight')
        layer_zeros, layer_total = int((layer.weight == 0).sum()), layer.weight.numel()
        zeros, total = zeros + layer_zeros, total + layer_total
        report.changed[name] = f'{layer_zeros:,} of {layer_total:,} weights zero'
    if not report.changed:
        raise CompressionError('unstructured pruning found no Conv2d or Linear layer to prune in this model')
    report.settings['zero_weights'] = zeros
    report.notes.append(f'{zeros:,} of {total:,} weights of the pruned layers are zero; the architecture is '
                        'unchanged, so parameter and MAC counts (dense) do not fall')
    return report


def structured_prune(model: nn.Module, ratio: float, example_input: torch.Tensor) -> StepReport:
    """Remove ``ratio`` of the channels with torch-pruning; the report's plan step reshapes a fresh model.

    Works in place; after a CompressionError the model may be left partly pruned (work on a copy).
    """
    forward = InferenceForward(model)
    before = snapshot(model)
    was_training = model.training
    model.eval()
    try:
        _run_pruner(model, forward, example_input, ratio)
        check_forward(model, forward, example_input, 'the pruned model')
    finally:
        model.train(was_training)
    changes = diff_snapshots(before, snapshot(model))
    if not changes:
        raise CompressionError('structured pruning removed no channel: torch-pruning found no prunable '
                               f'layer group in this model{_attention_hint(model)}')
    report = StepReport(method='prune', settings={'ratio': ratio, 'structured': True,
                                                  'importance': 'L2 magnitude (torch-pruning MagnitudeImportance)',
                                                  'tool': f'torch-pruning {_version("torch-pruning")}'})
    for name, change in changes.items():
        report.changed[name] = describe_change(before[name], change)
    for name, _ in model.named_modules():
        if is_classifier(name):
            report.skipped[name] = 'the classifier keeps one output per class (its inputs may shrink)'
    report.plan_step = {'op': 'reshape', 'modules': changes}
    return report


def _run_pruner(model: nn.Module, forward: nn.Module, example_input: torch.Tensor, ratio: float) -> None:
    """torch-pruning's MetaPruner, group by group; a failure names the layers of its group."""
    import torch_pruning as tp

    ignored = [module for name, module in model.named_modules() if is_classifier(name) or is_auxiliary(name)]
    heads = {m: m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    names = {module: name for name, module in model.named_modules()}
    importance = _LayerNamingImportance(tp.importance.MagnitudeImportance(p=2), names)
    try:
        pruner = tp.pruner.MetaPruner(forward, example_input, importance=importance, pruning_ratio=ratio,
                                      ignored_layers=ignored, num_heads=heads)
        for group in pruner.step(interactive=True):
            try:
                group.prune()
            except Exception as exc:  # noqa: BLE001 - any failure of the pruner is reported with its layers
                raise _GroupFailure(group_layers(group, names), exc) from None
    except _GroupFailure as failure:
        raise CompressionError(f'torch-pruning could not prune the channel group of layers '
                               f'{", ".join(failure.layers)} ({type(failure.error).__name__}: '
                               f'{_first_line(failure.error)}){_multiplier_hint(model, failure.layers)}'
                               f'{_attention_hint(model)}') from None
    except Exception as exc:  # noqa: BLE001 - e.g. while tracing the dependency graph
        raise CompressionError(f'torch-pruning could not prune this model ({type(exc).__name__}: '
                               f'{_first_line(exc)}){_attention_hint(model)}') from None


class _GroupFailure(Exception):
    def __init__(self, layers: list[str], error: BaseException) -> None:
        super().__init__(str(error))
        self.layers = layers
        self.error = error


class _LayerNamingImportance:
    """Wraps a torch-pruning importance so that a failure names the layers of the group it scored."""

    def __init__(self, inner: Callable[..., Any], names: dict[nn.Module, str]) -> None:
        self.inner = inner
        self.names = names

    def __call__(self, group: Any, **kwargs: Any) -> Any:
        try:
            return self.inner(group, **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported with the group's layers
            raise _GroupFailure(group_layers(group, self.names), exc) from None


def group_layers(group: Any, names: dict[nn.Module, str], limit: int = 6) -> list[str]:
    """Names of the layers in a torch-pruning group (the first ``limit``, and how many more)."""
    found: list[str] = []
    for dependency, _ in group:
        name = names.get(dependency.target.module)
        if name is not None and name not in found:
            found.append(name or '(the model itself)')
    return found[:limit] + ([f'and {len(found) - limit} more'] if len(found) > limit else [])


def snapshot(model: nn.Module) -> Snapshot:
    """Per module: its integer (or integer-tuple) attributes and its own tensors' shapes."""
    result: Snapshot = {}
    for name, module in model.named_modules():
        attributes = {k: v for k, v in vars(module).items() if not k.startswith('_') and _is_size(v)}
        tensors = {k: list(t.shape) for k, t in chain(module._parameters.items(), module._buffers.items())
                   if t is not None}
        result[name] = {'attributes': attributes, 'tensors': tensors}
    return result


def diff_snapshots(before: Snapshot, after: Snapshot) -> dict[str, dict[str, Any]]:
    """What changed per module (only the changed attributes and tensors)."""
    changes: dict[str, dict[str, Any]] = {}
    for name, now in after.items():
        old = before.get(name)
        if old is None:
            raise CompressionError(f'structured pruning added a module ({name}) instead of shrinking layers')
        attributes = {k: _plain(v) for k, v in now['attributes'].items() if old['attributes'].get(k) != v}
        tensors = {k: v for k, v in now['tensors'].items() if old['tensors'].get(k) != v}
        if attributes or tensors:
            changes[name] = {'attributes': attributes, 'tensors': tensors}
    return changes


def describe_change(old: dict[str, Any], change: dict[str, Any]) -> str:
    parts = [f'{k} {_plain(old["attributes"].get(k))} -> {v}' for k, v in change['attributes'].items()]
    if not parts:
        parts = [f'{k} {old["tensors"].get(k)} -> {v}' for k, v in change['tensors'].items()]
    return ', '.join(parts)


def check_forward(model: nn.Module, forward: Callable[[torch.Tensor], Any], x: torch.Tensor, what: str) -> None:
    """Run the forward; on failure name the innermost module that raised."""
    names = {module: name for name, module in model.named_modules()}
    entered: list[str] = []

    def enter(module: nn.Module, args: Any) -> None:
        entered.append(names[module])

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        entered.pop()

    handles = [module.register_forward_pre_hook(enter) for module in names]
    handles += [module.register_forward_hook(leave) for module in names]
    try:
        with torch.no_grad():
            forward(x)
    except Exception as exc:  # noqa: BLE001 - reported with the failing layer
        where = entered[-1] if entered else ''
        layer = model.get_submodule(where)
        raise CompressionError(f'{what} fails in layer {where or "(the model itself)"} ({type(layer).__name__}): '
                               f'{type(exc).__name__}: '
                               f'{_first_line(exc)}; this layer uses channel counts that pruning changed'
                               f'{_attention_hint(model)}') from None
    finally:
        for handle in handles:
            handle.remove()


def _multiplier_hint(model: nn.Module, layers: list[str]) -> str:
    names = dict(model.named_modules())
    multiplied = [name for name in layers if isinstance(names.get(name), nn.Conv2d)
                  and 1 < names[name].groups and names[name].out_channels != names[name].in_channels]
    if not multiplied:
        return ''
    return (f'; {", ".join(multiplied)} is a grouped convolution whose outputs outnumber its inputs (a depthwise '
            'convolution with a channel multiplier), which torch-pruning cannot shrink consistently')


def _attention_hint(model: nn.Module) -> str:
    attention = [name for name, m in model.named_modules()
                 if isinstance(m, nn.MultiheadAttention) or type(m).__name__.endswith('Attention')]
    if not attention:
        return ''
    shown = ', '.join(attention[:4]) + (f' and {len(attention) - 4} more' if len(attention) > 4 else '')
    return (f'; attention layers ({shown}) need their head structure declared to the pruner, '
            'so this model is not supported by --structured: use --prune without --structured, or --low-rank')


def _is_size(value: Any) -> bool:
    if isinstance(value, int):
        return True
    return isinstance(value, tuple) and all(isinstance(v, int) for v in value)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [''])[0][:300]


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'
