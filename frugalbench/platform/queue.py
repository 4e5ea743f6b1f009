"""The submission queue: one table in the results database (migration 5), one operation per open.

States: ``queued`` -> ``running`` -> ``done`` | ``failed``; ``cancelled`` by ``queue cancel``; a
running entry goes back to ``queued`` when its server stops. Entries are taken in submission
order (``seq``). An entry is keyed by (content hash, benchmark): the same content submitted twice
for a benchmark is one entry (a cancelled one is queued again).
"""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from frugalbench.errors import UsageError
from frugalbench.store import connect
from frugalbench.text import cap

STATES = ('queued', 'running', 'done', 'failed', 'cancelled')
FINAL_STATES = ('done', 'failed', 'cancelled')

# The table: migration 5 in frugalbench/store/migrations.py.

COLUMNS = ('entry_id', 'seq', 'content_hash', 'name', 'benchmark', 'state', 'attempts', 'node', 'submitted_at',
           'started_at', 'finished_at', 'updated_at', 'run_id', 'reason')


def entry_id(content_hash: str, benchmark: str) -> str:
    return hashlib.sha256(f'{content_hash}\0{benchmark}'.encode()).hexdigest()[:12]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _entry(row: tuple[Any, ...]) -> dict[str, Any]:
    entry = dict(zip(COLUMNS, row))
    entry['id'] = entry.pop('entry_id')
    for key in ('submitted_at', 'started_at', 'finished_at', 'updated_at'):
        if entry[key] is not None:
            entry[key] = entry[key].isoformat() + 'Z'
    return entry


def _select(connection: duckdb.DuckDBPyConnection, where: str = '', params: list[Any] | None = None,
            limit: str = '') -> list[dict[str, Any]]:
    rows = connection.execute(f'SELECT {", ".join(COLUMNS)} FROM submission_queue {where} ORDER BY seq {limit}',
                              params or []).fetchall()
    return [_entry(row) for row in rows]


