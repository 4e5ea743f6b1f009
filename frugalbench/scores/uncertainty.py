"""Bootstrap confidence intervals of dataset-level mIoU, and ties between overlapping intervals.

mIoU is MMSegmentation's ``IoUMetric`` definition: intersection and union areas are summed over
all test images per class, IoU = sum(I) / sum(U), and mIoU is the mean over classes whose union is
not zero (classes absent from both labels and predictions are NaN and left out). The bootstrap
resamples test images with replacement and recomputes that dataset-level mIoU; the interval is
the percentile interval of the resampled values.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from frugalbench.errors import BenchmarkError, UsageError

DEFAULT_N_BOOT = 1000
DEFAULT_CONFIDENCE = 0.95


class Interval(NamedTuple):
    """A closed interval [low, high]; unpacks as ``low, high``."""

    low: float
    high: float


def _check_areas(intersect: ArrayLike, union: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    i = np.asarray(intersect, dtype=np.float64)
    u = np.asarray(union, dtype=np.float64)
    if i.ndim != 2 or i.shape != u.shape or i.shape[0] == 0 or i.shape[1] == 0:
        raise UsageError('intersection and union areas must both have shape [n_images, n_classes] '
                         f'with n_images, n_classes >= 1; got {i.shape} and {u.shape}')
    if not (np.isfinite(i).all() and np.isfinite(u).all()) or (i < 0).any() or (i > u).any():
        raise UsageError('areas must be finite, >= 0, and no intersection may exceed its union')
    return i, u


def _miou_rows(total_i: NDArray[np.float64], total_u: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row-wise nanmean of total_i / total_u over classes with a non-zero union (NaN if none)."""
    present = total_u > 0
    iou = np.divide(total_i, total_u, out=np.zeros_like(total_i), where=present)
    n_present = present.sum(axis=-1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(n_present > 0, iou.sum(axis=-1) / n_present, np.nan)


def miou_from_areas(intersect: ArrayLike, union: ArrayLike) -> float:
    """Dataset-level mIoU (fraction) from per-image per-class areas of shape [n_images, n_classes]."""
    i, u = _check_areas(intersect, union)
    value = float(_miou_rows(i.sum(axis=0), u.sum(axis=0)))
    if np.isnan(value):
        raise BenchmarkError('every class has a zero union: the test images hold no labelled pixels')
    return value


def bootstrap_miou_ci(intersect: ArrayLike, union: ArrayLike, *, n_boot: int = DEFAULT_N_BOOT,
                      seed: int = 0, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Percentile bootstrap interval of dataset-level mIoU over test images.

    Each of ``n_boot`` replicates draws n_images images with replacement (as multinomial counts,
    so the sums are one matrix product) and recomputes the dataset-level mIoU. Deterministic for
    a given ``seed``. Replicates with no labelled pixel at all are dropped.
    """
    i, u = _check_areas(intersect, union)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise UsageError(f'n_boot must be an integer >= 1, got {n_boot!r}')
    if not 0.0 < confidence < 1.0:
        raise UsageError(f'confidence must lie strictly between 0 and 1, got {confidence!r}')
    n_images = i.shape[0]
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=n_boot)
    replicates = _miou_rows(counts @ i, counts @ u)
    replicates = replicates[~np.isnan(replicates)]
    if replicates.size == 0:
        raise BenchmarkError('every bootstrap replicate lacks labelled pixels: no interval exists')
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return Interval(float(low), float(high))


def intervals_overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    """Whether two closed intervals share a point; False when either is missing."""
    if a is None or b is None:
        return False
    return a[0] <= b[1] and b[0] <= a[1]


def tie_groups(intervals: Sequence[tuple[float, float] | None]) -> list[list[int]]:
    """Indices grouped into chains of overlapping intervals (connected components).

    Overlap is not transitive: if A overlaps B and B overlaps C, all three form one group even
    when A and C are apart, since no pair along the chain can be told apart. A missing interval
    forms a group of its own. Groups are sorted by their first index, members ascending.
    """
    order = sorted((iv[0], iv[1], k) for k, iv in enumerate(intervals) if iv is not None)
    groups: list[list[int]] = []
    reach = -np.inf
    for low, high, index in order:
        if groups and low <= reach:
            groups[-1].append(index)
            reach = max(reach, high)
        else:
            groups.append([index])
            reach = high
    groups.extend([k] for k, iv in enumerate(intervals) if iv is None)
    return sorted((sorted(g) for g in groups), key=lambda g: g[0])


def rank_with_ties(values: Sequence[float], intervals: Sequence[tuple[float, float] | None]) -> list[int]:
    """Competition ranks (1 = best, higher value better) in which each tie group shares a rank.

    Groups are the ``tie_groups`` of the intervals, merged with runs of exactly equal value; they
    are ordered by their best value, and a group's rank is 1 + the number of runs in better
    groups (so ranks read 1, 1, 3, ...).
    """
    if len(values) != len(intervals):
        raise UsageError(f'{len(values)} values but {len(intervals)} intervals')
    parent = list(range(len(values)))

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for group in tie_groups(intervals):
        for k in group[1:]:
            parent[find(k)] = find(group[0])
    by_value: dict[float, int] = {}
    for k, value in enumerate(values):
        parent[find(k)] = find(by_value.setdefault(value, k))
    members: dict[int, list[int]] = {}
    for k in range(len(values)):
        members.setdefault(find(k), []).append(k)
    ranked = sorted(members.values(), key=lambda g: -max(values[k] for k in g))
    ranks = [0] * len(values)
    better = 0
    for group in ranked:
        for k in group:
            ranks[k] = better + 1
        better += len(group)
    return ranks
