"""Hostile or broken submissions: each yields a failed run with a specific reason, and nothing else
in the database changes. (The pickled-code checkpoint, wrong classes and '../..' paths are in
test_evaluation.py.)"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import torch

from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.isolation import Limits, network_can_be_cut
from frugalbench.settings import default_db_path
from frugalbench.store import connect, list_run_documents


def _fail(folder: Path, **options: object) -> str:
    document = evaluate_submission(folder, EvaluationOptions(measure=False, **options)).document
    assert document['status'] == 'failed'
    return document['failure_reason']


def test_config_that_sleeps_forever_is_stopped_at_the_timeout(tiny_benchmark, make_submission) -> None:
    folder = make_submission()
    (folder / 'config.py').write_text("_nap = __import__('time').sleep(3600)\n" + (folder / 'config.py').read_text())
    started = time.monotonic()
    reason = _fail(folder, limits=Limits(timeout_s=3))
    assert 'timed out after 3 s' in reason
    assert time.monotonic() - started < 60


def test_config_that_opens_a_socket_when_read_fails(tiny_benchmark, make_submission) -> None:
    if not network_can_be_cut()[0]:
        import pytest
        pytest.skip('the network cannot be cut on this platform')
    folder = make_submission()
    (folder / 'config.py').write_text("_probe = __import__('socket').create_connection(('1.1.1.1', 80), timeout=5)\n"
                                      + (folder / 'config.py').read_text())
    reason = _fail(folder)
    assert 'the config could not be read' in reason and 'unreachable' in reason.lower()


def test_model_returning_nan_fails(tiny_benchmark, make_submission) -> None:
    folder = make_submission()
    state = torch.load(folder / 'model.pth', weights_only=True)
    state['decode_head.conv_seg.weight'] = torch.full_like(state['decode_head.conv_seg.weight'], float('nan'))
    torch.save(state, folder / 'model.pth')
    assert 'NaN/Inf values' in _fail(folder)


def test_killing_an_evaluation_leaves_no_partial_run(tiny_benchmark, make_submission) -> None:
    good = evaluate_submission(make_submission('good'), EvaluationOptions(measure=False)).document
    victim = make_submission('victim')
    process = subprocess.Popen([sys.executable, '-m', 'frugalbench', 'evaluate', str(victim), '--format', 'json'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(8)  # in the middle: config read, model child running or measuring
    process.send_signal(signal.SIGKILL)
    process.wait()
    with connect(default_db_path()) as connection:
        documents = list_run_documents(connection)
        counts = [connection.execute(f'SELECT count(*) FROM {t}').fetchone()[0]
                  for t in ('runs', 'image_areas', 'class_scores')]
    assert [d['run_id'] for d in documents] == [good['run_id']]
    assert counts == [1, 3, 3]
    duckdb.connect(str(default_db_path()), read_only=True).close()
    # a re-run completes what was interrupted
    assert evaluate_submission(victim, EvaluationOptions(measure=False)).ok
