"""Budget tracks: parsing a benchmark file's tracks: mapping, and which runs qualify."""
from __future__ import annotations

import pytest
import yaml

from frugalbench.errors import BenchmarkError, UsageError
from frugalbench.scores import OPEN_TRACK, RunRecord, get_track, parse_tracks, qualifies, qualifying_tracks

TRACKS_YAML = """
tracks:
  open: {description: no limit}
  tiny: {description: small models, max_params: 1000000, max_macs: 2e9}
  10-shot: {max_train_images: 10}
  points: {allowed_annotations: [points]}
  zero-shot: {max_train_images: 0}
"""


def _tracks() -> dict:
    return parse_tracks(yaml.safe_load(TRACKS_YAML)['tracks'])


def _run(**overrides: object) -> RunRecord:
    fields: dict = dict(run_id='r', submission='s', benchmark='camvid', protocol_version=1,
                        hardware_fingerprint='hw', miou=0.5, annotation_type='full',
                        budget_verified=True,
                        resources={'params': 500_000, 'macs': 1.5e9, 'train_images': 10})
    fields.update(overrides)
    return RunRecord(**fields)


def test_parse_tracks_from_yaml() -> None:
    tracks = _tracks()
    assert list(tracks) == ['open', 'tiny', '10-shot', 'points', 'zero-shot']
    tiny = tracks['tiny']
    assert (tiny.max_params, tiny.max_macs, tiny.max_train_images) == (1e6, 2e9, None)  # '2e9' is a YAML string
    assert tiny.description == 'small models' and not tiny.data_limited
    assert tracks['10-shot'].data_limited and tracks['10-shot'].needs_verified_budget
    assert tracks['points'].allowed_annotations == frozenset({'points'})
    assert tracks['open'].is_open


def test_open_track_is_always_present() -> None:
    assert parse_tracks(None) == {'open': OPEN_TRACK}
    assert list(parse_tracks({'tiny': {'max_params': 1}})) == ['open', 'tiny']


def test_verified_run_qualifies_for_every_met_limit() -> None:
    assert qualifying_tracks(_run(), _tracks()) == ('open', 'tiny', '10-shot')


def test_declared_budget_never_qualifies_for_data_tracks() -> None:
    run = _run(budget_verified=False)
    assert qualifying_tracks(run, _tracks()) == ('open', 'tiny')  # compute limits still count


def test_limits_are_inclusive_and_exceeding_one_disqualifies() -> None:
    tiny = _tracks()['tiny']
    assert qualifies(_run(resources={'params': 1_000_000, 'macs': 2e9}), tiny)
    assert not qualifies(_run(resources={'params': 1_000_001, 'macs': 2e9}), tiny)


def test_unknown_limited_resource_disqualifies() -> None:
    assert not qualifies(_run(resources={'macs': 1e9}), _tracks()['tiny'])


def test_annotation_track_needs_the_allowed_type() -> None:
    points = _tracks()['points']
    assert qualifies(_run(annotation_type='points'), points)
    assert not qualifies(_run(annotation_type='full'), points)
    assert not qualifies(_run(annotation_type=None), points)
    assert not qualifies(_run(annotation_type='points', budget_verified=False), points)


def test_zero_shot_track_takes_only_untrained_verified_runs() -> None:
    zero = _tracks()['zero-shot']
    assert qualifies(_run(resources={'train_images': 0}), zero)
    assert not qualifies(_run(resources={'train_images': 1}), zero)


def test_open_track_admits_any_run() -> None:
    assert qualifies(_run(budget_verified=False, resources={}, annotation_type=None), OPEN_TRACK)


def test_requires_verified_budget_applies_to_compute_tracks() -> None:
    track = parse_tracks({'audited': {'max_params': 1e6, 'requires_verified_budget': True}})['audited']
    assert qualifies(_run(), track)
    assert not qualifies(_run(budget_verified=False), track)


@pytest.mark.parametrize('raw, message', [
    ({'tiny': {'max_param': 1}}, "unknown key 'max_param'. Did you mean 'max_params'"),
    ({'tiny': {'max_params': -1}}, 'must be a finite number >= 0'),
    ({'tiny': {'max_params': 'small'}}, 'must be a finite number >= 0'),
    ({'open': {'max_params': 1}}, 'the open track takes no limits'),
    ({'points': {'allowed_annotations': []}}, 'non-empty list'),
    ({'tiny': [1, 2]}, 'expected a mapping'),
    ({'tiny': {'requires_verified_budget': 'yes'}}, 'true or false'),
    (['tiny'], 'must map track names'),
])
def test_malformed_tracks_are_benchmark_errors(raw: object, message: str) -> None:
    with pytest.raises(BenchmarkError, match=message):
        parse_tracks(raw)  # type: ignore[arg-type]


def test_unknown_track_suggests_the_closest_name() -> None:
    with pytest.raises(UsageError, match=r"unknown track 'tinny'\. Did you mean 'tiny'\?"):
        get_track(_tracks(), 'tinny')


def test_annotation_types_is_a_synonym() -> None:
    track = parse_tracks({'points': {'annotation_types': ['points', 'scribble']}})['points']
    assert track.allowed_annotations == frozenset({'points', 'scribble'})
    with pytest.raises(BenchmarkError, match='not both'):
        parse_tracks({'p': {'annotation_types': ['points'], 'allowed_annotations': ['points']}})


def test_tracks_of_the_benchmark_schema_are_read_by_the_fields_set() -> None:
    definition = pytest.importorskip('frugalbench.benchmarks.definition')
    schema_tracks = {'tiny': definition.Track(max_params=1_000_000, max_macs=2_000_000_000),
                     'points': definition.Track(annotation_types=['points'])}
    tracks = parse_tracks(schema_tracks)
    assert tracks['tiny'].limits == {'params': 1e6, 'macs': 2e9}
    assert tracks['tiny'].allowed_annotations is None and not tracks['tiny'].data_limited
    assert tracks['points'].allowed_annotations == frozenset({'points'})
