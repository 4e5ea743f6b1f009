"""Public snapshots: the tables the leaderboard reads, as Parquet files plus a manifest.

``export_snapshot(db, DIR)`` writes, at the top of ``DIR``, one Parquet file per table the
leaderboard reads (DuckDB's ``COPY ... (FORMAT PARQUET)``): ``runs`` (typed columns and the whole
evaluation document), ``class_scores``, ``image_areas``, ``measurements``, ``cascade_curves`` (the
cascade page's fitted curves), and ``benchmarks`` (the
benchmark files the runs were ranked with, so references and tracks travel with the results),
then ``manifest.json``: the snapshot format, frugalbench and DuckDB versions, the schema version,
``created_at``, the benchmark and measurement protocol versions of the runs, the rule of the
document hash, and the size, row count and SHA-256 of every file. Nothing else is published: no
submission, checkpoint, queue, training work folder or overlay image.

``snapshot_cursor(DIR)`` serves a snapshot without a database: an in-memory DuckDB with one view
per file (same names and columns as the database's tables), opened only after every file's
SHA-256 and row count match the manifest. A changed, missing or added-to-manifest file is refused
with ``SnapshotError`` naming the file. Views are kept per process and checked again (hashes
included) whenever a file's size or modification time changes.

The document hash (``document_sha256``) lets a reader check a label against a snapshot: the
SHA-256 of the run's document (the ``document`` column of ``runs``) in canonical JSON, i.e.
``json.dumps(document, sort_keys=True, separators=(',', ':'), ensure_ascii=False)`` encoded as
UTF-8; a label shows its first ``SHORT_HASH`` hex digits.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from frugalbench.errors import FrugalbenchError, UsageError

FORMAT = 'frugalbench-snapshot'
FORMAT_VERSION = 1
MANIFEST = 'manifest.json'
SHORT_HASH = 12
HASH_RULE = ("sha256 of the run's document (runs.document) as canonical JSON: json.dumps(document, "
             "sort_keys=True, separators=(',', ':'), ensure_ascii=False), UTF-8")

# Table -> the query that exports it (stable order, so two exports of one database hold the same rows).
TABLES: dict[str, str] = {
    'runs': 'SELECT * FROM runs ORDER BY created_at, run_id',
    'class_scores': 'SELECT * FROM class_scores ORDER BY run_id, class_index',
    'image_areas': 'SELECT * FROM image_areas ORDER BY run_id, image_index',
    'measurements': 'SELECT * FROM measurements ORDER BY run_id, name',
    'cascade_curves': 'SELECT * FROM cascade_curves ORDER BY created_at, curve_id',  # migration 6 (issue 19)
    'benchmarks': 'SELECT * FROM snapshot_benchmarks ORDER BY name',
}

BENCHMARKS_TABLE_SQL = """
CREATE TEMP TABLE snapshot_benchmarks (
    name             VARCHAR NOT NULL,
    protocol_version INTEGER,
    sha256           VARCHAR,
    definition       VARCHAR,   -- the benchmark file's YAML text; NULL when it could not be read
    note             VARCHAR    -- why it could not be read
)
"""


class SnapshotError(FrugalbenchError):
    """A folder is not a valid snapshot, or it fails verification against its manifest."""


def canonical_json(document: Any) -> bytes:
    """The canonical JSON bytes of a document (``HASH_RULE``)."""
    return json.dumps(document, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')


def document_sha256(document: Any) -> str:
    """SHA-256 (hex) of a run document in canonical JSON: the same for the database and its snapshots."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _literal(path: Path) -> str:
    """``path`` as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _frugalbench_version() -> str:
    try:
        return importlib.metadata.version('frugalbench')
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'


# ---------------------------------------------------------------- export

def _prepare_folder(folder: Path) -> None:
    """Create ``folder``, or accept it when empty or holding an earlier snapshot (whose files are
    replaced); anything else is refused, so an export never mixes with other files."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f'{folder} is a file: --public needs a folder (new, empty, or an earlier snapshot)')
    folder.mkdir(parents=True, exist_ok=True)
    ours = {MANIFEST, *(f'{table}.parquet' for table in TABLES)}
    others = sorted(p.name for p in folder.iterdir() if p.name not in ours)
    if others:
        raise UsageError(f'{folder} holds other files ({", ".join(others[:5])}): export a snapshot into a new '
                         'or empty folder')
    if any(p.name != MANIFEST for p in folder.iterdir()) and not (folder / MANIFEST).is_file():
        raise UsageError(f'{folder} holds Parquet files but no {MANIFEST}: export into a new or empty folder')
    (folder / MANIFEST).unlink(missing_ok=True)  # written last: a half-written snapshot never opens


