"""Compute trust and measurement protocol version as typed columns of ``runs`` (migration 4):
written by ``save_run`` for new runs, filled by the migration for runs stored before it, both by
the rule of ``frugalbench.store.runs.compute_trust`` / ``measurement_protocol_version``."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from frugalbench.store import connect, save_run
from frugalbench.store.db import schema_version
from frugalbench.store.migrations import MIGRATIONS
from frugalbench.store.runs import (
    LEGACY_UNTRUSTED_REASON,
    RUN_COLUMNS,
    UNTRUSTED_NO_REASON,
    compute_trust,
    measurement_protocol_version,
    run_row,
)

REASON = 'the submission runs its own code in the model process (custom_imports: mymodels.net)'


def _document(run_id: str, *, status: str = 'ok', compute: dict | None = None, custom_code: bool | None = None,
              protocol: dict | None = None) -> dict:
    document = dict(run_id=run_id, created_at='2026-01-01T00:00:00+00:00', status=status,
                    failure_reason=None if status == 'ok' else 'broken', submission=f's-{run_id}',
                    benchmark='b', protocol_version=1, run_key=f'k-{run_id}',
                    accuracy={'miou': 0.5, 'num_images': 3}, compute=compute or {'params': 10, 'macs': 5e9})
    if custom_code is not None:
        document['custom_code'] = custom_code
    if protocol is not None:
        document['measurement_protocol'] = protocol
    return document


# (document, expected compute_trusted, expected reason, expected measurement protocol version)
CASES = {
    'v2 trusted': (_document('a', compute={'params': 10, 'trusted': True, 'untrusted_reason': None},
                             custom_code=False, protocol={'protocol_version': 2}), True, None, 2),
    'v2 untrusted': (_document('b', compute={'params': 10, 'trusted': False, 'untrusted_reason': REASON},
                               custom_code=True, protocol={'protocol_version': 2}), False, REASON, 2),
    'v1, before trust: plain': (_document('c', custom_code=False, protocol={'protocol_version': 1}), True, None, 1),
    'v1, before trust: custom code': (_document('d', custom_code=True), False, LEGACY_UNTRUSTED_REASON, 1),
    'says trusted, ran custom code': (_document('e', compute={'params': 1, 'trusted': True}, custom_code=True,
                                                protocol={'protocol_version': 2}), False, LEGACY_UNTRUSTED_REASON, 2),
    'untrusted without a reason': (_document('f', compute={'params': 1, 'trusted': False}, custom_code=False,
                                             protocol={'protocol_version': 2}), False, UNTRUSTED_NO_REASON, 2),
    'failed, no protocol': (_document('g', status='failed', compute={}), True, None, None),
    'odd version': (_document('h', protocol={'protocol_version': 'two'}), True, None, 1),
}


@pytest.mark.parametrize('case', list(CASES))
def test_python_rule(case: str) -> None:
    document, trusted, reason, version = CASES[case]
    assert compute_trust(document) == (trusted, reason)
    assert measurement_protocol_version(document) == version


def test_save_run_writes_the_columns_and_the_view_shows_them(tmp_path: Path) -> None:
    with connect(tmp_path / 'r.duckdb') as connection:
        for document, *_ in CASES.values():
            save_run(connection, document)
        stored = {row[0]: tuple(row[1:]) for row in connection.execute(
            'SELECT run_id, compute_trusted, compute_untrusted_reason, measurement_protocol_version FROM runs'
        ).fetchall()}
        view = {row[0]: tuple(row[1:]) for row in connection.execute(
            'SELECT run_id, compute_trusted, compute_untrusted_reason, measurement_protocol_version '
            'FROM leaderboard_runs').fetchall()}
    expected = {document['run_id']: (trusted, reason, version) for document, trusted, reason, version in CASES.values()}
    assert stored == expected
    assert view == expected


def _migrate_to(connection: duckdb.DuckDBPyConnection, last: int) -> None:
    """The schema as an older frugalbench left it: migrations up to ``last`` only."""
    connection.execute('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description VARCHAR, '
                       'applied_at TIMESTAMP)')
    for version, description, sql in MIGRATIONS:
        if version <= last:
            connection.execute(sql)
            connection.execute('INSERT INTO schema_migrations VALUES (?, ?, now())', [version, description])


def test_migration_fills_the_columns_of_runs_stored_before_it_by_the_same_rule(tmp_path: Path) -> None:
    path = tmp_path / 'old.duckdb'
    old_columns = RUN_COLUMNS[:RUN_COLUMNS.index('compute_trusted')]
    with duckdb.connect(str(path)) as connection:
        _migrate_to(connection, 3)
        for document, *_ in CASES.values():  # as an older save_run wrote them: no trust columns
            row = dict(zip(RUN_COLUMNS, run_row(document)))
            connection.execute(f'INSERT INTO runs ({", ".join(old_columns)}, document) VALUES '
                               f'({", ".join("?" for _ in old_columns)}, ?)',
                               [row[c] for c in old_columns] + [json.dumps(document)])
    with connect(path) as connection:  # a writer migrates
        assert schema_version(connection) >= 4
        stored = {row[0]: tuple(row[1:]) for row in connection.execute(
            'SELECT run_id, compute_trusted, compute_untrusted_reason, measurement_protocol_version FROM runs'
        ).fetchall()}
    assert stored == {document['run_id']: (*compute_trust(document), measurement_protocol_version(document))
                      for document, *_ in CASES.values()}
