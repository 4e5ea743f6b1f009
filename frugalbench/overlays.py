"""Test-image overlays rendered at evaluation time: image | ground truth | prediction, side by side.

Stored as PNG files under ``$FRUGALBENCH_DATA/overlays/<run_id>/`` and listed in the run's
document, so the leaderboard shows them without recomputing anything.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

OVERLAY_COUNT = 3
ALPHA = 0.55  # weight of the class colours over the image


def class_colours(palette: list[list[int]] | None, num_classes: int) -> np.ndarray:
    """The benchmark's palette, or fixed colours from a seeded generator when it has none."""
    if palette and len(palette) >= num_classes:
        return np.asarray(palette[:num_classes], dtype=np.float64)
    return np.random.default_rng(0).integers(40, 256, (num_classes, 3)).astype(np.float64)


def blend(image: np.ndarray, label: np.ndarray, colours: np.ndarray, ignore_index: int) -> np.ndarray:
    """Class colours over the image; ignored pixels keep the image."""
    coloured = colours[np.clip(label, 0, len(colours) - 1)]
    out = (1 - ALPHA) * image + ALPHA * coloured
    keep = label == ignore_index
    out[keep] = image[keep]
    return out.round().astype(np.uint8)


def render_overlay(image_path: Path, label: np.ndarray, prediction: np.ndarray, colours: np.ndarray,
                   ignore_index: int, out_path: Path) -> Path:
    image = np.asarray(Image.open(image_path).convert('RGB'), dtype=np.float64)
    if image.shape[:2] != label.shape:
        raise ValueError(f'{image_path}: image {image.shape[:2]} and label {label.shape} differ in size')
    panels = [image.round().astype(np.uint8), blend(image, label, colours, ignore_index),
              blend(image, prediction, colours, ignore_index)]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(panels, axis=1)).save(out_path)
    return out_path
