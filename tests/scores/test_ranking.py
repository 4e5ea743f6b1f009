"""Rankings: scores, ranks, ties, Pareto flags, groups and exclusions, against hand-computed values."""
from __future__ import annotations

import json
import math

import pytest

from frugalbench.errors import UsageError
from frugalbench.scores import RunRecord, exclusion_reason, parse_tracks, rank_runs

REFERENCES = {'macs': 1e9, 'train_images': 100.0, 'latency_ms': 10.0,
              'energy_joules_per_image': 1.0}
REQUIRED_KEYS = {'submission', 'miou', 'resource', 'resource_value', 'reference',
                 'normalized_resource', 'w', 'score', 'pareto', 'tracks', 'miou_ci', 'rank',
                 'run_id', 'group'}


def _run(run_id: str, miou: float | None, ci: tuple[float, float] | None = None,
         **overrides: object) -> RunRecord:
    fields: dict = dict(run_id=run_id, submission=f'sub-{run_id}', benchmark='camvid',
                        protocol_version=1, hardware_fingerprint='hw1', miou=miou, miou_ci=ci)
    fields.update(overrides)
    return RunRecord(**fields)


def _macs_runs() -> list[RunRecord]:
    # reference 1e9 MACs, w = 0.5: scores by hand
    return [
        _run('a', 0.60, (0.58, 0.62), resources={'macs': 1.0e9}),   # R 1:    0.60 - 0.25    = 0.35
        _run('b', 0.50, (0.47, 0.53), resources={'macs': 0.5e9}),   # R 0.5:  0.50 - 0.5/3   = 0.3333
        _run('c', 0.45, (0.42, 0.48), resources={'macs': 0.25e9}),  # R 0.25: 0.45 - 0.1     = 0.35
        _run('d', 0.40, (0.38, 0.42), resources={'macs': 3.0e9},    # R 3:    0.40 - 0.375   = 0.025
             hardware_fingerprint='hw2'),  # MACs do not depend on hardware: same group
        _run('e', 0.70, resources={'macs': 1e9}, status='failed'),
        _run('f', 0.70, resources={'latency_ms': 5.0}),
    ]


def _by_id(ranked: list) -> dict:
    return {r.run_id: r for r in ranked}


def test_scores_ranks_and_pareto_by_hand() -> None:
    ranked = rank_runs(_macs_runs(), 'macs', 0.5, REFERENCES)
    assert [r.run_id for r in ranked] == ['a', 'c', 'b', 'd']
    rows = _by_id(ranked)
    assert {k: r.score for k, r in rows.items()} == pytest.approx(
        {'a': 0.35, 'b': 0.5 - 0.5 / 3, 'c': 0.35, 'd': 0.025}, abs=1e-12)
    assert {k: r.rank for k, r in rows.items()} == {'a': 1, 'c': 1, 'b': 3, 'd': 4}  # equal scores share
    assert {k: r.pareto for k, r in rows.items()} == {'a': True, 'b': True, 'c': True, 'd': False}
    assert {r.group for r in ranked} == {'camvid|protocol=1'}


def test_every_row_satisfies_the_formula_exactly() -> None:
    for row in rank_runs(_macs_runs(), 'macs', 0.5, REFERENCES):
        assert row.normalized_resource == row.resource_value / row.reference
        assert row.score == row.miou - row.w / (1 + 1 / row.normalized_resource)


def test_overlapping_score_intervals_are_listed_as_tied() -> None:
    rows = _by_id(rank_runs(_macs_runs(), 'macs', 0.5, REFERENCES))
    # score intervals: a (0.33, 0.37), b (0.3033, 0.3633), c (0.32, 0.38), d (0.005, 0.045)
    assert rows['a'].score_ci == pytest.approx((0.33, 0.37))
    assert rows['a'].tied_with == ('b', 'c')
    assert rows['b'].tied_with == ('a', 'c')
    assert rows['d'].tied_with == ()


def test_runs_without_interval_are_tied_with_nobody() -> None:
    runs = [_run('a', 0.5, resources={'macs': 1e9}), _run('b', 0.5, (0.4, 0.6), resources={'macs': 1e9})]
    assert all(r.tied_with == () and r.rank == 1 for r in rank_runs(runs, 'macs', 0.5, REFERENCES))


def test_zero_resource_scores_the_accuracy() -> None:
    runs = [_run('z', 0.3, resources={'train_images': 0}, budget_verified=True),
            _run('t', 0.6, resources={'train_images': 100}, budget_verified=True)]
    rows = _by_id(rank_runs(runs, 'train_images', 1.0, REFERENCES))
    assert rows['z'].score == 0.3 and rows['z'].normalized_resource == 0.0
    assert rows['t'].score == pytest.approx(0.1)  # R = 1: 0.6 - 0.5
    assert (rows['z'].rank, rows['t'].rank) == (1, 2)


def test_missing_resource_and_failed_runs_are_not_ranked() -> None:
    runs = _macs_runs()
    assert {r.run_id for r in rank_runs(runs, 'macs', 0.5, REFERENCES)} == {'a', 'b', 'c', 'd'}
    reasons = {run.run_id: exclusion_reason(run, 'macs') for run in runs}
    assert reasons == {'a': None, 'b': None, 'c': None, 'd': None,
                       'e': "status is 'failed', not ok", 'f': 'no macs value'}
    assert exclusion_reason(_run('x', None, resources={'macs': 1}), 'macs') == 'no mIoU'


