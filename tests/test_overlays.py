"""Overlay panels: colours only where labelled, the image kept under ignored pixels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from frugalbench.overlays import ALPHA, blend, class_colours, render_overlay


def test_blend_colours_labelled_pixels_and_keeps_ignored_ones() -> None:
    image = np.full((1, 2, 3), 100.0)
    colours = np.array([[200.0, 0.0, 0.0]])
    out = blend(image, np.array([[0, 255]]), colours, 255)
    assert out[0, 0].tolist() == [round((1 - ALPHA) * 100 + ALPHA * 200), round((1 - ALPHA) * 100),
                                  round((1 - ALPHA) * 100)]
    assert out[0, 1].tolist() == [100, 100, 100]


def test_overlay_has_three_panels(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / 'img.png')
    label = np.zeros((4, 5), np.uint8)
    out = render_overlay(tmp_path / 'img.png', label, label, class_colours(None, 2), 255, tmp_path / 'o.png')
    assert np.array(Image.open(out)).shape == (4, 15, 3)
    assert class_colours([[1, 2, 3], [4, 5, 6]], 2).tolist() == [[1, 2, 3], [4, 5, 6]]
