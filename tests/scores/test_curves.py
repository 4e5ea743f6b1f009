"""Frugality curves and the crossover weight, against hand-computed values."""
from __future__ import annotations

import pytest

from frugalbench.errors import UsageError
from frugalbench.scores import DEFAULT_WS, crossover_w, frugality_curve, score_from_ratio


def test_curve_is_a_line_from_the_accuracy() -> None:
    # R = 1: penalty w/2
    curve = frugality_curve(0.6, 1.0, [0.0, 0.5, 1.0])
    assert [w for w, _ in curve] == [0.0, 0.5, 1.0]
    assert [s for _, s in curve] == pytest.approx([0.6, 0.35, 0.1], abs=1e-15)


def test_default_curve_spans_zero_to_one() -> None:
    curve = frugality_curve(0.5, 0.0)
    assert [w for w, _ in curve] == list(DEFAULT_WS)
    assert DEFAULT_WS[0] == 0.0 and DEFAULT_WS[-1] == 1.0 and len(DEFAULT_WS) == 21
    assert all(s == 0.5 for _, s in curve)  # R = 0: flat


def test_curve_of_a_missing_resource_is_empty() -> None:
    assert frugality_curve(0.5, None) == []


def test_curve_weights_outside_zero_one_are_refused() -> None:
    with pytest.raises(UsageError, match=r'lie in \[0, 1\]'):
        frugality_curve(0.5, 1.0, [0.5, 1.5])


def test_crossover_hand_computed() -> None:
    # run 1: 0.6 - w/2 (R = 1); run 2: 0.5 (R = 0); equal at w = 0.2
    w = crossover_w(0.6, 1.0, 0.5, 0.0)
    assert w == pytest.approx(0.2, abs=1e-15)
    assert crossover_w(0.5, 0.0, 0.6, 1.0) == pytest.approx(0.2, abs=1e-15)


def test_runs_swap_order_at_the_crossover() -> None:
    w = crossover_w(0.7, 3.0, 0.55, 0.25)  # penalties 0.75 w and 0.2 w: w* = 0.15 / 0.55
    assert w == pytest.approx(0.15 / 0.55)
    before, after = w - 0.01, w + 0.01
    assert score_from_ratio(0.7, 3.0, before) > score_from_ratio(0.55, 0.25, before)
    assert score_from_ratio(0.7, 3.0, after) < score_from_ratio(0.55, 0.25, after)
    assert score_from_ratio(0.7, 3.0, w) == pytest.approx(score_from_ratio(0.55, 0.25, w))


def test_crossover_beyond_one_is_none() -> None:
    assert crossover_w(0.9, 1.0, 0.3, 0.0) is None  # w* = 0.6 / 0.5 = 1.2


def test_better_and_cheaper_run_never_swaps() -> None:
    assert crossover_w(0.6, 0.0, 0.5, 1.0) is None  # w* = 0.1 / -0.5 < 0


def test_parallel_and_identical_runs_never_swap() -> None:
    assert crossover_w(0.6, 2.0, 0.5, 2.0) is None
    assert crossover_w(0.6, 2.0, 0.6, 2.0) is None


def test_equal_accuracy_ties_at_zero() -> None:
    w = crossover_w(0.6, 1.0, 0.6, 3.0)
    assert w == 0.0 and str(w) == '0.0'  # not -0.0


def test_crossover_with_missing_resource_is_none() -> None:
    assert crossover_w(0.6, None, 0.5, 1.0) is None
