"""The DuckDB store: migrations, atomic runs, and the bounded retry on another process's lock."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from frugalbench.errors import StoreError
from frugalbench.store import connect, find_reusable_run, list_run_documents, save_run
from frugalbench.store.db import schema_version
from frugalbench.store.migrations import latest_version

HOLD_LOCK = """
import duckdb, sys, time
c = duckdb.connect(sys.argv[1])
print('locked', flush=True)
time.sleep(float(sys.argv[2]))
c.close()
"""


def _document(run_id: str, status: str = 'ok', key: str = 'k', miou: float | None = 0.5) -> dict:
    return dict(run_id=run_id, created_at='2026-01-01T00:00:00+00:00', status=status,
                failure_reason=None if status == 'ok' else 'broken', submission='s', benchmark='b',
                protocol_version=1, run_key=key, accuracy={'miou': miou, 'num_images': 3},
                compute={'params': 10})


def test_migrations_create_schema_once(tmp_path: Path) -> None:
    path = tmp_path / 'r.duckdb'
    with connect(path) as connection:
        assert schema_version(connection) == latest_version()
    with connect(path) as connection:  # second open: nothing to apply, nothing duplicated
        count = connection.execute('SELECT count(*) FROM schema_migrations').fetchone()[0]
    assert count == latest_version()


def test_saved_run_round_trips_and_is_reusable_by_key(tmp_path: Path) -> None:
    path = tmp_path / 'r.duckdb'
    with connect(path) as connection:
        save_run(connection, _document('a', key='k1'))
        save_run(connection, _document('b', status='failed', key='k2', miou=None))
        assert find_reusable_run(connection, 'k1')['run_id'] == 'a'
        assert find_reusable_run(connection, 'k2') is None  # failed runs are always retried
        assert [d['run_id'] for d in list_run_documents(connection)] == ['a', 'b']
        row = connection.execute("SELECT miou, params, status FROM runs WHERE run_id = 'a'").fetchone()
    assert row == (0.5, 10, 'ok')


def test_failed_insert_leaves_no_partial_run(tmp_path: Path) -> None:
    path = tmp_path / 'r.duckdb'
    with connect(path) as connection:
        save_run(connection, _document('a'))
        bad_measurement = [{'name': 'x', 'unit': None, 'method': 'm'}]  # unit is NOT NULL
        with pytest.raises(duckdb.Error):
            save_run(connection, _document('b'), measurements=bad_measurement)
        assert [d['run_id'] for d in list_run_documents(connection)] == ['a']


def test_lock_held_by_another_process_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / 'r.duckdb'
    with connect(path):
        pass
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, str(path), '1.5'], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b'locked'
    started = time.monotonic()
    with connect(path, retry_seconds=30) as connection:
        assert connection.execute('SELECT 1').fetchone() == (1,)
    assert time.monotonic() - started > 0.2
    holder.wait()


def test_lock_held_too_long_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / 'r.duckdb'
    with connect(path):
        pass
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, str(path), '5'], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b'locked'
        with pytest.raises(StoreError, match='locked by another process'):
            with connect(path, retry_seconds=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_read_only_open_of_a_missing_database_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match='frugalbench evaluate'):
        with connect(tmp_path / 'none.duckdb', read_only=True):
            pass


def test_leaderboard_view_flattens_documents(tmp_path: Path) -> None:
    document = _document('a') | {'compute': {'params': 10, 'macs': 5e9}, 'energy': {'measured': False,
                                 'method': 'estimate-cpu-time-tdp', 'joules_per_image': 0.5},
                                 'accuracy': {'miou': 0.5, 'miou_ci': [0.4, 0.6]}}
    with connect(tmp_path / 'r.duckdb') as connection:
        save_run(connection, document)
        row = connection.execute('SELECT macs, energy_measured, energy_method, miou_ci_low, miou_ci_high '
                                 'FROM leaderboard_runs').fetchone()
    assert row == (5e9, False, 'estimate-cpu-time-tdp', 0.4, 0.6)
