"""Nothing finished is lost (issue 15, item 2): a finished run or training waits for a database that
another process holds (a real second process with a DuckDB connection), then goes to the spool,
which the next command that opens the database stores first."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from frugalbench.errors import NotRecordedError
from frugalbench.store import connect, list_run_documents, store_run_or_spool, store_training_or_spool
from frugalbench.store.spool import SpooledAreas, ingest, is_spooled, pending, spool_dir

HOLDER = '''
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1], read_only=True)
print('held', flush=True)
time.sleep(float(sys.argv[2]))
connection.close()
'''


@contextmanager
def held(db: Path, seconds: float) -> Iterator[subprocess.Popen]:
    """Another process holding ``db`` open (read-only: that alone locks writers out) for ``seconds``."""
    process = subprocess.Popen([sys.executable, '-c', HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == 'held'
        yield process
    finally:
        process.kill()
        process.wait()


def _document(run_id: str, submission: str = 'spooled_model') -> dict:
    return {'run_id': run_id, 'status': 'ok', 'failure_reason': None, 'created_at': '2026-11-30T10:00:00+00:00',
            'submission': submission, 'benchmark': 'tiny', 'protocol_version': 1,
            'manifest': {'name': 'Spooled model', 'technique': 'lightweight'},
            'accuracy': {'miou': 0.5, 'num_images': 2, 'per_class_iou': {'a': 0.4, 'b': 0.6}},
            'overlays': [{'image': 'x.png', 'path': '/nowhere/overlays/x/000.png'}]}


def _areas() -> list[SpooledAreas]:
    return [SpooledAreas(f'img{i}.png', *(np.array([1.0 + i, 2.0]) for _ in range(4))) for i in range(2)]


MEASUREMENTS = [{'name': 'params', 'value': 1000.0, 'unit': 'parameters', 'method': 'count', 'measured': True}]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / 'data' / 'results.duckdb'
    with connect(path):
        pass  # the schema, no runs
    return path


def _counts(db: Path) -> tuple[int, int, int, int]:
    with connect(db) as connection:
        return tuple(connection.execute(f'SELECT count(*) FROM {t}').fetchone()[0]  # type: ignore[return-value]
                     for t in ('runs', 'class_scores', 'image_areas', 'measurements'))


def test_a_finished_run_waits_for_the_other_process_and_is_stored_when_it_lets_go(db: Path) -> None:
    notices: list[str] = []
    with held(db, 4.0) as holder:
        start = time.monotonic()
        spooled = store_run_or_spool(db, _document('r1'), ['a', 'b'], _areas(), MEASUREMENTS,
                                     notify=notices.append, wait_seconds=120)
        waited = time.monotonic() - start
    assert spooled is None and waited > 2.0
    assert any(f'held by another process (PID {holder.pid})' in n and 'waits for it' in n for n in notices)
    assert _counts(db) == (1, 2, 2, 1)
    assert pending(db) == []


def test_a_run_still_held_out_goes_to_the_spool_and_the_next_command_stores_it_first(db: Path) -> None:
    notices: list[str] = []
    with held(db, 60.0):
        path = store_run_or_spool(db, _document('r2'), ['a', 'b'], _areas(), MEASUREMENTS,
                                  notify=notices.append, wait_seconds=1.0)
        assert path is not None and path.parent == spool_dir(db) and is_spooled(db, 'r2')
        entry = json.loads(path.read_text())
        assert entry['document']['run_id'] == 'r2' and entry['database'] == str(db.resolve())
        assert 'waits in' in notices[-1] and 'frugalbench results' in notices[-1]
    # the next command that touches the database (here: the real CLI) stores it before anything else
    result = subprocess.run([sys.executable, '-m', 'frugalbench', 'results', '--db', str(db), '--format', 'json'],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert [d['run_id'] for d in json.loads(result.stdout)] == ['r2']
    assert 'stored spooled run r2' in result.stderr
    assert not path.exists() and _counts(db) == (1, 2, 2, 1)


def test_a_spooled_run_already_stored_is_not_stored_twice(db: Path) -> None:
    with held(db, 60.0):
        path = store_run_or_spool(db, _document('r3'), notify=None, wait_seconds=0.5)
    copy = path.read_text()
    with connect(db):
        pass
    assert not path.exists()
    path.write_text(copy)  # as if a command died between its commit and deleting the file
    with connect(db) as connection:
        assert [d['run_id'] for d in list_run_documents(connection)] == ['r3']
    assert not path.exists()


def test_spool_entries_for_another_database_are_left_alone(db: Path) -> None:
    other = db.parent / 'other.duckdb'
    with connect(other):
        pass
    with held(other, 60.0):
        path = store_run_or_spool(other, _document('r4'), notify=None, wait_seconds=0.5)
    with connect(db) as connection:
        assert list_run_documents(connection) == []
    assert path.exists()
    with connect(other) as connection:
        assert [d['run_id'] for d in list_run_documents(connection)] == ['r4']


def test_an_entry_that_cannot_be_stored_stays_in_the_spool_and_is_reported(db: Path) -> None:
    spool_dir(db).mkdir()
    broken = spool_dir(db) / 'broken.json'
    broken.write_text('{"kind": "run", "id": ')
    notices: list[str] = []
    with connect(db, read_only=False) as connection:
        assert ingest(connection, db, notices.append) == []
    assert broken.exists() and 'could not be stored' in notices[0] and 'stays in the spool' in notices[0]


def test_when_neither_the_database_nor_the_spool_can_be_written_the_run_is_not_recorded(db: Path) -> None:
    spool_dir(db).write_text('a file where the spool folder should be')
    with held(db, 60.0), pytest.raises(NotRecordedError, match='is NOT recorded'):
        store_run_or_spool(db, _document('r5'), notify=None, wait_seconds=0.5)


def test_a_finished_training_is_spooled_and_stored_like_a_run(db: Path) -> None:
    record = json.loads((Path(__file__).resolve().parents[2] / 'submissions' / 'fastscnn_camvid_10img'
                         / 'training_record.json').read_text())
    with held(db, 60.0):
        path = store_training_or_spool(db, record, notify=None, wait_seconds=0.5)
    assert path is not None and path.name == f"{record['training_id']}.json"
    with connect(db) as connection:
        rows = connection.execute('SELECT training_id, images FROM trainings').fetchall()
    assert rows == [(record['training_id'], 10)] and not path.exists()


def test_the_wait_is_set_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from frugalbench.errors import StoreError
    from frugalbench.store.spool import DEFAULT_STORE_WAIT_S, store_wait_seconds
    monkeypatch.delenv('FRUGALBENCH_STORE_WAIT', raising=False)
    assert store_wait_seconds() == DEFAULT_STORE_WAIT_S == 300.0
    monkeypatch.setenv('FRUGALBENCH_STORE_WAIT', '2.5')
    assert store_wait_seconds() == 2.5
    monkeypatch.setenv('FRUGALBENCH_STORE_WAIT', 'soon')
    with pytest.raises(StoreError, match='not a number of seconds'):
        store_wait_seconds()
    assert os.environ['FRUGALBENCH_STORE_WAIT'] == 'soon'
