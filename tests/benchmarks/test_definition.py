"""The benchmark schema: references, tracks, generator settings, label reading, helpful errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frugalbench.benchmarks import REFERENCE_KEYS, Benchmark, Track, load_benchmark
from frugalbench.errors import BenchmarkError
from frugalbench.scores import RESOURCES, parse_references, parse_tracks


def write_user_benchmark(data: Path, name: str, text: str) -> None:
    (data / 'benchmarks').mkdir(exist_ok=True)
    (data / 'benchmarks' / f'{name}.yaml').write_text(text)


MINIMAL = """\
name: {name}
protocol_version: 1
root: somewhere
splits: {{train: train}}
classes: [a, b]
"""


def test_reference_keys_are_the_scored_resources() -> None:
    assert set(REFERENCE_KEYS) == set(RESOURCES)
    assert {f'max_{key}' for key in REFERENCE_KEYS} <= set(Track.model_fields)


@pytest.mark.parametrize('name', ['camvid', 'synthetic'])
def test_builtin_benchmarks_carry_every_reference_and_usable_tracks(name: str) -> None:
    benchmark = load_benchmark(name)
    assert set(benchmark.references) == set(REFERENCE_KEYS)
    assert parse_references(benchmark.references) == benchmark.references
    tracks = parse_tracks(benchmark.tracks)
    assert list(tracks) == ['open', 'tiny', '10-images', '1-hour-labels', 'points', 'zero-shot']
    assert tracks['10-images'].max_train_images == 10
    assert tracks['zero-shot'].allowed_annotations == frozenset({'none'})


def test_camvid_reference_sizes_match_its_train_split(camvid: Benchmark) -> None:
    assert camvid.references['train_images'] == len(camvid.samples('train'))


def test_unknown_reference_is_rejected_naming_the_allowed_ones(isolated: Path) -> None:
    write_user_benchmark(isolated / 'data', 'bad', MINIMAL.format(name='bad') + 'references: {flops: 3}\n')
    with pytest.raises(BenchmarkError, match=r"references: .*unknown reference\(s\) \['flops'\]; allowed: train_images"):
        load_benchmark('bad')


def test_track_accepts_both_annotation_spellings() -> None:
    assert Track(allowed_annotations=['points']).annotation_types == ['points']
    assert Track(annotation_types=['none']).model_dump(exclude_unset=True) == {'annotation_types': ['none']}


def test_track_rejects_unknown_limits_and_annotation_types() -> None:
    with pytest.raises(ValueError, match='max_flops'):
        Track(max_flops=3)
    with pytest.raises(ValueError, match='polygons'):
        Track(annotation_types=['polygons'])


def test_file_name_and_benchmark_name_must_agree(isolated: Path) -> None:
    write_user_benchmark(isolated / 'data', 'mine', MINIMAL.format(name='theirs'))
    with pytest.raises(BenchmarkError, match='must say `name: mine`'):
        load_benchmark('mine')


def test_missing_user_data_names_the_flag_to_pass(isolated: Path) -> None:
    write_user_benchmark(isolated / 'data', 'mine', MINIMAL.format(name='mine'))
    with pytest.raises(BenchmarkError, match=r'run `frugalbench data prepare mine --source DIR`'):
        load_benchmark('mine').data_root()


def test_missing_camvid_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('FRUGALBENCH_CAMVID', str(tmp_path / 'nowhere'))
    with pytest.raises(BenchmarkError, match='set FRUGALBENCH_CAMVID to the folder that holds it'):
        load_benchmark('camvid').data_root()


def test_read_label_applies_the_label_map(camvid: Benchmark) -> None:
    sample = camvid.samples('train')[0]
    raw = np.asarray(Image.open(sample.annotation))
    mapped = camvid.read_label(sample)
    assert (raw == 11).any()
    assert np.array_equal(mapped == 255, raw == 11)
    assert np.array_equal(mapped[raw != 11], raw[raw != 11])
