"""The synthetic benchmark: small scenes of textured shapes, generated deterministically from a seed.

Each 128x128 scene (the size is in ``synthetic.yaml``) shows 3 to 6 objects of six classes on a
cluttered background. A class is defined by its **shape and its texture**, never by its colour:
every object takes two random colours, so a model has to learn shape and texture. Objects overlap
(later ones occlude earlier ones, and the label map follows), background clutter (short strokes and
blobs) and thin occluding strokes across objects are labelled background, and every pixel gets
uniform integer noise.

Determinism: one ``numpy.random.Generator`` per image, seeded from (seed, split, index); only
exact arithmetic on arrays (no array transcendentals whose last bit may depend on the CPU's SIMD
path); PNGs written by Pillow with fixed settings and no metadata. The same seed gives
byte-identical files. Bump ``GENERATOR_VERSION`` (and the benchmark's ``protocol_version``)
whenever the output changes.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from frugalbench.benchmarks.definition import GeneratorSpec
from frugalbench.errors import BenchmarkError

GENERATOR_VERSION = 1
MARKER_NAME = 'generator.json'
CLASSES = ('background', 'disc', 'square', 'triangle', 'ring', 'cross', 'ellipse')
PNG_SETTINGS = dict(format='PNG', compress_level=6, optimize=False)

OBJECTS_PER_SCENE = (3, 6)        # inclusive range
OBJECT_RADIUS = (0.10, 0.24)      # fraction of the shorter image side
CLUTTER_ITEMS = (6, 14)           # background strokes and blobs per scene
OCCLUDING_STROKES = (0, 2)        # thin background strokes drawn over the objects
PIXEL_NOISE = 10                  # uniform integer noise in [-PIXEL_NOISE, PIXEL_NOISE]
MIN_COLOUR_CONTRAST = 70          # mean absolute RGB difference between an object's two colours


def scene_seed(seed: int, split: str, index: int) -> list[int]:
    """The entropy for one image: independent of how many images other splits hold."""
    return [GENERATOR_VERSION, seed, zlib.crc32(split.encode()), index]


def image_name(split: str, index: int) -> str:
    return f'{split}_{index:04d}.png'


def generate_scene(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene: an RGB image (H, W, 3) uint8 and its label map (H, W) uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = _background(rng, width, height)
    label = np.zeros((height, width), dtype=np.uint8)
    for _ in range(rng.integers(CLUTTER_ITEMS[0], CLUTTER_ITEMS[1] + 1)):
        _draw_clutter(rng, image, x, y, thin=False)
    for _ in range(rng.integers(OBJECTS_PER_SCENE[0], OBJECTS_PER_SCENE[1] + 1)):
        class_index = int(rng.integers(1, len(CLASSES)))
        mask, pattern = _object(rng, CLASSES[class_index], x, y, width, height)
        dark, light = _colour_pair(rng)
        colours = dark + pattern[..., None] * (light - dark)
        image[mask] = colours[mask]
        label[mask] = class_index
    for _ in range(rng.integers(OCCLUDING_STROKES[0], OCCLUDING_STROKES[1] + 1)):
        stroke = _draw_clutter(rng, image, x, y, thin=True)
        label[stroke] = 0
    noise = rng.integers(-PIXEL_NOISE, PIXEL_NOISE + 1, size=image.shape)
    return np.clip(np.rint(image) + noise, 0, 255).astype(np.uint8), label


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Two random colours mixed by smooth low-frequency noise."""
    weight = _smooth_noise(rng, width, height, cells=4)
    a, b = rng.integers(0, 256, size=(2, 3)).astype(np.float64)
    return a + weight[..., None] * (b - a)


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cells: int) -> np.ndarray:
    """Values in [0, 1]: a (cells+1)^2 random grid, bilinearly interpolated."""
    grid = rng.random((cells + 1, cells + 1))
    gy = np.arange(height, dtype=np.float64) * cells / max(height - 1, 1)
    gx = np.arange(width, dtype=np.float64) * cells / max(width - 1, 1)
    y0 = np.minimum(gy.astype(int), cells - 1)
    x0 = np.minimum(gx.astype(int), cells - 1)
    fy, fx = (gy - y0)[:, None], (gx - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _colour_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two random colours far enough apart for the texture to show."""
    while True:
        a, b = rng.integers(0, 256, size=(2, 3)).astype(np.float64)
        if np.abs(a - b).mean() >= MIN_COLOUR_CONTRAST:
            return a, b


def _object(rng: np.random.Generator, kind: str, x: np.ndarray, y: np.ndarray,
            width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The shape mask of one object and its texture pattern in [0, 1]."""
    side = min(width, height)
    radius = rng.uniform(*OBJECT_RADIUS) * side
    cx, cy = rng.uniform(0.1 * width, 0.9 * width), rng.uniform(0.1 * height, 0.9 * height)
    angle = rng.uniform(0.0, math.pi)
    cos, sin = math.cos(angle), math.sin(angle)
    u = (x - cx) * cos + (y - cy) * sin
    v = -(x - cx) * sin + (y - cy) * cos
    r2 = u * u + v * v
    period = rng.uniform(3.0, 6.0)
    if kind == 'disc':  # stripes
        mask = r2 <= radius ** 2
        pattern = np.floor(u / period) % 2
    elif kind == 'square':  # checkerboard
        half = 0.8 * radius
        mask = (np.abs(u) <= half) & (np.abs(v) <= half)
        pattern = (np.floor(u / period) + np.floor(v / period)) % 2
    elif kind == 'triangle':  # dots on a lattice
        mask = _triangle(u, v, 1.35 * radius)  # enlarged: a triangle covers less than its circle
        du, dv = u % (period + 1) - (period + 1) / 2, v % (period + 1) - (period + 1) / 2
        pattern = (du * du + dv * dv <= (0.35 * (period + 1)) ** 2).astype(np.float64)
    elif kind == 'ring':  # smooth radial gradient
        r = np.sqrt(r2)
        mask = (r <= radius) & (r >= 0.55 * radius)
        pattern = np.clip((r - 0.55 * radius) / (0.45 * radius), 0.0, 1.0)
    elif kind == 'cross':  # grid of thin lines
        arm = 0.3 * radius
        mask = ((np.abs(u) <= arm) & (np.abs(v) <= radius)) | ((np.abs(v) <= arm) & (np.abs(u) <= radius))
        p = period + 1
        pattern = ((np.abs(u % p - p / 2) < 0.75) | (np.abs(v % p - p / 2) < 0.75)).astype(np.float64)
    elif kind == 'ellipse':  # per-pixel speckle
        mask = (u / (1.25 * radius)) ** 2 + (v / (0.55 * radius)) ** 2 <= 1.0
        pattern = (rng.random(x.shape) < 0.5).astype(np.float64)
    else:
        raise ValueError(f'unknown synthetic class {kind!r}')
    return mask, pattern


def _triangle(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    """An equilateral triangle with circumradius ``radius`` (inradius radius / 2)."""
    inside = np.ones(u.shape, dtype=bool)
    for k in range(3):
        normal = math.pi / 2 + k * 2 * math.pi / 3
        inside &= u * math.cos(normal) + v * math.sin(normal) <= radius / 2
    return inside


def _draw_clutter(rng: np.random.Generator, image: np.ndarray, x: np.ndarray, y: np.ndarray,
                  thin: bool) -> np.ndarray:
    """A short stroke or a small blob in a random colour; returns the pixels it covered."""
    height, width = x.shape
    colour = rng.integers(0, 256, size=3).astype(np.float64)
    x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
    if thin or rng.random() < 0.6:
        length = rng.uniform(0.3, 0.8) * width if thin else rng.uniform(4, 14)
        angle = rng.uniform(0.0, 2 * math.pi)
        x1, y1 = x0 + length * math.cos(angle), y0 + length * math.sin(angle)
        half_width = 0.6 if thin else rng.uniform(0.5, 1.5)
        covered = _segment_distance(x, y, x0, y0, x1, y1) <= half_width
    else:
        covered = (x - x0) ** 2 + (y - y0) ** 2 <= rng.uniform(1.0, 3.0) ** 2
    image[covered] = colour
    return covered


def _segment_distance(x: np.ndarray, y: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    px, py = x - (x0 + t * dx), y - (y0 + t * dy)
    return np.sqrt(px * px + py * py)


def marker_for(spec: GeneratorSpec) -> dict:
    """What ``generator.json`` holds for data generated from ``spec``."""
    return {'generator_version': GENERATOR_VERSION, 'seed': spec.seed,
            'image_size': list(spec.image_size), 'split_sizes': dict(sorted(spec.split_sizes.items())),
            'classes': list(CLASSES)}


def read_marker(root: Path) -> dict | None:
    path = root / MARKER_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def is_generated(root: Path, spec: GeneratorSpec) -> bool:
    """True if ``root`` holds a complete generation from exactly this spec and generator version."""
    return read_marker(root) == marker_for(spec)


def generate(spec: GeneratorSpec, root: Path, on_image: Callable[[], None] | None = None) -> Path:
    """Generate every split into ``root`` (MMSeg layout), replacing what is there. Returns ``root``.

    Files are written to a temporary sibling folder that is renamed into place at the end, so
    an interrupted run never leaves a half-written dataset behind.
    """
    if root.is_dir() and any(root.iterdir()) and read_marker(root) is None:
        raise BenchmarkError(f'{root} holds files that frugalbench did not generate: move them away '
                             'or point FRUGALBENCH_DATA elsewhere')
    width, height = spec.image_size
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f'.{root.name}.tmp-{os.getpid()}'
    shutil.rmtree(staging, ignore_errors=True)
    for split, count in sorted(spec.split_sizes.items()):
        img_dir, ann_dir = staging / 'img_dir' / split, staging / 'ann_dir' / split
        img_dir.mkdir(parents=True)
        ann_dir.mkdir(parents=True)
        for index in range(count):
            rng = np.random.default_rng(scene_seed(spec.seed, split, index))
            image, label = generate_scene(rng, width, height)
            Image.fromarray(image).save(img_dir / image_name(split, index), **PNG_SETTINGS)
            Image.fromarray(label).save(ann_dir / image_name(split, index), **PNG_SETTINGS)
            if on_image is not None:
                on_image()
    (staging / MARKER_NAME).write_text(json.dumps(marker_for(spec), indent=2) + '\n')
    _replace(staging, root)
    return root


def _replace(staging: Path, root: Path) -> None:
    """Move ``staging`` to ``root``; if another process finished the same work first, keep theirs."""
    if root.exists():
        old = root.parent / f'.{root.name}.old-{os.getpid()}'
        try:
            root.rename(old)
        except FileNotFoundError:  # removed by a concurrent run meanwhile
            old = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    try:
        staging.rename(root)
    except OSError:  # a concurrent run created root between our two renames
        shutil.rmtree(staging, ignore_errors=True)
