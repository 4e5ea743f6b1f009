"""The budgeted training folder: exactly the subset's images, and labels derived from the full masks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frugalbench.benchmarks import load_benchmark
from frugalbench.benchmarks.annotations import annotation_budget, derive_annotation
from frugalbench.errors import UsageError
from frugalbench.training.budget import choose_subset, prepare_training_data


def test_training_folder_holds_the_subset_and_its_derived_labels(tiny_benchmark: str, tmp_path: Path) -> None:
    benchmark = load_benchmark(tiny_benchmark)
    samples, sid = choose_subset(benchmark, 3, seed=1)
    budget, data = prepare_training_data(benchmark, samples, sid, 'points', 1, tmp_path / 'run')
    linked = sorted(p.name for p in data.images_dir.iterdir())
    assert linked == sorted(s.name for s in samples) and len(linked) == 3
    assert all((data.images_dir / s.name).resolve() == s.image.resolve() for s in samples)
    assert data.stems_file.read_text().split() == [s.name[:-4] for s in samples]
    expected = annotation_budget(benchmark, samples, 'points', seed=1, subset_id=sid)
    assert budget.annotation == expected
    assert budget.to_dict()['images'] == 3 and budget.to_dict()['annotation'] == 'points'
    for sample in samples:
        written = np.asarray(Image.open(data.annotations_dir / sample.name))
        reference = derive_annotation(benchmark.read_label(sample), 'points', 255, 1, sample.name)
        assert np.array_equal(written, reference)
        assert (written != 255).sum() >= 1  # every image keeps at least one labelled point


def test_a_second_call_reuses_the_annotation_set(tiny_benchmark: str, tmp_path: Path) -> None:
    benchmark = load_benchmark(tiny_benchmark)
    samples, sid = choose_subset(benchmark, 2, seed=0)
    _, data = prepare_training_data(benchmark, samples, sid, 'scribble', 0, tmp_path / 'run')
    label = data.annotations_dir / samples[0].name
    before = label.stat().st_mtime_ns
    prepare_training_data(benchmark, samples, sid, 'scribble', 0, tmp_path / 'run')
    assert label.stat().st_mtime_ns == before
    _, coarse = prepare_training_data(benchmark, samples, sid, 'coarse', 0, tmp_path / 'run')  # another type
    assert np.array_equal(np.asarray(Image.open(coarse.annotations_dir / samples[0].name)),
                          derive_annotation(benchmark.read_label(samples[0]), 'coarse', 255, 0, samples[0].name))


def test_image_level_tags_cannot_train_a_segmentation_model(tiny_benchmark: str, tmp_path: Path) -> None:
    benchmark = load_benchmark(tiny_benchmark)
    samples, sid = choose_subset(benchmark, 2, seed=0)
    with pytest.raises(UsageError, match='full, coarse, scribble, points'):
        prepare_training_data(benchmark, samples, sid, 'image-tags', 0, tmp_path / 'run')
