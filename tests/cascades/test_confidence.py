"""The confidence a member returns with each answer: computed in the worker, checked by the parent."""
from __future__ import annotations

import pytest
import torch

from frugalbench.errors import OutputError
from frugalbench.frames import Frame
from frugalbench.model import read_confidence
from frugalbench.model.worker import confidence_histogram


def test_worker_histogram_counts_every_pixel_by_its_max_probability() -> None:
    logits = torch.zeros(3, 2, 2)
    logits[0, 0, 0] = 10.0                      # one confident pixel (p ~ 1.0)
    counts = confidence_histogram(logits, 100)  # the other three: p = 1/3 exactly
    assert sum(counts) == 4 and counts[99] == 1 and counts[33] == 3
    sigmoid = confidence_histogram(torch.zeros(1, 1, 3), 10)   # one channel: max(s, 1 - s) = 0.5
    assert sigmoid[5] == 3


@pytest.mark.parametrize(('counts', 'problem'), [
    (None, 'without a confidence histogram'),
    ([1] * 9, 'without a confidence histogram of 10 bins'),
    ([1.0] * 10, 'not non-negative integers'),
    ([-1, 7] + [0] * 8, 'not non-negative integers'),
    ([True] * 6 + [0] * 4, 'not non-negative integers'),
    ([1] * 10, 'counts 10 pixels for a 2 x 3'),
])
def test_parent_refuses_a_malformed_histogram(counts: object, problem: str) -> None:
    frame = Frame('answer', {'id': 0, 'height': 2, 'width': 3, 'confidence': counts}, bytes(6))
    with pytest.raises(OutputError, match=problem):
        read_confidence(frame, (2, 3), 10)


def test_parent_reads_a_valid_histogram() -> None:
    frame = Frame('answer', {'confidence': [0] * 9 + [6]}, bytes(6))
    assert read_confidence(frame, (2, 3), 10).tolist() == [0] * 9 + [6]


def test_bundled_cascades_are_valid() -> None:
    """Every bundled cascade manifest validates, and its members are bundled submissions of its benchmark."""
    from pathlib import Path

    from frugalbench.cli.submissions import validate_folder
    from frugalbench.submission import is_cascade_folder, load_cascade_manifest
    root = Path(__file__).resolve().parents[2] / 'submissions'
    cascades = [p for p in sorted(root.iterdir()) if (p / 'submission.yaml').is_file() and is_cascade_folder(p)]
    assert cascades, 'the repository bundles a cascade'
    for folder in cascades:
        manifest = load_cascade_manifest(folder)
        assert all((root / member / 'submission.yaml').is_file() for member in manifest.members)
        assert validate_folder(folder) is None
