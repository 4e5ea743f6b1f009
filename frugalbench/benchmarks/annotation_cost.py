"""Annotation cost model: estimated annotator seconds per image for each annotation type.

The constants are published measurements; each carries its source. The model is built so that
it reproduces the per-image times that Bearman et al. measured on PASCAL VOC 2012 (20 classes;
on average 1.5 classes and 2.8 object instances per image) when given those statistics::

    image-level tags   20 classes x 1 s                          =  20.0 s
    points             18.5 absent x 1 s + 1.5 present x 2.4 s   =  22.1 s
    scribbles          18.5 x 1 s + 1.5 x 10.93 s                =  34.9 s
    full masks         18.5 x 1 s + 2.8 instances x 79 s         = 239.7 s

On another dataset it is applied to the statistics of the derived annotation of each image
(classes present, connected regions, points clicked), so that an image with many objects costs
more than an empty one. Coarse masks are priced with the Cityscapes ratio of coarse to fine
annotation time. These are estimates, and are labelled as such wherever they are shown.
"""
from __future__ import annotations

from dataclasses import dataclass

COST_MODEL_VERSION = 1

# Bearman, Russakovsky, Ferrari, Fei-Fei, "What's the Point: Semantic Segmentation with Point
# Supervision", ECCV 2016, Sec. 6 (annotation times on PASCAL VOC 2012):
SECONDS_PER_CLASS_QUESTION = 1.0
"""Answering "is class X in this image?" for one class (image-level labels: 20.0 s per VOC image)."""
SECONDS_FIRST_POINT = 2.4
"""Clicking one point on the first instance of a present class (point-level: 22.1 s per VOC image)."""
SECONDS_EXTRA_POINT = 0.9
"""Each further point clicked (Bearman et al. 2016, all-instances point annotation)."""
SECONDS_SQUIGGLE_PER_CLASS = (34.9 - 18.5 * SECONDS_PER_CLASS_QUESTION) / 1.5
"""Squiggles over one present class: derived from squiggle-level 34.9 s per VOC image, 1.5 classes."""

# Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014: 22 worker-hours per 1,000
# instance polygons, i.e. about 79 s per object outline (the value Bearman et al. use for full masks).
SECONDS_PER_REGION_OUTLINE = 79.0

# Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene Understanding", CVPR 2016:
# a finely annotated image took more than 1.5 h on average; a coarse one had a budget of 7 min.
COARSE_TO_FINE_RATIO = 7.0 / 90.0


@dataclass(frozen=True)
class ImageAnnotationStats:
    """What an annotator has to do for one image, measured on its derived annotation."""

    classes_present: int   # classes with at least one labelled pixel in the full mask
    regions: int           # connected regions (objects/stuff areas) the annotation covers
    points: int            # points clicked (points annotation only)
    labelled_pixels: int
    total_pixels: int


def seconds_per_image(kind: str, stats: ImageAnnotationStats, num_classes: int) -> float:
    """Estimated annotator seconds to produce annotation ``kind`` for one image."""
    absent = max(num_classes - stats.classes_present, 0) * SECONDS_PER_CLASS_QUESTION
    if kind == 'none':
        return 0.0
    if kind == 'image-tags':
        return num_classes * SECONDS_PER_CLASS_QUESTION
    if kind == 'points':
        extra = max(stats.points - stats.classes_present, 0)
        return absent + stats.classes_present * SECONDS_FIRST_POINT + extra * SECONDS_EXTRA_POINT
    if kind == 'scribble':
        return absent + stats.classes_present * SECONDS_SQUIGGLE_PER_CLASS
    if kind == 'coarse':
        return absent + COARSE_TO_FINE_RATIO * stats.regions * SECONDS_PER_REGION_OUTLINE
    if kind == 'full':
        return absent + stats.regions * SECONDS_PER_REGION_OUTLINE
    raise ValueError(f'unknown annotation kind {kind!r}')
