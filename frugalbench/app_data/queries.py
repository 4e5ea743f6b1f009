"""Read-only queries of the results database for the leaderboard, one short connection each.

DuckDB's file lock is exclusive between processes, even for read-only connections, so every
function here opens the file read-only, runs its query and closes it at once: the app never
holds a connection between queries, and an evaluation can write between two of them. A store
that cannot be read (missing file, no runs yet, held by a writer for longer than the retry,
damaged) raises ``StoreUnavailable``, whose ``status`` says what to run; ``store_status``
returns that state without raising.

Resource values come from the ``measurements`` table (typed, one row per measurement) with the
units the scoring resources use, and training budgets from the evaluation document as
``frugalbench.ranking.training_figures`` reads them: when the budget state (``training.state``,
for older runs ``training.verified``) is ``verified`` or ``recorded`` and a ``training.record``
is stored, its ``images``, ``annotation``, ``annotator_seconds``, ``wall_seconds`` and
``energy_joules``; otherwise the declared image count and annotation type only (a declaration
carries no annotation time, training time or energy).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import duckdb
import numpy as np
import pandas as pd

from frugalbench.errors import StoreError, UsageError
from frugalbench.store import connect
from frugalbench.store.snapshot import (
    SnapshotError,
    is_snapshot,
    snapshot_cursor,
    snapshot_manifest,
)
from frugalbench.text import code_span, markdown_literal

T = TypeVar('T')

LOCK_RETRY_SECONDS = 3.0  # an evaluation holds the file for one short transaction at a time

StoreState = Literal['ready', 'missing', 'empty', 'locked', 'unreadable', 'invalid']

# Measurement name in the store -> (the unit it must have, the resource key of frugalbench.scores,
# the factor to that resource's unit). A measurement in another unit is not used.
MEASURED_RESOURCES: dict[str, tuple[str, str, float]] = {
    'macs': ('MACs', 'macs', 1.0),
    'latency_b1': ('ms', 'latency_ms', 1.0),
    'peak_rss': ('bytes', 'peak_rss_mb', 1.0 / 2**20),
    'energy_per_image': ('J', 'energy_joules_per_image', 1.0),
}


@dataclass(frozen=True)
class StoreStatus:
    """Whether the results database can be shown, and if not, one line saying what to do."""

    state: StoreState
    message: str
    runs: int = 0

    @property
    def ready(self) -> bool:
        return self.state == 'ready'


class StoreUnavailable(StoreError):
    """The results database cannot be read now; ``status`` says why and what to run."""

    def __init__(self, status: StoreStatus) -> None:
        super().__init__(status.message)
        self.status = status


def _missing(path: Path) -> StoreStatus:
    return StoreStatus('missing', f'No results database at {code_span(path)} yet. Run `make demo`, or '
                       '`frugalbench evaluate SUBMISSION_FOLDER`, then refresh this page '
                       '(or start the leaderboard with --db PATH).')


def _empty(path: Path) -> StoreStatus:
    return StoreStatus('empty', f'The results database {code_span(path)} holds no runs yet. Run `make demo`, '
                       'or `frugalbench evaluate SUBMISSION_FOLDER`, then refresh this page.')


def _unreadable(path: Path, reason: str) -> StoreStatus:
    if 'locked' in reason:  # frugalbench.store's message once its bounded retry has run out
        return StoreStatus('locked', f'The results database {code_span(path)} is busy: another frugalbench '
                           'command is writing to it. Refresh this page in a few seconds.')
    return StoreStatus('unreadable', f'The results database {code_span(path)} cannot be read ({code_span(reason)}). '
                       'Check the path, or evaluate into a new one with --db.')


def _invalid(reason: str) -> StoreStatus:
    return StoreStatus('invalid', markdown_literal(reason))


def read(db_path: Path, query: Callable[[duckdb.DuckDBPyConnection], T],
         retry_seconds: float = LOCK_RETRY_SECONDS) -> T:
    """Open the database read-only, run ``query`` on it, close it; StoreUnavailable if unreadable.

    A folder is read as a public snapshot (``frugalbench.store.snapshot``): the same tables as
    views over its Parquet files, verified against its manifest (state ``invalid`` if it fails).
    """
    path = Path(db_path)
    if is_snapshot(path):
        return _read_snapshot(path, query)
    if not path.is_file():
        raise StoreUnavailable(_missing(path))
    try:
        with connect(path, read_only=True, retry_seconds=retry_seconds) as connection:
            if not _has_runs_table(connection):
                raise StoreUnavailable(_empty(path))
            return query(connection)
    except StoreUnavailable:
        raise
    except StoreError as exc:
        raise StoreUnavailable(_unreadable(path, str(exc))) from None
    except duckdb.Error as exc:
        raise StoreUnavailable(_unreadable(path, str(exc).splitlines()[0])) from None


def _read_snapshot(path: Path, query: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    try:
        with snapshot_cursor(path) as connection:
            return query(connection)
    except SnapshotError as exc:
        raise StoreUnavailable(_invalid(str(exc))) from None
    except duckdb.Error as exc:
        raise StoreUnavailable(_invalid(f'snapshot {path} cannot be read: {str(exc).splitlines()[0]}')) from None


def _has_runs_table(connection: duckdb.DuckDBPyConnection) -> bool:
    try:  # cheaper than information_schema, which costs tens of ms on a fresh connection
        connection.execute('SELECT 1 FROM runs LIMIT 0')
    except duckdb.CatalogException:
        return False
    return True


def store_status(db_path: Path, retry_seconds: float = LOCK_RETRY_SECONDS) -> StoreStatus:
    """The state of the database: ready (with its run count), missing, empty, locked or unreadable."""
    try:
        count = read(db_path, lambda c: int(c.execute('SELECT count(*) FROM runs').fetchone()[0]),
                     retry_seconds)
    except StoreUnavailable as exc:
        return exc.status
    if count == 0:
        return _empty(Path(db_path))
    return StoreStatus('ready', f'{count} runs in {db_path}', count)


BENCHMARKS_SQL = """
WITH counts AS (
    SELECT benchmark,
           count(*) AS runs,
           count(*) FILTER (WHERE status = 'ok') AS ok_runs,
           count(*) FILTER (WHERE status <> 'ok') AS failed_runs,
           max(created_at) AS latest,
           arg_max(run_id, created_at) FILTER (WHERE status = 'ok') AS latest_ok_run
    FROM runs
    GROUP BY benchmark
)
SELECT counts.* EXCLUDE (latest_ok_run),
       coalesce(TRY_CAST(runs.document ->> '$.synthetic' AS BOOLEAN), false) AS synthetic
