"""The trust rule (frugalbench.scores.trust): untrusted compute counts are never ranked, never on
a Pareto front, never admitted to a budget track; runs of different measurement protocol versions
are never ranked together on what the protocol measures."""
from __future__ import annotations

import pytest

from frugalbench.errors import UsageError
from frugalbench.scores import (
    RESOURCES,
    RunRecord,
    exclusion_reason,
    measurement_group,
    parse_tracks,
    qualifying_tracks,
    rank_runs,
    ranked_value,
    untrusted_resources,
)

REASON = 'the submission runs its own code in the model process (custom_imports: mymodels.net)'
REFERENCES = {'params': 1e6, 'macs': 1e9, 'latency_ms': 10.0, 'peak_rss_mb': 512.0,
              'energy_joules_per_image': 1.0, 'train_images': 100.0}
TRACKS = parse_tracks({'tiny': {'max_params': 1_000_000}, 'small-macs': {'max_macs': 2e9},
                       'fast': {'max_latency_ms': 20}})
VALUES = {'params': 300_000, 'macs': 5e8, 'latency_ms': 8.0, 'peak_rss_mb': 300.0,
          'energy_joules_per_image': 0.2}


def _run(run_id: str, miou: float, **overrides: object) -> RunRecord:
    fields: dict = dict(run_id=run_id, submission=f'sub-{run_id}', benchmark='camvid', protocol_version=1,
                        hardware_fingerprint='hw1', miou=miou, miou_ci=(miou - 0.01, miou + 0.01),
                        resources=dict(VALUES), measurement_protocol_version=2)
    fields.update(overrides)
    return RunRecord(**fields)


def _untrusted(run_id: str = 'u', miou: float = 0.9, **overrides: object) -> RunRecord:
    return _run(run_id, miou, compute_trusted=False, untrusted_reason=REASON, **overrides)


def _trusted_runs() -> list[RunRecord]:
    return [_run('a', 0.60, resources={**VALUES, 'params': 900_000, 'macs': 1.5e9}),
            _run('b', 0.50, resources={**VALUES, 'params': 400_000, 'macs': 6e8}),
            _run('c', 0.40, resources={**VALUES, 'params': 2_000_000, 'macs': 3e9})]


@pytest.mark.parametrize('resource', ['params', 'macs'])
def test_untrusted_compute_count_has_no_ranked_value_and_says_why(resource: str) -> None:
    value, reason = ranked_value(_untrusted(), resource)
    assert value is None
    assert reason == f'{resource} is not ranked: untrusted compute counts ({REASON})'
    assert exclusion_reason(_untrusted(), resource) == reason


@pytest.mark.parametrize('resource', ['latency_ms', 'peak_rss_mb', 'energy_joules_per_image'])
def test_untrusted_run_keeps_the_resources_measured_from_outside(resource: str) -> None:
    assert ranked_value(_untrusted(), resource) == (VALUES[resource], None)
    assert exclusion_reason(_untrusted(), resource) is None


def test_the_stored_value_stays_readable() -> None:
    assert _untrusted().resource_value('params') == VALUES['params']  # shown, only never ranked
    assert untrusted_resources(_untrusted()) == ('macs', 'params')
    assert untrusted_resources(_run('t', 0.5)) == ()


def test_compute_count_flags_are_params_and_macs_only() -> None:
    assert {name for name, r in RESOURCES.items() if r.compute_count} == {'params', 'macs'}
    assert {name for name, r in RESOURCES.items() if r.protocol_measured} == {
        'latency_ms', 'peak_rss_mb', 'energy_joules_per_image'}


@pytest.mark.parametrize('resource', ['params', 'macs'])
def test_untrusted_run_changes_no_rank_score_or_front_on_compute_counts(resource: str) -> None:
    """The untrusted run would be best on both mIoU and the count: the others' rows are the same with it."""
    without = rank_runs(_trusted_runs(), resource, 0.5, REFERENCES, tracks=TRACKS)
    with_it = rank_runs([*_trusted_runs(), _untrusted()], resource, 0.5, REFERENCES, tracks=TRACKS)
    assert [r.to_dict() for r in with_it] == [r.to_dict() for r in without]
    assert 'u' not in {r.run_id for r in with_it}
    assert {r.run_id for r in without if r.pareto} == {'a', 'b'}  # by hand: c is dominated by a and b


