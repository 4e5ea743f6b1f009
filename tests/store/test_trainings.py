"""The trainings table: migration SQL, saving records, and finding the one behind a checkpoint."""
from __future__ import annotations

from pathlib import Path

import duckdb

from frugalbench.store import connect
from frugalbench.store.trainings import (
    TRAINING_COLUMNS,
    TRAININGS_MIGRATION_SQL,
    latest_training,
    save_training,
    training_row,
)


def record(training_id: str, sha: str, created_at: str, submission: str = 'sub') -> dict:
    return {
        'training_id': training_id, 'created_at': created_at, 'submission': submission,
        'source_submission': 'src', 'benchmark': 'synthetic', 'benchmark_sha256': 'b' * 64,
        'protocol_version': 1,
        'budget': {'subset_id': 'synthetic-train-n10-s0-abcd1234', 'images': 10, 'images_sha256': 'i' * 64,
                   'annotation': 'points', 'labelled_pixels': 68, 'annotator_seconds': 155.7},
        'seed': 0, 'iterations': 50, 'schedule': {'batch_size': 8},
        'totals': {'wall_seconds': 20.5, 'cpu_seconds': 15.25, 'peak_rss_mb': 700.0, 'energy_joules': None,
                   'energy_method': None, 'energy_measured': False},
        'device': 'cpu', 'hardware': {'fingerprint': 'f' * 12},
        'hashes': {'config_sha256': 'c' * 64, 'checkpoint_sha256': sha}, 'verified': True,
    }


def test_migration_sql_can_run_twice() -> None:
    connection = duckdb.connect()
    connection.execute(TRAININGS_MIGRATION_SQL)
    connection.execute(TRAININGS_MIGRATION_SQL)
    columns = [row[0] for row in connection.execute('DESCRIBE trainings').fetchall()]
    assert columns[:3] == ['training_id', 'created_at', 'submission'] and columns[-1] == 'document'


def test_typed_columns_come_from_the_record() -> None:
    row = dict(zip(TRAINING_COLUMNS, training_row(record('t1', 'a' * 64, '2026-01-01T00:00:00+00:00'))))
    assert {k: row[k] for k in ('training_id', 'images', 'annotation', 'annotator_seconds', 'batch_size',
                                'cpu_seconds', 'energy_joules', 'hardware_fingerprint', 'checkpoint_sha256')} == {
        'training_id': 't1', 'images': 10, 'annotation': 'points', 'annotator_seconds': 155.7, 'batch_size': 8,
        'cpu_seconds': 15.25, 'energy_joules': None, 'hardware_fingerprint': 'f' * 12,
        'checkpoint_sha256': 'a' * 64}


def test_latest_training_matches_the_checkpoint_newest_first(tmp_path: Path) -> None:
    db = tmp_path / 'results.duckdb'
    with connect(db) as connection:
        assert latest_training(connection, None, 'a' * 64) is None  # no table yet: nothing found
        save_training(connection, record('old', 'a' * 64, '2026-01-01T00:00:00+00:00'))
        save_training(connection, record('new', 'a' * 64, '2026-02-01T00:00:00+00:00'))
        save_training(connection, record('other', 'e' * 64, '2026-03-01T00:00:00+00:00'))
    with connect(db, read_only=True) as connection:
        assert latest_training(connection, 'sub', 'a' * 64)['training_id'] == 'new'
        assert latest_training(connection, None, 'e' * 64)['training_id'] == 'other'
        assert latest_training(connection, 'another_submission', 'a' * 64) is None
        assert latest_training(connection, None, '0' * 64) is None
        row = connection.execute("SELECT images, annotation, labelled_pixels, verified FROM trainings "
                                 "WHERE training_id = 'new'").fetchone()
    assert row == (10, 'points', 68, True)


def test_saving_the_same_training_again_replaces_it(tmp_path: Path) -> None:
    with connect(tmp_path / 'results.duckdb') as connection:
        save_training(connection, record('t', 'a' * 64, '2026-01-01T00:00:00+00:00'))
        save_training(connection, {**record('t', 'a' * 64, '2026-01-01T00:00:00+00:00'), 'iterations': 60})
        rows = connection.execute('SELECT iterations FROM trainings').fetchall()
    assert rows == [(60,)]


def test_public_api_names_exist() -> None:
    import frugalbench.training as training
    assert all(hasattr(training, name) for name in training.__all__)
    assert {'train_submission', 'TrainOptions', 'TrainingRecord', 'save_training', 'latest_training',
            'TRAININGS_MIGRATION_SQL'} <= set(training.__all__)
