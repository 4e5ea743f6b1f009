"""Writing and reading evaluation runs. A run is written in one transaction, or not at all."""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb

from frugalbench.documents import get_path
from frugalbench.text import MAX_STORED_TEXT, cap_strings

RUN_COLUMNS = (
    'run_id', 'created_at', 'status', 'failure_reason', 'submission', 'submission_name', 'technique',
    'parent', 'benchmark', 'benchmark_sha256', 'protocol_version', 'split', 'num_images', 'miou',
    'macc', 'aacc', 'params', 'checkpoint_sha256', 'config_sha256', 'custom_code',
    'declared_train_images', 'declared_annotation', 'device', 'hardware_fingerprint', 'run_key',
    'compute_trusted', 'compute_untrusted_reason', 'measurement_protocol_version',
)

# Migration 4 stores the same rule for runs stored before it (frugalbench.store.migrations).
LEGACY_UNTRUSTED_REASON = ('the submission ran its own code (custom_imports) in the model process where its '
                           'params and MACs were counted (stored before compute.trusted was recorded): '
                           'shown, never ranked')
UNTRUSTED_NO_REASON = 'compute.trusted is false (no reason stored)'


def compute_trust(document: dict[str, Any]) -> tuple[bool, str | None]:
    """Whether the run's compute counts (params, MACs, FLOPs) may be ranked, and if not why.

    ``compute.trusted`` and ``compute.untrusted_reason`` as the evaluation stored them; a run
    that ran submission code (``custom_code``) is untrusted even when its document predates
    ``compute.trusted`` (or says otherwise).
    """
    stated = get_path(document, 'compute.trusted')
    custom_code = document.get('custom_code') is True
    if (stated if isinstance(stated, bool) else True) and not custom_code:
        return True, None
    reason = get_path(document, 'compute.untrusted_reason')
    if isinstance(reason, str) and reason:
        return False, reason
    return False, LEGACY_UNTRUSTED_REASON if custom_code else UNTRUSTED_NO_REASON


def measurement_protocol_version(document: dict[str, Any]) -> int | None:
    """``measurement_protocol.protocol_version``; 1 for a successful run stored before the version
    was recorded (measured under v1), None for a failed run that records none."""
    version = get_path(document, 'measurement_protocol.protocol_version')
    if isinstance(version, int) and not isinstance(version, bool) and version >= 1:
        return version
    return 1 if document.get('status') == 'ok' else None



def run_row(document: dict[str, Any]) -> list[Any]:
    """The typed columns of ``runs`` taken from an evaluation document."""
    sources = {
        'submission_name': 'manifest.name', 'technique': 'manifest.technique', 'parent': 'manifest.parent',
        'benchmark_sha256': 'hashes.benchmark_sha256', 'num_images': 'accuracy.num_images',
        'miou': 'accuracy.miou', 'macc': 'accuracy.macc', 'aacc': 'accuracy.aacc',
        'params': 'compute.params', 'checkpoint_sha256': 'hashes.checkpoint_sha256',
        'config_sha256': 'hashes.config_sha256', 'declared_train_images': 'training.declared.images',
        'declared_annotation': 'training.declared.annotation',
        'hardware_fingerprint': 'hardware.fingerprint',
    }
    trusted, reason = compute_trust(document)
    derived = {'compute_trusted': trusted, 'compute_untrusted_reason': reason,
               'measurement_protocol_version': measurement_protocol_version(document)}
    return [derived[column] if column in derived else get_path(document, sources.get(column, column))
            for column in RUN_COLUMNS]


def save_run(connection: duckdb.DuckDBPyConnection, document: dict[str, Any],
             class_names: Sequence[str] = (), image_areas: Iterable[Any] = (),
             measurements: Iterable[dict[str, Any]] = ()) -> None:
    """Insert a run with its class scores, per-image areas and measurements atomically.

    Every string is stored capped at ``MAX_STORED_TEXT`` characters (``frugalbench.text.cap``).
    """
    document = cap_strings(document, MAX_STORED_TEXT)
    class_names = [str(cap_strings(str(name), MAX_STORED_TEXT)) for name in class_names]
    measurements = [cap_strings(m, MAX_STORED_TEXT) for m in measurements]
    run_id = document['run_id']
    connection.execute('BEGIN TRANSACTION')
    try:
        placeholders = ', '.join('?' for _ in RUN_COLUMNS)
        connection.execute(f'INSERT INTO runs ({", ".join(RUN_COLUMNS)}, document) '
                           f'VALUES ({placeholders}, ?)', [*run_row(document), json.dumps(document)])
        per_class_iou = get_path(document, 'accuracy.per_class_iou') or {}
        per_class_acc = get_path(document, 'accuracy.per_class_acc') or {}
        class_rows = [[run_id, i, name, per_class_iou.get(name), per_class_acc.get(name)]
                      for i, name in enumerate(class_names) if name in per_class_iou]
        if class_rows:
            connection.executemany('INSERT INTO class_scores VALUES (?, ?, ?, ?, ?)', class_rows)
        area_rows = [[run_id, i, a.image, a.intersect.tolist(), a.union.tolist(), a.pred.tolist(),
                      a.label.tolist()] for i, a in enumerate(image_areas)]
        if area_rows:
            connection.executemany('INSERT INTO image_areas VALUES (?, ?, ?, ?, ?, ?, ?)', area_rows)
        measurement_rows = [[run_id, m['name'], m.get('value'), m['unit'], m['method'], m.get('tool_version'),
                             bool(m.get('measured', False)), m.get('unavailable_reason'),
                             json.dumps(m.get('details') or {})] for m in measurements]
        if measurement_rows:
            connection.executemany('INSERT INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
                                   measurement_rows)
        connection.execute('COMMIT')
    except BaseException:
        connection.execute('ROLLBACK')
        raise