FROM counts LEFT JOIN runs ON runs.run_id = counts.latest_ok_run
ORDER BY ok_runs DESC, latest DESC, benchmark
"""


def benchmarks(db_path: Path) -> pd.DataFrame:
    """One row per stored benchmark: runs, ok_runs, failed_runs, latest, synthetic; most ok runs first.

    ``synthetic`` is the flag of the benchmark's newest successful run (a benchmark file's flag;
    failed runs do not record it). ``runs`` and ``latest`` change whenever a run is added, so
    they can key a cache of ``runs(db_path, benchmark)`` (runs are never edited). A database
    without runs raises StoreUnavailable (state ``empty``), like a missing or locked one.
    """
    frame = read(db_path, lambda c: c.execute(BENCHMARKS_SQL).df())
    if frame.empty:
        raise StoreUnavailable(_empty(Path(db_path)))
    return frame


def _measurement_pivot() -> str:
    columns = []
    for name, (unit, key, factor) in MEASURED_RESOURCES.items():
        columns.append(f"max(value) FILTER (WHERE name = '{name}' AND unit = '{unit}') * {factor!r} AS {key}")
    columns.append("bool_or(measured) FILTER (WHERE name = 'energy_per_image' AND value IS NOT NULL) "
                   "AS energy_measured")
    columns.append("any_value(method) FILTER (WHERE name = 'energy_per_image' AND value IS NOT NULL) "
                   "AS energy_method")
    columns.append("max(value) FILTER (WHERE name = 'params' AND unit = 'parameters') AS measured_params")
    return ',\n       '.join(columns)


TRUST_COLUMNS = 'compute_trusted, compute_untrusted_reason AS untrusted_reason, measurement_protocol_version'
NO_TRUST_COLUMNS = ('CAST(NULL AS BOOLEAN) AS compute_trusted, CAST(NULL AS VARCHAR) AS untrusted_reason, '
                    'CAST(NULL AS INTEGER) AS measurement_protocol_version')


def _runs_sql(trust_columns: str = TRUST_COLUMNS) -> str:
    """One row per run of a benchmark from the typed columns and the measurements table. No
    document is parsed here but one per hardware fingerprint (for its label)."""
    return f"""