def _benchmark_rows(names: list[str]) -> list[tuple[Any, ...]]:
    from frugalbench.benchmarks import load_benchmark
    from frugalbench.errors import BenchmarkError
    rows = []
    for name in names:
        try:
            benchmark = load_benchmark(name)
            text = benchmark.source_file.read_text() if benchmark.source_file else None
            rows.append((name, benchmark.protocol_version, benchmark.definition_hash or None, text, None))
        except (BenchmarkError, OSError) as exc:
            rows.append((name, None, None, None, f'benchmark file not readable at export: {exc}'))
    return rows


def _protocol_versions(connection: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    benchmark = connection.execute(
        'SELECT benchmark, list(DISTINCT protocol_version ORDER BY protocol_version) FROM runs '
        'WHERE protocol_version IS NOT NULL GROUP BY benchmark ORDER BY benchmark').fetchall()
    measurement = connection.execute(
        'SELECT DISTINCT measurement_protocol_version FROM runs WHERE measurement_protocol_version IS NOT NULL '
        'ORDER BY 1').fetchall()
    return {'snapshot_format': FORMAT_VERSION,
            'benchmark': {name: [int(v) for v in versions] for name, versions in benchmark},
            'measurement': [int(row[0]) for row in measurement]}


def export_snapshot(db_path: Path, folder: Path,
                    on_table: Any = None) -> dict[str, Any]:
    """Write the snapshot of the database at ``db_path`` into ``folder``; return its manifest.

    The database is opened as every writer opens it (migrated, spool stored) for the time of the
    export. ``on_table(name)`` is called after each file is written (progress).
    """
    from frugalbench.store.db import connect, schema_version
    db_path, folder = Path(db_path), Path(folder)
    if not db_path.is_file():
        raise UsageError(f'no results database at {db_path}: pass --db PATH (or set FRUGALBENCH_DB)')
    _prepare_folder(folder)
    files: dict[str, dict[str, Any]] = {}
    with connect(db_path) as connection:
        connection.execute(BENCHMARKS_TABLE_SQL)
        names = [row[0] for row in connection.execute('SELECT DISTINCT benchmark FROM runs ORDER BY 1').fetchall()]
        rows = _benchmark_rows(names)
        if rows:
            connection.executemany('INSERT INTO snapshot_benchmarks VALUES (?, ?, ?, ?, ?)', rows)
        for table, query in TABLES.items():
            path = folder / f'{table}.parquet'
            connection.execute(f'COPY ({query}) TO {_literal(path)} (FORMAT PARQUET)')
            count = connection.execute(f'SELECT count(*) FROM read_parquet({_literal(path)})').fetchone()[0]
            files[path.name] = {'table': table, 'rows': int(count), 'bytes': path.stat().st_size,
                                'sha256': file_sha256(path)}
            if on_table is not None:
                on_table(table)
        manifest = {
            'format': FORMAT, 'format_version': FORMAT_VERSION,
            'created_at': datetime.now(UTC).isoformat(timespec='seconds'),
            'frugalbench_version': _frugalbench_version(), 'duckdb_version': duckdb.__version__,
            'schema_version': schema_version(connection),
            'protocol_versions': _protocol_versions(connection),
            'benchmarks': {name: {'protocol_version': version, 'sha256': sha}
                           for name, version, sha, _, _ in rows},
            'document_hash': HASH_RULE,
            'files': files,
        }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + '\n')
    return manifest


def manifest_sha256(folder: Path) -> str:
    """SHA-256 of a snapshot's manifest.json: publish it beside the snapshot, so that readers can
    check the manifest (which holds every other file's hash) itself."""
    return file_sha256(Path(folder) / MANIFEST)


# ---------------------------------------------------------------- open and verify

