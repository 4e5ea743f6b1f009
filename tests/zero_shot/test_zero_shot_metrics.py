"""Seen/unseen/hIoU: the harness's figures against an independent numpy confusion matrix."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalbench.benchmarks import load_benchmark
from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.zero_shot import harmonic_mean, split_scores


def confusion(pred: np.ndarray, label: np.ndarray, n: int, ignore: int = 255) -> np.ndarray:
    keep = label != ignore
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (label[keep].astype(int), pred[keep].astype(int)), 1)
    return matrix


def reference(matrix: np.ndarray, unseen: list[int]) -> tuple[float, float, float]:
    """Seen mIoU, unseen mIoU, hIoU from a confusion matrix (rows: truth), classes with no pixel skipped."""
    tp = np.diag(matrix).astype(float)
    union = matrix.sum(0) + matrix.sum(1) - tp
    iou = {i: tp[i] / union[i] for i in range(len(tp)) if union[i] > 0}
    seen = float(np.mean([v for i, v in iou.items() if i not in unseen]))
    unseen_miou = float(np.mean([v for i, v in iou.items() if i in unseen]))
    both = seen + unseen_miou
    return seen, unseen_miou, (2 * seen * unseen_miou / both if both else 0.0)


def test_split_scores_equal_a_confusion_matrix_over_several_images() -> None:
    rng = np.random.default_rng(3)
    n, unseen = 5, [1, 4]
    labels = [rng.integers(0, n, (20, 30)).astype(np.uint8) for _ in range(4)]
    labels[0][:3] = 255
    preds = [np.where(rng.random(lab.shape) < 0.6, lab % n, rng.integers(0, n, lab.shape)).astype(np.uint8)
             for lab in labels]
    total = sum(confusion(p, lab, n) for p, lab in zip(preds, labels))
    inter = np.diag(total)
    union = total.sum(0) + total.sum(1) - inter  # dataset-level: summed over images, divided once
    scores = split_scores(inter, union, unseen)
    expected = reference(total, unseen)
    assert (scores['seen_miou'], scores['unseen_miou'], scores['hiou']) == pytest.approx(expected, abs=1e-12)


def test_hiou_is_zero_when_both_are_zero_and_harmonic_otherwise() -> None:
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(0.5, 0.0) == 0.0
    assert harmonic_mean(0.6, 0.3) == pytest.approx(0.4)


@pytest.mark.slow  # one real evaluation on the tiny benchmark
def test_evaluated_run_reports_the_split_scores_of_its_predictions(zs_benchmark: str, painter: Path,
                                                                   isolated: Path) -> None:
    """The painter answers 'disc' everywhere (found by name in dataset_meta): its seen/unseen/hIoU in the
    run document must equal a confusion matrix of that prediction against the test labels."""
    outcome = evaluate_submission(painter, EvaluationOptions(db_path=isolated / 'r.duckdb', measure=False))
    assert outcome.ok, outcome.document.get('failure_reason')
    benchmark = load_benchmark(zs_benchmark)
    labels = [benchmark.read_label(s) for s in benchmark.samples('test')]
    disc = benchmark.classes.index('disc')
    total = sum(confusion(np.full_like(lab, disc), lab, 3) for lab in labels)
    seen, unseen, hiou = reference(total, [benchmark.classes.index('bar')])
    scores = outcome.document['accuracy']['zero_shot']['u1']
    assert scores['unseen_classes'] == ['bar'] and scores['seen_classes'] == ['background', 'disc']
    assert (scores['seen_miou'], scores['unseen_miou'], scores['hiou']) == pytest.approx((seen, unseen, hiou))
    assert seen > 0 and unseen == 0 and hiou == 0  # 'disc' everywhere: the class it was told by name
    per_class = outcome.document['accuracy']['per_class_iou']
    assert per_class['disc'] > 0 and per_class['background'] == 0 and per_class['bar'] == 0