WITH selected AS (
    SELECT * EXCLUDE (document) FROM runs WHERE benchmark = ? AND coalesce(split, 'test') = 'test'  -- val runs: cascades
), machines AS (
    SELECT hardware_fingerprint,
           coalesce(hw[1], 'unknown CPU') || coalesce(' x' || hw[2], '') || coalesce(' + ' || hw[3], '')
               || ' (' || coalesce(hardware_fingerprint, '?') || ')' AS hardware
    FROM (SELECT hardware_fingerprint,
                 json_extract_string(document, ['$.hardware.cpu_model', '$.hardware.cpu_logical',
                                                '$.hardware.gpus[0].name']) AS hw
          FROM runs
          WHERE run_id IN (SELECT any_value(run_id) FROM selected GROUP BY hardware_fingerprint))
), resources AS (
    SELECT run_id,
       {_measurement_pivot()}
    FROM measurements
    WHERE run_id IN (SELECT run_id FROM selected)
    GROUP BY run_id
)
SELECT run_id, created_at, status, failure_reason, submission,
       coalesce(submission_name, submission) AS submission_name, technique, parent, benchmark,
       protocol_version, split, num_images, miou,
       CAST(coalesce(measured_params, params) AS DOUBLE) AS params,
       macs, latency_ms, peak_rss_mb, energy_joules_per_image,
       coalesce(energy_measured, false) AS energy_measured, energy_method,
       declared_train_images, declared_annotation,
       hardware_fingerprint, machines.hardware, custom_code, device, {trust_columns}
FROM selected
     LEFT JOIN machines USING (hardware_fingerprint)
     LEFT JOIN resources USING (run_id)
ORDER BY created_at, run_id
"""


# Parsing documents is what costs most (a few KB of JSON each), so each run's document is read
# once for the few values the leaderboard needs, and a caller can keep them by run id: stored
# runs are never edited.
DOCUMENT_FIELDS_SQL = """
SELECT run_id,
       coalesce(TRY_CAST(training[1] AS BOOLEAN), false) AND training[2] IS NOT NULL AS budget_verified,
       CASE WHEN training[2] IS NULL THEN 'declared'
            WHEN training[8] IN ('verified', 'recorded') THEN training[8]
            WHEN coalesce(TRY_CAST(training[1] AS BOOLEAN), false) THEN 'verified'
            ELSE 'declared' END AS budget_state,
       TRY_CAST(training[3] AS DOUBLE) AS record_images,
       training[4] AS record_annotation,
       TRY_CAST(training[5] AS DOUBLE) AS record_annotator_seconds,
       TRY_CAST(training[6] AS DOUBLE) AS record_wall_seconds,
       TRY_CAST(training[7] AS DOUBLE) AS record_energy_joules,
       miou_ci[1] AS miou_ci_low, miou_ci[2] AS miou_ci_high,
       architecture
FROM (SELECT run_id,
             json_extract_string(doc[1], ['$.verified', '$.record', '$.record.images', '$.record.annotation',
                                          '$.record.annotator_seconds', '$.record.wall_seconds',
                                          '$.record.energy_joules', '$.state']) AS training,
             TRY_CAST(doc[2] AS DOUBLE[]) AS miou_ci,
             doc[3] AS architecture
      FROM (SELECT run_id,
                   json_extract_string(document, ['$.training', '$.accuracy.miou_ci', '$.architecture']) AS doc
            FROM runs WHERE run_id IN (SELECT unnest(?))))
