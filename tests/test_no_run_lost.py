"""A real evaluation that finds its database held by another process when it has finished
(issue 15, item 2): it waits and is stored once the other process lets go, or, when the wait
runs out, is spooled (exit code 4) with its overlays and stored by the next command."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.store import connect, list_run_documents
from frugalbench.store.spool import pending

# Waits for the evaluation to create the database and close it (its look-up of a reusable run),
# then holds it (read-only, which locks writers out) for argv[2] seconds: the evaluation finds it
# held when it has finished and stores its run.
GRABBER = '''
import os, sys, time, duckdb
path, seconds = sys.argv[1], float(sys.argv[2])
while True:
    if os.path.exists(path):
        try:
            connection = duckdb.connect(path, read_only=True)
            connection.execute('SELECT count(*) FROM runs').fetchone()
            break
        except duckdb.Error:
            pass
    time.sleep(0.02)
print('held', flush=True)
time.sleep(seconds)
connection.close()
'''


@contextmanager
def grabbed(db: Path, seconds: float) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen([sys.executable, '-c', GRABBER, str(db), str(seconds)], stdout=subprocess.PIPE,
                               text=True)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _release_after_overlays(overlays: Path, holder: subprocess.Popen, delay: float = 4.0) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not any(overlays.glob('*/*.png')):
        time.sleep(0.05)
    time.sleep(delay)
    holder.kill()


def test_an_evaluation_finishing_while_another_process_holds_the_database_is_stored_when_it_goes(
        tiny_benchmark, make_submission, isolated: Path, monkeypatch, capfd) -> None:
    db = isolated / 'data' / 'held.duckdb'
    monkeypatch.setenv('FRUGALBENCH_STORE_WAIT', '300')
    with grabbed(db, 600.0) as holder:
        # the other process lets go 4 s after the run's overlays appear (written just before it is stored)
        releaser = threading.Thread(target=_release_after_overlays, args=(isolated / 'data' / 'overlays', holder),
                                    daemon=True)
        releaser.start()
        outcome = evaluate_submission(make_submission(), EvaluationOptions(db_path=db, measure=False))
        assert holder.stdout is not None and holder.stdout.readline().strip() == 'held'
        releaser.join(timeout=60)
    assert outcome.ok, outcome.document.get('failure_reason')
    err = capfd.readouterr().err
    assert f'held by another process (PID {holder.pid})' in err and 'waits for it' in err
    with connect(db) as connection:
        assert [d['run_id'] for d in list_run_documents(connection)] == [outcome.document['run_id']]
    overlays = [Path(o['path']) for o in outcome.document['overlays']]
    assert overlays and all(p.is_file() for p in overlays)
    assert pending(db) == []


def test_an_evaluation_still_held_out_is_spooled_exit_4_then_stored_by_the_next_command(
        tiny_benchmark, make_submission, isolated: Path) -> None:
    db = isolated / 'data' / 'held.duckdb'
    env = {**os.environ, 'FRUGALBENCH_STORE_WAIT': '2', 'COLUMNS': '300'}
    folder = make_submission()
    with grabbed(db, 600.0):
        result = subprocess.run([sys.executable, '-m', 'frugalbench', 'evaluate', str(folder), '--db', str(db),
                                 '--no-measure', '--format', 'json'], capture_output=True, text=True, env=env,
                                timeout=600)
        assert result.returncode == 4, result.stderr  # not recorded yet: spooled
        document = json.loads(result.stdout)
        assert document['status'] == 'ok'
        assert 'it waits in' in result.stderr and 'spool' in result.stderr
        [entry] = pending(db)
        assert entry.stem == document['run_id']
    overlays = [Path(o['path']) for o in document['overlays']]
    assert overlays and all(p.is_file() for p in overlays)  # kept with the spooled run
    listed = subprocess.run([sys.executable, '-m', 'frugalbench', 'results', '--db', str(db), '--format', 'json'],
                            capture_output=True, text=True, env=env, timeout=300)
    assert listed.returncode == 0, listed.stderr
    [stored] = json.loads(listed.stdout)
    assert stored['run_id'] == document['run_id'] and stored['accuracy'] == document['accuracy']
    assert stored['overlays'] == document['overlays'] and pending(db) == []
    with connect(db) as connection:
        areas = connection.execute('SELECT count(*) FROM image_areas WHERE run_id = ?',
                                   [document['run_id']]).fetchone()[0]
    assert areas == document['accuracy']['num_images']


def test_a_database_held_before_the_evaluation_starts_is_not_a_failed_run(
        tiny_benchmark, make_submission, isolated: Path) -> None:
    db = isolated / 'data' / 'held.duckdb'
    with connect(db):
        pass
    holder = subprocess.Popen([sys.executable, '-c', 'import duckdb, sys, time; c = duckdb.connect(sys.argv[1], '
                               'read_only=True); print("held", flush=True); time.sleep(120)', str(db)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == 'held'
        result = subprocess.run([sys.executable, '-m', 'frugalbench', 'evaluate', str(make_submission()),
                                 '--db', str(db), '--no-measure'], capture_output=True, text=True, timeout=600,
                                env={**os.environ, 'COLUMNS': '300'})
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 4, result.stderr
    assert 'not recorded' in result.stderr and 'locked by another process' in result.stderr
    with connect(db) as connection:
        assert list_run_documents(connection) == []  # no 'failed: database locked' run
    assert pending(db) == []
