"""`frugalbench train` end to end on the tiny benchmark: budget, record, checkpoint, evaluation, store."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from frugalbench.benchmarks import load_benchmark
from frugalbench.benchmarks.annotations import annotation_budget
from frugalbench.cli import main
from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.settings import default_db_path
from frugalbench.store import connect
from frugalbench.submission import file_sha256
from frugalbench.training import latest_training
from frugalbench.training.budget import choose_subset

pytestmark = pytest.mark.slow
COUNTERS = ('rapl', 'nvml', 'pyjoules', 'codecarbon-rapl')


def test_trained_checkpoint_and_record_match_the_budget_and_evaluate(
        tiny_benchmark: str, trainable, isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = trainable(iters=6, interval=2)
    out = isolated / 'trained' / 'tiny_points'
    code = main(['train', str(folder), '--benchmark', tiny_benchmark, '--images', '3', '--annotation', 'points',
                 '--iters', '6', '--out', str(out), '--format', 'json'])
    assert code == 0
    record = json.loads(capsys.readouterr().out)

    benchmark = load_benchmark(tiny_benchmark)
    samples, sid = choose_subset(benchmark, 3, seed=0)
    expected = annotation_budget(benchmark, samples, 'points', seed=0, subset_id=sid)
    budget = record['budget']
    assert (budget['images'], budget['annotation'], budget['subset_id']) == (3, 'points', sid)
    assert budget['image_names'] == [s.name for s in samples]
    assert budget['labelled_pixels'] == expected.labelled_pixels
    assert budget['annotator_seconds'] == expected.annotator_seconds
    assert record['iterations'] == 6 and record['resumed_from_iterations'] == []
    assert record['verified'] is True and record['submission'] == 'tiny_points'
    assert math.isfinite(record['final_loss'])

    totals = record['totals']
    assert totals['complete'] and totals['wall_seconds'] > 0 and totals['cpu_seconds'] > 0
    assert totals['peak_rss_mb'] > 50  # a process that imported torch
    if totals['energy_joules'] is None:
        assert totals['energy_unavailable_reason']
    else:
        assert totals['energy_measured'] == (totals['energy_method'] in COUNTERS)

    assert json.loads((out / 'training_record.json').read_text()) == record
    assert not (folder / 'model.pth').exists()  # --out leaves the trained submission folder alone
    state = torch.load(out / 'model.pth', map_location='cpu', weights_only=True)
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    assert not any(k.startswith('auxiliary_head.') for k in state)
    sha = file_sha256(out / 'model.pth')
    assert record['hashes']['checkpoint_sha256'] == sha

    outcome = evaluate_submission(out, EvaluationOptions(measure=False))
    assert outcome.ok, outcome.document['failure_reason']
    training = outcome.document['training']
    assert training['verified'] is True
    assert (training['record']['images'], training['record']['annotation']) == (3, 'points')
    assert training['record']['annotator_seconds'] == expected.annotator_seconds
    assert outcome.document['hashes']['checkpoint_sha256'] == sha
    assert outcome.document['hashes']['config_sha256'] == record['hashes']['config_sha256']
    with connect(default_db_path(), read_only=True) as connection:
        assert latest_training(connection, 'tiny_points', sha)['training_id'] == record['training_id']


def test_rerunning_a_finished_training_reexports_it_and_a_new_schedule_needs_restart(
        tiny_benchmark: str, trainable, capsys: pytest.CaptureFixture[str]) -> None:
    folder = trainable(iters=2, interval=1)
    assert main(['train', str(folder), '--iters', '2', '--format', 'json']) == 0
    first = json.loads(capsys.readouterr().out)
    assert (folder / 'model.pth').is_file()  # without --out: written into the submission
    assert main(['train', str(folder), '--iters', '2', '--format', 'json']) == 0
    again = json.loads(capsys.readouterr().out)
    assert again['hashes']['checkpoint_sha256'] == first['hashes']['checkpoint_sha256']
    assert [s['start_iteration'] for s in again['segments']] == [0, 2]
    assert again['resumed_from_iterations'] == [2] and again['iterations'] == 2
    assert main(['train', str(folder), '--iters', '3']) == 2
    assert 'different schedule' in capsys.readouterr().err
    assert main(['train', str(folder), '--iters', '3', '--restart', '--format', 'json']) == 0
    restarted = json.loads(capsys.readouterr().out)
    assert restarted['iterations'] == 3 and len(restarted['segments']) == 1