"""

DOCUMENT_FIELDS = ('budget_verified', 'budget_state', 'record_images', 'record_annotation', 'record_annotator_seconds',
                   'record_wall_seconds', 'record_energy_joules', 'miou_ci_low', 'miou_ci_high', 'architecture')

RUN_FRAME_COLUMNS = (
    'run_id', 'created_at', 'status', 'failure_reason', 'submission', 'submission_name', 'technique',
    'parent', 'benchmark', 'protocol_version', 'split', 'num_images', 'miou', 'miou_ci_low',
    'miou_ci_high', 'params', 'macs', 'latency_ms', 'peak_rss_mb', 'energy_joules_per_image',
    'energy_measured', 'energy_method', 'train_images', 'annotation_type', 'annotation_seconds',
    'train_seconds', 'train_energy_joules', 'budget_verified', 'budget_state', 'hardware_fingerprint', 'hardware',
    'architecture', 'custom_code', 'device', 'compute_trusted', 'untrusted_reason', 'measurement_protocol_version',
)

DocumentCache = MutableMapping[str, tuple[Any, ...]]  # run id -> its DOCUMENT_FIELDS values


def runs(db_path: Path, benchmark: str, cache: DocumentCache | None = None) -> pd.DataFrame:
    """Every stored run of ``benchmark`` (ok and failed), oldest first, one typed row each.

    Columns: ``RUN_FRAME_COLUMNS``. Resource columns use the units of ``frugalbench.scores``
    (MACs, ms, MB = 2**20 bytes, J per image, images, annotator seconds) and are NaN where the
    store has no value; ``budget_state`` is verified, recorded or declared (``budget_verified``:
    verified only); ``compute_trusted`` is False (``untrusted_reason`` says why) when its params
    and MACs were counted where submission code ran, and ``measurement_protocol_version`` is the
    protocol its latency, memory and energy were measured under (``frugalbench.scores.trust``).
    ``cache`` (run id -> the values read from its document) spares parsing the documents of
    runs read before; the runs read now are added to it. One connection for both queries.
    """
    cache = {} if cache is None else cache

    def query(connection: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, list[str], pd.DataFrame | None]:
        migrated = _has_trust_columns(connection)
        core = connection.sql(_runs_sql(TRUST_COLUMNS if migrated else NO_TRUST_COLUMNS),
                              params=[benchmark]).to_arrow_table().to_pandas()
        if not migrated:
            _trust_from_documents(connection, core)
        ids = core['run_id'].tolist()
        missing = [run_id for run_id in ids if run_id not in cache]
        fields = connection.execute(DOCUMENT_FIELDS_SQL, [missing]).df() if missing else None
        return core, ids, fields
    core, ids, fields = read(db_path, query)
    if fields is not None:
        cache.update(zip(fields['run_id'].tolist(), fields[list(DOCUMENT_FIELDS)].itertuples(index=False, name=None)))
    empty = (None,) * len(DOCUMENT_FIELDS)
    known = pd.DataFrame.from_records([cache.get(run_id, empty) for run_id in ids], columns=list(DOCUMENT_FIELDS),
                                      index=core.index)
    return shape_runs(core, known)


def _has_trust_columns(connection: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``runs`` has migration 4's columns (a file that no writer has opened since is read
    as it is: the leaderboard opens it read-only and migrates nothing)."""
    try:
        connection.execute('SELECT compute_trusted FROM runs LIMIT 0')
    except duckdb.BinderException:
        return False
    return True


def _trust_from_documents(connection: duckdb.DuckDBPyConnection, core: pd.DataFrame) -> None:
    """Fill the trust columns of ``core`` from the runs' documents, by the rule migration 4 stores
    (``frugalbench.store.runs.compute_trust``, ``measurement_protocol_version``)."""
    from frugalbench.store.runs import compute_trust, measurement_protocol_version
    ids = core['run_id'].tolist()
    rows = connection.execute('SELECT run_id, document FROM runs WHERE run_id IN (SELECT unnest(?))', [ids]).fetchall()
    documents = {run_id: json.loads(document) for run_id, document in rows}
    trust = [compute_trust(documents[run_id]) for run_id in ids]
    core['compute_trusted'] = [trusted for trusted, _ in trust]
    core['untrusted_reason'] = [reason for _, reason in trust]
    core['measurement_protocol_version'] = [measurement_protocol_version(documents[run_id]) for run_id in ids]


