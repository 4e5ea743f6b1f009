"""`frugalbench serve` on Ray, with a real Ray cluster of two one-CPU nodes on this machine (plus a
zero-CPU head that holds the cluster's control store), the tiny benchmark and real evaluations.

Slow (a cluster starts in several seconds, each evaluation starts a model process): four tests only.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from frugalbench.platform.queue import list_entries
from frugalbench.platform.submit import submit

pytestmark = pytest.mark.slow

RAY_PROCESS_MARKS = ('raylet', 'gcs_server', 'ray::', 'default_worker.py', 'ray/_private', 'ray/dashboard',
                     'ray/autoscaler', 'plasma_store')


def ray_processes() -> set[int]:
    found = set()
    for proc in Path('/proc').iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / 'cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')
        except OSError:
            continue
        if any(mark in command for mark in RAY_PROCESS_MARKS):
            found.add(int(proc.name))
    return found


def wait_for_no_new_ray_processes(before: set[int], seconds: float = 20.0) -> set[int]:
    deadline = time.monotonic() + seconds
    left = ray_processes() - before
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = ray_processes() - before
    return left


@pytest.fixture
def ray_cluster(tiny_benchmark: str) -> Iterator[Callable[..., Any]]:
    """A factory: a zero-CPU head and two nodes of one CPU on this machine; the first node holds the
    machine's one measurement slot. Shut down (and checked gone) at the end of the test."""
    from ray.cluster_utils import Cluster
    before = ray_processes()
    made: list[Cluster] = []

    def make(second_node_env: dict[str, str] | None = None) -> Cluster:
        os.environ['RAY_USAGE_STATS_ENABLED'] = '0'
        cluster = Cluster(initialize_head=True, head_node_args={'num_cpus': 0, 'include_dashboard': False})
        made.append(cluster)
        cluster.add_node(num_cpus=1, resources={'frugalbench_measure': 1})
        cluster.add_node(num_cpus=1, env_vars=second_node_env or {})
        cluster.wait_for_nodes()
        return cluster

    yield make
    for cluster in made:
        cluster.shutdown()
    assert wait_for_no_new_ray_processes(before) == set(), 'Ray processes outlived the test cluster'


def serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-m', 'frugalbench', 'serve', '--no-measure', '--max-images', '2',
                             '--poll', '0.3', '--format', 'json', *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def entries() -> dict[str, dict[str, Any]]:
    return {e['id']: e for e in list_entries(Path(os.environ['FRUGALBENCH_DB']))}


def stored_runs() -> dict[str, str]:
    with duckdb.connect(os.environ['FRUGALBENCH_DB'], read_only=True) as connection:
        return dict(connection.execute('SELECT run_id, status FROM runs').fetchall())


def wait_until(condition: Callable[[], bool], seconds: float, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if server.poll() is not None:
            raise AssertionError(f'serve ended early: {server.communicate()[1]}')
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.3)


def test_each_entry_becomes_one_run_on_the_two_nodes_and_a_failure_does_not_stop_the_others(
        ray_cluster, make_submission) -> None:
    cluster = ray_cluster()
    db = Path(os.environ['FRUGALBENCH_DB'])
    broken = make_submission('broken')
    (broken / 'model.pth').write_bytes(b'this is not a checkpoint')
    folders = [make_submission('alpha', description='alpha'), broken, make_submission('beta', description='beta')]
    ids = [submit(folder, db).entry['id'] for folder in folders]
    server = serve('--ray-address', cluster.address, '--slots', '2', '--exit-when-empty')
    stdout, stderr = server.communicate(timeout=400)
    assert server.returncode == 0, stderr
    found = entries()
    assert [found[i]['state'] for i in ids] == ['done', 'failed', 'done'], stderr
    assert all(found[i]['attempts'] == 1 for i in ids)
    assert 'checkpoint' in found[ids[1]]['reason'].lower(), found[ids[1]]['reason']
    assert stored_runs() == {found[ids[0]]['run_id']: 'ok', found[ids[1]]['run_id']: 'failed',
                             found[ids[2]]['run_id']: 'ok'}                    # N entries, N runs, once each
    assert len({found[i]['node'].rsplit('/', 1)[1] for i in ids}) == 2          # both nodes evaluated
    assert sorted(ids, key=lambda i: found[i]['started_at']) == ids             # taken in submission order
    events = [json.loads(line) for line in stdout.splitlines()]
    assert [e['event'] for e in events if e.get('entry') == ids[0]] == ['running', 'started', 'done']
    assert {e['run_id'] for e in events if e['event'] in ('done', 'failed')} == set(stored_runs())


