"""The zero-shot:NAME track: harness trainings under the split and declared training-free runs only."""
from __future__ import annotations

from typing import Any

import pytest

from frugalbench.ranking import record_from_document
from frugalbench.scores.tracks import parse_tracks, qualifies


def document(training: dict[str, Any]) -> dict[str, Any]:
    return {'run_id': 'r', 'submission': 's', 'benchmark': 'tiny', 'protocol_version': 1, 'status': 'ok',
            'hardware': {'fingerprint': 'h'}, 'accuracy': {'miou': 0.4}, 'manifest': {'technique': 'zero-shot'},
            'compute': {'params': 10, 'trusted': True}, 'training': training}


VERIFIED_U1 = {'state': 'verified', 'verified': True,
               'record': {'images': 4, 'annotation': 'full', 'zero_shot_split': 'u1'}}


@pytest.mark.parametrize(('training', 'admitted'), [
    (VERIFIED_U1, True),
    ({'state': 'verified', 'verified': True, 'record': {'images': 4, 'annotation': 'full', 'zero_shot_split': 'u2'}},
     False),                                                     # another split
    ({'state': 'verified', 'verified': True, 'record': {'images': 4, 'annotation': 'full'}}, False),  # all labels
    ({'state': 'recorded', 'record': {'images': 4, 'annotation': 'full', 'zero_shot_split': 'u1'}}, False),
    ({'state': 'declared', 'declared': {'images': 4, 'annotation': 'full'}}, False),  # declared-only budget
    ({'state': 'declared', 'declared': {'images': 0, 'annotation': 'full'}}, False),
    ({'state': 'declared', 'declared': {'images': 0, 'annotation': 'none'}}, True),   # training-free
])
def test_zero_shot_track_admits_verified_split_trainings_and_training_free_runs(training: dict, admitted: bool) -> None:
    tracks = parse_tracks({'tiny-ish': {'max_params': 100}}, {'u1': {'unseen': ['bar']}, 'u2': {'unseen': ['disc']}})
    assert list(tracks) == ['open', 'tiny-ish', 'zero-shot:u1', 'zero-shot:u2']
    assert qualifies(record_from_document(document(training)), tracks['zero-shot:u1']) is admitted


def test_a_declared_split_claim_never_counts_as_trained_under_it() -> None:
    claimed = {'state': 'declared', 'declared': {'images': 4, 'annotation': 'full'},
               'record': {'zero_shot_split': 'u1'}}  # a forged record section on a declared budget
    assert record_from_document(document(claimed)).zero_shot_split is None


def test_benchmark_files_declare_splits_whose_unseen_classes_exist() -> None:
    from frugalbench.benchmarks import load_benchmark
    from frugalbench.zero_shot import seen_indices, unseen_indices
    camvid = load_benchmark('camvid')
    assert [camvid.classes[i] for i in unseen_indices(camvid, 'split1')] == ['pavement', 'bicyclist']
    assert len(seen_indices(camvid, 'split1')) == 9
    rows = [tuple(r) for r in camvid.attributes.classes.values()]
    assert len(set(rows)) == len(rows) and len(camvid.attributes.names) == 12
    assert unseen_indices(load_benchmark('synthetic'), 'split1') == [6]
