"""The synthetic benchmark: deterministic files, the declared layout, and classes colour cannot tell apart."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frugalbench.benchmarks import Benchmark, GeneratorSpec, ensure_prepared, load_benchmark
from frugalbench.benchmarks.prepare import prepare
from frugalbench.benchmarks.synthetic import CLASSES, generate
from frugalbench.cli import main
from frugalbench.errors import BenchmarkError

SMALL = GeneratorSpec(seed=5, image_size=(96, 64), split_sizes={'train': 3, 'test': 2})


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = file_bytes(generate(SMALL, tmp_path / 'a' / 'synthetic'))
    second = file_bytes(generate(SMALL, tmp_path / 'b' / 'synthetic'))
    assert len(first) == 2 * 5 + 1  # images, labels and generator.json
    assert first == second


def test_other_seed_gives_other_scenes(tmp_path: Path) -> None:
    first = file_bytes(generate(SMALL, tmp_path / 'a'))
    other = file_bytes(generate(SMALL.model_copy(update={'seed': 6}), tmp_path / 'b'))
    assert first['img_dir/train/train_0000.png'] != other['img_dir/train/train_0000.png']


def test_generation_never_replaces_foreign_files(tmp_path: Path) -> None:
    (tmp_path / 'synthetic').mkdir()
    (tmp_path / 'synthetic' / 'mine.txt').write_text('precious')
    with pytest.raises(BenchmarkError, match='did not generate'):
        generate(SMALL, tmp_path / 'synthetic')
    assert (tmp_path / 'synthetic' / 'mine.txt').read_text() == 'precious'


@pytest.mark.slow
def test_cli_prepare_into_two_data_folders_gives_identical_files(
        synthetic_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('FRUGALBENCH_DATA', str(tmp_path))
    assert main(['data', 'prepare', 'synthetic', '--format', 'json']) == 0
    assert file_bytes(tmp_path / 'synthetic') == file_bytes(synthetic_data_dir / 'synthetic')


def test_layout_sizes_and_label_values(synthetic: Benchmark) -> None:
    assert synthetic.synthetic and synthetic.classes == list(CLASSES)
    assert {split: len(synthetic.samples(split)) for split in synthetic.splits} == \
        {'train': 200, 'val': 50, 'test': 50}
    for sample in synthetic.samples('val')[:5]:
        image = Image.open(sample.image)
        assert image.mode == 'RGB' and image.size == (128, 128)
        assert sample.annotation == sample.image.parent.parent.parent / 'ann_dir' / 'val' / sample.name
        assert set(np.unique(synthetic.read_label(sample))) <= set(range(len(CLASSES)))


def test_every_class_appears_and_objects_overlap(synthetic: Benchmark) -> None:
    seen: set[int] = set()
    touching = 0
    samples = synthetic.samples('train')[:40]
    for sample in samples:
        label = synthetic.read_label(sample)
        seen |= set(np.unique(label).tolist())
        left, right = label[:, :-1], label[:, 1:]
        touching += bool(((left != right) & (left > 0) & (right > 0)).any())
    assert seen == set(range(len(CLASSES)))
    assert touching >= len(samples) // 4  # foreground objects touch: they overlap and occlude


def test_colour_alone_does_not_identify_the_class(synthetic: Benchmark) -> None:
    """A nearest-mean-colour classifier fit on train objects is near chance on val objects."""
    def pixels(split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
        colours, labels = [], []
        for sample in synthetic.samples(split)[:count]:
            label = synthetic.read_label(sample).ravel()
            image = np.asarray(Image.open(sample.image)).reshape(-1, 3).astype(np.float64)
            colours.append(image[label > 0])
            labels.append(label[label > 0])
        return np.concatenate(colours), np.concatenate(labels)

    colours, labels = pixels('train', 60)
    means = np.stack([colours[labels == c].mean(axis=0) for c in range(1, len(CLASSES))])
    val_colours, val_labels = pixels('val', 30)
    predicted = 1 + np.argmin(((val_colours[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    accuracy = (predicted == val_labels).mean()
    assert accuracy < 0.3  # chance is 1/6; a colour-coded dataset would give about 1.0


def test_missing_data_tells_how_to_generate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('FRUGALBENCH_DATA', str(tmp_path))
    with pytest.raises(BenchmarkError, match='run `frugalbench data prepare synthetic`'):
        load_benchmark('synthetic').samples('train')


def test_ensure_prepared_refuses_data_from_another_seed(isolated: Path) -> None:
    definition = (Path(__file__).parents[2] / 'frugalbench' / 'benchmarks' / 'synthetic.yaml').read_text()
    small = definition.replace('name: synthetic', 'name: minisyn').replace(
        'split_sizes: {train: 200, val: 50, test: 50}', 'split_sizes: {train: 2, val: 1, test: 1}')
    (isolated / 'data' / 'benchmarks').mkdir()
    (isolated / 'data' / 'benchmarks' / 'minisyn.yaml').write_text(small)
    benchmark = load_benchmark('minisyn')
    root = ensure_prepared(benchmark)  # generated: absent before
    assert root == (isolated / 'data' / 'synthetic').resolve()
    assert len(benchmark.samples('train')) == 2
    report = prepare(benchmark, seed=9)
    assert report.generated and report.seed == 9
    with pytest.raises(BenchmarkError, match='seed 9'):
        ensure_prepared(benchmark)
    assert prepare(benchmark).generated  # back to the benchmark's own seed
    assert ensure_prepared(benchmark) == root
