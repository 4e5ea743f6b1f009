"""The leaderboard's data layer (frugalbench.app_data): read-only queries and the frames it shows."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from frugalbench import app_data as data
from frugalbench.app_data import queries
from frugalbench.scores import bootstrap_miou_ci
from frugalbench.store import connect, save_run


def test_store_status_names_each_state_and_what_to_run(tmp_path: Path) -> None:
    db = tmp_path / 'results.duckdb'
    missing = data.store_status(db)
    assert missing.state == 'missing' and '`make demo`' in missing.message and not missing.ready
    with connect(db):
        pass
    assert data.store_status(db).state == 'empty'
    garbage = tmp_path / 'garbage.duckdb'
    garbage.write_bytes(b'not a database at all' * 100)
    unreadable = data.store_status(garbage)
    assert unreadable.state == 'unreadable' and str(garbage) in unreadable.message


def test_store_status_of_a_locked_database_is_locked_then_ready(leaderboard_db: Path) -> None:
    holder = subprocess.Popen([sys.executable, '-c', 'import duckdb, sys; c = duckdb.connect(sys.argv[1]); '
                               'print("open", flush=True); sys.stdin.readline()', str(leaderboard_db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == 'open'
        status = queries.store_status(leaderboard_db, retry_seconds=0.2)
        assert status.state == 'locked' and 'Refresh this page' in status.message
    finally:
        holder.communicate('\n', timeout=30)  # the writer closes; the next read succeeds
    assert data.store_status(leaderboard_db) == data.StoreStatus('ready', f'8 runs in {leaderboard_db}', 8)


def test_queries_hold_no_connection_between_calls(leaderboard_db: Path) -> None:
    data.runs(leaderboard_db, 'street')
    with connect(leaderboard_db) as writer:  # a writer in this process opens the file right after
        assert writer.execute('SELECT count(*) FROM runs').fetchone() == (8,)
    probe = subprocess.run([sys.executable, '-c', 'import duckdb, sys; duckdb.connect(sys.argv[1]).close()',
                            str(leaderboard_db)], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr  # and so can another process


def test_benchmarks_put_the_one_with_most_ok_runs_first(leaderboard_db: Path) -> None:
    frame = data.benchmarks(leaderboard_db)
    assert frame['benchmark'].tolist() == ['street', 'toyshapes']
    assert frame['ok_runs'].tolist() == [5, 2] and frame['failed_runs'].tolist() == [1, 0]
    assert frame['synthetic'].tolist() == [False, True]


def test_runs_carry_resources_in_scoring_units_and_budget_provenance(leaderboard_db: Path, street: dict) -> None:
    frame = data.runs(leaderboard_db, 'street').set_index('run_id')
    fast = frame.loc['a1fastscnn']
    assert fast['miou'] == street['a1fastscnn'].document()['accuracy']['miou']
    assert (fast['params'], fast['macs'], fast['latency_ms']) == (1_460_000, 9.0e8, 40.0)
    assert fast['peak_rss_mb'] == 300.0  # 300 * 2**20 bytes
    assert fast['energy_joules_per_image'] == 0.5 and not fast['energy_measured']
    assert fast['energy_method'] == 'estimate-cpu-time-tdp'
    assert (fast['train_images'], fast['annotation_type'], fast['budget_verified']) == (367, 'full', False)
    assert np.isnan(fast['annotation_seconds']) and np.isnan(fast['train_seconds'])
    points = frame.loc['d4points10']
    assert points['budget_verified'] and points['annotation_type'] == 'points'
    assert (points['train_images'], points['annotation_seconds'], points['train_seconds']) == (10, 221.0, 600.0)
    gpu = frame.loc['e5gpu00000']
    assert gpu['energy_measured'] and gpu['hardware'] == ('Intel(R) Xeon(R) Processor x16 + NVIDIA H100 80GB '
                                                          'HBM3 (gpu0fingerpr)')
    assert np.isnan(frame.loc['b2cgnet000', 'latency_ms'])  # stored as unavailable, with its reason
    assert frame.loc['f6failed00', 'status'] == 'failed' and np.isnan(frame.loc['f6failed00', 'miou'])
    assert frame.loc['c3pruned00', 'parent'] == 'fastscnn_street'


def test_a_measurement_in_another_unit_is_not_taken_for_a_resource(isolated: Path, kit) -> None:
    run = kit.Run('h8seconds0', 'odd_units', 'Latency in seconds')
    db = isolated / 'data' / 'results.duckdb'
    measurements = [m for m in run.measurements() if m['name'] != 'latency_b1']
    measurements.append({'name': 'latency_b1', 'value': 0.04, 'unit': 's', 'method': 'm', 'measured': True})
    with connect(db) as connection:
        save_run(connection, run.document(), run.classes, run.areas(), measurements)
    assert np.isnan(data.runs(db, 'street').loc[0, 'latency_ms'])


def test_stored_intervals_are_bootstrap_intervals_of_the_runs_areas(leaderboard_db: Path, street: dict) -> None:
    areas = data.image_areas(leaderboard_db, ['a1fastscnn', 'c3pruned00', 'f6failed00'])
    assert sorted(areas) == ['a1fastscnn', 'c3pruned00']  # the failed run has no areas
    intervals = data.bootstrap_intervals(areas)
    for run_id in areas:
        own = street[run_id].areas()
        reference = bootstrap_miou_ci(np.array([a.intersect for a in own]), np.array([a.union for a in own]))
        assert intervals[run_id] == reference
        miou = street[run_id].document()['accuracy']['miou']
        assert intervals[run_id].low <= miou <= intervals[run_id].high


def test_run_detail_and_lineage(leaderboard_db: Path) -> None:
    detail = data.run_detail(leaderboard_db, 'c3pruned00')
    assert detail is not None and detail.document['manifest']['parent'] == 'fastscnn_street'
    assert detail.class_scores['class_name'].tolist() == ['road', 'car', 'sky']
    assert detail.class_scores['iou'].tolist() == [detail.document['accuracy']['per_class_iou'][c]
                                                   for c in ('road', 'car', 'sky')]
    assert sorted(detail.measurements['name']) == ['energy_per_image', 'latency_b1', 'macs', 'params', 'peak_rss']
    assert data.run_detail(leaderboard_db, 'no-such-run') is None
    parents = data.lineage(leaderboard_db, 'fastscnn_street_pruned', 'Fast-SCNN pruned 50%', 'fastscnn_street')
    assert parents[['relation', 'run_id']].values.tolist() == [['parent', 'a1fastscnn'], ['parent', 'e5gpu00000']]
    children = data.lineage(leaderboard_db, 'fastscnn_street', 'Fast-SCNN street', None)
    assert children[['relation', 'run_id']].values.tolist() == [['derived', 'c3pruned00']]


def test_ranking_scores_by_hand(leaderboard_db: Path, street: dict) -> None:
    runs = data.runs(leaderboard_db, 'street')
    ranked = data.ranking(runs, 'macs', 0.5, {'macs': 1.0e9}).set_index('run_id')
    # a1fastscnn: 9e8 MACs, R = 0.9, penalty 0.5 * 0.9 / 1.9
    miou = street['a1fastscnn'].document()['accuracy']['miou']
    assert ranked.at['a1fastscnn', 'score'] == pytest.approx(miou - 0.5 * 0.9 / 1.9, abs=1e-12)
    assert ranked.at['a1fastscnn', 'normalized_resource'] == pytest.approx(0.9)
    assert ranked.at['a1fastscnn', 'reference'] == 1.0e9 and ranked.at['a1fastscnn', 'w'] == 0.5
    # the pruned run (3e8 MACs) and the best-mIoU run at 9e8 are on the front; CGNet (1.8e9) is not
    assert bool(ranked.at['c3pruned00', 'pareto']) and not bool(ranked.at['b2cgnet000', 'pareto'])
    assert ranked.at['a1fastscnn', 'submission_name'] == 'Fast-SCNN street'
    assert 'f6failed00' not in ranked.index


def test_unranked_runs_say_why(leaderboard_db: Path) -> None:
    runs = data.runs(leaderboard_db, 'street')
    left_out = data.unranked(runs, 'latency_ms').set_index('run')
    assert left_out.at['b2cgnet000', 'reason'] == 'no latency_ms value'
    assert left_out.at['f6failed00', 'reason'] == ("status is 'failed', not ok: config.py: model.decode_head."
                                                   'num_classes is 19, the benchmark has 3 classes')


def test_display_table_marks_estimates_and_declared_budgets(leaderboard_db: Path) -> None:
    runs = data.runs(leaderboard_db, 'street')
    table = data.display_table(data.ranking(runs, 'params', 0.5, {'params': 1e6})).set_index('run')
    assert table.at['a1fastscnn', 'energy kind'] == 'estimated' and table.at['e5gpu00000', 'energy kind'] == 'measured'
    assert table.at['b2cgnet000', 'energy kind'] == '-' and np.isnan(table.at['b2cgnet000', 'energy (J/image)'])
    assert table.at['a1fastscnn', 'budget'] == 'declared' and table.at['d4points10', 'budget'] == 'verified'
    stored = data.runs(leaderboard_db, 'street').set_index('run_id').loc['a1fastscnn']
    low, high = stored['miou_ci_low'], stored['miou_ci_high']
    assert table.at['a1fastscnn', 'mIoU 95% CI'] == f'{low:.4f} - {high:.4f}'  # stored by its evaluation
    assert table.at['d4points10', 'mIoU 95% CI'] == '-'  # none stored, none given
    assert 'status' not in table.columns and 'score' in table.columns
    plain = data.display_table(runs)
    assert 'score' not in plain.columns and 'status' in plain.columns and len(plain) == 6


def test_latest_run_per_submission_and_hardware() -> None:
    runs = pd.DataFrame({
        'run_id': ['r1', 'r2', 'r3', 'r4'], 'submission': ['a', 'a', 'a', 'b'],
        'hardware_fingerprint': ['cpu', 'cpu', 'gpu', 'cpu'], 'protocol_version': [1, 1, 1, 1],
        'status': ['ok'] * 4, 'created_at': pd.to_datetime(['2026-01-01', '2026-01-03', '2026-01-02', '2026-01-01'])})
    assert sorted(data.latest_per_submission(runs)['run_id']) == ['r2', 'r3', 'r4']


def test_frugality_curves_run_from_miou_at_w0_to_the_full_penalty_at_w1(leaderboard_db: Path) -> None:
    runs = data.runs(leaderboard_db, 'street')
    ranked = data.ranking(runs, 'params', 0.5, {'params': 1e6})
    curves = data.frugality_curves(ranked, ['c3pruned00'], ws=(0.0, 1.0))
    miou = float(ranked.set_index('run_id').at['c3pruned00', 'miou'])
    R = 430_000 / 1e6
    assert curves['score'].tolist() == pytest.approx([miou, miou - R / (1 + R)], abs=1e-12)
    assert curves['label'].unique().tolist() == ['Fast-SCNN pruned 50% [c3pruned]']


@pytest.mark.parametrize(('values', 'expected'), [
    ([1.0, 50.0], 'linear'), ([1.0, 100.0], 'log'), ([3e8, 9e8, 1.8e9], 'linear'),
    ([4.3e5, 1.2e8], 'log'), ([0.0, 10.0, 5000.0], 'symlog'), ([0.0, 0.0], 'linear'), ([float('nan'), 5.0], 'linear'),
])
def test_axis_scale_is_logarithmic_only_across_two_decades(values: list[float], expected: str) -> None:
    assert data.axis_scale(values) == expected


def test_budget_points_group_by_architecture_or_say_it_is_not_stored(leaderboard_db: Path) -> None:
    points = data.budget_points(data.runs(leaderboard_db, 'street'))
    assert len(points) == 5  # ok runs only
    assert set(points['architecture']) == {'lightweight (architecture not stored)', 'pruned (architecture not stored)'}
    row = points.set_index('run_id').loc['d4points10']
    assert (row['train_images'], row['annotator_hours'], row['budget']) == (10, pytest.approx(221 / 3600), 'verified')


def test_exports_round_trip_as_csv_and_parquet(leaderboard_db: Path) -> None:
    runs = data.runs(leaderboard_db, 'street')
    export = data.export_frame(data.ranking(runs, 'params', 0.5, {'params': 1e6}))
    from_csv = pd.read_csv(io.BytesIO(data.to_csv_bytes(export)))
    from_parquet = pd.read_parquet(io.BytesIO(data.to_parquet_bytes(export)))
    for frame in (from_csv, from_parquet):
        assert frame['run_id'].tolist() == export['run_id'].tolist()
        assert frame['score'].tolist() == pytest.approx(export['score'].tolist(), abs=1e-12)
        assert frame['submission_name'].tolist() == export['submission_name'].tolist()
    assert json.loads(from_parquet.to_json(orient='records'))[0]['resource'] == 'params'


@pytest.mark.parametrize('resource', ['params', 'macs', 'latency_ms', 'energy_joules_per_image', 'train_images',
                                      'annotation_seconds', 'train_seconds'])
def test_ranking_matches_frugalbench_rank_which_reads_the_documents(leaderboard_db: Path, resource: str) -> None:
    """The app reads typed columns and measurements; `frugalbench rank` reads whole documents."""
    from frugalbench.ranking import rank_stored_runs
    references = {'params': 1e6, 'macs': 1e9, 'latency_ms': 50.0, 'energy_joules_per_image': 1.0,
                  'train_images': 100.0, 'annotation_seconds': 3600.0, 'train_seconds': 600.0}
    expected = rank_stored_runs(leaderboard_db, resource=resource, w=0.3, benchmark='street',
                                reference=references[resource])
    ours = data.ranking(data.runs(leaderboard_db, 'street'), resource, 0.3, {resource: references[resource]})
    assert len(ours) == len(expected) > 0
    mine = ours.set_index('run_id')
    for row in expected:
        got = mine.loc[row['run_id']]
        assert (got['rank'], got['group'], bool(got['pareto'])) == (row['rank'], row['group'], row['pareto'])
        assert got['score'] == pytest.approx(row['score'], abs=1e-12)
        assert got['resource_value'] == pytest.approx(row['resource_value'])
        assert [got['miou_ci_low'], got['miou_ci_high']] == pytest.approx(row['miou_ci'] or [np.nan, np.nan],
                                                                          nan_ok=True)


def test_public_api_names_exist() -> None:
    assert all(hasattr(data, name) for name in data.__all__)


def test_lineage_segments_join_each_variant_to_its_ranked_parent() -> None:
    import pandas as pd

    from frugalbench.app_data import lineage_segments
    ranked = pd.DataFrame({
        'submission': ['base', 'base_int8', 'base_pruned', 'orphan'],
        'parent': [None, 'base', 'base', 'missing'],
        'resource_value': [100.0, 100.0, 30.0, 5.0],
        'miou': [0.44, 0.43, 0.05, 0.2]})
    segments = lineage_segments(ranked)
    assert segments.to_dict('list') == {
        'segment': ['base -> base_int8'] * 2 + ['base -> base_pruned'] * 2,
        'resource_value': [100.0, 100.0, 100.0, 30.0],
        'miou': [0.44, 0.43, 0.44, 0.05]}
    assert lineage_segments(ranked.iloc[:0]).empty
