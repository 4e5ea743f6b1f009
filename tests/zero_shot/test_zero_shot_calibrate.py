"""Calibrated stacking's fit: the constant that maximises val hIoU, on hand-made per-pixel scores."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from frugalbench.zero_shot.calibrate import fit, scores_at


def data() -> dict:
    """Class 2 unseen: its pixels score 1.0 below the best seen class, which is class 0 everywhere."""
    label = np.array([0] * 60 + [1] * 20 + [2] * 20, dtype=np.uint8)
    seen_class = np.where(label == 1, 1, 0).astype(np.uint8)
    seen_score = np.zeros(100, np.float32)
    unseen_score = np.where(label == 2, -1.0, -3.0).astype(np.float32)
    return {'benchmark': SimpleNamespace(num_classes=3, ignore_index=255), 'unseen': [2], 'images': 1,
            'label': label, 'seen_class': seen_class, 'seen_score': seen_score,
            'unseen_class': np.full(100, 2, np.uint8), 'unseen_score': unseen_score}


def test_without_calibration_the_unseen_class_is_never_predicted() -> None:
    scores = scores_at(data(), 0.0)
    assert scores['unseen_miou'] == 0.0 and scores['hiou'] == 0.0
    assert scores['seen_miou'] == pytest.approx((60 / 80 + 1.0) / 2)  # class 0 also took the unseen pixels


def test_the_fitted_constant_recovers_the_unseen_class_without_losing_seen_pixels() -> None:
    result = fit(data())
    assert 1.0 <= result['calibration'] < 3.0  # above the unseen pixels' gap, below the seen pixels'
    assert result['val'] == {'seen_miou': pytest.approx(1.0), 'unseen_miou': pytest.approx(1.0),
                             'hiou': pytest.approx(1.0)}
    assert result['val_without_calibration']['hiou'] == 0.0