def _with_positions(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    position = 0
    for entry in entries:
        if entry['state'] == 'queued':
            position += 1
            entry['position'] = position
        else:
            entry['position'] = None
    return entries


def _has_table(connection: duckdb.DuckDBPyConnection) -> bool:
    row = connection.execute("SELECT count(*) FROM information_schema.tables "
                             "WHERE table_name = 'submission_queue'").fetchone()
    return bool(row and row[0])


def enqueue(db_path: Path, content_hash: str, name: str, benchmark: str) -> tuple[dict[str, Any], bool]:
    """Add an entry (or find the one with this content and benchmark); return (entry, new)."""
    identifier = entry_id(content_hash, benchmark)
    with connect(db_path) as connection:
        connection.execute('BEGIN TRANSACTION')
        try:
            existing = _select(connection, 'WHERE entry_id = ?', [identifier])
            now = _now()
            if existing and existing[0]['state'] != 'cancelled':
                connection.execute('COMMIT')
                return _position_of(db_path, existing[0], connection), False
            row = connection.execute('SELECT coalesce(max(seq), 0) + 1 FROM submission_queue').fetchone()
            seq = int(row[0]) if row else 1
            if existing:   # a cancelled entry submitted again: queued again, at the end
                connection.execute("UPDATE submission_queue SET state = 'queued', seq = ?, updated_at = ?, "
                                   'reason = NULL, node = NULL WHERE entry_id = ?', [seq, now, identifier])
            else:
                connection.execute('INSERT INTO submission_queue VALUES (?, ?, ?, ?, ?, \'queued\', 0, NULL, ?, '
                                   'NULL, NULL, ?, NULL, NULL)',
                                   [identifier, seq, content_hash, cap(name, 200), benchmark, now, now])
            connection.execute('COMMIT')
        except BaseException:
            connection.execute('ROLLBACK')
            raise
        entry = _select(connection, 'WHERE entry_id = ?', [identifier])[0]
        return _position_of(db_path, entry, connection), True


def _position_of(db_path: Path, entry: dict[str, Any], connection: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    entry = dict(entry)
    if entry['state'] == 'queued':
        row = connection.execute("SELECT count(*) FROM submission_queue WHERE state = 'queued' AND seq <= ?",
                                 [entry['seq']]).fetchone()
        entry['position'] = int(row[0]) if row else None
    else:
        entry['position'] = None
    return entry


def list_entries(db_path: Path, state: str | None = None) -> list[dict[str, Any]]:
    """Every entry in submission order, with ``position`` (1 = next) for queued ones."""
    db_path = Path(db_path)
    if not db_path.exists():
        return []
    with connect(db_path, read_only=True) as connection:
        if not _has_table(connection):
            return []
        entries = _with_positions(_select(connection))
    return [e for e in entries if state is None or e['state'] == state]


def get(db_path: Path, identifier: str) -> dict[str, Any] | None:
    matches = [e for e in list_entries(db_path) if e['id'] == identifier]
    return matches[0] if matches else None


def cancel(db_path: Path, identifier: str) -> dict[str, Any]:
    """Cancel a queued entry; a running or finished one is left as it is (UsageError says why)."""
    with connect(db_path) as connection:
        found = _select(connection, 'WHERE entry_id = ?', [identifier])
        if not found:
            raise UsageError(f'no queue entry {identifier!r}: `frugalbench queue` lists the entries')
        state = found[0]['state']
        if state != 'queued':
            raise UsageError(f'queue entry {identifier} is {state}: only a queued entry can be cancelled')
        now = _now()
        connection.execute("UPDATE submission_queue SET state = 'cancelled', finished_at = ?, updated_at = ?, "
                           "reason = 'cancelled by the submitter' WHERE entry_id = ? AND state = 'queued'",
                           [now, now, identifier])
        return _select(connection, 'WHERE entry_id = ?', [identifier])[0]


def claim_next(db_path: Path, node: str) -> dict[str, Any] | None:
    """Take the first queued entry: running on ``node``, one more attempt. None when nothing waits."""
    with connect(db_path) as connection:
        connection.execute('BEGIN TRANSACTION')
        try:
            found = _select(connection, "WHERE state = 'queued'", limit='LIMIT 1')
            if not found:
                connection.execute('COMMIT')
                return None
            now = _now()
            connection.execute("UPDATE submission_queue SET state = 'running', attempts = attempts + 1, node = ?, "
                               'started_at = ?, finished_at = NULL, updated_at = ?, reason = NULL, run_id = NULL '
                               "WHERE entry_id = ? AND state = 'queued'", [node, now, now, found[0]['id']])
            connection.execute('COMMIT')
        except BaseException:
            connection.execute('ROLLBACK')
            raise
        return _select(connection, 'WHERE entry_id = ?', [found[0]['id']])[0]


def finish(db_path: Path, identifier: str, state: str, run_id: str | None = None, reason: str | None = None,
           retry_seconds: float = 300.0) -> None:
    """A running entry ends ``done`` or ``failed`` (with its reason and the run it produced)."""
    if state not in ('done', 'failed'):
        raise ValueError(state)
    now = _now()
    with connect(db_path, retry_seconds=retry_seconds) as connection:
        connection.execute("UPDATE submission_queue SET state = ?, run_id = ?, reason = ?, finished_at = ?, "
                           "updated_at = ? WHERE entry_id = ? AND state = 'running'",
                           [state, run_id, cap(reason) if reason else None, now, now, identifier])


def requeue(db_path: Path, identifiers: list[str], reason: str, retry_seconds: float = 60.0) -> None:
    """Running entries go back to ``queued`` (their server stopped), keeping their place."""
    if not identifiers:
        return
    now = _now()
    with connect(db_path, retry_seconds=retry_seconds) as connection:
        for identifier in identifiers:
            connection.execute("UPDATE submission_queue SET state = 'queued', node = NULL, started_at = NULL, "
                               "updated_at = ?, reason = ? WHERE entry_id = ? AND state = 'running'",
                               [now, cap(reason), identifier])


def record_start(db_path: Path, identifier: str, node: str, retried: bool, reason: str | None = None) -> None:
    """A running entry's task started on ``node``; a retried start (its node was lost) is one more attempt."""
    now = _now()
    with connect(db_path) as connection:
        connection.execute('UPDATE submission_queue SET node = ?, attempts = attempts + ?, updated_at = ?, '
                           "reason = coalesce(?, reason) WHERE entry_id = ? AND state = 'running'",
                           [node, 1 if retried else 0, now, cap(reason) if reason else None, identifier])
