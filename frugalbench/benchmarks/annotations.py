"""Annotation budgets: weaker annotations derived from the full masks, deterministically and nested.

Mask annotations (labelled pixel sets, unlabelled pixels = the ignore index), strongest first::

    full      the benchmark's mask (its ``label_map`` applied)
    coarse    each region eroded: a band of ``coarse_margin`` x (shorter image side) pixels along
              every boundary (class borders, ignored areas and the image border) is left unlabelled;
              a region too thin for that keeps its innermost pixels
    scribble  thin strokes along the middle of each region: its medial axis where the distance
              to the boundary is at least ``scribble_depth`` x the region's largest (and at least the
              coarse threshold), plus the region's deepest pixels
    points    ``points_per_region`` pixels per region, drawn from its scribble with a generator
              seeded by (seed, image name)

so points ⊂ scribble ⊂ coarse ⊂ full pixel by pixel, and each labels only pixels whose class is
the full mask's. Regions smaller than ``min_region_fraction`` of the image (and at least
``MIN_REGION_PIXELS``) are left out of the weaker annotations, as annotators skip specks.
Regions are 8-connected components of one class. Non-mask types: ``image-tags`` (the classes
present in each image, served as a JSON file) and ``none`` (class names only: zero-shot).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from frugalbench.benchmarks.annotation_cost import (
    COST_MODEL_VERSION,
    ImageAnnotationStats,
    seconds_per_image,
)
from frugalbench.benchmarks.definition import ANNOTATION_KINDS, Benchmark, Sample
from frugalbench.errors import BenchmarkError, UsageError

DERIVATION_VERSION = 1
MASK_KINDS = ('full', 'coarse', 'scribble', 'points')  # strongest first; each contains the next
MIN_REGION_PIXELS = 4
MANIFEST_NAME = 'annotation.json'
PNG_SETTINGS = dict(format='PNG', compress_level=6, optimize=False)
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class DerivationSettings:
    """The constants of the derivation (part of the protocol: change them with the version)."""

    coarse_margin: float = 0.02       # unlabelled band along boundaries, fraction of the shorter side
    scribble_depth: float = 0.5       # scribbles keep medial-axis pixels this deep, relative to the region
    points_per_region: int = 1
    min_region_fraction: float = 1e-4

    def margin_pixels(self, shape: tuple[int, int]) -> int:
        return int(round(self.coarse_margin * min(shape)))

    def min_region_pixels(self, shape: tuple[int, int]) -> int:
        return max(MIN_REGION_PIXELS, int(round(self.min_region_fraction * shape[0] * shape[1])))


DEFAULT_SETTINGS = DerivationSettings()


@dataclass(frozen=True)
class AnnotationBudget:
    """A training budget: images x annotation type -> labelled pixels and annotator seconds."""

    benchmark: str
    kind: str
    images: int
    labelled_pixels: int
    total_pixels: int
    annotator_seconds: float   # an estimate from annotation_cost (published per-type timings)
    seed: int
    subset_id: str = ''
    derivation_version: int = DERIVATION_VERSION
    cost_model_version: int = COST_MODEL_VERSION

    def to_dict(self) -> dict:
        return asdict(self)


def name_seed(name: str) -> int:
    """A stable 64-bit integer from an image name (independent of Python's hash randomisation)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], 'little')


def derive_annotation(label: np.ndarray, kind: str, ignore_index: int, seed: int, name: str = '',
                      settings: DerivationSettings = DEFAULT_SETTINGS) -> np.ndarray:
    """The annotation ``kind`` (full|coarse|scribble|points) derived from a full label map.

    ``label`` is an (H, W) uint8 map with the benchmark's label_map already applied; ``name``
    (the image's file name) and ``seed`` fix where points fall. Unlabelled pixels get ``ignore_index``.
    """
    return derive_with_stats(label, kind, ignore_index, seed, name, settings)[0]


def derive_with_stats(label: np.ndarray, kind: str, ignore_index: int, seed: int, name: str = '',
                      settings: DerivationSettings = DEFAULT_SETTINGS,
                      ) -> tuple[np.ndarray, ImageAnnotationStats]:
    """``derive_annotation`` plus what it took to annotate (for the cost model)."""
    if kind not in MASK_KINDS:
        raise UsageError(f'{kind!r} is not a mask annotation; choose one of {", ".join(MASK_KINDS)}')
    if label.ndim != 2 or label.dtype != np.uint8:
        raise BenchmarkError(f'a label map must be a 2-D uint8 array, got {label.dtype} of shape {label.shape}')
    classes = [int(c) for c in np.unique(label) if c != ignore_index]
    keep = np.ones(label.shape, dtype=bool) if kind == 'full' else np.zeros(label.shape, dtype=bool)
    rng = np.random.default_rng([seed, name_seed(name)])
    regions = points = 0
    for class_index in classes:
        mask = label == class_index
        box = _bounding_box(mask)  # work on the class's bounding box only: same result, faster
        class_keep, class_regions, class_points = _derive_class(mask[box], kind, settings, rng, label.shape)
        regions += class_regions
        points += class_points
        if kind != 'full':
            keep[box] |= class_keep
    keep &= label != ignore_index
    out = np.where(keep, label, np.uint8(ignore_index)).astype(np.uint8)
    stats = ImageAnnotationStats(classes_present=len(classes), regions=regions, points=points,
                                 labelled_pixels=int(keep.sum()), total_pixels=int(label.size))
    return out, stats


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _derive_class(mask: np.ndarray, kind: str, settings: DerivationSettings,
                  rng: np.random.Generator, image_shape: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """Kept pixels of one class (``mask``: its bounding box), regions kept, points drawn."""
    components, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    kept_ids = np.flatnonzero(sizes >= settings.min_region_pixels(image_shape))
    kept_ids = kept_ids[kept_ids > 0]
    if kind == 'full' or kept_ids.size == 0:
        return np.zeros_like(mask), int(kept_ids.size), 0
    # Distance to the nearest pixel outside the class; the image border counts as a boundary.
    depth, nearest = ndimage.distance_transform_edt(np.pad(mask, 1), return_indices=True)
    depth, nearest = depth[1:-1, 1:-1], nearest[:, 1:-1, 1:-1]
    max_depth = np.zeros(count + 1)
    max_depth[1:] = ndimage.maximum(depth, components, index=np.arange(1, count + 1))
    kept = np.zeros(count + 1, dtype=bool)
    kept[kept_ids] = True
    coarse_threshold = np.minimum(settings.margin_pixels(image_shape) + 1, max_depth)
    coarse = kept[components] & (depth >= coarse_threshold[components]) & mask
    if kind == 'coarse':
        return coarse, int(kept_ids.size), 0
    scribble_threshold = np.maximum(coarse_threshold, settings.scribble_depth * max_depth)
    deep = depth >= scribble_threshold[components]
    core = depth >= max_depth[components]  # the deepest pixels: every region keeps a stroke
    scribble = coarse & ((deep & _medial_axis(mask, depth, nearest)) | core)
    if kind == 'scribble':
        return scribble, int(kept_ids.size), 0
    points = _draw_points(scribble, components, settings.points_per_region, rng)
    return points, int(kept_ids.size), int(points.sum())


def _medial_axis(mask: np.ndarray, depth: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    """Pixels on the medial axis of ``mask``: a pixel whose nearest boundary point and its right
    or lower neighbour's lie far apart (at least its depth, i.e. seen under 60 degrees or more),
    so the pixel sits between two opposite sides; the criterion ignores boundary jaggedness."""
    axis = np.zeros(mask.shape, dtype=bool)
    for dy, dx in ((0, 1), (1, 0)):
        height, width = mask.shape[0] - dy, mask.shape[1] - dx
        both = mask[:height, :width] & mask[dy:, dx:]
        gap2 = ((nearest[0, :height, :width] - nearest[0, dy:, dx:]) ** 2
                + (nearest[1, :height, :width] - nearest[1, dy:, dx:]) ** 2)
        here = depth[:height, :width]
        axis[:height, :width] |= both & (gap2 >= np.maximum(here * here, 4.0))
    return axis


def _draw_points(scribble: np.ndarray, components: np.ndarray, per_region: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``per_region`` pixels of each region's scribble, drawn without replacement."""
    flat = np.flatnonzero(scribble)  # raster order: deterministic
    owners = components.ravel()[flat]
    order = np.argsort(owners, kind='stable')
    flat, owners = flat[order], owners[order]
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if owners.size else np.array([], int)
    ends = np.r_[starts[1:], owners.size]
    chosen = np.zeros(scribble.size, dtype=bool)
    for start, end in zip(starts, ends):
        picks = rng.choice(end - start, size=min(per_region, end - start), replace=False)
        chosen[flat[start + picks]] = True
    return chosen.reshape(scribble.shape)


def image_tags(label: np.ndarray, ignore_index: int) -> list[int]:
    """The classes present in a label map (image-level tags), ascending."""
    return [int(c) for c in np.unique(label) if c != ignore_index]


def annotation_budget(benchmark: Benchmark, samples: list[Sample], kind: str, seed: int,
                      subset_id: str = '', on_image: Callable[[], None] | None = None,
                      settings: DerivationSettings = DEFAULT_SETTINGS) -> AnnotationBudget:
    """Labelled pixels and estimated annotator seconds of ``kind`` over ``samples``."""
    stats = [s for _, s, _ in _derive_all(benchmark, samples, kind, seed, on_image, settings)]
    return _budget(benchmark, stats, kind, seed, subset_id)


def _budget(benchmark: Benchmark, stats: list[ImageAnnotationStats], kind: str, seed: int,
            subset_id: str) -> AnnotationBudget:
    return AnnotationBudget(
        benchmark=benchmark.name, kind=kind, images=len(stats),
        labelled_pixels=sum(s.labelled_pixels for s in stats),
        total_pixels=sum(s.total_pixels for s in stats),
        annotator_seconds=round(sum(seconds_per_image(kind, s, benchmark.num_classes) for s in stats), 3),
        seed=seed, subset_id=subset_id)


def _derive_all(benchmark: Benchmark, samples: list[Sample], kind: str, seed: int,
                on_image: Callable[[], None] | None, settings: DerivationSettings,
                ) -> Iterable[tuple[Sample, ImageAnnotationStats, np.ndarray | list[int] | None]]:
    """For each sample: its stats and payload (mask, tag list, or None for ``none``)."""
    if kind not in ANNOTATION_KINDS:
        raise UsageError(f'unknown annotation type {kind!r}; choose one of {", ".join(ANNOTATION_KINDS)}')
    for sample in samples:
        if kind == 'none':
            width, height = _image_size(sample)
            stats, payload = ImageAnnotationStats(0, 0, 0, 0, width * height), None
        else:
            label = benchmark.read_label(sample)
            if kind == 'image-tags':
                payload = image_tags(label, benchmark.ignore_index)
                stats = ImageAnnotationStats(len(payload), 0, 0, 0, int(label.size))
            else:
                payload, stats = derive_with_stats(label, kind, benchmark.ignore_index, seed,
                                                   sample.name, settings)
        yield sample, stats, payload
        if on_image is not None:
            on_image()


def _image_size(sample: Sample) -> tuple[int, int]:
    try:
        with Image.open(sample.image) as img:
            return img.size
    except OSError as exc:
        raise BenchmarkError(f'image {sample.image} cannot be read: {exc}') from None


def write_annotation_set(benchmark: Benchmark, samples: list[Sample], kind: str, out_dir: Path,
                         seed: int, subset_id: str = '', on_image: Callable[[], None] | None = None,
                         settings: DerivationSettings = DEFAULT_SETTINGS) -> Path:
    """Write annotation ``kind`` for ``samples`` into ``out_dir`` for training; returns ``out_dir``.

    Mask kinds: one PNG per image named ``<stem><seg_suffix>`` (pair it with the image folder
    and ``seg_map_suffix=benchmark.seg_suffix`` in an MMSeg dataset; the label_map is already
    applied, unlabelled = ignore index). ``image-tags``: ``image_tags.json``. ``none``:
    ``classes.json`` only. Always: ``stems.txt`` (an MMSeg ``ann_file``) and ``annotation.json``
    (the budget and the settings). A folder written earlier by this function is replaced;
    any other non-empty folder is refused.
    """
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir)
    tags: dict[str, list[int]] = {}
    stats = []
    for sample, image_stats, payload in _derive_all(benchmark, samples, kind, seed, on_image, settings):
        stats.append(image_stats)
        if isinstance(payload, np.ndarray):
            Image.fromarray(payload).save(out_dir / f'{_stem(benchmark, sample)}{benchmark.seg_suffix}',
                                                    **PNG_SETTINGS)
        elif payload is not None:
            tags[sample.name] = payload
    classes = {'classes': list(benchmark.classes), 'ignore_index': benchmark.ignore_index}
    if kind == 'image-tags':
        _write_json(out_dir / 'image_tags.json', {**classes, 'images': tags})
    _write_json(out_dir / 'classes.json', classes)
    (out_dir / 'stems.txt').write_text(''.join(f'{_stem(benchmark, s)}\n' for s in samples))
    budget = _budget(benchmark, stats, kind, seed, subset_id)
    _write_json(out_dir / MANIFEST_NAME, {
        'budget': budget.to_dict(), 'protocol_version': benchmark.protocol_version,
        'settings': asdict(settings), 'images': [s.name for s in samples]})
    return out_dir


def _stem(benchmark: Benchmark, sample: Sample) -> str:
    name = sample.image.name
    return name[:-len(benchmark.img_suffix)] if name.endswith(benchmark.img_suffix) else sample.image.stem


def _prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / MANIFEST_NAME).is_file():
            raise UsageError(f'{out_dir} is not empty and was not written by frugalbench: '
                             'choose a new or empty folder')
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2) + '\n')
