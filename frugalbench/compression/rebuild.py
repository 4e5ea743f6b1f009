"""Rebuild a compressed MMSeg model: the parent's model plus a recorded compression plan.

The harness's own code, never copied into a submission: ``frugalbench.mmseg_ext`` registers
``build_compressed`` as the MMSeg model type ``FrugalbenchCompressed``, and every process that
builds a model from a config (the evaluation worker, the training child, the compression child)
imports ``frugalbench.mmseg_ext``. A compressed variant's config is therefore plain data with no
``custom_imports``, and its runs carry no submission code. The builder's result is the parent's
own segmentor class (an ``EncoderDecoder`` stays an ``EncoderDecoder``) with the plan applied::

    model = dict(type='FrugalbenchCompressed',
                 base_type='EncoderDecoder',          # the parent's model type
                 compression_plan=[step, ...],        # applied in order to the fresh model
                 plan_version=1,
                 **the_parent_model_arguments)        # backbone=..., decode_head=..., ...

Steps (each recorded by ``frugalbench compress`` on the model as the previous steps left it):

* ``{'op': 'reshape', 'modules': {name: {'attributes': {...}, 'tensors': {tensor: shape}}}}``:
  structured pruning; sets the listed integer attributes (``out_channels``, ``num_features``,
  ``groups`` ...) and replaces the listed parameters/buffers by empty tensors of the new
  shape, which the state dict then fills.
* ``{'op': 'factorize', 'layers': {name: rank}}``: truncated-SVD factorisation; a Conv2d
  becomes ``Sequential(Conv2d(in, rank, k x k), Conv2d(rank, out, 1 x 1))`` and a Linear
  ``Sequential(Linear(in, rank), Linear(rank, out))``.
* ``{'op': 'int8_weights', 'layers': [name, ...]}``: the layers' weights are stored in the
  state dict as ``weight_int8`` (int8) and ``weight_scale`` (float32, one per output
  channel, symmetric: weight = int8 x scale) instead of ``weight``, and dequantized to
  float32 when loaded. Computation stays in float32. (``state_dict(keep_vars=True)``, which
  asks for the live parameters, as ``torch.jit.trace`` does, still returns the float weight.)
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

PLAN_VERSION = 1
MODEL_TYPE = 'FrugalbenchCompressed'
INT8_KEY = 'weight_int8'
SCALE_KEY = 'weight_scale'
INT8_MAX = 127


def build_compressed(base_type: str, compression_plan: list[dict[str, Any]], plan_version: int = PLAN_VERSION,
                     **base: Any) -> nn.Module:
    """Build the parent model (``base_type`` with ``base``) and apply the compression plan."""
    if plan_version != PLAN_VERSION:
        raise ValueError(f'compression plan version {plan_version} is not supported by this '
                         f'{MODEL_TYPE} module (version {PLAN_VERSION}): re-run frugalbench compress')
    from mmseg.registry import MODELS
    model = MODELS.build(dict(type=base_type, **base))
    apply_plan(model, compression_plan)
    return model


def apply_plan(model: nn.Module, plan: list[dict[str, Any]]) -> None:
    """Apply the plan's steps in order, in place."""
    for step in plan:
        op = step.get('op')
        if op == 'reshape':
            reshape_modules(model, step['modules'])
        elif op == 'factorize':
            factorize_layers(model, step['layers'])
        elif op == 'int8_weights':
            store_weights_as_int8(model, step['layers'])
        else:
            raise ValueError(f'unknown compression step {op!r}: expected reshape, factorize or int8_weights')


# --- structured pruning --------------------------------------------------------------------

def reshape_modules(model: nn.Module, modules: dict[str, dict[str, Any]]) -> None:
    """Give the named modules the recorded attributes and tensor shapes (values come later)."""
    for name, change in modules.items():
        module = model.get_submodule(name)
        for attribute, value in change.get('attributes', {}).items():
            setattr(module, attribute, tuple(value) if isinstance(value, list) else value)
        for tensor_name, shape in change.get('tensors', {}).items():
            _resize_tensor(module, tensor_name, tuple(shape))


