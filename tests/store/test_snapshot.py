"""Public snapshots: what an export writes (Parquet files, manifest with hashes, row counts and
protocol versions), that it reads back as the database's tables, and that a changed, missing or
unlisted file is refused, naming it."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from frugalbench.cli import main
from frugalbench.errors import UsageError
from frugalbench.store import connect, save_run
from frugalbench.store.snapshot import (
    MANIFEST,
    TABLES,
    SnapshotError,
    document_sha256,
    export_snapshot,
    snapshot_cursor,
    verify_snapshot,
)


def run_document(run_id: str, miou: float, minutes: int, **changes: Any) -> dict[str, Any]:
    document = {
        'run_id': run_id, 'status': 'ok', 'created_at': f'2026-11-20T09:{minutes:02d}:00', 'submission': run_id,
        'benchmark': 'synthetic', 'protocol_version': 1, 'manifest': {'name': f'Model {run_id} é'},
        'accuracy': {'miou': miou, 'per_class_iou': {'a': miou, 'b': miou / 2}},
        'compute': {'params': 1000 + minutes, 'trusted': True}, 'measurement_protocol': {'protocol_version': 2},
    }
    document.update(changes)
    return document


@pytest.fixture
def db(isolated: Path) -> Path:
    """Three runs (one failed) with class scores and measurements, on the bundled synthetic benchmark."""
    path = isolated / 'data' / 'results.duckdb'
    measurement = {'name': 'params', 'value': 1000.0, 'unit': 'parameters', 'method': 'count', 'measured': True}
    with connect(path) as connection:
        save_run(connection, run_document('run-a', 0.41, 1), ['a', 'b'], [], [measurement])
        save_run(connection, run_document('run-b', 0.37, 2), ['a', 'b'], [], [measurement])
        save_run(connection, {'run_id': 'run-c', 'status': 'failed', 'failure_reason': 'boom',
                              'created_at': '2026-11-20T09:03:00', 'submission': 'c', 'benchmark': 'synthetic'})
    return path


def test_export_writes_every_table_and_a_manifest_that_describes_them(db: Path, isolated: Path) -> None:
    folder = isolated / 'public'
    manifest = export_snapshot(db, folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([MANIFEST, *(f'{t}.parquet' for t in TABLES)])
    assert json.loads((folder / MANIFEST).read_text()) == manifest
    with duckdb.connect(str(db), read_only=True) as connection:
        for table in ('runs', 'class_scores', 'measurements'):
            entry = manifest['files'][f'{table}.parquet']
            assert entry['rows'] == connection.execute(f'SELECT count(*) FROM {table}').fetchone()[0]
            assert entry['sha256'] == hashlib.sha256((folder / f'{table}.parquet').read_bytes()).hexdigest()
        stored = {row[0]: json.loads(row[1]) for row in connection.execute('SELECT run_id, document FROM runs').fetchall()}
    assert manifest['files']['runs.parquet']['rows'] == 3
    assert manifest['protocol_versions']['benchmark'] == {'synthetic': [1]}
    assert manifest['protocol_versions']['measurement'] == [2]
    assert manifest['benchmarks']['synthetic']['protocol_version'] == 1
    assert manifest['frugalbench_version'] and manifest['created_at'] and manifest['schema_version'] >= 5
    with snapshot_cursor(folder) as cursor:  # the same documents, byte for byte, so the same document hashes
        published = {row[0]: json.loads(row[1]) for row in cursor.execute('SELECT run_id, document FROM runs').fetchall()}
        definition = cursor.execute("SELECT definition FROM benchmarks WHERE name = 'synthetic'").fetchone()[0]
        assert cursor.execute('SELECT class_name, iou FROM class_scores WHERE run_id = ? ORDER BY class_index',
                              ['run-a']).fetchall() == [('a', 0.41), ('b', 0.205)]
    assert {k: document_sha256(v) for k, v in published.items()} == {k: document_sha256(v) for k, v in stored.items()}
    assert published['run-a']['manifest']['name'] == 'Model run-a é'
    assert 'name: synthetic' in definition


def test_tampered_missing_or_unlisted_files_are_refused_naming_the_file(db: Path, isolated: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    folder = isolated / 'public'
    export_snapshot(db, folder)
    verify_snapshot(folder)
    runs = folder / 'runs.parquet'
    original = runs.read_bytes()
    runs.write_bytes(original[:-20] + bytes(20))
    with pytest.raises(SnapshotError, match=r'runs\.parquet does not match its manifest.*tampered'):
        verify_snapshot(folder)
    assert main(['leaderboard', '--snapshot', str(folder), '--no-browser']) == 1  # refused before serving
    assert 'runs.parquet does not match its manifest' in capsys.readouterr().err
    runs.write_bytes(original)
    (folder / 'measurements.parquet').unlink()
    with pytest.raises(SnapshotError, match=r'measurements\.parquet is missing'):
        verify_snapshot(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest['files']['extra.parquet'] = manifest['files'].pop('class_scores.parquet')
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match='does not list exactly the files'):
        verify_snapshot(folder)
    with pytest.raises(SnapshotError, match='not a frugalbench snapshot'):
        verify_snapshot(isolated / 'data')


def test_a_served_snapshot_changed_afterwards_is_verified_again(db: Path, isolated: Path) -> None:
    folder = isolated / 'public'
    export_snapshot(db, folder)
    with snapshot_cursor(folder) as cursor:
        assert cursor.execute('SELECT count(*) FROM runs').fetchone()[0] == 3
    (folder / 'runs.parquet').write_bytes((folder / 'runs.parquet').read_bytes() + b'x')
    with pytest.raises(SnapshotError, match='runs.parquet'), snapshot_cursor(folder):
        pass


def test_export_goes_into_a_new_empty_or_earlier_snapshot_folder_only(db: Path, isolated: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    folder = isolated / 'public'
    assert main(['results', 'export', '--public', str(folder), '--db', str(db), '--format', 'json']) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed['manifest_sha256'] == hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()
    export_snapshot(db, folder)  # an earlier snapshot is replaced
    verify_snapshot(folder)
    other = isolated / 'other'
    other.mkdir()
    (other / 'notes.txt').write_text('mine')
    with pytest.raises(UsageError, match='holds other files'):
        export_snapshot(db, other)
    assert (other / 'notes.txt').read_text() == 'mine'
    with pytest.raises(UsageError, match='no results database'):
        export_snapshot(isolated / 'missing.duckdb', isolated / 'public2')
