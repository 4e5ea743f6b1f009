"""Training under a zero-shot split, with the real training child: what it was fed, what it recorded,
and how its evaluated run is scored and admitted to the split's track."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from zero_shot.conftest import ATTRIBUTE_CONFIG, write_folder

from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.ranking import record_from_document
from frugalbench.scores.tracks import parse_tracks, qualifies
from frugalbench.training import TrainOptions, train_submission

BAR = 2  # the unseen class of split u1


@pytest.fixture
def trained(zs_benchmark: str, isolated: Path) -> tuple[Path, object, Path]:
    """An attribute-head model trained 2 iterations under split u1 (real child); its folder, record, db."""
    folder = write_folder(isolated / 'submissions' / 'attr', ATTRIBUTE_CONFIG, {})
    db = isolated / 'results.duckdb'
    record = train_submission(folder, TrainOptions(zero_shot='u1', db_path=db))
    return folder, record, db


@pytest.mark.slow  # the real training child (2 iterations) and an evaluation: ~30 s on an idle 2-core VM
def test_training_under_a_split_feeds_no_unseen_pixel_and_is_admitted_to_its_track(trained: tuple) -> None:
    folder, record, db = trained
    zero_shot = record.zero_shot
    assert zero_shot['split'] == 'u1' and zero_shot['unseen'] == ['bar'] and zero_shot['mode'] == 'ignore'
    assert zero_shot['unseen_pixels_removed'] > 0 and zero_shot['images_dropped'] == 0
    # the guard ran on every sample the training child fed the model (2 iterations x batch 2) ...
    guard = zero_shot['guard']
    assert guard['samples_checked'] >= 4
    assert BAR not in guard['labels_passed'] and {0, 1} <= set(guard['labels_passed'])
    # ... and the label files the child could read hold no unseen pixel either
    labels = Path(record.work_folder) / 'annotations-zs-u1'
    for stem in (labels / 'stems.txt').read_text().split():
        assert BAR not in np.unique(np.asarray(Image.open(labels / f'{stem}.png')))
    # evaluated: verified, trained under u1, so in zero-shot:u1 with its three metrics
    outcome = evaluate_submission(folder, EvaluationOptions(db_path=db, measure=False))
    assert outcome.ok, outcome.document.get('failure_reason')
    run = record_from_document(outcome.document)
    assert run.budget_state == 'verified' and run.zero_shot_split == 'u1'
    tracks = parse_tracks({}, {'u1': None})
    assert qualifies(run, tracks['zero-shot:u1'])
    assert set(outcome.document['accuracy']['zero_shot']['u1']) >= {'seen_miou', 'unseen_miou', 'hiou'}


def test_drop_images_mode_leaves_out_every_image_with_an_unseen_pixel(tmp_path: Path) -> None:
    from frugalbench.zero_shot.splits import apply_split
    source = tmp_path / 'labels'
    source.mkdir()
    with_bar, without = np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8)
    with_bar[0, 0] = BAR
    Image.fromarray(with_bar).save(source / 'a.png')
    Image.fromarray(without).save(source / 'b.png')
    (source / 'stems.txt').write_text('a\nb\n')
    removed = apply_split(source, tmp_path / 'out', '.png', [BAR], 255, 'drop-images')
    assert removed == {'unseen_pixels_removed': 1, 'images_dropped': 1, 'images_kept': 1, 'dropped_images': ['a']}
    assert (tmp_path / 'out' / 'stems.txt').read_text() == 'b\n'
    assert np.asarray(Image.open(tmp_path / 'out' / 'a.png'))[0, 0] == 255


def test_label_guard_refuses_an_unseen_label() -> None:
    import frugalbench.mmseg_ext  # noqa: F401
    from frugalbench.zero_shot.modules import ZeroShotLabelGuard
    guard = ZeroShotLabelGuard(unseen=[BAR])
    assert guard({'gt_seg_map': np.array([[0, 1]], np.uint8)}) is not None
    with pytest.raises(RuntimeError, match='unseen class label'):
        guard({'gt_seg_map': np.array([[0, BAR]], np.uint8)})
