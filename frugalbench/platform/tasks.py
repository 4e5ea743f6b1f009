"""What one Ray task does on whichever node runs it: evaluate one queue entry, write nothing shared.

``evaluate_entry(spec)`` is the body of ``frugalbench serve``'s Ray task (``frugalbench.platform.cluster``
wraps it). On its node it

1. compares the node's benchmark data fingerprint (the one ``frugalbench data prepare`` records in
   ``$FRUGALBENCH_DATA/prepared/<benchmark>.json``) with the driver's: a difference refuses the entry;
2. finds the submission: the node's stored copy when its content hash matches, else the files the
   driver shipped through Ray's object store, written to the node's work folder and checked;
3. runs ``evaluate_submission`` *detached*: the model still runs in the confined child, but the
   database is neither read nor written here. The run comes back as a spool payload with its
   overlay images, and the driver (the only writer) stores it once.

A measured run also holds the host's measurement lock (a file lock in ``/tmp``), so two Ray nodes on
one machine never measure at once even when both were given a measurement slot.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from frugalbench.settings import work_dir

HOST_LOCK = Path('/tmp/frugalbench-measurement.lock')


@dataclass(frozen=True)
class TaskSpec:
    """Everything a task needs, picklable, decided by the driver."""

    entry_id: str
    content_hash: str
    benchmark: str
    stored_path: str                  # the driver's stored copy (used when present on this node)
    driver_fingerprint: str | None    # the driver's benchmark data fingerprint (None: none recorded)
    db_path: str                      # the driver's database: hidden from the model process, never opened
    threads: int                      # what the task was granted (CPUs), also the model's threads
    measure: bool
    device: str = 'cpu'
    max_images: int | None = None
    timeout_s: float | None = None
    memory_mb: int | None = None
    protocol_path: str | None = None
    training: dict[str, Any] | None = None   # the checkpoint's harness training, looked up by the driver

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def node_identity() -> dict[str, Any]:
    """Where this task runs: host name, machine id (one per physical host) and process id."""
    return {'host': socket.gethostname(), 'machine': machine_id(), 'pid': os.getpid()}


def machine_id() -> str:
    for path in ('/etc/machine-id', '/var/lib/dbus/machine-id'):
        with contextlib.suppress(OSError):
            value = Path(path).read_text().strip()
            if value:
                return value[:12]
    return socket.gethostname()


def data_fingerprint(benchmark: str) -> str | None:
    """The fingerprint ``frugalbench data prepare`` recorded for this benchmark on this node, if any."""
    from frugalbench.benchmarks.prepare import read_record
    record = read_record(benchmark)
    value = record.get('fingerprint') if record else None
    return value if isinstance(value, str) else None


def fingerprint_problem(benchmark: str, driver: str | None, node: str | None, host: str) -> str | None:
    """Why this node may not evaluate the benchmark (its data differ from the driver's), or None."""
    if driver == node:
        return None

    def show(value: str | None) -> str:
        return value[:16] if value else 'none recorded'
    return (f'the benchmark data of {benchmark!r} on node {host} differ from the driver\'s (data fingerprint '
            f'{show(node)} on the node, {show(driver)} on the driver): run `frugalbench data prepare {benchmark}` '
            'on both with the same data')


def submission_folder(spec: TaskSpec, shipped: list[Any]) -> Path:
    """The stored copy when this node has it intact, else the shipped files written and checked here."""
    from frugalbench.errors import SubmissionError
    from frugalbench.platform.store import content_hash
    stored = Path(spec.stored_path)
    if stored.is_dir():
        with contextlib.suppress(SubmissionError, OSError):
            if content_hash(stored) == spec.content_hash:
                return stored
    import ray
    files: dict[str, bytes] = ray.get(shipped[0])
    target = work_dir() / 'platform' / 'submissions' / spec.content_hash
    if target.is_dir() and content_hash(target) == spec.content_hash:
        return target
    staged = target.with_name(f'{spec.content_hash}.{os.getpid()}.part')
    for relative, data in files.items():
        if Path(relative).is_absolute() or '..' in Path(relative).parts:
            raise SubmissionError(f'shipped file {relative!r} escapes the submission folder')
        path = staged / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if content_hash(staged) != spec.content_hash:
        raise SubmissionError('the shipped submission does not match its content hash: submit it again')
    with contextlib.suppress(OSError):
        staged.rename(target)
    return target if target.is_dir() else staged


@contextlib.contextmanager
def host_measurement_lock(measure: bool) -> Iterator[None]:
    """Hold the machine-wide measurement lock for a measured run (nothing for a --no-measure one)."""
    if not measure:
        yield
        return
    with open(HOST_LOCK, 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def evaluate_entry(spec: TaskSpec, shipped: list[Any]) -> dict[str, Any]:
    """Evaluate one entry here; return ``{"status", "run_id", "failure_reason", "payload", "overlays",
    "node"}`` (status ``refused`` when this node may not evaluate it: nothing was run)."""
    from frugalbench.errors import FrugalbenchError
    from frugalbench.evaluation import Detached, EvaluationOptions, evaluate_submission
    from frugalbench.isolation import Limits
    node = node_identity()
    problem = fingerprint_problem(spec.benchmark, spec.driver_fingerprint, data_fingerprint(spec.benchmark),
                                  node['host'])
    if problem:
        return {'status': 'refused', 'run_id': None, 'failure_reason': problem, 'payload': None,
                'overlays': {}, 'node': node}
    _set_threads(spec.threads)
    options = EvaluationOptions(
        benchmark=spec.benchmark, db_path=Path(spec.db_path), device=spec.device, max_images=spec.max_images,
        limits=Limits(timeout_s=spec.timeout_s, memory_mb=spec.memory_mb, threads=spec.threads),
        measure=spec.measure, protocol_path=Path(spec.protocol_path) if spec.protocol_path else None,
        detached=Detached(training=spec.training))
    try:
        folder = submission_folder(spec, shipped)
        with host_measurement_lock(spec.measure):
            outcome = evaluate_submission(folder, options)
    except FrugalbenchError as exc:   # a benchmark error, or a submission that could not be put here
        return {'status': 'failed', 'run_id': None, 'failure_reason': str(exc), 'payload': None,
                'overlays': {}, 'node': node}
    document = outcome.document
    return {'status': document.get('status'), 'run_id': document.get('run_id'),
            'failure_reason': document.get('failure_reason'), 'payload': outcome.payload,
            'overlays': _overlay_bytes(document), 'node': node}


def _set_threads(threads: int) -> None:
    """This process (the harness side: decoding, scoring) follows its grant too."""
    for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
        os.environ[name] = str(threads)


def _overlay_bytes(document: dict[str, Any]) -> dict[str, bytes]:
    """The run's overlay images, so that the driver keeps them when it runs on another machine."""
    images = {}
    for overlay in document.get('overlays') or []:
        path = Path(overlay.get('path', ''))
        with contextlib.suppress(OSError):
            images[path.name] = path.read_bytes()
    return images
