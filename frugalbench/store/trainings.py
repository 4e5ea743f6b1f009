"""The ``trainings`` table: one row per training run that the harness performed.

``TRAININGS_MIGRATION_SQL`` is migration 3 in ``frugalbench/store/migrations.py`` (idempotent:
``IF NOT EXISTS`` everywhere); ``save_training`` also applies it on a connection opened elsewhere.
Typed columns hold what the leaderboard filters and joins on; ``document`` holds the whole
training record (the same JSON as ``training_record.json``).
"""
from __future__ import annotations

import json
from typing import Any

import duckdb

from frugalbench.documents import get_path
from frugalbench.store.migrations import TRAININGS_MIGRATION_SQL

TRAININGS_MIGRATION_DESCRIPTION = 'trainings: verified training runs (budget, schedule, measurements)'

# column -> dotted path in the training record (``TrainingRecord.to_dict()``)
TRAINING_COLUMNS: dict[str, str] = {
    'training_id': 'training_id',
    'created_at': 'created_at',
    'submission': 'submission',
    'source_submission': 'source_submission',
    'benchmark': 'benchmark',
    'benchmark_sha256': 'benchmark_sha256',
    'protocol_version': 'protocol_version',
    'subset_id': 'budget.subset_id',
    'images': 'budget.images',
    'images_sha256': 'budget.images_sha256',
    'annotation': 'budget.annotation',
    'labelled_pixels': 'budget.labelled_pixels',
    'annotator_seconds': 'budget.annotator_seconds',
    'seed': 'seed',
    'iterations': 'iterations',
    'batch_size': 'schedule.batch_size',
    'wall_seconds': 'totals.wall_seconds',
    'cpu_seconds': 'totals.cpu_seconds',
    'peak_rss_mb': 'totals.peak_rss_mb',
    'energy_joules': 'totals.energy_joules',
    'energy_method': 'totals.energy_method',
    'energy_measured': 'totals.energy_measured',
    'device': 'device',
    'hardware_fingerprint': 'hardware.fingerprint',
    'config_sha256': 'hashes.config_sha256',
    'checkpoint_sha256': 'hashes.checkpoint_sha256',
    'verified': 'verified',
}


def ensure_trainings_table(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the table if the store's migrations do not include it yet (idempotent)."""
    connection.execute(TRAININGS_MIGRATION_SQL)


def has_trainings_table(connection: duckdb.DuckDBPyConnection) -> bool:
    row = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'trainings'").fetchone()
    return bool(row and row[0])


def training_row(record: dict[str, Any]) -> list[Any]:
    """The typed columns of ``trainings`` taken from a training record."""
    return [get_path(record, path) for path in TRAINING_COLUMNS.values()]


def save_training(connection: duckdb.DuckDBPyConnection, record: dict[str, Any]) -> None:
    """Insert one training record (a second insert of the same ``training_id`` replaces it)."""
    ensure_trainings_table(connection)
    columns = ', '.join(TRAINING_COLUMNS)
    placeholders = ', '.join('?' for _ in range(len(TRAINING_COLUMNS) + 1))
    connection.execute('BEGIN TRANSACTION')
    try:
        connection.execute('DELETE FROM trainings WHERE training_id = ?', [record['training_id']])
        connection.execute(f'INSERT INTO trainings ({columns}, document) VALUES ({placeholders})',
                           [*training_row(record), json.dumps(record)])
        connection.execute('COMMIT')
    except BaseException:
        connection.execute('ROLLBACK')
        raise


def latest_training(connection: duckdb.DuckDBPyConnection, submission_id: str | None,
                    checkpoint_sha256: str) -> dict[str, Any] | None:
    """The newest verified training record that produced this checkpoint, or None.

    ``submission_id`` narrows the match to one submission folder name; None matches the
    checkpoint alone (the sha256 is what proves that the evaluated weights are the trained ones).
    """
    if not has_trainings_table(connection):
        return None
    query = 'SELECT document FROM trainings WHERE checkpoint_sha256 = ? AND verified'
    params: list[Any] = [checkpoint_sha256]
    if submission_id is not None:
        query += ' AND submission = ?'
        params.append(submission_id)
    row = connection.execute(query + ' ORDER BY created_at DESC LIMIT 1', params).fetchone()
    return json.loads(row[0]) if row else None
