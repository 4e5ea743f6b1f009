"""Pareto fronts of (mIoU, resource): which runs no other run beats on both at once."""
from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import groupby


def pareto_flags(points: Sequence[tuple[float | None, float | None]]) -> list[bool]:
    """For each (miou, resource) point, whether it is Pareto-optimal (max mIoU, min resource).

    A point is dominated when another has mIoU >= and resource <= with at least one strict.
    Equal points do not dominate each other, so both are optimal. A point with a missing (None)
    or NaN coordinate is never on the front and never dominates. O(n log n).
    """
    flags = [False] * len(points)
    valid = [(float(r), float(m), i) for i, (m, r) in enumerate(points)
             if m is not None and r is not None and not math.isnan(m) and not math.isnan(r)]
    valid.sort()
    best_with_less = -math.inf  # highest mIoU among points with a strictly smaller resource
    for _, same_resource in groupby(valid, key=lambda p: p[0]):
        group = list(same_resource)
        best_here = max(m for _, m, _ in group)
        for _, miou, index in group:
            flags[index] = best_with_less < miou and miou == best_here
        best_with_less = max(best_with_less, best_here)
    return flags
