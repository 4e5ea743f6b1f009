"""``frugalbench serve`` (local form): evaluate queued entries in order on N slots.

Each slot runs one entry at a time in a worker process of its own (``frugalbench.platform.worker``,
which calls ``frugalbench.evaluation.evaluate_submission`` on the stored copy). States: ``queued`` ->
``running`` (attempts + 1, node) -> ``done`` (with the run id) or ``failed`` (with the reason and,
when the evaluation recorded one, the run id). SIGTERM or Ctrl-C: workers are interrupted, their
entries go back to ``queued``. Entries left ``running`` by a server of this machine that died are
queued again when the next one starts. Archives uploaded through the leaderboard
(``$FRUGALBENCH_DATA/platform/uploads/``) are submitted on every pass.

The database is opened for one operation at a time, so ``queue``, ``results`` and the leaderboard
read while the server runs.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frugalbench.platform import queue, store
from frugalbench.settings import work_dir
from frugalbench.text import cap

STOP_GRACE_S = 20.0
Notify = Callable[[str], None]


@dataclass
class ServeOptions:
    db_path: Path
    slots: int = 1
    poll_s: float = 1.0
    exit_when_empty: bool = False        # stop once nothing is queued or running (tests, batch use)
    device: str = 'cpu'
    max_images: int | None = None
    measure: bool = True
    protocol_path: Path | None = None
    timeout_s: float | None = None
    memory_mb: int | None = None
    threads: int | None = None
    ingest_uploads: bool = True


@dataclass
class _Slot:
    entry: dict[str, Any]
    process: subprocess.Popen
    result_path: Path
    log_path: Path
    started: float = field(default_factory=time.monotonic)


def _print(message: str) -> None:
    print(f'frugalbench serve: {message}', file=sys.stderr, flush=True)


class Server:
    def __init__(self, options: ServeOptions, notify: Notify = _print) -> None:
        self.options = options
        self.notify = notify
        self.running: dict[str, _Slot] = {}
        self.stop_reason: str | None = None
        self.host = socket.gethostname()
        self.folder = work_dir() / 'platform' / f'serve-{os.getpid()}'

    # signals -----------------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop_reason = signal.Signals(signum).name

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._requeue_orphans()
            self.notify(f'serving {self.options.db_path} on {self.options.slots} slot(s); Ctrl-C stops')
            while self.stop_reason is None:
                if self.options.ingest_uploads:
                    self._ingest_uploads()
                self._reap()
                started = self._fill()
                if self.options.exit_when_empty and not self.running and not started:
                    break
                self._sleep(self.options.poll_s)
        finally:
            self._stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.stop_reason is None and time.monotonic() < deadline:
            if any(slot.process.poll() is not None for slot in self.running.values()):
                return
            time.sleep(0.1)

    # work --------------------------------------------------------------------------------------------
    def _node(self, slot: int) -> str:
        return f'{self.host}:{os.getpid()}:slot{slot}'

    def _fill(self) -> int:
        started = 0
        while self.stop_reason is None and len(self.running) < self.options.slots:
            used = {slot.entry['node'] for slot in self.running.values()}
            node = next(self._node(i) for i in range(self.options.slots + 1) if self._node(i) not in used)
            entry = queue.claim_next(self.options.db_path, node)
            if entry is None:
                break
            self._start(entry)
            started += 1
        return started

    def _start(self, entry: dict[str, Any]) -> None:
        folder = store.stored_folder(entry['content_hash'])
        tag = f'{entry["id"]}-{entry["attempts"]}'
        result_path, log_path = self.folder / f'{tag}.result.json', self.folder / f'{tag}.log'
        result_path.unlink(missing_ok=True)
        spec = {'folder': str(folder), 'benchmark': entry['benchmark'], 'db_path': str(self.options.db_path),
                'device': self.options.device, 'max_images': self.options.max_images,
                'measure': self.options.measure, 'timeout_s': self.options.timeout_s,
                'memory_mb': self.options.memory_mb, 'threads': self.options.threads,
                'protocol_path': str(self.options.protocol_path) if self.options.protocol_path else None,
                'result_path': str(result_path)}
        spec_path = self.folder / f'{tag}.spec.json'
        spec_path.write_text(json.dumps(spec))
        with open(log_path, 'wb') as log:
            process = subprocess.Popen([sys.executable, '-m', 'frugalbench.platform.worker', str(spec_path)],
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.running[entry['id']] = _Slot(entry, process, result_path, log_path)
        self.notify(f'running {entry["id"]} ({entry["name"]}) on {entry["node"]}, attempt {entry["attempts"]}')

    def _reap(self) -> None:
        for identifier, slot in list(self.running.items()):
            code = slot.process.poll()
            if code is None:
                continue
            del self.running[identifier]
            state, run_id, reason = self._outcome(slot, code)
            queue.finish(self.options.db_path, identifier, state, run_id, reason)
            self.notify(f'{state} {identifier} ({slot.entry["name"]})' + (f': {reason}' if reason else ''))

    def _outcome(self, slot: _Slot, code: int) -> tuple[str, str | None, str | None]:
        try:
            result = json.loads(slot.result_path.read_text())
        except (OSError, ValueError):
            tail = _log_tail(slot.log_path)
            return 'failed', None, cap(f'the evaluation process ended with exit code {code} without a result'
                                       + (f': {tail}' if tail else ''))
        if result.get('status') == 'ok':
            return 'done', result.get('run_id'), None
        return 'failed', result.get('run_id'), result.get('failure_reason') or 'the evaluation failed'

    # stopping ----------------------------------------------------------------------------------------
    def _stop(self) -> None:
        if not self.running:
            return
        why = self.stop_reason or 'the server stopped'
        self.notify(f'stopping ({why}): {len(self.running)} running entr{"y" if len(self.running) == 1 else "ies"} '
                    'go back to the queue')
        for slot in self.running.values():
            _signal_group(slot.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for slot in self.running.values():
            try:
                slot.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(slot.process, signal.SIGKILL)
                slot.process.wait()
        queue.requeue(self.options.db_path, list(self.running),
                      f'queued again: the server running it stopped ({why})')
        self.running.clear()

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _log_tail(path: Path, limit: int = 2000) -> str:
    try:
        with open(path, 'rb') as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            text = handle.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ''
