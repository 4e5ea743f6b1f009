"""Accuracy: dataset-level IoU with MMSegmentation's own machinery.

Per image, ``IoUMetric.intersect_and_union`` gives per-class areas; they are summed over the
whole split and ``IoUMetric.total_area_to_metrics`` turns the sums into IoU/Acc (unrounded
fractions). Classes with no pixels in ground truth nor prediction are NaN and left out of
the mean, as in MMSeg. Per-image areas are kept for bootstrap intervals.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from mmseg.evaluation.metrics import IoUMetric



@dataclass(frozen=True)
class ImageAreas:
    """Per-class pixel areas of one image (intersection, union, prediction, label)."""

    image: str
    intersect: np.ndarray
    union: np.ndarray
    pred: np.ndarray
    label: np.ndarray


@dataclass(frozen=True)
class AccuracyResult:
    miou: float
    macc: float
    aacc: float
    per_class_iou: dict[str, float | None]
    per_class_acc: dict[str, float | None]
    num_images: int
    images: list[ImageAreas] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, object]:
        return dict(miou=self.miou, macc=self.macc, aacc=self.aacc, per_class_iou=self.per_class_iou,
                    per_class_acc=self.per_class_acc, num_images=self.num_images)


def image_areas(prediction: np.ndarray, label: np.ndarray, num_classes: int, ignore_index: int,
                image: str = '') -> ImageAreas:
    if prediction.shape != label.shape:
        raise ValueError(f'{image}: prediction shape {prediction.shape} != label shape {label.shape}')
    areas = IoUMetric.intersect_and_union(torch.from_numpy(prediction.astype(np.int64)),
                                          torch.from_numpy(label.astype(np.int64)),
                                          num_classes, ignore_index)
    intersect, union, pred, lab = (a.numpy().astype(np.float64) for a in areas)
    return ImageAreas(image=image, intersect=intersect, union=union, pred=pred, label=lab)


def summarize(images: list[ImageAreas], class_names: list[str]) -> AccuracyResult:
    """Dataset-level metrics from per-image areas (sum, then divide once)."""
    if not images:
        raise ValueError('no images to summarize')
    totals = [torch.from_numpy(np.sum([getattr(a, k) for a in images], axis=0))
              for k in ('intersect', 'union', 'pred', 'label')]
    metrics = IoUMetric.total_area_to_metrics(*totals, metrics=['mIoU'])
    iou, acc = metrics['IoU'], metrics['Acc']
    return AccuracyResult(
        miou=float(np.nanmean(iou)), macc=float(np.nanmean(acc)), aacc=float(metrics['aAcc']),
        per_class_iou={n: _finite_or_none(v) for n, v in zip(class_names, iou)},
        per_class_acc={n: _finite_or_none(v) for n, v in zip(class_names, acc)},
        num_images=len(images), images=images)


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