def test_a_node_lost_mid_evaluation_is_retried_on_the_other_and_stored_once(ray_cluster, make_submission) -> None:
    cluster = ray_cluster()
    db = Path(os.environ['FRUGALBENCH_DB'])
    identifier = submit(make_submission('lost'), db).entry['id']
    server = serve('--ray-address', cluster.address, '--exit-when-empty')
    wait_until(lambda: '/' in (entries()[identifier]['node'] or ''), 120, server)   # its task started
    node_id = entries()[identifier]['node'].rsplit('/', 1)[1]
    time.sleep(2.0)                                                                  # mid-evaluation
    [node] = [n for n in cluster.worker_nodes if n.node_id.startswith(node_id)]
    cluster.remove_node(node)
    stdout, stderr = server.communicate(timeout=300)
    assert server.returncode == 0, stderr
    entry = entries()[identifier]
    assert entry['state'] == 'done' and entry['attempts'] == 2, entry
    assert entry['node'].rsplit('/', 1)[1] != node_id
    assert 'retried on another node' in entry['reason']
    assert stored_runs() == {entry['run_id']: 'ok'}                                 # stored once
    assert [json.loads(line)['event'] for line in stdout.splitlines()
            if json.loads(line).get('entry') == identifier] == ['running', 'started', 'retried', 'done']


def test_a_node_whose_benchmark_data_differ_fails_the_entry_with_the_reason(ray_cluster, make_submission,
                                                                              tmp_path) -> None:
    from frugalbench.benchmarks import load_benchmark
    from frugalbench.benchmarks.prepare import prepare
    driver = prepare(load_benchmark('tiny')).fingerprint           # recorded in the driver's data folder
    other = tmp_path / 'other-node-data'
    (other / 'prepared').mkdir(parents=True)
    (other / 'prepared' / 'tiny.json').write_text(json.dumps({'name': 'tiny', 'fingerprint': 'f' * 64}))
    cluster = ray_cluster(second_node_env={'FRUGALBENCH_DATA': str(other)})
    db = Path(os.environ['FRUGALBENCH_DB'])
    ids = [submit(make_submission(name, description=name), db).entry['id'] for name in ('one', 'two')]
    server = serve('--ray-address', cluster.address, '--slots', '2', '--exit-when-empty')
    _, stderr = server.communicate(timeout=300)
    assert server.returncode == 0, stderr
    found = [entries()[i] for i in ids]
    failed = [e for e in found if e['state'] == 'failed']
    assert failed, found                                           # two slots: one entry went to the odd node
    for entry in failed:
        assert "differ from the driver's" in entry['reason'] and driver[:16] in entry['reason'], entry['reason']
        assert 'f' * 16 in entry['reason'] and 'frugalbench data prepare tiny' in entry['reason']
        assert entry['run_id'] is None
    assert set(stored_runs()) == {e['run_id'] for e in found if e['state'] == 'done'}


def test_sigterm_requeues_the_running_entry_and_leaves_no_ray_process(tiny_benchmark, make_submission) -> None:
    db = Path(os.environ['FRUGALBENCH_DB'])
    identifier = submit(make_submission('slow'), db).entry['id']
    before = ray_processes()
    server = serve()                                              # a local Ray instance of its own
    wait_until(lambda: '/' in (entries()[identifier]['node'] or ''), 120, server)
    assert ray_processes() - before                               # Ray is running for it
    time.sleep(1.0)
    server.send_signal(signal.SIGTERM)
    _, stderr = server.communicate(timeout=90)
    assert server.returncode == 0, stderr
    entry = entries()[identifier]
    assert entry['state'] == 'queued' and entry['position'] == 1 and entry['node'] is None, entry
    assert 'queued again' in entry['reason'] and 'SIGTERM' in entry['reason']
    assert wait_for_no_new_ray_processes(before) == set(), 'Ray processes outlived serve'
    assert stored_runs() == {}