FLOAT_COLUMNS = ('miou', 'miou_ci_low', 'miou_ci_high', 'params', 'macs', 'latency_ms', 'peak_rss_mb',
                 'energy_joules_per_image', 'train_images', 'annotation_seconds', 'train_seconds',
                 'train_energy_joules')


def shape_runs(core: pd.DataFrame, fields: pd.DataFrame) -> pd.DataFrame:
    """The run frame from the typed columns and the document fields (row for row): the recorded
    figures of a verified or recorded budget, else the declared image count and annotation type;
    float columns as float64 (NaN where the store has no value)."""
    frame = core.copy()
    frame['budget_verified'] = fields['budget_verified'].fillna(False).astype(bool)
    frame['budget_state'] = fields['budget_state'].fillna('declared').astype(str)
    verified = frame['budget_state'].isin(['verified', 'recorded'])  # figures from a training record
    frame['train_images'] = pd.to_numeric(fields['record_images']).where(verified, core['declared_train_images'])
    frame['annotation_type'] = fields['record_annotation'].where(verified, core['declared_annotation'])
    for column, source in (('annotation_seconds', 'record_annotator_seconds'),
                           ('train_seconds', 'record_wall_seconds'),
                           ('train_energy_joules', 'record_energy_joules')):
        frame[column] = pd.to_numeric(fields[source]).where(verified)
    frame['miou_ci_low'], frame['miou_ci_high'] = fields['miou_ci_low'], fields['miou_ci_high']
    frame['architecture'] = fields['architecture']
    frame = frame[list(RUN_FRAME_COLUMNS)]
    for column in FLOAT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors='coerce').astype('float64')
    frame['energy_measured'] = frame['energy_measured'].fillna(False).astype(bool)
    frame['compute_trusted'] = frame['compute_trusted'].fillna(False).astype(bool)  # unknown: not trusted
    frame['measurement_protocol_version'] = pd.array(frame['measurement_protocol_version'], dtype='Int64')
    return frame.reset_index(drop=True)


@dataclass(frozen=True)
class RunDetail:
    """Everything the submission page shows about one run."""

    document: dict[str, Any]
    class_scores: pd.DataFrame   # class_index, class_name, iou, acc
    measurements: pd.DataFrame   # name, value, unit, method, tool_version, measured, unavailable_reason, details

    @property
    def compute_trust(self) -> tuple[bool, str | None]:
        """Whether its compute counts may be ranked, and if not why (``frugalbench.store.runs.compute_trust``)."""
        from frugalbench.store.runs import compute_trust
        return compute_trust(self.document)

    @property
    def measurement_protocol_version(self) -> int | None:
        """The measurement protocol of its latency, memory and energy (1 for runs stored before it was recorded)."""
        from frugalbench.store.runs import measurement_protocol_version
        return measurement_protocol_version(self.document)


def run_detail(db_path: Path, run_id: str) -> RunDetail | None:
    """The stored document, per-class scores and measurements of one run; None if it is unknown."""
    def query(connection: duckdb.DuckDBPyConnection) -> RunDetail | None:
        row = connection.execute('SELECT document FROM runs WHERE run_id = ?', [run_id]).fetchone()
        if row is None:
            return None
        classes = connection.execute('SELECT class_index, class_name, iou, acc FROM class_scores '
                                     'WHERE run_id = ? ORDER BY class_index', [run_id]).df()
        measured = connection.execute(
            'SELECT name, value, unit, method, tool_version, measured, unavailable_reason, '
            'CAST(details AS VARCHAR) AS details FROM measurements WHERE run_id = ? ORDER BY name',
            [run_id]).df()
        return RunDetail(json.loads(row[0]), classes, measured)
    return read(db_path, query)


