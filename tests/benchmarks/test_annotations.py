"""Weaker annotations derived from full masks: nested, agreeing with the full mask, deterministic."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from frugalbench.benchmarks import Benchmark, select_subset
from frugalbench.benchmarks.annotations import (
    MASK_KINDS,
    DerivationSettings,
    annotation_budget,
    derive_annotation,
    derive_with_stats,
    image_tags,
    write_annotation_set,
)
from frugalbench.errors import UsageError

IGNORE = 255


def assert_nested_and_agreeing(label: np.ndarray, name: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Every weaker annotation labels a subset of the next stronger one, with the full mask's class."""
    derived = {kind: derive_annotation(label, kind, IGNORE, seed, name) for kind in MASK_KINDS}
    assert np.array_equal(derived['full'], label)
    for kind, annotation in derived.items():
        labelled = annotation != IGNORE
        assert np.array_equal(annotation[labelled], label[labelled]), f'{kind} disagrees with the full mask'
    for weaker, stronger in zip(MASK_KINDS[1:], MASK_KINDS[:-1]):
        weak, strong = derived[weaker] != IGNORE, derived[stronger] != IGNORE
        assert not (weak & ~strong).any(), f'{weaker} labels pixels that {stronger} leaves unlabelled'
        assert weak.sum() < strong.sum(), f'{weaker} is not weaker than {stronger}'
    return derived


def test_hand_built_example_gives_the_expected_coarse_mask_and_points() -> None:
    # A 12x12 image: class 1 fills rows/cols 2..9 (8x8), class 0 the 2-pixel frame around it.
    label = np.zeros((12, 12), np.uint8)
    label[2:10, 2:10] = 1
    settings = DerivationSettings(coarse_margin=2 / 12, min_region_fraction=0.0)  # a 2-pixel band
    coarse = derive_annotation(label, 'coarse', IGNORE, seed=0, name='x.png', settings=settings)
    expected = np.full((12, 12), IGNORE, np.uint8)
    # The frame is too thin for a 2-pixel band: it keeps its deepest pixels, the four inner
    # corners (distance sqrt(2) to the square's corner, 2 to the image border); every other
    # frame pixel is 1 from the border or the square.
    for y, x in ((1, 1), (1, 10), (10, 1), (10, 10)):
        expected[y, x] = 0
    expected[4:8, 4:8] = 1  # the square loses a 2-pixel band along its border
    assert np.array_equal(coarse, expected)
    points, stats = derive_with_stats(label, 'points', IGNORE, 0, 'x.png', settings)
    assert (points != IGNORE).sum() == 2 and stats.points == 2 and stats.regions == 2
    assert sorted(points[points != IGNORE].tolist()) == [0, 1]


def test_ignored_pixels_stay_ignored_and_count_as_a_boundary() -> None:
    label = np.ones((20, 20), np.uint8)
    label[:, :5] = IGNORE
    coarse = derive_annotation(label, 'coarse', IGNORE, 0, 'y.png', DerivationSettings(coarse_margin=0.1))
    assert (coarse[:, :5] == IGNORE).all()
    assert (coarse[:, 5:7] == IGNORE).all()  # the 2-pixel band next to the ignored area is dropped
    assert (coarse[2:18, 7:18] == 1).all()


def test_synthetic_annotations_are_nested_and_agree(synthetic: Benchmark) -> None:
    for sample in synthetic.samples('train')[:8]:
        assert_nested_and_agreeing(synthetic.read_label(sample), sample.name)


def test_camvid_annotations_are_nested_and_agree(camvid: Benchmark) -> None:
    for sample in camvid.samples('train')[:3]:
        label = camvid.read_label(sample)
        assert 11 not in np.unique(label)  # label_map sends "unlabelled" to the ignore index
        derived = assert_nested_and_agreeing(label, sample.name)
        assert (derived['coarse'][label == IGNORE] == IGNORE).all()


def test_every_kept_region_gets_its_points(synthetic: Benchmark) -> None:
    sample = synthetic.samples('train')[0]
    label = synthetic.read_label(sample)
    settings = DerivationSettings(points_per_region=3)
    points, stats = derive_with_stats(label, 'points', IGNORE, 0, sample.name, settings)
    scribble = derive_annotation(label, 'scribble', IGNORE, 0, sample.name, settings)
    min_pixels = settings.min_region_pixels(label.shape)
    expected = 0
    for class_index in image_tags(label, IGNORE):
        regions, count = ndimage.label(label == class_index, structure=np.ones((3, 3)))
        for region in range(1, count + 1):
            inside = regions == region
            if inside.sum() < min_pixels:
                continue
            want = min(3, int(((scribble == class_index) & inside).sum()))
            assert int(((points == class_index) & inside).sum()) == want
            expected += want
    assert stats.points == expected == (points != IGNORE).sum()


