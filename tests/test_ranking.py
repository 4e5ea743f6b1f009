"""Ranking stored runs: the score of every row is the formula on its own stored values."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.ranking import rank_stored_runs
from frugalbench.settings import default_db_path


@pytest.fixture(scope='module')
def two_runs(module_tiny_benchmark, module_make_submission, module_quick_protocol) -> None:
    """Two measured runs of the same weights, stored once for both tests (neither writes)."""
    for name in ('first', 'second'):
        folder = module_make_submission(name)
        outcome = evaluate_submission(folder, EvaluationOptions(protocol_path=module_quick_protocol))
        assert outcome.ok, outcome.document['failure_reason']


def test_rank_json_scores_follow_the_formula(two_runs) -> None:
    result = subprocess.run([sys.executable, '-m', 'frugalbench', 'rank', '--benchmark', 'tiny', '--resource',
                             'params', '--w', '0.5', '--reference', '1000000', '--format', 'json'],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r['submission'] for r in rows} == {'first', 'second'}
    for row in rows:
        assert row['reference'] == 1_000_000
        assert row['normalized_resource'] == row['resource_value'] / 1_000_000
        assert row['score'] == row['miou'] - 0.5 / (1 + 1 / row['normalized_resource'])
        assert {'pareto', 'tracks', 'miou_ci', 'rank', 'w', 'resource'} <= set(row)


def test_identical_models_tie(two_runs) -> None:
    rows = rank_stored_runs(default_db_path(), resource='params', w=0.2, benchmark='tiny', reference=1e6)
    assert [r['rank'] for r in rows] == [1, 1]  # same weights: same mIoU, same params
    assert all(r['pareto'] for r in rows)
