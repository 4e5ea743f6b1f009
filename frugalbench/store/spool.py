"""Nothing finished is lost: results that could not be written wait in a spool beside the database.

A finished evaluation or training is written with ``store_or_spool``: when another process holds
the database file (DuckDB's lock is exclusive between processes, readers included), it waits
with backoff, saying so on stderr, for up to ``store_wait_seconds()`` (``FRUGALBENCH_STORE_WAIT``,
default 300 s). If the database still cannot be written, the result goes to
``<database folder>/spool/<id>.json`` (written atomically, with the database it is meant for),
and the next command that opens that database for writing (``frugalbench.store.connect``:
``evaluate``, ``results``, ``rank``, ``train``, ...) stores every spooled entry first, each in
its own transaction, then deletes its file. A run's overlays stay where they are and are listed
in its document, so they belong to the spooled run and then to the stored one.

Only when the spool cannot be written either is the result lost; ``NotRecordedError`` says so.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from frugalbench.errors import NotRecordedError, StoreError
from frugalbench.text import visible

SPOOL_FOLDER = 'spool'
STORE_WAIT_ENV = 'FRUGALBENCH_STORE_WAIT'
DEFAULT_STORE_WAIT_S = 300.0
SPOOL_VERSION = 1

Notify = Callable[[str], None]


def stderr_notice(message: str) -> None:
    """The default way a waiting writer tells the user what it waits for (one line on stderr)."""
    print(f'frugalbench: {visible(message)}', file=sys.stderr, flush=True)


def store_wait_seconds() -> float:
    """How long a finished result waits for a held database before it is spooled."""
    raw = os.environ.get(STORE_WAIT_ENV)
    if not raw:
        return DEFAULT_STORE_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        raise StoreError(f'{STORE_WAIT_ENV}={raw!r} is not a number of seconds') from None
    return max(0.0, value)


def spool_dir(db_path: Path) -> Path:
    return Path(db_path).parent / SPOOL_FOLDER


def _database_id(db_path: Path) -> str:
    return str(Path(db_path).resolve())


def spool_path(db_path: Path, entry_id: str) -> Path:
    return spool_dir(db_path) / f'{entry_id}.json'


def is_spooled(db_path: Path, entry_id: str) -> bool:
    """Whether ``entry_id`` (a run or training id) waits in the spool of ``db_path``."""
    return spool_path(db_path, entry_id).is_file()


@dataclass(frozen=True)
class SpooledAreas:
    """Per-image areas read back from a spool entry (the fields ``save_run`` uses)."""

    image: str
    intersect: np.ndarray
    union: np.ndarray
    pred: np.ndarray
    label: np.ndarray


def write_entry(db_path: Path, entry_id: str, kind: str, payload: dict[str, Any]) -> Path:
    """Write one spool entry atomically (temporary file, fsync, rename); return its path."""
    folder = spool_dir(db_path)
    folder.mkdir(parents=True, exist_ok=True)
    entry = {'spool_version': SPOOL_VERSION, 'kind': kind, 'id': entry_id, 'database': _database_id(db_path),
             'spooled_at': time.time(), **payload}
    handle, temporary = tempfile.mkstemp(prefix=f'.{entry_id}.', suffix='.part', dir=folder)
    try:
        with os.fdopen(handle, 'w') as out:
            json.dump(entry, out)
            out.flush()
            os.fsync(out.fileno())
        final = spool_path(db_path, entry_id)
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return final


def run_payload(document: dict[str, Any], class_names: Sequence[str], image_areas: Iterable[Any],
                measurements: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {'document': document, 'class_names': list(class_names),
            'image_areas': [{'image': a.image, 'intersect': np.asarray(a.intersect).tolist(),
                             'union': np.asarray(a.union).tolist(), 'pred': np.asarray(a.pred).tolist(),
                             'label': np.asarray(a.label).tolist()} for a in image_areas],
            'measurements': list(measurements)}


def pending(db_path: Path) -> list[Path]:
    """Spool entries waiting for ``db_path`` (oldest first)."""
    folder = spool_dir(db_path)
    if not folder.is_dir():
        return []
    return sorted(folder.glob('*.json'), key=lambda p: (p.stat().st_mtime, p.name))


def ingest(connection: duckdb.DuckDBPyConnection, db_path: Path, notify: Notify | None = stderr_notice) -> list[str]:
    """Store every spool entry meant for ``db_path`` on ``connection``; return the ids stored.

    An entry already in the database (stored before its file could be deleted) is just deleted.
    An entry that cannot be read or stored stays in the spool and is reported.
    """
    from frugalbench.store.runs import save_run
    from frugalbench.store.trainings import save_training
    stored = []
    database = _database_id(db_path)
    for path in pending(db_path):
        try:
            entry = json.loads(path.read_text())
            if entry.get('database') != database:
                continue  # meant for another database file in this folder
            kind, entry_id = entry['kind'], str(entry['id'])
            if kind == 'run':
                if not _exists(connection, 'runs', 'run_id', entry_id):
                    areas = [SpooledAreas(a['image'], *(np.asarray(a[k], dtype=np.float64)
                                                        for k in ('intersect', 'union', 'pred', 'label')))
                             for a in entry['image_areas']]
                    save_run(connection, entry['document'], entry['class_names'], areas, entry['measurements'])
            elif kind == 'training':
                save_training(connection, entry['record'])
            else:
                raise ValueError(f'unknown kind {kind!r}')
        except (OSError, ValueError, KeyError, TypeError, duckdb.Error) as exc:
            if notify:
                notify(f'spooled result {path} could not be stored ({exc}); it stays in the spool')
            continue
        path.unlink(missing_ok=True)
        stored.append(entry_id)
        if notify:
            notify(f'stored spooled {kind} {entry_id} from {path.parent} in {db_path}')
    return stored


def _exists(connection: duckdb.DuckDBPyConnection, table: str, column: str, value: str) -> bool:
    row = connection.execute(f'SELECT count(*) FROM {table} WHERE {column} = ?', [value]).fetchone()
    return bool(row and row[0])


def store_or_spool(db_path: Path, entry_id: str, kind: str, payload: dict[str, Any],
                   write: Callable[[duckdb.DuckDBPyConnection], None], *, what: str,
                   notify: Notify | None = stderr_notice, wait_seconds: float | None = None) -> Path | None:
    """Write a finished result with ``write`` (one transaction), waiting for a held database; spool
    it when the database cannot be written. Returns None when stored, else the spool file.
    Raises NotRecordedError when neither worked."""
    from frugalbench.store.db import connect
    wait = store_wait_seconds() if wait_seconds is None else wait_seconds
    try:
        with connect(db_path, retry_seconds=wait, on_wait=_waiting(db_path, what, wait, notify)) as connection:
            write(connection)
        return None
    except (StoreError, duckdb.Error) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        path = write_entry(db_path, entry_id, kind, payload)
    except (OSError, TypeError, ValueError) as exc:
        raise NotRecordedError(f'{what} is NOT recorded: the database {db_path} could not be written ({problem}) '
                               f'and neither could the spool {spool_dir(db_path)} ({exc})') from None
    if notify:
        notify(f'{what} is not in {db_path} yet ({problem}); it waits in {path}: the next frugalbench '
               'command that opens this database (e.g. `frugalbench results`) stores it')
    return path


def _waiting(db_path: Path, what: str, wait: float, notify: Notify | None) -> Callable[[str, float], None] | None:
    if notify is None:
        return None

    def on_wait(holder: str, waited: float) -> None:
        notify(f'results database {db_path} is held by another process{holder}; {what} waits for it '
               f'({waited:.0f} s of at most {wait:.0f} s, then it is spooled; {STORE_WAIT_ENV} sets the wait)')
    return on_wait


def store_run_or_spool(db_path: Path, document: dict[str, Any], class_names: Sequence[str] = (),
                       image_areas: Sequence[Any] = (), measurements: Sequence[dict[str, Any]] = (), *,
                       notify: Notify | None = stderr_notice, wait_seconds: float | None = None) -> Path | None:
    """``save_run`` through ``store_or_spool``: None when stored, else the spool file."""
    from frugalbench.store.runs import save_run
    run_id = str(document['run_id'])
    return store_or_spool(
        db_path, run_id, 'run', run_payload(document, class_names, image_areas, measurements),
        lambda connection: save_run(connection, document, class_names, image_areas, measurements),
        what=f'run {run_id} ({visible(document.get("submission"))}, {document.get("status")})',
        notify=notify, wait_seconds=wait_seconds)


def store_training_or_spool(db_path: Path, record: dict[str, Any], *, notify: Notify | None = stderr_notice,
                            wait_seconds: float | None = None) -> Path | None:
    """``save_training`` through ``store_or_spool``: None when stored, else the spool file."""
    from frugalbench.store.trainings import save_training
    training_id = str(record['training_id'])
    return store_or_spool(db_path, training_id, 'training', {'record': record},
                          lambda connection: save_training(connection, record),
                          what=f'training {training_id} ({visible(record.get("submission"))})',
                          notify=notify, wait_seconds=wait_seconds)