def find_reusable_run(connection: duckdb.DuckDBPyConnection, run_key: str) -> dict[str, Any] | None:
    """The newest successful run with this idempotency key, as its document."""
    row = connection.execute(
        "SELECT document FROM runs WHERE run_key = ? AND status = 'ok' ORDER BY created_at DESC LIMIT 1",
        [run_key]).fetchone()
    return json.loads(row[0]) if row else None


def list_run_documents(connection: duckdb.DuckDBPyConnection, benchmark: str | None = None,
                       submission: str | None = None) -> list[dict[str, Any]]:
    """Stored runs, oldest first, as evaluation documents."""
    sql, params = 'SELECT document FROM runs WHERE 1 = 1', []
    if benchmark:
        sql += ' AND benchmark = ?'
        params.append(benchmark)
    if submission:
        sql += ' AND submission = ?'
        params.append(submission)
    rows = connection.execute(sql + ' ORDER BY created_at, run_id', params).fetchall()
    return [json.loads(row[0]) for row in rows]


def save_perf_report(connection: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], source_file: str) -> str:
    """Store the rows of one pytest-benchmark report in one transaction; return its report id."""
    import uuid
    report_id = uuid.uuid4().hex
    values = [[report_id, source_file, r['name'], r.get('fullname'), r.get('group'), r.get('min'), r.get('max'),
               r.get('mean'), r.get('median'), r.get('stddev'), r.get('iqr'), r.get('ops'), r.get('rounds'),
               r.get('iterations'), r.get('params'), r.get('extra_info'), r.get('machine_info'),
               r.get('commit_info'), r.get('datetime'), r.get('version')] for r in rows]
    connection.execute('BEGIN TRANSACTION')
    try:
        if values:
            connection.executemany(
                'INSERT INTO perf_benchmarks VALUES (?, now(), ' + ', '.join('?' for _ in range(19)) + ')', values)
        connection.execute('COMMIT')
    except BaseException:
        connection.execute('ROLLBACK')
        raise
    return report_id


def artefact_folders(connection: duckdb.DuckDBPyConnection) -> set[Path]:
    """Folders that hold artefacts of stored runs and trainings, wherever the settings put them
    then: each ``overlays/`` folder of their overlay images, each ``runs/`` folder of their work
    folders and logs, each ``train/`` folder of training work folders (only folders with those
    names, so that no odd path widens what is named)."""
    rows = connection.execute(
        "SELECT DISTINCT json_extract_string(document, '$.overlays[0].path'), "
        "json_extract_string(document, '$.model_process.log'), NULL FROM runs").fetchall()
    if connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'trainings'"
                          ).fetchone()[0]:
        rows += connection.execute("SELECT DISTINCT NULL, NULL, json_extract_string(document, '$.work_folder') "
                                   'FROM trainings').fetchall()
    folders = set()
    for overlay, log, training in rows:
        for value, name in ((overlay, 'overlays'), (log, 'runs'), (training, 'train')):
            if not value:
                continue
            path = Path(value)
            for parent in (path.parent, path.parent.parent):
                if parent.name == name and parent.is_absolute() and len(parent.parts) > 2:
                    folders.add(parent)
                    break
    return folders


def stored_artefact_folders(db_path: Path, retry_seconds: float = 2.0) -> set[Path]:
    """``artefact_folders`` of the database at ``db_path``, read-only; empty when it is missing or
    cannot be read now (held by a writer for longer than ``retry_seconds``, damaged, old schema)."""
    from frugalbench.errors import StoreError
    from frugalbench.store.db import connect
    if not Path(db_path).is_file():
        return set()
    try:
        with connect(Path(db_path), read_only=True, retry_seconds=retry_seconds) as connection:
            return artefact_folders(connection)
    except (StoreError, duckdb.Error):
        return set()