def test_hardware_dependent_resources_rank_per_hardware() -> None:
    runs = [_run('a', 0.6, resources={'latency_ms': 10}), _run('b', 0.5, resources={'latency_ms': 5}),
            _run('c', 0.4, resources={'latency_ms': 1}, hardware_fingerprint='hw2')]
    rows = _by_id(rank_runs(runs, 'latency_ms', 0.5, REFERENCES))
    assert rows['a'].group == rows['b'].group == 'camvid|protocol=1|measurement=v1|hardware=hw1'
    assert rows['c'].group == 'camvid|protocol=1|measurement=v1|hardware=hw2'
    assert (rows['a'].rank, rows['b'].rank, rows['c'].rank) == (1, 2, 1)  # 0.35 vs 0.5 - 1/6


def test_measured_and_estimated_energy_are_never_ranked_together() -> None:
    runs = [_run('m', 0.5, resources={'energy_joules_per_image': 1}, energy_measured=True),
            _run('e', 0.6, resources={'energy_joules_per_image': 1})]
    rows = _by_id(rank_runs(runs, 'energy_joules_per_image', 0.5, REFERENCES))
    assert rows['m'].group.endswith('|energy=measured') and rows['m'].rank == 1
    assert rows['e'].group.endswith('|energy=estimated') and rows['e'].rank == 1


def test_declared_training_budgets_form_their_own_group() -> None:
    runs = [_run('v', 0.5, resources={'train_images': 50}, budget_verified=True),
            _run('d', 0.6, resources={'train_images': 1})]
    groups = {r.run_id: r.group for r in rank_runs(runs, 'train_images', 0.5, REFERENCES)}
    assert groups == {'v': 'camvid|protocol=1|budget=verified', 'd': 'camvid|protocol=1|budget=declared'}


def test_protocol_versions_are_never_ranked_together() -> None:
    runs = [_run('old', 0.6, resources={'macs': 1e9}), _run('new', 0.5, resources={'macs': 1e9},
                                                               protocol_version=2)]
    rows = _by_id(rank_runs(runs, 'macs', 0.5, REFERENCES))
    assert rows['old'].rank == rows['new'].rank == 1
    assert rows['old'].group != rows['new'].group


def test_track_filters_runs_and_tracks_lists_each_runs_tracks() -> None:
    tracks = parse_tracks({'tiny': {'max_params': 1e6, 'max_macs': 2e9}})
    runs = [_run('small', 0.4, resources={'macs': 1e9, 'params': 5e5}),
            _run('big', 0.6, resources={'macs': 1e9, 'params': 5e6})]
    assert [r.run_id for r in rank_runs(runs, 'macs', 0.5, REFERENCES, track='tiny', tracks=tracks)] == ['small']
    rows = _by_id(rank_runs(runs, 'macs', 0.5, REFERENCES, tracks=tracks))
    assert rows['small'].tracks == ('open', 'tiny') and rows['big'].tracks == ('open',)


def test_rows_serialise_to_json_with_the_required_keys() -> None:
    rows = [r.to_dict() for r in rank_runs(_macs_runs(), 'macs', 0.5, REFERENCES)]
    assert REQUIRED_KEYS <= set(rows[0])
    decoded = json.loads(json.dumps(rows))
    assert decoded[0]['miou_ci'] == [0.58, 0.62] and decoded[0]['tracks'] == ['open']
    assert decoded[0]['submission'] == 'sub-a' and decoded[0]['reference'] == 1e9


def test_missing_reference_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no reference value for resource 'params'.*references:"):
        rank_runs(_macs_runs(), 'params', 0.5, REFERENCES)


def test_unknown_resource_and_bad_weight_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="Did you mean 'macs'"):
        rank_runs(_macs_runs(), 'mcas', 0.5, REFERENCES)
    with pytest.raises(UsageError, match='weight w'):
        rank_runs(_macs_runs(), 'macs', -1, REFERENCES)


def test_run_record_from_a_flat_row() -> None:
    row = {'run_id': 'r1', 'submission': 's', 'benchmark': 'camvid', 'protocol_version': 1,
           'hardware_fingerprint': 'hw', 'miou': 0.4185, 'miou_ci': [0.40, 0.43], 'macs': 9.1e8,
           'params': 1_460_000, 'latency_ms': math.nan, 'stored_at': 'ignored'}
    run = RunRecord.from_dict(row)
    assert run.miou_ci == (0.40, 0.43)
    assert run.resources == {'macs': 9.1e8, 'params': 1_460_000, 'latency_ms': None}
    assert run.resource_value('peak_rss_mb') is None


@pytest.mark.parametrize('overrides, message', [
    ({'miou': 41.85}, r'fraction in \[0, 1\]'),
    ({'miou_ci': (0.5, 0.4)}, 'low <= high'),
    ({'resources': {'mac': 1}}, "Did you mean 'macs'"),
    ({'resources': {'macs': -1}}, '>= 0'),
])
def test_invalid_run_records_are_usage_errors(overrides: dict, message: str) -> None:
    fields: dict = dict(run_id='r', submission='s', benchmark='camvid', protocol_version=1,
                        hardware_fingerprint='hw', miou=0.5)
    fields.update(overrides)
    with pytest.raises(UsageError, match=message):
        RunRecord(**fields)


def test_run_records_and_tracks_are_hashable() -> None:
    tracks = parse_tracks({'tiny': {'max_params': 1e6}})
    runs = _macs_runs()
    assert len({*runs, *runs}) == len(runs)
    assert len(set(tracks.values())) == 2
