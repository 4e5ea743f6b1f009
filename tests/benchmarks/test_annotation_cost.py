"""The annotation cost model reproduces the published per-image times it is built from."""
from __future__ import annotations

import pytest

from frugalbench.benchmarks.annotation_cost import ImageAnnotationStats, seconds_per_image

VOC_CLASSES = 20


def voc_like_images() -> list[ImageAnnotationStats]:
    """Ten images with PASCAL VOC 2012's averages: 1.5 classes and 2.8 instances per image.

    One point per present class (Bearman et al.'s point-level protocol).
    """
    layout = [(1, 3)] * 5 + [(2, 3), (2, 3), (2, 3), (2, 2), (2, 2)]  # 15 classes, 28 instances
    return [ImageAnnotationStats(classes_present=c, regions=r, points=c, labelled_pixels=0, total_pixels=1)
            for c, r in layout]


@pytest.mark.parametrize(('kind', 'published'), [
    ('image-tags', 20.0),   # Bearman et al. 2016: image-level labels
    ('points', 22.1),       # one point per class
    ('scribble', 34.9),     # squiggles
    ('full', 239.7),        # full supervision
])
def test_voc_statistics_give_bearman_et_al_times(kind: str, published: float) -> None:
    images = voc_like_images()
    mean = sum(seconds_per_image(kind, s, VOC_CLASSES) for s in images) / len(images)
    assert mean == pytest.approx(published, abs=1e-9)


def test_coarse_costs_the_cityscapes_fraction_of_the_outlines() -> None:
    stats = ImageAnnotationStats(classes_present=3, regions=10, points=0, labelled_pixels=0, total_pixels=1)
    full = seconds_per_image('full', stats, 5)
    coarse = seconds_per_image('coarse', stats, 5)
    assert full == pytest.approx(2 + 10 * 79.0)
    assert coarse == pytest.approx(2 + 10 * 79.0 * 7 / 90)


def test_extra_points_cost_less_than_first_points() -> None:
    one = ImageAnnotationStats(classes_present=2, regions=4, points=2, labelled_pixels=2, total_pixels=1)
    four = ImageAnnotationStats(classes_present=2, regions=4, points=4, labelled_pixels=4, total_pixels=1)
    assert seconds_per_image('points', four, 11) - seconds_per_image('points', one, 11) == pytest.approx(2 * 0.9)


def test_none_is_free_and_unknown_kinds_fail() -> None:
    stats = ImageAnnotationStats(0, 0, 0, 0, 100)
    assert seconds_per_image('none', stats, 11) == 0.0
    with pytest.raises(ValueError, match='unknown annotation kind'):
        seconds_per_image('polygons', stats, 11)