def test_untrusted_run_is_ranked_on_latency_with_trusted_runs() -> None:
    rows = {r.run_id: r for r in rank_runs([*_trusted_runs(), _untrusted()], 'latency_ms', 0.5, REFERENCES,
                                           tracks=TRACKS)}
    assert set(rows) == {'a', 'b', 'c', 'u'}
    assert rows['u'].rank == 1 and rows['u'].pareto  # mIoU 0.9, same latency as the others
    assert len({r.group for r in rows.values()}) == 1


def test_untrusted_run_never_qualifies_for_a_track_limiting_a_compute_count() -> None:
    assert qualifying_tracks(_untrusted(), TRACKS) == ('open', 'fast')
    assert qualifying_tracks(_run('t', 0.5), TRACKS) == ('open', 'tiny', 'small-macs', 'fast')
    rows = rank_runs([*_trusted_runs(), _untrusted()], 'latency_ms', 0.5, REFERENCES, 'tiny', TRACKS)
    assert 'u' not in {r.run_id for r in rows}
    assert exclusion_reason(_untrusted(), 'latency_ms', TRACKS['tiny']) == "does not qualify for track 'tiny'"
    assert {r.run_id: r.tracks for r in rank_runs([_untrusted()], 'latency_ms', 0.5, REFERENCES,
                                                  tracks=TRACKS)} == {'u': ('open', 'fast')}


def test_untrusted_without_a_reason_gets_a_generic_one() -> None:
    run = _run('x', 0.5, compute_trusted=False)
    assert run.untrusted_reason and 'no reason stored' in run.untrusted_reason
    assert _run('y', 0.5, untrusted_reason='ignored').untrusted_reason is None  # trusted: no reason


@pytest.mark.parametrize('resource', ['latency_ms', 'peak_rss_mb', 'energy_joules_per_image'])
def test_measurement_protocol_versions_are_ranked_in_separate_groups(resource: str) -> None:
    runs = [_run('v1', 0.7, measurement_protocol_version=1), _run('v2', 0.5)]
    rows = {r.run_id: r for r in rank_runs(runs, resource, 0.5, REFERENCES)}
    assert rows['v1'].rank == rows['v2'].rank == 1
    assert '|measurement=v1' in rows['v1'].group and '|measurement=v2' in rows['v2'].group
    assert rows['v1'].pareto and rows['v2'].pareto  # fronts are per group too
    assert (rows['v1'].measurement_protocol_version, rows['v2'].measurement_protocol_version) == (1, 2)


@pytest.mark.parametrize('resource', ['params', 'macs', 'train_images'])
def test_resources_the_protocol_does_not_measure_span_protocol_versions(resource: str) -> None:
    runs = [_run('v1', 0.7, measurement_protocol_version=1, resources={**VALUES, 'train_images': 10}),
            _run('v2', 0.5, resources={**VALUES, 'train_images': 10})]
    rows = {r.run_id: r for r in rank_runs(runs, resource, 0.5, REFERENCES)}
    assert rows['v1'].group == rows['v2'].group and 'measurement=' not in rows['v1'].group
    assert (rows['v1'].rank, rows['v2'].rank) == (1, 2)
    assert measurement_group(runs[0], resource) is None


def test_unknown_measurement_protocol_is_its_own_group() -> None:
    assert measurement_group(_run('x', 0.5, measurement_protocol_version=None), 'latency_ms') == 'measurement=unknown'


@pytest.mark.parametrize('overrides', [{'compute_trusted': 'no'}, {'compute_trusted': 0},
                                       {'measurement_protocol_version': 0},
                                       {'measurement_protocol_version': 1.5}])
def test_invalid_trust_fields_are_usage_errors(overrides: dict) -> None:
    with pytest.raises(UsageError):
        _run('x', 0.5, **overrides)


def test_from_dict_reads_data_frame_values() -> None:
    import numpy as np
    record = RunRecord.from_dict(dict(run_id='r', submission='s', benchmark='b', protocol_version=1,
                                      hardware_fingerprint='h', miou=0.5, compute_trusted=np.bool_(False),
                                      untrusted_reason=float('nan'), measurement_protocol_version=2.0))
    assert (record.compute_trusted, record.measurement_protocol_version) == (False, 2)
    assert 'no reason stored' in record.untrusted_reason
