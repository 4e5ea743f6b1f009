"""``frugalbench serve``: the queue's entries evaluated as Ray tasks, on this machine or a cluster.

The server is a Ray *driver* and the **only writer** of the database. It claims queued entries in
submission order (``queued`` -> ``running``, attempts + 1) while fewer than ``slots`` tasks are in
flight, and submits one Ray task per entry (``frugalbench.platform.cluster``). A task evaluates on
whichever node Ray chose (``frugalbench.platform.tasks``: the model still runs in the evaluation's
confined child there) and returns the run; the driver stores it once (a retried task cannot store
twice: only results are stored, keyed by run id) and ends the entry ``done`` (run id) or ``failed``
(reason, and the failed run's id when one was recorded). The database is opened for one operation at
a time, so ``queue``, ``results`` and the leaderboard read while the server runs.

Faults: a task whose node (or worker) dies is retried by Ray on another node, ``MAX_ATTEMPTS`` in all,
each start recorded in the entry (node, attempts); after the last one the entry is ``failed`` with the
reason. A node whose benchmark data fingerprint differs from the driver's refuses the entry (``failed``
with the reason). SIGTERM or Ctrl-C cancels the tasks in flight (their evaluations end their model
processes), puts their entries back to ``queued`` and leaves the cluster; a local Ray instance stops
with all its processes. Entries left ``running`` by a dead server of this machine are queued again.

Progress: a live table (rich) on a terminal; every state change as one JSON line in the log file
(and on stdout with ``--format json``).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from frugalbench.platform import cluster, queue, store
from frugalbench.platform.tasks import TaskSpec, data_fingerprint
from frugalbench.settings import data_dir
from frugalbench.text import cap, visible

STOP_GRACE_S = 20.0
WAIT_STEP_S = 0.2
Notify = Callable[[str], None]


@dataclass
class ServeOptions:
    db_path: Path
    ray_address: str | None = None       # None: a local Ray instance for this server only
    slots: int | None = None             # tasks in flight (default: 1 locally, the cluster's CPUs when joined)
    poll_s: float = 1.0
    exit_when_empty: bool = False        # stop once nothing is queued or running (tests, batch use)
    device: str = 'cpu'
    max_images: int | None = None
    measure: bool = True
    protocol_path: Path | None = None
    timeout_s: float | None = None
    memory_mb: int | None = None
    threads: int | None = None           # --no-measure runs only (a measured run uses the benchmark's)
    ingest_uploads: bool = True
    log_path: Path | None = None         # JSON lines of state changes (default: beside the store)
    json_events: bool = False            # also print them on stdout
    live: bool = False                   # a live table on stderr


@dataclass
class _Task:
    entry: dict[str, Any]
    spec: TaskSpec
    ref: Any
    submitted: float = field(default_factory=time.monotonic)
    starts: int = 0
    node: str | None = None
    retry_note: str | None = None        # why the last start was a retry (kept on a done entry)


def _print(message: str) -> None:
    print(f'frugalbench serve: {message}', file=sys.stderr, flush=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec='milliseconds').replace('+00:00', 'Z')


class Server:
    def __init__(self, options: ServeOptions, notify: Notify = _print) -> None:
        self.options = options
        self.notify = notify
        self.tasks: dict[str, _Task] = {}
        self.stop_reason: str | None = None
        self.host = socket.gethostname()
        self.name = f'{self.host}:{os.getpid()}'
        self.fingerprints: dict[str, str | None] = {}
        self.counts: dict[str, int] = {}
        self.slots = 1
        self.tracker: Any = None
        self.log_path = options.log_path or data_dir() / 'platform' / 'serve-events.jsonl'
        self._live: Any = None
        self._events_out: Any = None

    # running -----------------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop_reason = signal.Signals(signum).name

    def run(self) -> int:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        self._own_stdout()
        try:
            where = cluster.connect(self.options.ray_address,
                                    cpus=None if self.options.ray_address else os.cpu_count())
            signal.signal(signal.SIGTERM, self._on_signal)   # after Ray's own set-up
            signal.signal(signal.SIGINT, self._on_signal)
            self.slots = self.options.slots or (cluster.cluster_cpus() if self.options.ray_address else 1)
            self.tracker = cluster.start_tracker()
            self._requeue_orphans()
            self._event('serving', None, ray=where['address'], local=where['local'], slots=self.slots,
                        nodes=len(cluster.alive_nodes()), cpus=cluster.cluster_cpus(), db=str(self.options.db_path))
            self.notify(f'serving {self.options.db_path} on {self.slots} slot(s), Ray '
                        f'{"local" if where["local"] else where["address"]} ({len(cluster.alive_nodes())} node(s), '
                        f'{cluster.cluster_cpus()} CPUs); Ctrl-C stops')
            self._start_live()
            self._loop()
        finally:
            try:
                self._stop()
            finally:
                self._stop_live()
                cluster.disconnect()
                self._restore_stdout()
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
        return 0

    def _own_stdout(self) -> None:
        """With --format json, stdout carries the events only: whatever else writes to file
        descriptor 1 (Ray's messages about its nodes and tasks) goes to stderr."""
        if not self.options.json_events:
            return
        sys.stdout.flush()
        self._events_out = os.fdopen(os.dup(1), 'w', buffering=1)
        os.dup2(2, 1)

    def _restore_stdout(self) -> None:
        if self._events_out is None:
            return
        sys.stdout.flush()
        os.dup2(self._events_out.fileno(), 1)
        self._events_out.close()
        self._events_out = None

    def _loop(self) -> None:
        next_poll = 0.0
        while self.stop_reason is None:
            claimed = None
            if time.monotonic() >= next_poll:
                if self.options.ingest_uploads:
                    self._ingest_uploads()
                claimed = self._fill()
                self.counts = _counts(self.options.db_path)
                next_poll = time.monotonic() + self.options.poll_s
            self._track()
            if self._reap():
                next_poll = 0.0                # a slot is free: look at the queue at once
            self._show()
            if self.options.exit_when_empty and claimed == 0 and not self.tasks:
                break

    def _fill(self) -> int:
        claimed = 0
        while self.stop_reason is None and len(self.tasks) < self.slots:
            entry = queue.claim_next(self.options.db_path, f'{self.name}:ray')
            if entry is None:
                break
            claimed += 1
            self._event('running', entry)
            self._submit(entry)
        return claimed

    def _submit(self, entry: dict[str, Any]) -> None:
        import ray
        try:
            spec = self._spec(entry)
        except Exception as exc:   # noqa: BLE001 - any problem preparing the entry fails it, with the reason
            self._finish(entry, 'failed', None, f'the entry could not be prepared: {_first_line(exc)}')
            return
        if not cluster.can_schedule(spec.threads, spec.measure):
            what = (f'{spec.threads} CPU(s) and the measurement slot ({cluster.MEASURE_RESOURCE})' if spec.measure
                    else f'{spec.threads} CPU(s)')
            self._finish(entry, 'failed', None, f'no node of the Ray cluster offers {what}: start a node with '
                                                'them (docs/scale.md), or serve --no-measure')
            return
        shipped = ray.put(_read_files(Path(spec.stored_path)))
        self.tasks[entry['id']] = _Task(entry, spec, cluster.submit(spec, shipped, self.tracker))

    def _spec(self, entry: dict[str, Any]) -> TaskSpec:
        from frugalbench.benchmarks import load_benchmark
        from frugalbench.store import connect
        from frugalbench.store.trainings import latest_training
        from frugalbench.submission import load_submission
        folder = store.stored_folder(entry['content_hash'])
        benchmark = load_benchmark(entry['benchmark'])
        if entry['benchmark'] not in self.fingerprints:
            self.fingerprints[entry['benchmark']] = data_fingerprint(entry['benchmark'])
        checkpoint = load_submission(folder).checkpoint_sha256()
        with connect(self.options.db_path) as connection:
            training = latest_training(connection, None, checkpoint)
        threads = benchmark.limits.evaluation_threads if self.options.measure else (self.options.threads or 1)
        return TaskSpec(entry_id=entry['id'], content_hash=entry['content_hash'], benchmark=entry['benchmark'],
                        stored_path=str(folder), driver_fingerprint=self.fingerprints[entry['benchmark']],
                        db_path=str(self.options.db_path), threads=threads, measure=self.options.measure,
                        device=self.options.device, max_images=self.options.max_images,
                        timeout_s=self.options.timeout_s, memory_mb=self.options.memory_mb,
                        protocol_path=str(self.options.protocol_path) if self.options.protocol_path else None,
                        training=training)

    # task events and results ----------------------------------------------------------------------------
    def _track(self) -> None:
        """Record where each task attempt started; a second start means its node was lost."""
        import ray
        for event in ray.get(self.tracker.drain.remote()):
            task = self.tasks.get(event['entry_id'])
            if task is None:
                continue
            node = event['node']
            previous, task.starts = task.node, task.starts + 1
            task.node = f'{self.name}:{node["host"]}/{node["node_id"][:8]}'
            retried = task.starts > 1
            reason = (f'attempt {task.entry["attempts"] + task.starts - 1}: retried on another node, the one running '
                      f'the previous attempt ({previous}) was lost') if retried else None
            task.retry_note = reason or task.retry_note
            queue.record_start(self.options.db_path, task.entry['id'], task.node, retried, reason)
            self._event('retried' if retried else 'started', task.entry, node=task.node, attempt=task.starts)

    def _reap(self) -> int:
        import ray
        if not self.tasks:
            time.sleep(WAIT_STEP_S)
            return 0
        ready, _ = ray.wait([t.ref for t in self.tasks.values()], num_returns=len(self.tasks), timeout=WAIT_STEP_S)
        if not ready:
            return 0
        self._track()   # starts first, so that attempts are counted before the entry ends
        done = [t for t in self.tasks.values() if t.ref in ready]
        for task in done:
            del self.tasks[task.entry['id']]
            state, run_id, reason = self._outcome(task)
            self._finish(task.entry, state, run_id, reason, node=task.node)
        return len(done)

    def _outcome(self, task: _Task) -> tuple[str, str | None, str | None]:
        import ray
        from ray.exceptions import RayError, RayTaskError
        try:
            result = ray.get(task.ref)
        except RayTaskError as exc:    # an error raised by the task itself: not retried
            return 'failed', None, cap(f'the evaluation task raised an error: {_first_line(exc.cause or exc)}')
        except RayError as exc:        # its worker or node died on every attempt
            attempts = max(task.starts, 1)
            return 'failed', None, cap(f'the evaluation was lost {attempts} time(s) (node or worker died; '
                                       f'{cluster.MAX_ATTEMPTS} attempts at most): {_first_line(exc)}')
        if result['status'] == 'refused':
            return 'failed', None, result['failure_reason']
        run_id = self._store(result) if result.get('payload') else result.get('run_id')
        if result['status'] == 'ok':
            return 'done', run_id, task.retry_note
        return 'failed', run_id, result.get('failure_reason') or 'the evaluation failed'

    def _store(self, result: dict[str, Any]) -> str:
        """Store a task's run once (a run id already stored is not stored again); spool it when the
        database stays held (the next opener stores it)."""
        from frugalbench.store.runs import save_run
        from frugalbench.store.spool import SpooledAreas, store_or_spool
        payload = result['payload']
        document = payload['document']
        _keep_overlays(document, result.get('overlays') or {})
        run_id = str(document['run_id'])
        areas = [SpooledAreas(a['image'], *(np.asarray(a[k], dtype=np.float64)
                                            for k in ('intersect', 'union', 'pred', 'label')))
                 for a in payload['image_areas']]

        def write(connection: Any) -> None:
            row = connection.execute('SELECT count(*) FROM runs WHERE run_id = ?', [run_id]).fetchone()
            if not (row and row[0]):
                save_run(connection, document, payload['class_names'], areas, payload['measurements'])
        store_or_spool(self.options.db_path, run_id, 'run', payload, write, notify=self.notify,
                       what=f'run {run_id} ({visible(document.get("submission"))}, {document.get("status")})')
        return run_id

    def _finish(self, entry: dict[str, Any], state: str, run_id: str | None, reason: str | None,
                node: str | None = None) -> None:
        queue.finish(self.options.db_path, entry['id'], state, run_id, reason)
        self._event(state, entry, run_id=run_id, reason=reason, node=node)

    # stopping ----------------------------------------------------------------------------------------
    def _stop(self) -> None:
        if not self.tasks:
            return
        import ray
        why = self.stop_reason or 'the server stopped'
        self.notify(f'stopping ({why}): {len(self.tasks)} running entr{"y" if len(self.tasks) == 1 else "ies"} '
                    'go back to the queue')
        refs = [t.ref for t in self.tasks.values()]
        for ref in refs:                     # KeyboardInterrupt in the task: the evaluation cleans up
            ray.cancel(ref, force=False)
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=STOP_GRACE_S)
        for ref in pending:
            ray.cancel(ref, force=True)
        queue.requeue(self.options.db_path, list(self.tasks), f'queued again: the server running it stopped ({why})')
        for task in self.tasks.values():
            self._event('queued', task.entry, reason=f'server stopped ({why})')
        self.tasks.clear()

    def _requeue_orphans(self) -> None:
        """Entries left running by a dead server process of this machine go back to the queue."""
        orphans = []
        for entry in queue.list_entries(self.options.db_path, 'running'):
            host, _, rest = (entry.get('node') or '').partition(':')
            pid = rest.partition(':')[0]
            if host == self.host and pid.isdigit() and not _alive(int(pid)):
                orphans.append(entry['id'])
        if orphans:
            queue.requeue(self.options.db_path, orphans, 'queued again: the server running it died')
            self.notify(f'queued again {len(orphans)} entr{"y" if len(orphans) == 1 else "ies"} of a dead server')

    def _ingest_uploads(self) -> None:
        from frugalbench.platform.uploads import ingest_uploads
        for message in ingest_uploads(self.options.db_path):
            self.notify(message)

    # progress ----------------------------------------------------------------------------------------
    def _event(self, kind: str, entry: dict[str, Any] | None, **fields: Any) -> None:
        """One state change: a JSON line in the log (and on stdout with --format json), a line on stderr."""
        record = {'time': _now(), 'event': kind, 'server': self.name}
        if entry is not None:
            record.update(entry=entry['id'], name=entry.get('name'), benchmark=entry.get('benchmark'))
        record.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(record, default=str)
        with open(self.log_path, 'a') as log:
            log.write(line + '\n')
        if self._events_out is not None:
            print(line, file=self._events_out, flush=True)
        if entry is not None and not self._live:
            detail = fields.get('reason') or fields.get('run_id') or fields.get('node') or ''
            self.notify(f'{kind} {entry["id"]} ({visible(entry.get("name"))})' + (f': {detail}' if detail else ''))

    def _start_live(self) -> None:
        if not self.options.live:
            return
        from rich.console import Console
        from rich.live import Live
        self._live = Live(self._table(), console=Console(stderr=True), refresh_per_second=4, transient=False)
        self._live.start()

    def _stop_live(self) -> None:
        if self._live:
            self._live.update(self._table())
            self._live.stop()
            self._live = None

    def _show(self) -> None:
        if self._live:
            self._live.update(self._table())

    def _table(self) -> Any:
        from rich.table import Table
        from rich.text import Text
        counts = ' · '.join(f'{state} {self.counts.get(state, 0)}' for state in queue.STATES)
        table = Table(title=f'frugalbench serve: {len(self.tasks)}/{self.slots} slots busy',
                      caption=f'queue: {counts}')
        for column in ('entry', 'name', 'attempt', 'node', 'resources', 'seconds'):
            table.add_column(column, overflow='fold')
        for task in self.tasks.values():
            resources = f'{task.spec.threads} CPU' + (' + measurement slot' if task.spec.measure else '')
            cells = (task.entry['id'], visible(task.entry.get('name')), str(max(task.starts, 1)),
                     task.node or 'waiting for a node', resources, f'{time.monotonic() - task.submitted:.0f}')
            table.add_row(*(Text(cell) for cell in cells))   # text, never rich markup
        return table


def _counts(db_path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in queue.list_entries(db_path):
        counts[entry['state']] = counts.get(entry['state'], 0) + 1
    return counts


def _read_files(folder: Path) -> dict[str, bytes]:
    """The stored submission's files, shipped to a node that lacks the stored copy."""
    return {relative: (folder / relative).read_bytes() for relative in store.list_files(folder)}


def _keep_overlays(document: dict[str, Any], images: dict[str, bytes]) -> None:
    """Overlays written on another machine are written here, under this data folder, and pointed to."""
    for overlay in document.get('overlays') or []:
        path = Path(overlay.get('path', ''))
        if path.is_file() or path.name not in images:
            continue
        target = data_dir() / 'overlays' / str(document['run_id']) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(images[path.name])
        overlay['path'] = str(target)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
