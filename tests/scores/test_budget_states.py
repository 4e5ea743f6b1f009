"""Budget states (issue 15, item 6): verified (this harness trained the model), recorded (a harness
training record shipped in the submission folder, checkpoint hash matching, not re-verified) and
declared (the manifest); a track admits the states its benchmark file names, verified only by
default, and rankings on training budgets never mix states."""
from __future__ import annotations

import pytest

from frugalbench.errors import BenchmarkError, UsageError
from frugalbench.ranking import budget_state, record_from_document
from frugalbench.scores import RunRecord, parse_tracks, qualifying_tracks, rank_runs
from frugalbench.scores.ranking import group_key
from frugalbench.scores.frugality import get_resource

TRACKS = {
    'tiny': {'max_params': 1_000_000},
    '10-images': {'max_train_images': 10},                                          # verified only
    '10-images-recorded': {'max_train_images': 10, 'budget_states': ['verified', 'recorded']},
    'points': {'annotation_types': ['points'], 'budget_states': ['verified', 'recorded']},
    'honour': {'max_train_images': 10, 'budget_states': ['verified', 'recorded', 'declared']},
}


def _run(state: str, run_id: str = 'r', images: int = 10, annotation: str = 'points', miou: float = 0.5) -> RunRecord:
    return RunRecord(run_id=run_id, submission=run_id, benchmark='camvid', protocol_version=1,
                     hardware_fingerprint='hw', miou=miou, annotation_type=annotation, budget_state=state,
                     resources={'params': 500_000, 'train_images': images})


@pytest.mark.parametrize('state, tracks', [
    ('verified', ('open', 'tiny', '10-images', '10-images-recorded', 'points', 'honour')),
    ('recorded', ('open', 'tiny', '10-images-recorded', 'points', 'honour')),
    ('declared', ('open', 'tiny', 'honour')),
])
def test_a_track_admits_the_budget_states_its_file_names(state: str, tracks: tuple) -> None:
    assert qualifying_tracks(_run(state), parse_tracks(TRACKS)) == tracks


def test_budget_verified_is_true_for_the_verified_state_only() -> None:
    assert [_run(s).budget_verified for s in ('verified', 'recorded', 'declared')] == [True, False, False]
    older = RunRecord(run_id='o', submission='o', benchmark='b', protocol_version=1, hardware_fingerprint='hw',
                      miou=0.5, budget_verified=True)
    assert older.budget_state == 'verified'  # callers that only know the flag keep their meaning
    with pytest.raises(UsageError, match='budget_state must be one of verified, recorded, declared'):
        _run('trusted')


@pytest.mark.parametrize('value', [[], ['verified', 'signed'], 'sure', 3])
def test_a_track_naming_an_unknown_state_is_refused(value: object) -> None:
    with pytest.raises(BenchmarkError, match='budget_states must be a non-empty list of verified, recorded'):
        parse_tracks({'x': {'max_train_images': 10, 'budget_states': value}})


def test_rankings_on_training_budgets_never_mix_states() -> None:
    runs = [_run('verified', 'v'), _run('recorded', 'r', miou=0.9), _run('declared', 'd', miou=0.95)]
    images = get_resource('train_images')
    assert {group_key(r, images).split('|')[-1] for r in runs} == {'budget=verified', 'budget=recorded',
                                                                    'budget=declared'}
    ranked = rank_runs(runs, 'train_images', 0.5, {'train_images': 367}, 'honour', parse_tracks(TRACKS))
    assert {r.run_id: (r.rank, r.budget_state) for r in ranked} == {
        'v': (1, 'verified'), 'r': (1, 'recorded'), 'd': (1, 'declared')}


def test_a_document_says_its_state_and_older_documents_keep_theirs() -> None:
    record = {'images': 10, 'annotation': 'points', 'annotator_seconds': 120.0}
    assert budget_state({'state': 'recorded', 'record': record}) == 'recorded'
    assert budget_state({'verified': True, 'record': record}) == 'verified'   # before budget states
    assert budget_state({'state': 'recorded'}) == 'declared'                 # a state without a record
    assert budget_state({'declared': {'images': 3}}) == 'declared'
    document = {'run_id': 'x', 'submission': 's', 'benchmark': 'camvid', 'status': 'ok',
                'accuracy': {'miou': 0.4}, 'compute': {'params': 10},
                'training': {'state': 'recorded', 'verified': False, 'record': record,
                             'declared': {'images': 367, 'annotation': 'full'}}}
    run = record_from_document(document)
    assert (run.budget_state, run.train_images, run.annotation_type) == ('recorded', 10, 'points')