def _resize_tensor(module: nn.Module, name: str, shape: tuple[int, ...]) -> None:
    if name in module._parameters and module._parameters[name] is not None:
        old = module._parameters[name]
        module._parameters[name] = nn.Parameter(torch.zeros(shape, dtype=old.dtype, device=old.device),
                                                requires_grad=old.requires_grad)
    elif name in module._buffers and module._buffers[name] is not None:
        old = module._buffers[name]
        module._buffers[name] = torch.zeros(shape, dtype=old.dtype, device=old.device)
    else:
        raise ValueError(f'{type(module).__name__} has no tensor {name!r} to resize')


# --- low-rank factorisation ----------------------------------------------------------------

def factorized_module(layer: nn.Module, rank: int) -> nn.Sequential:
    """The two-layer replacement of a Conv2d or Linear at ``rank`` (weights uninitialised)."""
    bias = getattr(layer, 'bias', None) is not None
    if isinstance(layer, nn.Conv2d):
        first = nn.Conv2d(layer.in_channels, rank, layer.kernel_size, stride=layer.stride,
                          padding=layer.padding, dilation=layer.dilation, groups=1, bias=False,
                          padding_mode=layer.padding_mode)
        second = nn.Conv2d(rank, layer.out_channels, 1, bias=bias)
    elif isinstance(layer, nn.Linear):
        first = nn.Linear(layer.in_features, rank, bias=False)
        second = nn.Linear(rank, layer.out_features, bias=bias)
    else:
        raise ValueError(f'cannot factorise a {type(layer).__name__}: only Conv2d and Linear')
    factors = nn.Sequential(first, second)
    return factors.to(device=layer.weight.device, dtype=layer.weight.dtype)


def factorize_layers(model: nn.Module, layers: dict[str, int]) -> None:
    """Replace each named layer by its factorised pair at the recorded rank."""
    for name, rank in layers.items():
        replace_module(model, name, factorized_module(model.get_submodule(name), int(rank)))


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition('.')
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


# --- int8 weight storage -------------------------------------------------------------------

def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: ``scale = max|w| / 127``, ``q = round(w / scale)``.

    Returns (int8 tensor of the weight's shape, float32 scales of shape [out_channels]).
    Every element's error after dequantization is at most ``scale / 2`` of its channel.
    """
    flat = weight.detach().to(torch.float32).reshape(weight.shape[0], -1)
    scale = flat.abs().amax(dim=1) / INT8_MAX
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero channel stays zero
    q = torch.round(flat / scale[:, None]).clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
    return q.reshape(weight.shape), scale


def dequantize_weight(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    view = (-1,) + (1,) * (q.dim() - 1)
    return (q.to(torch.float32) * scale.to(torch.float32).reshape(view)).to(dtype)


def _save_int8(module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    if isinstance(state_dict.get(prefix + 'weight'), nn.Parameter):
        return  # state_dict(keep_vars=True) asks for the live parameters (torch.jit.trace does), not storage
    weight = state_dict.pop(prefix + 'weight')
    q, scale = quantize_weight(weight)
    state_dict[prefix + INT8_KEY] = q
    state_dict[prefix + SCALE_KEY] = scale


def _load_int8(module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any, strict: bool,
               missing_keys: list[str], unexpected_keys: list[str], error_msgs: list[str]) -> None:
    if prefix + INT8_KEY in state_dict and prefix + SCALE_KEY in state_dict:
        q = state_dict.pop(prefix + INT8_KEY)
        scale = state_dict.pop(prefix + SCALE_KEY)
        state_dict[prefix + 'weight'] = dequantize_weight(q, scale, module.weight.dtype)


def store_weights_as_int8(model: nn.Module, layers: list[str]) -> None:
    """Make the named layers save their weight as int8 + scales and load it back dequantized."""
    for name in layers:
        module = model.get_submodule(name)
        if not isinstance(getattr(module, 'weight', None), torch.Tensor):
            raise ValueError(f'{name} ({type(module).__name__}) has no weight tensor to store as int8')
        module.register_state_dict_post_hook(_save_int8)
        module.register_load_state_dict_pre_hook(_load_int8)

