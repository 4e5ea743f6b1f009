"""The Streamlit app, run by Streamlit's AppTest on databases written with the real store.

Expected values are computed here from the runs' documents and the formula of docs/metrics.md
(score = mIoU - w R / (1 + R), R = resource / reference), not taken from the app's code.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from frugalbench.scores import bootstrap_miou_ci
from frugalbench.store import connect

APP = Path(__file__).resolve().parents[2] / 'app' / 'leaderboard.py'
REFERENCES = {'params': 1.0e6, 'latency_ms': 50.0}


def start() -> AppTest:
    """The app against $FRUGALBENCH_DB (set by the ``isolated`` fixture), after its first run."""
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def ranking(at: AppTest) -> pd.DataFrame:
    """The table of the Ranking tab."""
    assert not at.exception, [e.value for e in at.exception]
    return at.tabs[0].dataframe[0].value


def expected_miou(street: dict, run_id: str) -> float:
    return street[run_id].document()['accuracy']['miou']


def score(miou: float, value: float, reference: float, w: float) -> float:
    R = value / reference
    return miou - w * R / (1 + R)


def test_missing_database_says_what_to_run(isolated: Path) -> None:
    at = start()
    messages = ' '.join(w.value for w in at.warning)
    assert 'No results database at' in messages
    assert '`make demo`' in messages and '`frugalbench evaluate SUBMISSION_FOLDER`' in messages
    assert not at.dataframe


def test_database_without_runs_says_what_to_run(isolated: Path) -> None:
    with connect(isolated / 'data' / 'results.duckdb'):
        pass  # creates the file with the schema and no runs
    at = start()
    assert 'holds no runs yet' in at.warning[0].value
    assert not at.dataframe


def test_locked_database_says_it_is_busy_instead_of_failing(isolated: Path) -> None:
    db = isolated / 'data' / 'results.duckdb'
    with connect(db):
        pass
    holder = subprocess.Popen([sys.executable, '-c', 'import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); '
                               'print("open", flush=True); time.sleep(60)', str(db)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == 'open'
        at = start()
        assert 'is busy: another frugalbench command is writing to it' in at.warning[0].value
    finally:
        holder.kill()
        holder.wait()


def test_default_view_is_the_benchmark_with_runs_and_shows_stored_values(leaderboard_db: Path, street: dict) -> None:
    at = start()
    assert at.selectbox(key='benchmark').value == 'street'
    table = ranking(at)
    ok = [run_id for run_id, run in street.items() if run.status == 'ok']
    assert sorted(table['run']) == sorted(ok)
    for row in table.itertuples():
        assert row.submission == street[row.run].name
        assert row.mIoU == pytest.approx(expected_miou(street, row.run), abs=1e-12)
    left_out = at.tabs[0].expander[0].dataframe[0].value
    failed = left_out.set_index('run').loc['f6failed00']
    assert failed['status'] == 'failed' and 'num_classes is 19' in failed['reason']


def test_intervals_are_the_stored_ones_or_bootstrapped_from_the_stored_areas(leaderboard_db: Path,
                                                                            street: dict) -> None:
    at = start()
    shown = ranking(at).set_index('run')['mIoU 95% CI']
    for run_id in ('a1fastscnn', 'd4points10'):  # d4points10's document stores no interval
        areas = street[run_id].areas()
        low, high = bootstrap_miou_ci(np.array([a.intersect for a in areas]), np.array([a.union for a in areas]))
        assert shown[run_id] == f'{low:.4f} - {high:.4f}'


def test_scores_follow_the_formula_and_the_w_slider(leaderboard_db: Path, street: dict) -> None:
    at = start()
    assert at.selectbox(key='resource').value == 'params' and at.slider(key='w').value == 0.5
    table = ranking(at)
    for row in table.itertuples():
        run = street[row.run]
        assert row.score == pytest.approx(score(row.mIoU, run.params, REFERENCES['params'], 0.5), abs=1e-12)
    assert list(table['rank']) == sorted(table['rank'])
    assert list(table['score']) == sorted(table['score'], reverse=True)

    at.slider(key='w').set_value(0.0).run()
    table = ranking(at)
    assert table['score'].tolist() == pytest.approx(table['mIoU'].tolist(), abs=1e-12)
    assert table.iloc[0]['mIoU'] == max(expected_miou(street, r) for r in table['run'])


def test_resource_selector_ranks_on_latency_within_each_hardware(leaderboard_db: Path, street: dict) -> None:
    at = start()
    at.selectbox(key='resource').set_value('latency_ms').run()
    table = ranking(at)
    assert set(table['run']) == {'a1fastscnn', 'c3pruned00', 'd4points10', 'e5gpu00000'}
    for row in table.to_dict('records'):
        assert row['resource value'] == street[row['run']].latency_ms
        expected = score(row['mIoU'], row['resource value'], REFERENCES['latency_ms'], 0.5)
        assert row['score'] == pytest.approx(expected, abs=1e-12)
    gpu = table.set_index('run').loc['e5gpu00000']
    assert gpu['group'].endswith('hardware=gpu0fingerpr') and gpu['rank'] == 1  # alone in its group
    reasons = at.tabs[0].expander[0].dataframe[0].value.set_index('run')['reason']
    assert reasons['b2cgnet000'] == 'no latency_ms value'


def test_technique_and_hardware_filters(leaderboard_db: Path) -> None:
    at = start()
    at.multiselect(key='technique-street').set_value(['pruned']).run()
    assert ranking(at)['run'].tolist() == ['c3pruned00']
    at.multiselect(key='technique-street').set_value([]).run()
    gpu_label = [o for o in at.multiselect(key='hardware-street').options if 'H100' in o]
    assert gpu_label == ['Intel(R) Xeon(R) Processor x16 + NVIDIA H100 80GB HBM3 (gpu0fingerpr)']
    at.multiselect(key='hardware-street').set_value(gpu_label).run()
    assert ranking(at)['run'].tolist() == ['e5gpu00000']


def test_track_limits_the_ranking(leaderboard_db: Path) -> None:
    at = start()
    at.selectbox(key='track-street').set_value('tiny').run()
    table = ranking(at)
    assert sorted(table['run']) == ['b2cgnet000', 'c3pruned00']  # the runs with <= 1 M parameters
    assert all('tiny' in tracks for tracks in table['tracks'])


def test_markers_for_estimated_energy_declared_budgets_and_missing_values(leaderboard_db: Path) -> None:
    at = start()
    table = ranking(at).set_index('run')
    assert table.at['a1fastscnn', 'energy (J/image)'] == 0.5
    assert table.at['a1fastscnn', 'energy kind'] == 'estimated'
    assert table.at['e5gpu00000', 'energy kind'] == 'measured'
    assert pd.isna(table.at['b2cgnet000', 'energy (J/image)']) and table.at['b2cgnet000', 'energy kind'] == '-'
    assert pd.isna(table.at['b2cgnet000', 'latency (ms)'])
    assert table.at['a1fastscnn', 'budget'] == 'declared' and table.at['a1fastscnn', 'training images'] == 367
    assert table.at['d4points10', 'budget'] == 'verified' and table.at['d4points10', 'annotation'] == 'points'
    assert table.at['d4points10', 'annotator-hours'] == pytest.approx(221.0 / 3600)
    assert table.at['a1fastscnn', 'peak memory (MB)'] == 300.0


def test_synthetic_banner_only_on_a_synthetic_benchmark(leaderboard_db: Path) -> None:
    at = start()
    assert not [w for w in at.warning if 'SYNTHETIC' in w.value]
    at.selectbox(key='benchmark').set_value('toyshapes').run()
    assert [w for w in at.warning if w.value.startswith('SYNTHETIC benchmark')]
    assert sorted(ranking(at)['submission']) == ['Toy model 0', 'Toy model 1']


def test_missing_reference_lists_runs_by_miou_and_says_how_to_score(leaderboard_db: Path, street: dict) -> None:
    at = start()
    at.selectbox(key='resource').set_value('train_seconds').run()
    assert any('No reference value for train_seconds' in i.value for i in at.info)
    table = ranking(at)
    assert table['mIoU'].dropna().is_monotonic_decreasing
    assert table['mIoU'].isna().tolist() == [False] * 5 + [True]  # the failed run comes last
    assert 'score' not in table.columns and set(table['run']) == set(street)


def test_submission_page_shows_text_plainly_with_measurements_and_lineage(leaderboard_db: Path, street: dict) -> None:
    at = start()
    tab = at.tabs[4]
    label = next(o for o in tab.selectbox(key='run-street').options if o.startswith('CGNet'))
    tab.selectbox(key='run-street').set_value(label).run()
    texts = [t.value for t in at.tabs[4].text]
    assert 'Name: CGNet <i>street</i> **v2**' in texts
    assert any('a *test* submission with <b>markup</b>' in t for t in texts)
    assert not [m for m in at.markdown if '<i>street</i>' in m.value or '<b>markup</b>' in m.value]
    measurements = at.tabs[4].dataframe[0].value.set_index('name')
    reason = measurements.at['energy_per_image', 'unavailable_reason']
    assert reason == 'energy_per_image was not measured on this machine'
    assert measurements.at['macs', 'method'] == 'mmengine.analysis.get_model_complexity_info'

    pruned = next(o for o in at.tabs[4].selectbox(key='run-street').options if o.startswith('Fast-SCNN pruned'))
    at.tabs[4].selectbox(key='run-street').set_value(pruned).run()
    assert 'Derived from: fastscnn_street' in [t.value for t in at.tabs[4].text]
    lineage = at.tabs[4].dataframe[-1].value
    assert set(lineage.loc[lineage['relation'] == 'parent', 'run_id']) == {'a1fastscnn', 'e5gpu00000'}
    assert any('No test-image overlays are stored' in i.value for i in at.tabs[4].info)


def test_export_buttons_and_charts_are_offered(leaderboard_db: Path) -> None:
    at = start()
    assert [b.label for b in at.tabs[0].download_button] == ['Download CSV', 'Download Parquet']
    assert [b.label for b in at.tabs[4].download_button] == [  # the run's frugality label (issue 22)
        'Download label (SVG)', 'Download label (PNG)', 'Download badge (SVG)']
    charts = [len(at.tabs[k].get('vega_lite_chart')) for k in range(1, 5)]
    assert charts == [1, 1, 2, 1]  # Pareto; frugality curves; two budget curves; per-class IoU


def test_new_runs_appear_on_the_next_run_of_the_page(leaderboard_db: Path, kit) -> None:
    at = start()
    assert len(ranking(at)) == 5
    kit.store_runs(leaderboard_db, [kit.Run('g7newrun00', 'new_street', 'Newly evaluated', quality=0.7,
                                            params=800_000, minutes=30)])
    time.sleep(0.01)
    at.run()
    assert 'Newly evaluated' in ranking(at)['submission'].tolist()
