"""`frugalbench serve`: real evaluations of stored submissions, states in the queue, a failure that does
not stop the others, the queue readable while it runs, SIGTERM puts the running entry back."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from frugalbench.platform.submit import submit


def frugalbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'frugalbench', *args], check=False, capture_output=True,
                          text=True,
                          env=dict(os.environ), timeout=300)


def start_serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-m', 'frugalbench', 'serve', '--no-measure', '--max-images', '2',
                             '--poll', '0.3', *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))


def queue_json() -> list[dict]:
    result = frugalbench('queue', '--format', 'json')
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_serve_on_two_slots_evaluates_each_entry_once_and_a_failure_does_not_stop_the_others(
        tiny_benchmark, make_submission) -> None:
    db = Path(os.environ['FRUGALBENCH_DB'])
    good = [make_submission('alpha'), make_submission('beta', description='another one')]
    broken = make_submission('broken')
    (broken / 'model.pth').write_bytes(b'this is not a checkpoint')
    ids = [submit(folder, db).entry['id'] for folder in (good[0], broken, good[1])]

    server = start_serve('--exit-when-empty', '--slots', '2')
    seen: dict[str, set[str]] = {i: set() for i in ids}
    deadline = time.monotonic() + 240
    while server.poll() is None and time.monotonic() < deadline:
        for entry in queue_json():                   # readable while serve runs
            seen[entry['id']].add(entry['state'])
        time.sleep(0.5)
    _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    entries = {e['id']: e for e in queue_json()}
    assert [entries[i]['state'] for i in ids] == ['done', 'failed', 'done'], stderr
    assert all(entries[i]['attempts'] == 1 for i in ids)
    assert len({entries[i]['node'] for i in ids}) == 2                 # both slots worked
    assert sorted(ids, key=lambda i: entries[i]['started_at']) == ids   # taken in submission order
    assert 'running' in seen[ids[1]] or 'running' in seen[ids[2]], seen
    failed = entries[ids[1]]
    assert failed['reason'] and 'checkpoint' in failed['reason'].lower(), failed['reason']
    with duckdb.connect(str(db), read_only=True) as connection:
        runs = dict(connection.execute('SELECT run_id, status FROM runs').fetchall())
    assert runs == {entries[ids[0]]['run_id']: 'ok', entries[ids[1]]['run_id']: 'failed',
                    entries[ids[2]]['run_id']: 'ok'}
    assert queue_json()[0]['finished_at'] >= queue_json()[0]['started_at'] >= queue_json()[0]['submitted_at']


def test_sigterm_puts_the_running_entry_back_in_the_queue(tiny_benchmark, make_submission) -> None:
    db = Path(os.environ['FRUGALBENCH_DB'])
    identifier = submit(make_submission('slow'), db).entry['id']
    server = start_serve()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and queue_json()[0]['state'] != 'running':
        time.sleep(0.2)
    assert queue_json()[0]['state'] == 'running'
    time.sleep(1.0)   # the worker is importing or evaluating
    server.send_signal(signal.SIGTERM)
    _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    entry = queue_json()[0]
    assert entry['id'] == identifier and entry['state'] == 'queued' and entry['position'] == 1
    assert 'queued again' in entry['reason'] and 'SIGTERM' in entry['reason']
    assert entry['node'] is None and entry['run_id'] is None
    assert _workers_alive() == []                          # the worker was ended, not left behind

    again = start_serve('--exit-when-empty')              # a later server finishes it
    _, stderr = again.communicate(timeout=240)
    assert again.returncode == 0, stderr
    entry = queue_json()[0]
    assert entry['state'] == 'done' and entry['attempts'] == 2 and entry['run_id'], entry


def _workers_alive() -> list[str]:
    work = os.environ['FRUGALBENCH_WORK']
    alive = []
    for proc in Path('/proc').iterdir():
        try:
            command = (proc / 'cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')
        except OSError:
            continue
        if 'frugalbench.platform.worker' in command and work in command:
            alive.append(command)
    return alive
