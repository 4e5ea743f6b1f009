"""The frugality score, its validation and the resource registry, against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from frugalbench.errors import BenchmarkError, UsageError
from frugalbench.scores import RESOURCES, frugality_score, get_resource, parse_references, penalty


def test_score_matches_hand_computed_value() -> None:
    # R = 50 / 100 = 0.5, penalty = 0.5 / (1 + 2) = 1/6
    assert frugality_score(0.6, 50, 100, 0.5) == pytest.approx(0.6 - 1 / 6, abs=1e-15)


def test_score_when_resource_exceeds_reference() -> None:
    # R = 3, penalty = 1 / (1 + 1/3) = 0.75
    assert frugality_score(0.6, 300, 100, 1.0) == pytest.approx(-0.15, abs=1e-15)


def test_penalty_is_half_the_weight_at_the_reference() -> None:
    assert frugality_score(0.6, 7.0, 7.0, 0.4) == pytest.approx(0.4, abs=1e-15)


def test_zero_resource_gives_exactly_zero_penalty() -> None:
    assert frugality_score(0.6, 0, 100, 1.0) == 0.6
    assert penalty(0.0, 1.0) == 0.0


def test_zero_weight_gives_the_accuracy() -> None:
    assert frugality_score(0.6, 1e12, 1.0, 0.0) == 0.6


def test_missing_resource_gives_none() -> None:
    assert frugality_score(0.6, None, 100, 0.5) is None


def test_numpy_numbers_are_accepted() -> None:
    assert frugality_score(np.float32(0.5), np.int64(100), np.float64(100.0), 1) == pytest.approx(0.0)


@pytest.mark.parametrize('w', [-0.1, float('nan'), float('inf'), True, '0.5'])
def test_invalid_weight_is_a_usage_error(w: object) -> None:
    with pytest.raises(UsageError, match='weight w must be a finite number >= 0'):
        frugality_score(0.6, 1, 1, w)  # type: ignore[arg-type]


@pytest.mark.parametrize('reference', [0, -1.0, float('nan'), float('inf')])
def test_invalid_reference_is_a_usage_error(reference: float) -> None:
    with pytest.raises(UsageError, match='reference value .* must be a finite number > 0'):
        frugality_score(0.6, 1, reference, 0.5)


def test_percentage_accuracy_is_refused() -> None:
    with pytest.raises(UsageError, match='not a percentage'):
        frugality_score(41.85, 1, 1, 0.5)


def test_negative_resource_is_refused() -> None:
    with pytest.raises(UsageError, match='finite number >= 0'):
        frugality_score(0.5, -1, 1, 0.5)


def test_registry_lists_every_resource_of_the_issue() -> None:
    assert set(RESOURCES) == {
        'train_images', 'annotation_seconds', 'train_energy_joules', 'train_seconds', 'macs',
        'params', 'latency_ms', 'peak_rss_mb', 'energy_joules_per_image'}
    assert all(r.lower_is_better and r.key == name for name, r in RESOURCES.items())
    assert {n for n, r in RESOURCES.items() if r.energy} == {'train_energy_joules', 'energy_joules_per_image'}


def test_unknown_resource_suggests_the_closest_name() -> None:
    with pytest.raises(UsageError, match=r"unknown resource 'mac'\. Did you mean 'macs'\? Known: train_images"):
        get_resource('mac')


def test_references_accept_yaml_exponent_strings() -> None:
    assert parse_references({'macs': '1e9', 'params': 1000000}) == {'macs': 1e9, 'params': 1e6}
    assert parse_references(None) == {}


@pytest.mark.parametrize('raw, message', [
    ({'flops': 1e9}, "unknown resource 'flops'"),
    ({'macs': 0}, 'must be a finite number > 0'),
    ({'macs': 'lots'}, 'must be a number'),
    ([1, 2], 'must map resource names'),
])
def test_bad_references_are_benchmark_errors(raw: object, message: str) -> None:
    with pytest.raises(BenchmarkError, match=message):
        parse_references(raw)  # type: ignore[arg-type]
