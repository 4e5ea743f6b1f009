"""Budgets shipped with a submission, end to end (issue 15, item 6): an evaluation of a checkpoint
whose folder holds the training record `frugalbench train` wrote is stored as 'recorded' (never
'verified': the record could be forged), the leaderboard says so, and the tracks that admit recorded
budgets rank it. On a fresh database the bundled CamVid baselines show 'recorded' and fill the
data and annotation tracks."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from frugalbench import app_data
from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.ranking import rank_stored_runs
from frugalbench.settings import PROJECT_ROOT
from frugalbench.submission import load_submission


def _ship_record(folder: Path, images: int, annotation: str) -> None:
    """A training record as `frugalbench train` writes it, for this folder's checkpoint."""
    record = json.loads((PROJECT_ROOT / 'submissions' / 'fastscnn_camvid_10img' / 'training_record.json').read_text())
    record['benchmark'] = 'tiny'
    record['budget'].update(images=images, annotation=annotation, annotator_seconds=60.0)
    record['hashes']['checkpoint_sha256'] = load_submission(folder).checkpoint_sha256()
    (folder / 'training_record.json').write_text(json.dumps(record))


def test_a_shipped_record_makes_the_budget_recorded_and_admitted_only_where_the_track_says(
        tiny_benchmark: str, make_submission, isolated: Path) -> None:
    benchmark_file = isolated / 'data' / 'benchmarks' / 'tiny.yaml'
    definition = yaml.safe_load(benchmark_file.read_text())
    definition['tracks'] = {'2-images': {'max_train_images': 2},
                            '2-images-recorded': {'max_train_images': 2, 'budget_states': ['verified', 'recorded']}}
    benchmark_file.write_text(yaml.safe_dump(definition))
    folder = make_submission()
    _ship_record(folder, images=2, annotation='points')
    db = isolated / 'data' / 'results.duckdb'
    document = evaluate_submission(folder, EvaluationOptions(db_path=db, measure=False)).document
    assert document['status'] == 'ok', document['failure_reason']
    training = document['training']
    assert (training['state'], training['verified']) == ('recorded', False)
    assert (training['record']['images'], training['record']['annotation']) == (2, 'points')
    assert training['declared'] == {'images': 4, 'annotation': 'full', 'notes': ''}

    def ranked(track: str) -> list[str]:
        return [r['run_id'] for r in rank_stored_runs(db, resource='params', w=0.5, benchmark='tiny', track=track,
                                                      reference=1e6)]
    assert ranked('2-images-recorded') == [document['run_id']]
    assert ranked('2-images') == []  # verified only: a record in a folder is not enough
    runs = app_data.runs(db, 'tiny')
    assert runs['budget_state'].tolist() == ['recorded'] and runs['train_images'].tolist() == [2.0]
    assert app_data.display_table(runs)['budget'].tolist() == ['recorded']


def test_on_a_fresh_database_the_camvid_baselines_are_recorded_and_fill_the_data_tracks(
        camvid_root: Path, isolated: Path) -> None:
    db = isolated / 'data' / 'fresh.duckdb'
    documents = {}
    for name in ('fastscnn_camvid_10img', 'fastscnn_camvid_points', 'fastscnn_camvid'):
        outcome = evaluate_submission(PROJECT_ROOT / 'submissions' / name,
                                      EvaluationOptions(db_path=db, measure=False, max_images=2))
        assert outcome.ok, outcome.document.get('failure_reason')
        documents[name] = outcome.document
    assert {n: d['training']['state'] for n, d in documents.items()} == dict.fromkeys(documents, 'recorded')

    def ranked(track: str) -> set[str]:
        return {r['submission'] for r in rank_stored_runs(db, resource='params', w=0.5, benchmark='camvid',
                                                          track=track)}
    assert ranked('10-images') == {'fastscnn_camvid_10img'}
    assert ranked('points') == {'fastscnn_camvid_points'}
    assert ranked('open') == set(documents)
    shown = app_data.display_table(app_data.runs(db, 'camvid'))
    assert set(shown['budget']) == {'recorded'}