def is_snapshot(path: Path) -> bool:
    """Whether ``path`` names a snapshot folder (the database is a file, a snapshot a folder)."""
    return Path(path).is_dir()


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of ``folder``, checked for shape (not yet against the files)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise SnapshotError(f'{folder} is not a frugalbench snapshot (no {MANIFEST}): export one with '
                            '`frugalbench results export --public DIR`')
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotError(f'{path} cannot be read as JSON ({exc}): the snapshot is damaged; export it again') from None
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        raise SnapshotError(f'{path} is not a frugalbench snapshot manifest (format is not {FORMAT!r})')
    if manifest.get('format_version') != FORMAT_VERSION:
        raise SnapshotError(f'{path} has snapshot format version {manifest.get("format_version")!r}; this '
                            f'frugalbench reads version {FORMAT_VERSION}: use a matching frugalbench')
    files = manifest.get('files')
    expected = {f'{table}.parquet' for table in TABLES}
    if not isinstance(files, dict) or set(files) != expected or not all(
            isinstance(entry, dict) and isinstance(entry.get('sha256'), str) and isinstance(entry.get('rows'), int)
            for entry in files.values()):
        raise SnapshotError(f'{path} does not list exactly the files {", ".join(sorted(expected))} with their '
                            'sha256 and rows: the manifest was edited or damaged; export the snapshot again')
    return manifest


def verify_snapshot(folder: Path) -> dict[str, Any]:
    """The manifest of ``folder`` once every listed file exists with the SHA-256 it states;
    SnapshotError naming the first file that does not (row counts are checked on open)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    for name, entry in sorted(manifest['files'].items()):
        path = folder / name
        if not path.is_file() or path.is_symlink():
            raise SnapshotError(f'snapshot {folder}: {name} is missing (or not a plain file): the snapshot is '
                                'incomplete; copy it whole, or export it again')
        actual = file_sha256(path)
        if actual != entry['sha256']:
            raise SnapshotError(f'snapshot {folder}: {name} does not match its manifest (sha256 {actual[:16]}..., '
                                f'manifest says {entry["sha256"][:16]}...): the file was changed after export; '
                                'refusing to serve a tampered snapshot. Get the original, or export it again')
    return manifest


def _signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, size, mtime) of the manifest and of every Parquet file: a change means verify again."""
    entries = []
    for name in sorted([MANIFEST, *(f'{table}.parquet' for table in TABLES)]):
        try:
            stat = (folder / name).stat()
            entries.append((name, stat.st_size, stat.st_mtime_ns))
        except OSError:
            entries.append((name, -1, -1))
    return tuple(entries)


def _open_verified(folder: Path) -> tuple[duckdb.DuckDBPyConnection, dict[str, Any]]:
    manifest = verify_snapshot(folder)
    connection = duckdb.connect(':memory:')
    try:
        for name, entry in manifest['files'].items():
            table = name.removesuffix('.parquet')  # one of TABLES (read_manifest checked the names)
            connection.execute(f'CREATE VIEW {table} AS SELECT * FROM read_parquet({_literal(folder / name)})')
            rows = connection.execute(f'SELECT count(*) FROM {table}').fetchone()[0]
            if rows != entry['rows']:
                raise SnapshotError(f'snapshot {folder}: {name} holds {rows} rows, its manifest says '
                                    f'{entry["rows"]}: export the snapshot again')
    except duckdb.Error as exc:
        connection.close()
        raise SnapshotError(f'snapshot {folder} cannot be read ({str(exc).splitlines()[0]}): export it again') from None
    except BaseException:
        connection.close()
        raise
    return connection, manifest


_OPEN: dict[Path, tuple[tuple[Any, ...], duckdb.DuckDBPyConnection, dict[str, Any]]] = {}
_LOCK = threading.Lock()


def _opened(folder: Path) -> tuple[duckdb.DuckDBPyConnection, dict[str, Any]]:
    """A new cursor on the verified views of ``folder``, and its manifest (verified again first
    when a file's size or modification time changed since)."""
    folder = Path(folder).resolve()
    with _LOCK:
        signature = _signature(folder)
        known = _OPEN.get(folder)
        if known is None or known[0] != signature:
            if known is not None:
                _OPEN.pop(folder)
                known[1].close()
            connection, manifest = _open_verified(folder)
            known = _OPEN[folder] = (signature, connection, manifest)
        return known[1].cursor(), known[2]  # a cursor per caller: DuckDB's way to share a database across threads


@contextlib.contextmanager
def snapshot_cursor(folder: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on the verified views of the snapshot in ``folder`` (tables ``TABLES``), closed
    after use. SnapshotError when the folder is no snapshot or fails verification."""
    cursor, _ = _opened(folder)
    try:
        yield cursor
    finally:
        cursor.close()


def snapshot_manifest(folder: Path) -> dict[str, Any]:
    """The verified manifest of the snapshot in ``folder`` (SnapshotError if it fails verification)."""
    cursor, manifest = _opened(folder)
    cursor.close()
    return manifest
