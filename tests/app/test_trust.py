"""Untrusted compute counts and measurement protocol versions, end to end on real stored runs
(documents written with ``save_run`` into a DuckDB file): the store's columns, ``frugalbench rank``,
the leaderboard's data layer and the Streamlit app (AppTest)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from frugalbench import app_data as data
from frugalbench.ranking import rank_stored_runs
from frugalbench.store.migrations import MIGRATIONS
from frugalbench.store.runs import LEGACY_UNTRUSTED_REASON, RUN_COLUMNS, run_row

APP = Path(__file__).resolve().parents[2] / 'app' / 'leaderboard.py'
REASON = ('the submission runs its own code in the model process (custom_imports: mymodels.net), which could '
          'alter counts taken there and build weights the checkpoint does not hold: params, MACs and FLOPs are '
          'shown, never ranked')
REFERENCES = {'params': 1.0e6, 'macs': 1.0e9, 'latency_ms': 50.0}
UNTRUSTED = 'u7custom00'
V2 = 'v8twoprot0'


def _extra_runs(kit) -> list:
    """A custom-code run that would lead every compute ranking (best mIoU, fewest params and MACs),
    measured under protocol v2, and a trusted run measured under protocol v2."""
    return [kit.Run(UNTRUSTED, 'custom_street', 'Custom-code model', quality=0.8, params=300_000, macs=2.0e8,
                    latency_ms=10.0, untrusted_reason=REASON, measurement_protocol=2, minutes=7),
            kit.Run(V2, 'fastscnn_v2', 'Fast-SCNN measured by protocol v2', quality=0.58, latency_ms=30.0,
                    measurement_protocol=2, minutes=8)]


@pytest.fixture
def trust_db(isolated: Path, kit) -> Path:
    kit.write_benchmarks(isolated / 'data')
    db = isolated / 'data' / 'results.duckdb'
    kit.store_runs(db, kit.street_runs() + _extra_runs(kit))
    return db


def test_stored_runs_carry_trust_and_protocol_version(trust_db: Path) -> None:
    runs = data.runs(trust_db, 'street').set_index('run_id')
    assert not runs.at[UNTRUSTED, 'compute_trusted']
    assert runs.at[UNTRUSTED, 'untrusted_reason'] == REASON
    assert runs.at[UNTRUSTED, 'params'] == 300_000  # stored and shown
    assert bool(runs.at['a1fastscnn', 'compute_trusted']) and pd.isna(runs.at['a1fastscnn', 'untrusted_reason'])
    versions = runs['measurement_protocol_version']
    assert versions.drop('f6failed00').to_dict() == {'a1fastscnn': 1, 'b2cgnet000': 1, 'c3pruned00': 1,
                                                     'd4points10': 1, 'e5gpu00000': 1, UNTRUSTED: 2, V2: 2}
    assert pd.isna(versions['f6failed00'])  # a failed run stored before the version was recorded


@pytest.mark.parametrize('resource', ['params', 'macs'])
def test_untrusted_run_is_not_ranked_on_compute_counts_and_changes_nothing(trust_db: Path, resource: str) -> None:
    runs = data.runs(trust_db, 'street')
    ranked = data.ranking(runs, resource, 0.5, REFERENCES)
    assert UNTRUSTED not in set(ranked['run_id'])
    without = data.ranking(runs[runs['run_id'] != UNTRUSTED], resource, 0.5, REFERENCES)
    pd.testing.assert_frame_equal(ranked.reset_index(drop=True), without.reset_index(drop=True))
    reasons = data.unranked(runs, resource).set_index('run')['reason']
    assert reasons[UNTRUSTED] == f'{resource} is not ranked: untrusted compute counts ({REASON})'
    cli = rank_stored_runs(trust_db, resource=resource, w=0.5, benchmark='street', reference=REFERENCES[resource])
    assert [r['run_id'] for r in cli] == ranked['run_id'].tolist()
    assert [r['rank'] for r in cli] == ranked['rank'].tolist()


def test_untrusted_run_is_ranked_on_latency_but_in_no_track_limiting_params(trust_db: Path) -> None:
    setup = data.benchmark_setup('street')
    runs = data.runs(trust_db, 'street')
    ranked = data.ranking(runs, 'latency_ms', 0.5, REFERENCES, 'open', setup.tracks).set_index('run_id')
    assert ranked.at[UNTRUSTED, 'tracks'] == 'open'  # 300,000 params, but never admitted to "tiny"
    assert ranked.at['c3pruned00', 'tracks'] == 'open, tiny'
    tiny = data.ranking(runs, 'latency_ms', 0.5, REFERENCES, 'tiny', setup.tracks)
    assert UNTRUSTED not in set(tiny['run_id'])
    table = data.display_table(ranked.reset_index()).set_index('run')
    assert table.at[UNTRUSTED, 'compute counts'] == 'untrusted'
    assert table.at[UNTRUSTED, 'not ranked on'] == f'params, MACs: {REASON}'
    assert table.at['a1fastscnn', 'compute counts'] == 'trusted' and table.at['a1fastscnn', 'not ranked on'] == '-'
    assert table.at[UNTRUSTED, 'params'] == 300_000  # the figure is shown


def test_protocol_versions_are_ranked_apart_on_latency_and_together_on_params(trust_db: Path) -> None:
    runs = data.runs(trust_db, 'street')
    latency = data.ranking(runs, 'latency_ms', 0.5, REFERENCES).set_index('run_id')
    assert latency.at[V2, 'group'] == 'street|protocol=1|measurement=v2|hardware=cpu0fingerpr'
    assert latency.at['a1fastscnn', 'group'] == 'street|protocol=1|measurement=v1|hardware=cpu0fingerpr'
    assert latency.at[UNTRUSTED, 'rank'] == 1 and latency.at[V2, 'rank'] == 2
    assert latency.at['a1fastscnn', 'rank'] == 1  # best of the v1 runs on this machine
    assert latency.at[V2, 'measurement_protocol_version'] == 2
    params = data.ranking(runs, 'params', 0.5, REFERENCES).set_index('run_id')
    assert params.at[V2, 'group'] == params.at['a1fastscnn', 'group'] == 'street|protocol=1'
    cli = {r['run_id']: r for r in rank_stored_runs(trust_db, resource='latency_ms', w=0.5, benchmark='street',
                                                    reference=50.0)}
    assert {k: (r['rank'], r['group']) for k, r in cli.items()} == {
        k: (latency.at[k, 'rank'], latency.at[k, 'group']) for k in latency.index}


def test_styled_table_greys_exactly_the_untrusted_compute_counts(trust_db: Path) -> None:
    runs = data.runs(trust_db, 'street')
    ranked = data.ranking(runs, 'latency_ms', 0.5, REFERENCES)
    styler = data.styled_table(ranked)
    css = styler._compute().ctx  # (row, column) -> [(property, value)], as Streamlit reads it
    table = styler.data
    greyed = {(table.iloc[r]['run'], table.columns[c]) for (r, c), props in css.items() if props}
    assert greyed == {(UNTRUSTED, 'params'), (UNTRUSTED, 'MACs')}
    assert isinstance(data.styled_table(ranked[ranked['run_id'] != UNTRUSTED]), pd.DataFrame)  # nothing to grey


def test_trust_notes_name_the_run_its_reason_and_the_protocol_groups(trust_db: Path) -> None:
    runs = data.runs(trust_db, 'street')
    notes = data.trust_notes(runs, 'latency_ms')
    assert notes[0].startswith('1 run(s) with untrusted compute counts')
    assert notes[1] == f'Custom-code model [{UNTRUSTED[:8]}]: params, MACs: {REASON}'
    assert notes[-1].endswith('Versions in view: v1, v2.')
    assert not any('measurement protocol' in n for n in data.trust_notes(runs, 'params'))


def test_rank_cli_says_which_runs_it_left_out_and_why(trust_db: Path) -> None:
    result = subprocess.run([sys.executable, '-m', 'frugalbench', 'rank', '--db', str(trust_db), '--benchmark',
                             'street', '--resource', 'params', '--reference', '1000000', '--format', 'json'],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert UNTRUSTED not in {row['run_id'] for row in json.loads(result.stdout)}
    assert f'not ranked: custom_street (run {UNTRUSTED}) on street: params is not ranked: untrusted compute' in \
        ' '.join(result.stderr.split())


def _old_schema_db(path: Path, documents: list[dict]) -> None:
    """A database as frugalbench left it before migration 4 (no trust columns), never opened since."""
    old_columns = RUN_COLUMNS[:RUN_COLUMNS.index('compute_trusted')]
    with duckdb.connect(str(path)) as connection:
        connection.execute('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description VARCHAR, '
                           'applied_at TIMESTAMP)')
        for version, description, sql in MIGRATIONS[:3]:
            connection.execute(sql)
            connection.execute('INSERT INTO schema_migrations VALUES (?, ?, now())', [version, description])
        for document in documents:
            row = dict(zip(RUN_COLUMNS, run_row(document)))
            connection.execute(f'INSERT INTO runs ({", ".join(old_columns)}, document) VALUES '
                               f'({", ".join("?" for _ in old_columns)}, ?)',
                               [row[c] for c in old_columns] + [json.dumps(document)])
            for m in document['measurements']:
                connection.execute('INSERT INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
                                   [document['run_id'], m['name'], m.get('value'), m['unit'], m['method'],
                                    m.get('tool_version'), bool(m.get('measured')), m.get('unavailable_reason'),
                                    json.dumps(m.get('details') or {})])


def test_an_unmigrated_database_is_read_by_the_same_rule(isolated: Path, kit) -> None:
    """Read-only, the leaderboard migrates nothing: a run stored before compute.trusted existed that
    ran submission code is untrusted all the same."""
    kit.write_benchmarks(isolated / 'data')
    legacy = kit.Run('l9legacy00', 'legacy_custom', 'Legacy custom code', quality=0.8, params=100_000, minutes=9)
    document = legacy.document()
    document['custom_code'] = True
    del document['compute']['trusted'], document['compute']['untrusted_reason']
    plain = kit.Run('a1fastscnn', 'fastscnn_street', 'Fast-SCNN street', quality=0.62, minutes=1).document()
    db = isolated / 'data' / 'old.duckdb'
    _old_schema_db(db, [plain, document])
    runs = data.runs(db, 'street').set_index('run_id')
    assert runs.at['l9legacy00', 'untrusted_reason'] == LEGACY_UNTRUSTED_REASON
    assert not runs.at['l9legacy00', 'compute_trusted'] and runs.at['a1fastscnn', 'compute_trusted']
    assert runs['measurement_protocol_version'].tolist() == [1, 1]
    ranked = data.ranking(runs.reset_index(), 'params', 0.5, REFERENCES)
    assert ranked['run_id'].tolist() == ['a1fastscnn']


def _captions(at: AppTest) -> str:
    """The Ranking tab's captions as shown (Markdown escapes and word joiners removed)."""
    return ' '.join(re.sub(r'\\(.)', r'\1', c.value).replace('\u2060', '') for c in at.tabs[0].caption)