def snapshot_info(db_path: Path) -> dict[str, Any] | None:
    """The verified manifest when ``db_path`` is a snapshot folder (StoreUnavailable, state
    ``invalid``, when it fails verification); None for a database."""
    if not is_snapshot(Path(db_path)):
        return None
    try:
        return snapshot_manifest(Path(db_path))
    except SnapshotError as exc:
        raise StoreUnavailable(_invalid(str(exc))) from None


def benchmark_definition(db_path: Path, benchmark: str) -> dict[str, Any] | None:
    """The benchmark file a snapshot carries for ``benchmark`` (its parsed mapping), for
    ``views.benchmark_setup``; None for a database (the local benchmark file is read) or when the
    snapshot holds none."""
    if not is_snapshot(Path(db_path)):
        return None
    row = read(db_path, lambda c: c.execute('SELECT definition FROM benchmarks WHERE name = ?',
                                            [benchmark]).fetchone())
    if row is None or row[0] is None:
        return None
    import yaml
    try:
        definition = yaml.safe_load(row[0])
    except yaml.YAMLError:
        return None
    return definition if isinstance(definition, dict) else None


def resolve_run_id(db_path: Path, run_id: str) -> str | None:
    """The stored run id that is ``run_id`` or starts with it (the leaderboard shows 8-character
    prefixes); None when no run matches; UsageError when a prefix matches several."""
    def query(connection: duckdb.DuckDBPyConnection) -> list[str]:
        return [r[0] for r in connection.execute(
            "SELECT run_id FROM runs WHERE run_id = ? OR starts_with(run_id, ?) ORDER BY run_id LIMIT 3",
            [run_id, run_id]).fetchall()]
    ids = read(db_path, query)
    if run_id in ids or len(ids) <= 1:
        return run_id if run_id in ids else (ids[0] if ids else None)
    raise UsageError(f'{run_id!r} is the start of several run ids ({", ".join(ids[:2])}, ...): give more of it')


LINEAGE_SELECT = ('SELECT run_id, created_at, status, submission, submission_name, technique, parent, '
                  'benchmark, miou, params FROM runs ')


def lineage(db_path: Path, submission: str, name: str | None, parent: str | None) -> pd.DataFrame:
    """Runs related to a submission: its parent's runs (``relation`` 'parent') and those derived
    from it ('derived'). A manifest's ``parent`` names the submission folder (or name) it came from.
    """
    def query(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
        frames = []
        if parent:
            frames.append(connection.execute(
                LINEAGE_SELECT + 'WHERE submission = ? OR submission_name = ? ORDER BY created_at, run_id',
                [parent, parent]).df().assign(relation='parent'))
        frames.append(connection.execute(
            LINEAGE_SELECT + 'WHERE parent = ? OR parent = ? ORDER BY created_at, run_id',
            [submission, name or submission]).df().assign(relation='derived'))
        frame = pd.concat(frames, ignore_index=True)
        return frame[['relation', *[c for c in frame.columns if c != 'relation']]]
    return read(db_path, query)


AREAS_SQL = ('SELECT run_id, intersect_, union_ FROM image_areas WHERE run_id IN (SELECT unnest(?)) '
             'ORDER BY run_id, image_index')


def image_areas(db_path: Path, run_ids: Iterable[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-image per-class (intersection, union) areas, each [n_images, n_classes], of each run
    that has them stored (read as Arrow lists: one array per column, no per-row objects)."""
    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return {}
    table = read(db_path, lambda c: c.sql(AREAS_SQL, params=[ids]).to_arrow_table())
    runs = np.asarray(table.column('run_id').to_numpy(zero_copy_only=False))
    if runs.size == 0:
        return {}
    intersect, union = (table.column(name).combine_chunks() for name in ('intersect_', 'union_'))
    starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
    bounds = list(zip(starts, np.r_[starts[1:], runs.size]))

    def blocks(column: Any) -> list[np.ndarray]:
        offsets, values = column.offsets.to_numpy(), column.values.to_numpy()
        return [values[offsets[s]:offsets[e]].reshape(e - s, -1).astype(np.float64) for s, e in bounds]

    return {str(runs[s]): (i, u) for (s, _), i, u in zip(bounds, blocks(intersect), blocks(union))}
