"""Low-rank factorisation of Conv2d and Linear layers by truncated SVD.

A layer's weight as a matrix ``W`` (out x fan_in, fan_in = in_channels x kh x kw for a
convolution) is replaced by its best rank-r approximation ``W_r = U_r S_r V_r^T``, split
into two layers: a k x k convolution (or Linear) with r outputs holding ``sqrt(S_r) V_r^T``,
then a 1 x 1 convolution (or Linear) holding ``U_r sqrt(S_r)`` and the original bias. The
spatial work happens once, in the first layer, so parameters and MACs both scale with
``r (fan_in + out) / (fan_in out)``.

The rank is chosen per layer, either

* by a kept-energy threshold E: the smallest r with sum(s_i^2, i <= r) >= E sum(s_i^2);
  the weight error is then ||W - W_r||_F^2 = sum(s_i^2, i > r) <= (1 - E) ||W||_F^2, and
  for any input the output error is at most s_{r+1} times the norm of the input patches; or
* by a parameter budget RATIO: the largest r with r (fan_in + out) <= RATIO fan_in out.

Layers where the chosen rank would not save parameters are skipped, as are grouped
convolutions, layers with their own forward, and Linear layers that
``nn.MultiheadAttention`` uses through their weight.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from frugalbench.compression.rebuild import factorized_module, replace_module
from frugalbench.compression.report import CompressionError, StepReport, summarize_skipped, weighted_layers

ENERGY_TOLERANCE = 1e-9


def _plain_forwards() -> tuple[object, ...]:
    forwards: list[object] = [nn.Conv2d.forward, nn.Linear.forward]
    try:
        from mmcv.cnn.bricks.wrappers import Conv2d as MMCVConv2d, Linear as MMCVLinear
        forwards += [MMCVConv2d.forward, MMCVLinear.forward]  # plain layers that accept empty inputs
    except ImportError:
        pass
    return tuple(forwards)


def weight_matrix(layer: nn.Module) -> torch.Tensor:
    """The weight as (out, fan_in), in float64 for the decomposition."""
    weight = layer.weight.detach().to(torch.float64)
    return weight.reshape(weight.shape[0], -1)


def rank_for_energy(singular_values: torch.Tensor, energy: float) -> int:
    """Smallest r whose leading singular values keep at least ``energy`` of sum(s^2)."""
    squares = singular_values.to(torch.float64) ** 2
    total = float(squares.sum())
    if total == 0.0:
        return 0
    kept = torch.cumsum(squares, 0) / total
    return int(torch.searchsorted(kept, torch.tensor(energy - ENERGY_TOLERANCE, dtype=torch.float64))) + 1


def rank_for_budget(out: int, fan_in: int, ratio: float) -> int:
    """Largest r with r (fan_in + out) <= ratio x fan_in x out (at least 1)."""
    return max(1, math.floor(ratio * fan_in * out / (fan_in + out)))


def kept_energy(singular_values: torch.Tensor, rank: int) -> float:
    squares = singular_values.to(torch.float64) ** 2
    total = float(squares.sum())
    return float(squares[:rank].sum()) / total if total else 1.0


def factorize(layer: nn.Module, rank: int) -> nn.Sequential:
    """The rank-``rank`` truncated-SVD replacement of a Conv2d or Linear, weights set."""
    u, s, vh = torch.linalg.svd(weight_matrix(layer), full_matrices=False)
    root = torch.sqrt(s[:rank])
    first_weight = root[:, None] * vh[:rank]          # (r, fan_in)
    second_weight = u[:, :rank] * root[None, :]       # (out, r)
    factors = factorized_module(layer, rank)
    dtype = layer.weight.dtype
    with torch.no_grad():
        factors[0].weight.copy_(first_weight.reshape(factors[0].weight.shape).to(dtype))
        factors[1].weight.copy_(second_weight.reshape(factors[1].weight.shape).to(dtype))
        if layer.bias is not None:
            factors[1].bias.copy_(layer.bias.detach())
    return factors


def _not_factorisable(name: str, layer: nn.Module, model: nn.Module, forwards: tuple[object, ...]) -> str | None:
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        return f'grouped convolution (groups={layer.groups}): not factorised'
    if type(layer).forward not in forwards:
        return f'{type(layer).__name__} has its own forward: not factorised'
    parent_name = name.rpartition('.')[0]
    parent = model.get_submodule(parent_name) if parent_name else model
    if isinstance(parent, nn.MultiheadAttention):
        return 'MultiheadAttention uses this layer through its weight, not by calling it'
    return None


def low_rank(model: nn.Module, ratio: float | None = None, energy: float | None = None) -> StepReport:
    """Factorise every Conv2d/Linear (auxiliary heads excepted) where it saves parameters."""
    if (ratio is None) == (energy is None):
        raise ValueError('give exactly one of ratio (parameter budget) or energy (kept-energy threshold)')
    settings = {'ratio': ratio} if ratio is not None else {'energy': energy}
    report = StepReport(method='low-rank', settings={**settings, 'decomposition': 'truncated SVD'})
    forwards = _plain_forwards()
    ranks: dict[str, int] = {}
    for name, layer in weighted_layers(model):
        reason = _not_factorisable(name, layer, model, forwards)
        if reason is not None:
            report.skipped[name] = reason
            continue
        matrix = weight_matrix(layer)
        out, fan_in = matrix.shape
        singular_values = torch.linalg.svdvals(matrix)
        rank = rank_for_energy(singular_values, energy) if energy is not None else rank_for_budget(out, fan_in, ratio)
        before, after = out * fan_in, rank * (out + fan_in)
        if rank == 0:
            report.skipped[name] = 'all-zero weight'
            continue
        if after >= before:
            report.skipped[name] = (f'rank {rank} of {min(out, fan_in)} needs {after:,} weights, '
                                    f'the layer has {before:,}: no saving')
            continue
        ranks[name] = rank
        report.changed[name] = (f'rank {rank} of {min(out, fan_in)}: {before:,} -> {after:,} weights, '
                                f'kept energy {kept_energy(singular_values, rank):.4f}')
    if not ranks:
        raise CompressionError('low-rank factorisation would change no layer of this model: '
                               + (summarize_skipped(report.skipped) or 'it has no Conv2d or Linear layer'))
    for name, rank in ranks.items():
        replace_module(model, name, factorize(model.get_submodule(name), rank))
    report.plan_step = {'op': 'factorize', 'layers': ranks}
    return report
