"""Dataset-level mIoU, its bootstrap interval, and ties between overlapping intervals."""
from __future__ import annotations

import numpy as np
import pytest

from frugalbench.errors import BenchmarkError, UsageError
from frugalbench.scores import (
    bootstrap_miou_ci,
    intervals_overlap,
    miou_from_areas,
    rank_with_ties,
    tie_groups,
)

IGNORE = 255


def _areas(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image per-class intersection and union areas, ignoring IGNORE pixels (numpy)."""
    inter = np.zeros((len(labels), n_classes))
    union = np.zeros((len(labels), n_classes))
    for k, (label, pred) in enumerate(zip(labels, preds)):
        keep = label != IGNORE
        label, pred = label[keep], pred[keep]
        area_label = np.bincount(label, minlength=n_classes)
        area_pred = np.bincount(pred, minlength=n_classes)
        inter[k] = np.bincount(label[label == pred], minlength=n_classes)
        union[k] = area_label + area_pred - inter[k]
    return inter, union


def _realistic_example(seed: int = 3, n_images: int = 40, n_classes: int = 6,
                       side: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Imbalanced random label maps, 75% correct predictions, some ignored pixels."""
    rng = np.random.default_rng(seed)
    prior = np.array([0.4, 0.25, 0.15, 0.1, 0.07, 0.03])[:n_classes]
    labels = rng.choice(n_classes, p=prior / prior.sum(), size=(n_images, side, side))
    preds = np.where(rng.random(labels.shape) < 0.75, labels,
                     rng.integers(0, n_classes, labels.shape))
    labels = np.where(rng.random(labels.shape) < 0.05, IGNORE, labels)
    return labels, preds, *_areas(labels, preds, n_classes)


def test_miou_hand_computed_with_an_absent_class() -> None:
    inter = [[3, 0, 1], [1, 0, 1]]
    union = [[4, 0, 2], [4, 0, 6]]
    # sums: I = [4, 0, 2], U = [8, 0, 8]; IoU = [0.5, NaN, 0.25]; class 1 left out
    assert miou_from_areas(inter, union) == 0.375


def test_miou_sums_areas_before_dividing() -> None:
    # per-image mean would be (1.0 + 0.0) / 2 = 0.5; dataset-level is 9 / 10 = 0.9
    assert miou_from_areas([[9], [0]], [[9], [1]]) == pytest.approx(0.9)


def test_miou_agrees_with_mmsegmentation() -> None:
    torch = pytest.importorskip('torch')
    torch.set_num_threads(1)
    metrics = pytest.importorskip('mmseg.evaluation.metrics')
    labels, preds, _, _ = _realistic_example()
    per_image = [metrics.IoUMetric.intersect_and_union(
        torch.from_numpy(p), torch.from_numpy(lab), 6, IGNORE) for p, lab in zip(preds, labels)]
    inter = np.stack([r[0].numpy() for r in per_image])
    union = np.stack([r[1].numpy() for r in per_image])
    totals = [sum(r[k] for r in per_image) for k in range(4)]
    reference = metrics.IoUMetric.total_area_to_metrics(*totals, ['mIoU'])
    assert miou_from_areas(inter, union) == pytest.approx(float(np.nanmean(reference['IoU'])), abs=1e-6)


def test_all_zero_unions_are_a_benchmark_error() -> None:
    with pytest.raises(BenchmarkError, match='no labelled pixels'):
        miou_from_areas([[0, 0]], [[0, 0]])


@pytest.mark.parametrize('inter, union, message', [
    ([[1, 2]], [[1, 2, 3]], 'shape'),
    ([1, 2], [1, 2], 'shape'),
    ([[2]], [[1]], 'no intersection may exceed its union'),
    ([[-1]], [[1]], '>= 0'),
])
def test_malformed_areas_are_usage_errors(inter: list, union: list, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        miou_from_areas(inter, union)


def test_bootstrap_of_one_image_is_a_point() -> None:
    low, high = bootstrap_miou_ci([[3, 1]], [[4, 2]], n_boot=50)
    assert low == high == pytest.approx(0.625)


def test_bootstrap_of_two_opposite_images_spans_zero_to_one() -> None:
    # replicates: both image A (IoU 1), one of each (0.5), both image B (0); 2.5% and 97.5%
    # percentiles of 1000 draws are the extremes
    assert bootstrap_miou_ci([[1], [0]], [[1], [1]], n_boot=1000, seed=1) == (0.0, 1.0)


def test_bootstrap_interval_contains_the_point_estimate() -> None:
    _, _, inter, union = _realistic_example()
    point = miou_from_areas(inter, union)
    low, high = bootstrap_miou_ci(inter, union, seed=0)
    assert low < point < high
    assert 0.0 < high - low < 0.1


def test_bootstrap_is_deterministic_from_the_seed() -> None:
    _, _, inter, union = _realistic_example()
    first = bootstrap_miou_ci(inter, union, n_boot=200, seed=42)
    assert bootstrap_miou_ci(inter, union, n_boot=200, seed=42) == first
    assert bootstrap_miou_ci(inter, union, n_boot=200, seed=43) != first


def test_wider_confidence_gives_a_wider_interval() -> None:
    _, _, inter, union = _realistic_example()
    narrow = bootstrap_miou_ci(inter, union, seed=0, confidence=0.5)
    wide = bootstrap_miou_ci(inter, union, seed=0, confidence=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


@pytest.mark.parametrize('kwargs', [{'n_boot': 0}, {'n_boot': 1.5}, {'confidence': 1.0}])
def test_bad_bootstrap_settings_are_usage_errors(kwargs: dict) -> None:
    with pytest.raises(UsageError):
        bootstrap_miou_ci([[1]], [[1]], **kwargs)


def test_touching_intervals_overlap_and_missing_ones_do_not() -> None:
    assert intervals_overlap((0.1, 0.2), (0.2, 0.3))
    assert not intervals_overlap((0.1, 0.2), (0.21, 0.3))
    assert not intervals_overlap(None, (0.0, 1.0))


def test_tie_groups_chain_overlaps() -> None:
    intervals = [(0.5, 0.6), (0.58, 0.7), (0.68, 0.8), (0.9, 0.95), None]
    assert tie_groups(intervals) == [[0, 1, 2], [3], [4]]


def test_overlapping_runs_share_a_rank() -> None:
    intervals = [(0.5, 0.6), (0.58, 0.7), (0.68, 0.8), (0.9, 0.95), None]
    assert rank_with_ties([0.55, 0.64, 0.74, 0.92, 0.3], intervals) == [2, 2, 2, 1, 5]


def test_equal_values_without_intervals_share_a_rank() -> None:
    assert rank_with_ties([0.5, 0.5, 0.4], [None, None, None]) == [1, 1, 3]
