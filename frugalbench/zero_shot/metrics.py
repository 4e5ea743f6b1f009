"""Seen mIoU, unseen mIoU and their harmonic mean (hIoU), from dataset-level areas.

IoU of a class = its intersection summed over the test set / its union summed over the test set
(MMSegmentation's definition); classes absent from both prediction and ground truth (union 0)
are left out of a mean, as MMSeg's ``nanmean`` does. hIoU = 2 s u / (s + u), 0 when both are 0
(Xian et al. 2017's harmonic mean, used by Bucher et al. 2019 and Xu et al. 2021).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from frugalbench.zero_shot.splits import SplitLike, seen_indices, unseen_indices


def harmonic_mean(seen: float, unseen: float) -> float:
    """2 s u / (s + u); 0 when both are 0."""
    total = seen + unseen
    return 0.0 if total <= 0 else 2.0 * seen * unseen / total


def _mean_iou(intersect: np.ndarray, union: np.ndarray, indices: Sequence[int]) -> float | None:
    values = [intersect[i] / union[i] for i in indices if union[i] > 0]
    return float(np.mean(values)) if values else None


def split_scores(intersect: Sequence[float], union: Sequence[float], unseen: Sequence[int]) -> dict[str, Any]:
    """Scores of one split from per-class dataset-level areas (``unseen``: class indices)."""
    inter, uni = np.asarray(intersect, dtype=np.float64), np.asarray(union, dtype=np.float64)
    unseen_set = sorted({int(i) for i in unseen})
    seen = [i for i in range(len(inter)) if i not in unseen_set]
    seen_miou, unseen_miou = _mean_iou(inter, uni, seen), _mean_iou(inter, uni, unseen_set)
    hiou = (harmonic_mean(seen_miou, unseen_miou)
            if seen_miou is not None and unseen_miou is not None else None)
    return {'seen_miou': seen_miou, 'unseen_miou': unseen_miou, 'hiou': hiou,
            'seen_classes': seen, 'unseen_classes': unseen_set}


def zero_shot_accuracy(benchmark: SplitLike, intersect: Sequence[float],
                       union: Sequence[float]) -> dict[str, dict[str, Any]]:
    """``accuracy.zero_shot``: one entry per split the benchmark declares (empty when none)."""
    result = {}
    for name in getattr(benchmark, 'zero_shot', {}) or {}:
        scores = split_scores(intersect, union, unseen_indices(benchmark, name))
        scores['seen_classes'] = [benchmark.classes[i] for i in seen_indices(benchmark, name)]
        scores['unseen_classes'] = [benchmark.classes[i] for i in unseen_indices(benchmark, name)]
        result[name] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in scores.items()}
    return result
