"""Preparing data: a hand-written benchmark file for an MMSeg folder is listed and prepared;
verification finds bad files; ``data add`` registers a folder without code."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frugalbench.benchmarks import ensure_prepared, load_benchmark
from frugalbench.benchmarks.prepare import add_benchmark, prepare, read_classes, read_record
from frugalbench.cli import main
from frugalbench.errors import BenchmarkError, UsageError

HAND_WRITTEN = """\
# my own data, registered by this file alone
name: handmade
protocol_version: 1
description: two classes in MMSeg layout
root: {root}
layout: mmseg
splits: {{train: training, val: validation}}
classes: [ground, thing]
ignore_index: 255
"""


def make_mmseg_folder(root: Path, image_suffix: str = '.png', label_suffix: str = '.png') -> None:
    """train: 2 images, val: 1; 4x3 labels with hand-countable pixels."""
    labels = {
        'training': {'a': [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 255]],   # 7 ground, 4 thing, 1 ignored
                     'b': [[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]]},    # 4 ground, 8 thing
        'validation': {'c': [[0] * 4, [0] * 4, [1] * 4]},                  # 8 ground, 4 thing
    }
    for split, items in labels.items():
        (root / 'img_dir' / split).mkdir(parents=True)
        (root / 'ann_dir' / split).mkdir(parents=True)
        for stem, label in items.items():
            Image.fromarray(np.full((3, 4, 3), 90, np.uint8)).save(root / 'img_dir' / split / f'{stem}{image_suffix}')
            Image.fromarray(np.array(label, np.uint8)).save(root / 'ann_dir' / split / f'{stem}{label_suffix}')


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_hand_written_benchmark_is_listed_and_prepared(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = isolated / 'mydata'
    make_mmseg_folder(root)
    (isolated / 'data' / 'benchmarks').mkdir()
    (isolated / 'data' / 'benchmarks' / 'handmade.yaml').write_text(HAND_WRITTEN.format(root=root))

    listed = {row['name']: row for row in cli_json(capsys, 'data', 'list', '--format', 'json')}
    assert {'camvid', 'synthetic', 'handmade'} <= set(listed)
    assert listed['handmade']['splits'] == {'train': 2, 'val': 1}
    assert listed['handmade']['classes'] == ['ground', 'thing'] and listed['handmade']['status'] == 'found'

    report = cli_json(capsys, 'data', 'prepare', 'handmade', '--format', 'json')
    assert report['splits'] == {
        'train': {'images': 2, 'class_pixels': [11, 12], 'ignored_pixels': 1},
        'val': {'images': 1, 'class_pixels': [8, 4], 'ignored_pixels': 0},
    }
    assert report['root'] == str(root.resolve()) and report['seed'] is None
    assert read_record('handmade')['fingerprint'] == report['fingerprint']
    listed = {row['name']: row for row in cli_json(capsys, 'data', 'list', '--format', 'json')}
    assert listed['handmade']['status'] == 'verified'
    assert ensure_prepared(load_benchmark('handmade')) == root.resolve()


def test_verification_lists_stray_labels_and_size_mismatches(isolated: Path) -> None:
    root = isolated / 'mydata'
    make_mmseg_folder(root)
    Image.fromarray(np.full((3, 4), 7, np.uint8)).save(root / 'ann_dir' / 'training' / 'a.png')
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / 'ann_dir' / 'validation' / 'c.png')
    (isolated / 'data' / 'benchmarks').mkdir()
    (isolated / 'data' / 'benchmarks' / 'handmade.yaml').write_text(HAND_WRITTEN.format(root=root))
    with pytest.raises(BenchmarkError) as error:
        prepare(load_benchmark('handmade'))
    message = str(error.value)
    assert '2 problem(s)' in message
    assert 'a.png: labels [7] are neither a class (0..1) nor the ignore index 255' in message
    assert 'c.png: label size 5x5 differs from image size 4x3' in message


def test_source_is_verified_and_remembered(isolated: Path) -> None:
    root = isolated / 'elsewhere'
    make_mmseg_folder(root)
    (isolated / 'data' / 'benchmarks').mkdir()
    (isolated / 'data' / 'benchmarks' / 'handmade.yaml').write_text(HAND_WRITTEN.format(root='not-here'))
    benchmark = load_benchmark('handmade')
    with pytest.raises(BenchmarkError, match='--source DIR'):
        benchmark.data_root()
    report = prepare(benchmark, source=root)
    assert report.source == str(root.resolve())
    assert benchmark.data_root() == root.resolve()
    assert len(benchmark.samples('train')) == 2


def test_flags_that_do_not_apply_are_refused(isolated: Path) -> None:
    make_mmseg_folder(isolated / 'mydata')
    (isolated / 'data' / 'benchmarks').mkdir()
    (isolated / 'data' / 'benchmarks' / 'handmade.yaml').write_text(HAND_WRITTEN.format(root=isolated / 'mydata'))
    with pytest.raises(UsageError, match='--seed applies to generated benchmarks only'):
        prepare(load_benchmark('handmade'), seed=3)
    with pytest.raises(UsageError, match='--source does not apply'):
        prepare(load_benchmark('synthetic'), source=isolated)


def test_data_add_registers_a_folder_without_code(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = isolated / 'voc-like'
    make_mmseg_folder(root, image_suffix='.jpg')
    classes = isolated / 'classes.txt'
    classes.write_text('# my classes\nground\nthing  # the object\n\n')
    summary = cli_json(capsys, 'data', 'add', 'vocish', '--root', str(root), '--classes', str(classes),
                       '--format', 'json')
    assert summary['splits'] == {'train': 2, 'val': 1, 'test': 1}  # no test folder: val is evaluated
    benchmark = load_benchmark('vocish')
    assert benchmark.classes == ['ground', 'thing']
    assert (benchmark.img_suffix, benchmark.seg_suffix, benchmark.layout) == ('.jpg', '.png', 'mmseg')
    assert benchmark.source_file == isolated / 'data' / 'benchmarks' / 'vocish.yaml'
    report = cli_json(capsys, 'data', 'prepare', 'vocish', '--format', 'json')
    assert report['splits']['train']['class_pixels'] == [11, 12]
    assert main(['data', 'add', 'vocish', '--root', str(root), '--classes', str(classes)]) == 2  # exists
    assert 'pass --force' in capsys.readouterr().err


def test_data_add_detects_cityscapes_style_suffixes_or_asks(isolated: Path) -> None:
    root = isolated / 'city'
    make_mmseg_folder(root, image_suffix='_leftImg8bit.png', label_suffix='_gtFine_labelTrainIds.png')
    classes = isolated / 'classes.yaml'
    classes.write_text('[ground, thing]\n')
    with pytest.raises(UsageError, match='pass --seg-suffix'):
        add_benchmark('city', root, classes)  # '.png' images: which label belongs to a_leftImg8bit?
    add_benchmark('city', root, classes, img_suffix='_leftImg8bit.png')
    benchmark = load_benchmark('city')
    assert benchmark.seg_suffix == '_gtFine_labelTrainIds.png'
    assert benchmark.splits == {'train': 'training', 'val': 'validation', 'test': 'validation'}
    assert [s.annotation.name for s in benchmark.samples('train')] == \
        ['a_gtFine_labelTrainIds.png', 'b_gtFine_labelTrainIds.png']


def test_classes_file_must_list_unique_names(tmp_path: Path) -> None:
    path = tmp_path / 'classes.txt'
    path.write_text('a\nb\na\n')
    with pytest.raises(UsageError, match=r"repeats class names \['a'\]"):
        read_classes(path)