def _start() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_app_leaves_the_untrusted_run_out_of_the_params_ranking_and_says_why(trust_db: Path) -> None:
    at = _start()
    assert at.selectbox(key='resource').value == 'params'
    table = at.tabs[0].dataframe[0].value
    assert UNTRUSTED not in set(table['run'])
    captions = _captions(at)
    assert 'untrusted compute counts' in captions and 'mymodels.net' in captions
    reasons = at.tabs[0].expander[0].dataframe[0].value.set_index('run')['reason']
    assert reasons[UNTRUSTED] == f'params is not ranked: untrusted compute counts ({REASON})'


def test_app_ranks_the_untrusted_run_on_latency_with_its_counts_greyed(trust_db: Path) -> None:
    at = _start()
    at.selectbox(key='resource').set_value('latency_ms').run()
    assert not at.exception, [e.value for e in at.exception]
    element = at.tabs[0].dataframe[0]
    table = element.value.set_index('run')
    assert table.at[UNTRUSTED, 'compute counts'] == 'untrusted'
    assert table.at[UNTRUSTED, 'not ranked on'] == f'params, MACs: {REASON}'
    assert table.at[UNTRUSTED, 'measurement protocol'] == 'v2'
    assert table.at['a1fastscnn', 'measurement protocol'] == 'v1'
    assert '#a0a0a0' in str(element.proto)  # the greyed cells' style travels with the table
    captions = _captions(at)
    assert 'separate groups' in captions and 'v1, v2' in captions


def test_submission_page_says_the_compute_counts_are_untrusted(trust_db: Path) -> None:
    at = _start()
    run = at.selectbox(key='run-street')
    run.set_value(next(o for o in run.options if UNTRUSTED[:8] in o)).run()
    texts = [t.value for t in at.tabs[4].text]
    assert f'Compute counts (params, MACs, FLOPs): untrusted, shown but never ranked: {REASON}' in texts
    assert 'Measurement protocol: v2' in texts
