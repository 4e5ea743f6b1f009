"""Pareto flags on (mIoU, resource), by hand and against a brute-force reference."""
from __future__ import annotations

import random

from frugalbench.scores import pareto_flags


def _brute_force(points: list[tuple[float | None, float | None]]) -> list[bool]:
    valid = [(m, r) for m, r in points if m is not None and r is not None]
    return [m is not None and r is not None and not any(
        m2 >= m and r2 <= r and (m2 > m or r2 < r) for m2, r2 in valid) for m, r in points]


def test_hand_computed_front() -> None:
    points = [(0.6, 10), (0.5, 5), (0.55, 10), (0.6, 10), (0.4, 20), (0.7, None), (0.45, 5)]
    assert pareto_flags(points) == [True, True, False, True, False, False, False]


def test_equal_points_are_both_optimal() -> None:
    assert pareto_flags([(0.5, 1.0), (0.5, 1.0)]) == [True, True]


def test_same_accuracy_lower_resource_dominates() -> None:
    assert pareto_flags([(0.5, 2.0), (0.5, 1.0)]) == [False, True]


def test_missing_values_are_never_on_the_front_nor_dominate() -> None:
    assert pareto_flags([(0.9, None), (None, 1.0), (0.1, 100.0)]) == [False, False, True]


def test_empty_input() -> None:
    assert pareto_flags([]) == []


def test_matches_brute_force_on_random_points_with_ties() -> None:
    rng = random.Random(7)
    for _ in range(50):
        points: list[tuple[float | None, float | None]] = [
            (rng.choice([0.3, 0.4, 0.5, 0.6]), rng.choice([1.0, 2.0, 3.0, None]))
            for _ in range(rng.randint(1, 12))]
        assert pareto_flags(points) == _brute_force(points)
