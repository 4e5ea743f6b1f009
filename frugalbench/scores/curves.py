"""Frugality curves: the score as a function of the weight w, and where two runs swap rank.

For a fixed run the score A - w * p(R), with p(R) = 1 / (1 + 1/R) (p(0) = 0), is a straight
line in w: it starts at the accuracy A (w = 0) and falls with slope -p(R). Two lines cross at
most once, so the w at which two runs swap rank has a closed form.
"""
from __future__ import annotations

from collections.abc import Sequence

from frugalbench.errors import UsageError
from frugalbench.scores.frugality import check_accuracy, penalty, score_from_ratio

DEFAULT_WS: tuple[float, ...] = tuple(i / 20 for i in range(21))  # 0, 0.05, ..., 1


def frugality_curve(accuracy: float, R: float | None,
                    ws: Sequence[float] = DEFAULT_WS) -> list[tuple[float, float]]:
    """[(w, score)] for each w in ``ws`` (each within [0, 1]); [] when R is missing."""
    for w in ws:
        if not 0.0 <= w <= 1.0:
            raise UsageError(f'curve weights must lie in [0, 1], got {w!r}')
    if R is None:
        return []
    return [(float(w), score_from_ratio(accuracy, R, w)) for w in ws]  # type: ignore[misc]


def crossover_w(a1: float, R1: float | None, a2: float, R2: float | None) -> float | None:
    """The w in [0, 1] at which the scores of runs 1 and 2 are equal and their order flips.

    Scores are linear in w, so w* = (a1 - a2) / (p(R1) - p(R2)). None when a resource is
    missing, when the lines are parallel (equal penalty slopes: one run leads for every w, or
    the two are identical), or when w* lies outside [0, 1]. An end point (0 or 1) means the two
    tie there and are strictly ordered on the rest of [0, 1].
    """
    a1, a2 = check_accuracy(a1), check_accuracy(a2)
    if R1 is None or R2 is None:
        return None
    slope = penalty(R1, 1.0) - penalty(R2, 1.0)
    if slope == 0.0:
        return None
    w = (a1 - a2) / slope + 0.0  # + 0.0 turns -0.0 into 0.0
    return w if 0.0 <= w <= 1.0 else None
