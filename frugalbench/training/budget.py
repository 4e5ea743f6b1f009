"""The budgeted training set: a data budget (nested subset) x an annotation budget (derived labels).

Uses the benchmarks package: ``select_subset``/``subset_id`` pick the images, and
``write_annotation_set`` derives the annotation type from the full masks. The training child
sees only this folder: links to the chosen images, the derived label maps (unlabelled pixels
= ignore index) and the stem list, never the full masks.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugalbench.benchmarks import Benchmark, Sample
from frugalbench.benchmarks.annotations import (
    DERIVATION_VERSION,
    MANIFEST_NAME,
    MASK_KINDS,
    AnnotationBudget,
    write_annotation_set,
)
from frugalbench.benchmarks.subsets import TRAIN_SPLIT, select_subset, subset_id
from frugalbench.errors import UsageError
from frugalbench.training.config import TrainingData

TRAINABLE_ANNOTATIONS = MASK_KINDS  # full, coarse, scribble, points: masks MMSeg can train on


@dataclass(frozen=True)
class Budget:
    """What the model is allowed to learn from: which images, which annotation, at what cost."""

    subset_id: str
    split: str
    seed: int
    samples: tuple[Sample, ...]
    annotation: AnnotationBudget

    @property
    def image_names(self) -> list[str]:
        return [s.name for s in self.samples]

    @property
    def images_sha256(self) -> str:
        """sha256 of the chosen image file names, one per line, in budget order."""
        return hashlib.sha256('\n'.join(self.image_names).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        a = self.annotation
        return {
            'subset_id': self.subset_id, 'split': self.split, 'seed': self.seed,
            'images': len(self.samples), 'images_sha256': self.images_sha256,
            'image_names': self.image_names,
            'annotation': a.kind, 'labelled_pixels': a.labelled_pixels, 'total_pixels': a.total_pixels,
            'annotator_seconds': a.annotator_seconds,
            'annotator_seconds_method': f'estimate: annotation cost model v{a.cost_model_version} '
                                        '(published per-type annotation times)',
            'derivation_version': a.derivation_version, 'cost_model_version': a.cost_model_version,
        }


def choose_subset(benchmark: Benchmark, images: int | None, seed: int) -> tuple[list[Sample], str]:
    """The budget's images (nested, seeded) and its subset id."""
    samples = select_subset(benchmark, images, seed, TRAIN_SPLIT)
    return samples, subset_id(benchmark, samples, seed, TRAIN_SPLIT)


def prepare_training_data(benchmark: Benchmark, samples: list[Sample], sid: str, annotation: str, seed: int,
                          folder: Path, on_image: Callable[[], None] | None = None) -> tuple[Budget, TrainingData]:
    """Write (or reuse) the derived annotation set and the image links under ``folder``."""
    if annotation not in TRAINABLE_ANNOTATIONS:
        raise UsageError(f'training needs mask annotations: choose --annotation from '
                         f'{", ".join(TRAINABLE_ANNOTATIONS)} (not {annotation!r})')
    annotations_dir = folder / 'annotations'
    manifest = _reusable_manifest(annotations_dir, sid, annotation, [s.name for s in samples])
    if manifest is None:
        write_annotation_set(benchmark, samples, annotation, annotations_dir, seed, sid, on_image=on_image)
        manifest = json.loads((annotations_dir / MANIFEST_NAME).read_text())
    images_dir = _link_images(samples, folder / 'images')
    budget = Budget(subset_id=sid, split=TRAIN_SPLIT, seed=seed, samples=tuple(samples),
                    annotation=AnnotationBudget(**manifest['budget']))
    return budget, TrainingData(images_dir=images_dir, annotations_dir=annotations_dir,
                                stems_file=annotations_dir / 'stems.txt')


def _reusable_manifest(folder: Path, sid: str, annotation: str, names: list[str]) -> dict | None:
    """The manifest of an annotation set written earlier for exactly this budget, if any."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
        budget = manifest['budget']
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return None
    same = (budget.get('subset_id') == sid and budget.get('kind') == annotation
            and budget.get('derivation_version') == DERIVATION_VERSION and manifest.get('images') == names
            and (folder / 'stems.txt').is_file())
    return manifest if same else None


def _link_images(samples: list[Sample], folder: Path) -> Path:
    """A folder holding links to exactly the budget's images (rebuilt every time)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        stale.unlink()
    for sample in samples:
        os.symlink(sample.image.resolve(), folder / sample.image.name)
    return folder
