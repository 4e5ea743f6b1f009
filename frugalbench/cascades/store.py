"""What a cascade reads and writes in the results database: its members' per-image areas and
confidence histograms, and its fitted budget-mIoU curves (table ``cascade_curves``, migration 6)."""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from frugalbench.cascades.policy import CascadeError, SplitData, gate_statistic
from frugalbench.store import connect


def member_areas(connection: duckdb.DuckDBPyConnection, run_id: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A stored run's per-image names, intersections and unions (image order of the run)."""
    rows = connection.execute('SELECT image, intersect_, union_ FROM image_areas WHERE run_id = ? '
                              'ORDER BY image_index', [run_id]).fetchall()
    if not rows:
        raise CascadeError(f'run {run_id} has no per-image areas in the database (is it spooled? run any '
                           'command that opens the database, then try again)')
    return ([r[0] for r in rows], np.array([r[1] for r in rows], dtype=np.float64),
            np.array([r[2] for r in rows], dtype=np.float64))


def split_data(db_path: Path, documents: list[dict[str, Any]], statistic: str, level: float) -> SplitData:
    """The members' answers on one split (one stored run each, in member order), images aligned by name."""
    names, inter, union, stats = None, [], [], []
    with connect(db_path) as connection:
        for document in documents:
            images, i, u = member_areas(connection, document['run_id'])
            confidence = document.get('confidence') or {}
            histograms = {name: counts for name, counts in confidence.get('images') or []}
            if set(histograms) != set(images):
                raise CascadeError(f'run {document["run_id"]} ({document.get("submission")}) stores no confidence '
                                   'histogram for some of its images: evaluate it again for the cascade')
            if names is None:
                names = images
            elif images != names:
                raise CascadeError(f'the members were evaluated on different images ({document.get("submission")} '
                                   f'on {len(images)}, the first member on {len(names)}): use the same --max-images')
            inter.append(i)
            union.append(u)
            stats.append([gate_statistic(np.asarray(histograms[n]), statistic, level) for n in images])
    return SplitData(images=tuple(names or ()), intersect=np.stack(inter), union=np.stack(union),
                     statistic=np.array(stats, dtype=np.float64))


def save_curve(db_path: Path, document: dict[str, Any]) -> str:
    """Store one fitted curve (its document); return its id."""
    curve_id = uuid.uuid4().hex
    document['curve_id'] = curve_id
    with connect(db_path) as connection:
        connection.execute('INSERT INTO cascade_curves VALUES (?, now(), ?, ?, ?, ?)',
                           [curve_id, document['cascade'], document['benchmark'], document['resource'],
                            json.dumps(document)])
    return curve_id


def latest_curves(connection: duckdb.DuckDBPyConnection, benchmark: str) -> list[dict[str, Any]]:
    """The newest curve of each cascade and resource of ``benchmark`` (none before migration 6)."""
    try:
        rows = connection.execute(
            'SELECT arg_max(document, created_at) FROM cascade_curves WHERE benchmark = ? '
            'GROUP BY cascade, resource ORDER BY cascade, resource', [benchmark]).fetchall()
    except duckdb.CatalogException:
        return []
    return [json.loads(row[0]) for row in rows]
