"""A training killed with SIGKILL resumes from its last saved iteration when the command runs again."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from frugalbench.benchmarks import load_benchmark
from frugalbench.training import TrainOptions, train_submission, training_folder
from frugalbench.training.budget import choose_subset
from frugalbench.training.child import find_resume_checkpoint

pytestmark = pytest.mark.slow
ITERS, INTERVAL = 50, 5  # the kill comes at the first checkpoint (5): 45 iterations of margin
FIRST_CHECKPOINT_TIMEOUT_S = 180


def _wait_for(path: Path, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert process.poll() is None, f'the training exited early ({process.returncode}) before {path} appeared'
        assert time.monotonic() < deadline, f'no checkpoint after {timeout} s'
        time.sleep(0.05)


def test_killed_training_resumes_from_the_last_saved_iteration(tiny_benchmark: str, trainable,
                                                               isolated: Path) -> None:
    folder = trainable(iters=ITERS, interval=INTERVAL)
    benchmark = load_benchmark(tiny_benchmark)
    _, sid = choose_subset(benchmark, None, seed=0)
    work = training_folder(folder.name, tiny_benchmark, sid, 'full', 0)
    command = [sys.executable, '-m', 'frugalbench', 'train', str(folder), '--benchmark', tiny_benchmark]
    with (isolated / 'first.log').open('wb') as log:
        first = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        try:
            _wait_for(work / 'mmengine' / 'last_checkpoint', first, FIRST_CHECKPOINT_TIMEOUT_S)
        finally:
            os.killpg(first.pid, signal.SIGKILL)  # the training child dies with its parent
            first.wait()
    time.sleep(0.5)
    saved = find_resume_checkpoint(work / 'mmengine')
    assert saved is not None
    killed_at = int(saved.stem.split('_')[1])
    assert killed_at % INTERVAL == 0 and 0 < killed_at < ITERS, 'the kill came too late to test resuming'
    assert not (folder / 'model.pth').exists()

    events: list[dict] = []
    record = train_submission(folder, TrainOptions(benchmark=tiny_benchmark), on_event=events.append)

    assert record.resumed_from_iterations == [killed_at]
    assert record.iterations == ITERS
    started = next(e for e in events if e['event'] == 'started')
    assert started['start_iteration'] == killed_at and started['resumed_from'] == str(saved)
    assert [s['status'] for s in record.segments] == ['interrupted', 'completed']
    assert record.segments[0]['last_iteration'] >= killed_at
    assert record.segments[1]['start_iteration'] == killed_at
    assert not record.totals.complete and record.totals.energy_joules is None
    log = Path(record.log).read_text()
    assert f'resumed epoch: 0, iter: {killed_at}' in log
    assert (folder / 'model.pth').is_file()
