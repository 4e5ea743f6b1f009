"""A benchmark's zero-shot splits, the class information models receive, and split training labels."""
from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from PIL import Image

from frugalbench.errors import UsageError

# What happens to training images that contain unseen-class pixels (both are in the literature):
# `ignore` keeps the image with those pixels set to the ignore index (Bucher et al. 2019, Xu et al. 2021);
# `drop-images` also removes every such image from the training set (a stricter reading).
ZeroShotMode = Literal['ignore', 'drop-images']
ZERO_SHOT_MODES: tuple[str, ...] = ('ignore', 'drop-images')
GUARD_FILE = 'zero_shot_guard.json'   # what the training pipeline's guard saw (written by the child)


class SplitLike(Protocol):
    classes: list[str]
    zero_shot: dict[str, Any]


def split_of(benchmark: Any, name: str) -> Any:
    """The split ``name`` of a benchmark, or a UsageError listing the ones it has."""
    splits = getattr(benchmark, 'zero_shot', {}) or {}
    if name not in splits:
        if not splits:
            raise UsageError(f'benchmark {benchmark.name!r} declares no zero-shot split: add `zero_shot: '
                             '{NAME: {unseen: [...]}}` to its benchmark file (docs/zero-shot.md)')
        close = difflib.get_close_matches(name, splits, n=1)
        hint = f' Did you mean {close[0]!r}?' if close else ''
        raise UsageError(f'benchmark {benchmark.name!r} has no zero-shot split {name!r}.{hint} '
                         f'It has: {", ".join(sorted(splits))}')
    return splits[name]


def unseen_indices(benchmark: Any, name: str) -> list[int]:
    """Class indices of the split's unseen classes, in class order."""
    unseen = set(split_of(benchmark, name).unseen)
    return [i for i, c in enumerate(benchmark.classes) if c in unseen]


def seen_indices(benchmark: Any, name: str) -> list[int]:
    unseen = set(unseen_indices(benchmark, name))
    return [i for i in range(len(benchmark.classes)) if i not in unseen]


def dataset_meta(benchmark: Any) -> dict[str, Any]:
    """What every model receives as ``model.dataset_meta``: class names and palette, and, where the
    benchmark file has them, class descriptions, the attribute table and the zero-shot splits."""
    meta: dict[str, Any] = {'classes': list(benchmark.classes)}
    if benchmark.palette:
        meta['palette'] = [list(p) for p in benchmark.palette]
    if benchmark.class_descriptions:
        meta['descriptions'] = [benchmark.class_descriptions.get(c, '') for c in benchmark.classes]
    if benchmark.attributes is not None:
        meta['attribute_names'] = list(benchmark.attributes.names)
        meta['attributes'] = [list(benchmark.attributes.classes[c]) for c in benchmark.classes]
    if benchmark.zero_shot:
        meta['zero_shot'] = {name: {'unseen': unseen_indices(benchmark, name)} for name in benchmark.zero_shot}
    return meta


def apply_split(annotations_dir: Path, out_dir: Path, seg_suffix: str, unseen: list[int], ignore_index: int,
                mode: str) -> dict[str, Any]:
    """Write the training labels under a split: every unseen-class pixel -> ``ignore_index`` (and, in
    ``drop-images`` mode, images that held any left out of ``stems.txt``). Returns what was removed."""
    if mode not in ZERO_SHOT_MODES:
        raise UsageError(f'zero-shot mode {mode!r}: choose {" or ".join(ZERO_SHOT_MODES)}')
    out_dir.mkdir(parents=True, exist_ok=True)
    lut = np.arange(256, dtype=np.uint8)
    lut[list(unseen)] = ignore_index
    removed_pixels, kept, dropped = 0, [], []
    for stem in (annotations_dir / 'stems.txt').read_text().split():
        with Image.open(annotations_dir / f'{stem}{seg_suffix}') as img:
            label = np.asarray(img)
        hits = int(np.isin(label, unseen).sum())
        removed_pixels += hits
        Image.fromarray(lut[label]).save(out_dir / f'{stem}{seg_suffix}')
        (dropped if hits and mode == 'drop-images' else kept).append(stem)
    if not kept:
        raise UsageError('every training image holds an unseen-class pixel: use --zero-shot-mode ignore')
    (out_dir / 'stems.txt').write_text(''.join(f'{s}\n' for s in kept))
    return {'unseen_pixels_removed': removed_pixels, 'images_dropped': len(dropped), 'images_kept': len(kept),
            'dropped_images': dropped}


def read_guard(report_dir: Path) -> dict[str, Any] | None:
    """The label guard's reports (one per data-loading process) merged; None when it wrote none."""
    reports = [json.loads(p.read_text()) for p in sorted(report_dir.glob(f'{Path(GUARD_FILE).stem}-*.json'))]
    if not reports:
        return None
    return {'unseen': reports[0]['unseen'], 'samples_checked': sum(r['samples_checked'] for r in reports),
            'labels_passed': sorted(set().union(*(r['labels_passed'] for r in reports)))}