def test_points_depend_on_seed_and_name_only(synthetic: Benchmark) -> None:
    sample = synthetic.samples('train')[1]
    label = synthetic.read_label(sample)
    first = derive_annotation(label, 'points', IGNORE, 3, sample.name)
    assert np.array_equal(first, derive_annotation(label.copy(), 'points', IGNORE, 3, sample.name))
    assert not np.array_equal(first, derive_annotation(label, 'points', IGNORE, 4, sample.name))
    assert not np.array_equal(first, derive_annotation(label, 'points', IGNORE, 3, 'other.png'))


def test_image_tags_are_the_classes_present() -> None:
    label = np.array([[0, 0, 3], [IGNORE, 3, 5]], np.uint8)
    assert image_tags(label, IGNORE) == [0, 3, 5]


def test_non_mask_kinds_are_refused_by_derive() -> None:
    with pytest.raises(UsageError, match='not a mask annotation'):
        derive_annotation(np.zeros((4, 4), np.uint8), 'image-tags', IGNORE, 0)


def test_written_set_matches_the_derivation_and_its_budget(synthetic: Benchmark, tmp_path: Path) -> None:
    samples = select_subset(synthetic, 3, seed=0)
    out = write_annotation_set(synthetic, samples, 'scribble', tmp_path / 'ann', seed=0, subset_id='sid')
    labelled = 0
    for sample in samples:
        written = np.asarray(Image.open(out / sample.name))
        expected = derive_annotation(synthetic.read_label(sample), 'scribble', IGNORE, 0, sample.name)
        assert np.array_equal(written, expected)
        labelled += int((expected != IGNORE).sum())
    assert (out / 'stems.txt').read_text().split() == [s.name[:-4] for s in samples]
    manifest = json.loads((out / 'annotation.json').read_text())
    assert manifest['budget']['labelled_pixels'] == labelled
    assert manifest['budget']['total_pixels'] == 3 * 128 * 128
    assert manifest['budget']['subset_id'] == 'sid'
    assert manifest['budget'] == annotation_budget(synthetic, samples, 'scribble', 0, 'sid').to_dict()


def test_written_set_loads_as_mmseg_training_data(synthetic: Benchmark, tmp_path: Path) -> None:
    from mmseg.datasets import BaseSegDataset
    from mmseg.datasets.transforms import LoadAnnotations
    samples = select_subset(synthetic, 2, seed=0)
    out = write_annotation_set(synthetic, samples, 'points', tmp_path / 'points', seed=0)
    dataset = BaseSegDataset(
        data_root='', data_prefix=dict(img_path=str(samples[0].image.parent), seg_map_path=str(out)),
        ann_file=str(out / 'stems.txt'), img_suffix='.png', seg_map_suffix='.png',
        metainfo=dict(classes=tuple(synthetic.classes)), lazy_init=False, serialize_data=False)
    assert len(dataset) == 2
    info = dataset.get_data_info(0)
    loaded = LoadAnnotations()(dict(info, seg_fields=[]))['gt_seg_map']
    expected = derive_annotation(synthetic.read_label(samples[0]), 'points', IGNORE, 0, samples[0].name)
    assert np.array_equal(loaded, expected)


def test_tags_and_none_are_served_without_masks(synthetic: Benchmark, tmp_path: Path) -> None:
    samples = select_subset(synthetic, 2, seed=0)
    out = write_annotation_set(synthetic, samples, 'image-tags', tmp_path / 'tags', seed=0)
    tags = json.loads((out / 'image_tags.json').read_text())
    assert tags['classes'] == synthetic.classes
    for sample in samples:
        assert tags['images'][sample.name] == image_tags(synthetic.read_label(sample), IGNORE)
    assert not list(out.glob('*.png'))
    none = write_annotation_set(synthetic, samples, 'none', tmp_path / 'none', seed=0)
    budget = json.loads((none / 'annotation.json').read_text())['budget']
    assert budget['annotator_seconds'] == 0 and budget['labelled_pixels'] == 0
    assert json.loads((none / 'classes.json').read_text())['classes'] == synthetic.classes


def test_a_foreign_folder_is_never_overwritten(synthetic: Benchmark, tmp_path: Path) -> None:
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'notes.txt').write_text('precious')
    with pytest.raises(UsageError, match='not written by frugalbench'):
        write_annotation_set(synthetic, select_subset(synthetic, 1), 'full', tmp_path / 'mine', seed=0)
    assert (tmp_path / 'mine' / 'notes.txt').read_text() == 'precious'
