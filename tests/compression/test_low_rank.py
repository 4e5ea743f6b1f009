"""Truncated-SVD factorisation: rank choice, the error bound of the kept energy, savings, refusals."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from frugalbench.compression.low_rank import factorize, low_rank, rank_for_budget, rank_for_energy
from frugalbench.compression.report import CompressionError

torch.set_num_threads(1)


def _with_singular_values(out: int, fan_in: int, values: list[float], seed: int = 0) -> torch.Tensor:
    """A weight (out x fan_in) with exactly the given singular values (orthonormal U, V by QR)."""
    generator = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(out, len(values), generator=generator, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(fan_in, len(values), generator=generator, dtype=torch.float64))
    return u @ torch.diag(torch.tensor(values, dtype=torch.float64)) @ v.T


def test_energy_threshold_picks_the_smallest_rank_that_keeps_it():
    # squares 16, 4, 1, 0.25 (total 21.25): rank 1 keeps 0.753, rank 2 keeps 0.941, rank 3 keeps 0.988
    values = torch.tensor([4.0, 2.0, 1.0, 0.5])
    assert rank_for_energy(values, 0.75) == 1
    assert rank_for_energy(values, 0.76) == 2
    assert rank_for_energy(values, 0.9) == 2
    assert rank_for_energy(values, 0.95) == 3
    assert rank_for_energy(values, 1.0) == 4
    assert rank_for_energy(torch.zeros(3), 0.9) == 0


def test_budget_rank_keeps_the_fraction_of_parameters():
    # a square 1x1 conv 64 -> 64: rank 32 (half the rank) would keep all 4096 weights; half the weights is rank 16
    assert rank_for_budget(64, 64, 0.5) == 16
    assert 16 * (64 + 64) == 4096 // 2
    assert rank_for_budget(12, 8 * 9, 0.5) == 5     # floor(0.5 * 864 / 84) = floor(5.14)
    assert rank_for_budget(2, 2, 0.1) == 1          # never below rank 1


def test_factorised_linear_reproduces_the_layer_within_the_discarded_singular_values():
    layer = nn.Linear(6, 5)
    with torch.no_grad():
        layer.weight.copy_(_with_singular_values(5, 6, [4.0, 2.0, 1.0, 0.5]).float())
    factors = factorize(layer, rank=2)  # keeps 20 / 21.25 = 0.941 of the energy
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        error = factors(x) - layer(x)
    # W - W_r has the discarded singular values 1 and 0.5: its spectral norm is 1
    assert torch.linalg.norm(error) <= 1.0 * torch.linalg.norm(x) * (1 + 1e-5)
    assert torch.linalg.norm(error) > 0.1 * torch.linalg.norm(x) / 32 ** 0.5  # not trivially zero
    reconstructed = factors[1].weight.detach() @ factors[0].weight.detach()
    assert float(torch.linalg.norm(reconstructed - layer.weight.detach()) ** 2) == pytest.approx(1.0 + 0.25, rel=1e-5)
    assert torch.equal(factors[1].bias, layer.bias)


@pytest.mark.parametrize('energy', [0.5, 0.8, 0.95])
def test_factorised_conv_output_error_is_bounded_by_the_kept_energy(energy: float):
    torch.manual_seed(0)
    layer = nn.Conv2d(8, 12, 3, stride=2, padding=1, dilation=1)
    weight = layer.weight.detach().double().reshape(12, -1)
    singular_values = torch.linalg.svdvals(weight)  # the reference spectrum of the original layer
    rank = rank_for_energy(singular_values, energy)
    squares = singular_values ** 2
    assert squares[:rank].sum() / squares.sum() >= energy - 1e-9
    assert squares[:rank - 1].sum() / squares.sum() < energy  # the smallest such rank

    factors = factorize(layer, rank)
    x = torch.randn(2, 8, 15, 17, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        error = (factors(x) - layer(x)).double()
        # weight error: the discarded energy, at most (1 - E) of ||W||_F^2
        reconstructed = factors[1].weight.double().reshape(12, rank) @ factors[0].weight.double().reshape(rank, -1)
    discarded = float(squares[rank:].sum())
    assert float(torch.linalg.norm(reconstructed - weight) ** 2) == pytest.approx(discarded, rel=1e-4, abs=1e-9)
    assert discarded <= (1 - energy) * float(squares.sum()) + 1e-9
    # output error: at most s_{r+1} times the norm of the input patches the convolution sees
    patches = F.unfold(x.double(), 3, dilation=1, padding=1, stride=2)
    bound = float(singular_values[rank]) * float(torch.linalg.norm(patches))
    assert 0 < float(torch.linalg.norm(error)) <= bound * (1 + 1e-4)


def test_low_rank_replaces_layers_only_where_it_saves_and_says_why_elsewhere():
    model = nn.Sequential(nn.Conv2d(16, 64, 1), nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.Conv2d(64, 64, 1))
    report = low_rank(model, ratio=0.5)
    # 16 -> 64: floor(0.5 * 1024 / 80) = 6; 64 -> 64: floor(0.5 * 4096 / 128) = 16
    assert report.plan_step == {'op': 'factorize', 'layers': {'0': 6, '2': 16}}
    assert report.skipped == {'1': 'grouped convolution (groups=64): not factorised'}
    assert isinstance(model[0], nn.Sequential) and model[0][0].weight.shape == (6, 16, 1, 1)
    assert sum(p.numel() for p in model[2].parameters()) == 16 * 64 + 64 * 16 + 64


def test_a_model_with_nothing_to_factorise_gets_the_layers_and_reasons():
    model = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 1, 1))
    with pytest.raises(CompressionError) as error:
        low_rank(model, ratio=0.5)
    assert str(error.value) == ('low-rank factorisation would change no layer of this model: '
                                '0: grouped convolution (groups=8): not factorised; '
                                '1: rank 1 of 1 needs 9 weights, the layer has 8: no saving')
