"""Accuracy against an independent confusion-matrix implementation and hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from frugalbench.accuracy import image_areas, summarize


def confusion_miou(preds: list[np.ndarray], labels: list[np.ndarray], n: int, ignore: int) -> tuple[float, float]:
    """Dataset-level mIoU and aAcc from one confusion matrix (an independent reference)."""
    matrix = np.zeros((n, n), np.int64)
    for pred, label in zip(preds, labels):
        keep = label != ignore
        np.add.at(matrix, (label[keep].astype(int), pred[keep].astype(int)), 1)
    intersect = np.diag(matrix).astype(float)
    union = matrix.sum(0) + matrix.sum(1) - intersect
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = intersect / union
    return float(np.nanmean(iou)), float(intersect.sum() / matrix.sum())


def test_hand_computed_two_class_example() -> None:
    label = np.array([[0, 0], [1, 255]], np.uint8)
    pred = np.array([[0, 1], [1, 1]], np.uint8)
    result = summarize([image_areas(pred, label, 2, 255)], ['a', 'b'])
    # class a: I=1, U=2 -> 0.5; class b: I=1, U=2 -> 0.5; aAcc = 2/3 (ignored pixel left out)
    assert result.per_class_iou == {'a': 0.5, 'b': 0.5}
    assert result.miou == pytest.approx(0.5)
    assert result.aacc == pytest.approx(2 / 3)


def test_dataset_level_matches_confusion_matrix_reference() -> None:
    rng = np.random.default_rng(1)
    preds = [rng.integers(0, 5, (37, 41)).astype(np.uint8) for _ in range(6)]
    labels = []
    for pred in preds:
        label = np.where(rng.random(pred.shape) < 0.6, pred, rng.integers(0, 5, pred.shape)).astype(np.uint8)
        label[rng.random(pred.shape) < 0.05] = 255
        labels.append(label)
    areas = [image_areas(p, l, 5, 255) for p, l in zip(preds, labels)]
    result = summarize(areas, list('abcde'))
    miou, aacc = confusion_miou(preds, labels, 5, 255)
    assert result.miou == pytest.approx(miou, abs=1e-12)
    assert result.aacc == pytest.approx(aacc, abs=1e-12)


def test_absent_class_is_left_out_of_the_mean() -> None:
    label = np.zeros((4, 4), np.uint8)
    pred = np.zeros((4, 4), np.uint8)
    result = summarize([image_areas(pred, label, 3, 255)], ['a', 'b', 'c'])
    assert result.per_class_iou == {'a': 1.0, 'b': None, 'c': None}
    assert result.miou == 1.0


def test_dataset_level_differs_from_per_image_mean() -> None:
    """MMSeg's definition sums areas over images before dividing (not torchmetrics' per-image mean)."""
    big_label = np.ones((10, 10), np.uint8)
    big_pred = np.ones((10, 10), np.uint8)
    small_label = np.array([[1, 0]], np.uint8)
    small_pred = np.array([[0, 0]], np.uint8)
    areas = [image_areas(big_pred, big_label, 2, 255), image_areas(small_pred, small_label, 2, 255)]
    result = summarize(areas, ['zero', 'one'])
    assert result.per_class_iou['one'] == pytest.approx(100 / 101)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match='shape'):
        image_areas(np.zeros((2, 2), np.uint8), np.zeros((3, 2), np.uint8), 2, 255)
