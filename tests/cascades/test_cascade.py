"""Cascades end to end on a tiny benchmark: members evaluated in their own model processes (val
and test, with confidence histograms), thresholds fitted on val, the cascade's run stored."""
from __future__ import annotations

import dataclasses
import json

import duckdb
import numpy as np
import pytest
from cascades.conftest import World, write_cascade
from PIL import Image

from frugalbench.cascades import policy as P
from frugalbench.cli import main as cli_main
from frugalbench.evaluation import Detached, evaluate_submission


def _stored(world: World, sql: str, params: list) -> list[tuple]:
    with duckdb.connect(str(world.db), read_only=True) as connection:
        return connection.execute(sql, params).fetchall()


def _document(world: World, run_id: str) -> dict:
    return json.loads(_stored(world, 'SELECT document FROM runs WHERE run_id = ?', [run_id])[0][0])


def _recompute(world: World, document: dict) -> tuple[float, float, list[float]]:
    """mIoU and escalation rate from the members' stored per-image areas and histograms, routed by hand."""
    members = [_document(world, m['test_run_id']) for m in document['cascade']['members']]
    threshold = document['cascade']['thresholds'][0]
    first = {name: np.asarray(h) for name, h in members[0]['confidence']['images']}
    centres = (np.arange(100) + 0.5) / 100
    inter, union, escalated = 0.0, 0.0, []
    areas = [{r[0]: (np.asarray(r[1]), np.asarray(r[2])) for r in _stored(
        world, 'SELECT image, intersect_, union_ FROM image_areas WHERE run_id = ?', [m['run_id']])} for m in members]
    for image, histogram in first.items():
        up = (histogram * centres).sum() / histogram.sum() < threshold
        escalated.append(up)
        i, u = areas[1 if up else 0][image]
        inter, union = inter + i, union + u
    with np.errstate(invalid='ignore'):
        return float(np.nanmean(inter / union)), float(np.mean(escalated)), [m['run_id'] for m in members]


def test_cascade_run_is_recomputable_from_its_members(world: World) -> None:
    folder = write_cascade(world.submissions / 'tiny_cascade', ['cheap', 'costly'], {'thresholds': [0.9]})
    outcome = evaluate_submission(folder, world.options())
    document = outcome.document
    assert outcome.ok, document.get('failure_reason')
    cascade = document['cascade']
    miou, rate, member_runs = _recompute(world, document)
    assert document['accuracy']['miou'] == pytest.approx(miou, abs=1e-9)
    assert cascade['escalation_rate'] == pytest.approx(rate)
    assert document['split'] == 'test' and document['manifest']['technique'] == 'cascade'
    members = [_document(world, run_id) for run_id in member_runs]
    for name in ('latency_b1', 'macs'):
        first, second = ({m['name']: m['value'] for m in d['measurements']}[name] for d in members)
        mine = {m['name']: m['value'] for m in document['measurements']}[name]
        assert mine == pytest.approx(first + rate * second)
    assert document['compute']['params'] == sum(d['compute']['params'] for d in members)
    assert document['memory']['peak_rss_mb'] == pytest.approx(sum(d['memory']['peak_rss_mb'] for d in members))
    stored = _stored(world, 'SELECT technique, split, miou FROM runs WHERE run_id = ?', [document['run_id']])
    assert stored == [('cascade', 'test', pytest.approx(miou))]
    splits = _stored(world, "SELECT split, count(*) FROM runs WHERE submission IN ('cheap', 'costly') "
                            'GROUP BY split ORDER BY split', [])
    assert splits == [('test', 2), ('val', 2)]
    again = evaluate_submission(folder, world.options())   # nothing changed: the stored run is reused
    assert again.reused and again.document['run_id'] == document['run_id']
    assert {m['test_run_id'] for m in again.document['cascade']['members']} == set(member_runs)


@pytest.mark.slow  # re-evaluates both members on test (two model processes)
def test_fitting_never_reads_the_test_split(world: World) -> None:
    folder = write_cascade(world.submissions / 'budget_cascade', ['cheap', 'costly'],
                           {'budget': {'resource': 'macs', 'value': 1.5e9}}, gate={'statistic': 'fraction_below',
                                                                                    'level': 0.8})
    before = evaluate_submission(folder, world.options()).document
    assert before['status'] == 'ok', before.get('failure_reason')
    assert before['cascade']['policy']['fitted_on'] == 'val'
    for path in sorted((world.data_root / 'ann_dir' / 'test').iterdir()):  # new test labels
        label = np.asarray(Image.open(path)).copy()
        label[label != 255] = (label[label != 255] + 1) % 3
        Image.fromarray(label).save(path)
    for member in ('cheap', 'costly'):
        assert evaluate_submission(world.submissions / member, world.options(force=True, confidence_bins=100)).ok
    after = evaluate_submission(folder, world.options()).document
    assert after['status'] == 'ok', after.get('failure_reason')
    assert after['cascade']['members'][0]['test_run_id'] != before['cascade']['members'][0]['test_run_id']
    assert after['accuracy']['miou'] != before['accuracy']['miou']
    assert after['cascade']['thresholds'] == before['cascade']['thresholds']


def test_members_of_another_benchmark_are_refused(world: World) -> None:
    folder = write_cascade(world.submissions / 'mixed_cascade', ['cheap', 'other_benchmark'], {'thresholds': [0.5]})
    document = evaluate_submission(folder, world.options()).document
    assert document['status'] == 'failed'
    assert "member 'other_benchmark' is a submission of benchmark 'tinyw'" in document['failure_reason']
    stored = _stored(world, 'SELECT status, failure_reason FROM runs WHERE run_id = ?', [document['run_id']])
    assert stored[0][0] == 'failed' and 'tinyw' in stored[0][1]


def test_a_detached_evaluation_of_a_cascade_is_refused_before_any_member_runs(world: World) -> None:
    folder = write_cascade(world.submissions / 'detached_cascade', ['cheap', 'costly'], {'thresholds': [0.5]})
    before = _stored(world, 'SELECT count(*) FROM runs', [])
    with pytest.raises(P.CascadeError, match="reads its members' stored runs"):
        evaluate_submission(folder, dataclasses.replace(world.options(), detached=Detached()))
    assert _stored(world, 'SELECT count(*) FROM runs', []) == before


def test_members_with_other_classes_are_refused(world: World) -> None:
    renamed = world.submissions / 'renamed_classes'
    renamed.mkdir()
    manifest = (world.submissions / 'cheap' / 'submission.yaml').read_text().replace('- bar', '- pole')
    (renamed / 'submission.yaml').write_text(manifest)
    for name in ('config.py', 'model.pth'):
        (renamed / name).write_bytes((world.submissions / 'cheap' / name).read_bytes())
    folder = write_cascade(world.submissions / 'classes_cascade', ['cheap', 'renamed_classes'], {'thresholds': [0.5]})
    document = evaluate_submission(folder, world.options()).document
    assert document['status'] == 'failed'
    assert "member 'renamed_classes': field 'classes' does not match benchmark 'tinyv'" in document['failure_reason']


def test_a_failing_member_fails_the_cascade_with_its_reason(world: World) -> None:
    broken = world.submissions / 'broken'
    broken.mkdir()
    for name in ('config.py', 'submission.yaml'):
        (broken / name).write_text((world.submissions / 'cheap' / name).read_text())
    (broken / 'model.pth').write_bytes(b'not a checkpoint')
    folder = write_cascade(world.submissions / 'broken_cascade', ['cheap', 'broken'], {'thresholds': [0.5]})
    document = evaluate_submission(folder, world.options()).document
    assert document['status'] == 'failed'
    assert document['failure_reason'].startswith('member broken failed on the test split: ')
    assert 'checkpoint' in document['failure_reason']


def test_cascade_fit_stores_a_curve(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_cascade(world.submissions / 'fit_cascade', ['cheap', 'costly'], {'thresholds': [0.5]})
    code = cli_main(['cascade', 'fit', str(folder), '--resource', 'macs', '--budgets', '1e3', '1.2e9', '1e12',
                     '--db', str(world.db), '--protocol', str(world.protocol), '--format', 'json'])
    assert code == 0
    curve = json.loads(capsys.readouterr().out)
    points = curve['points']
    assert [p['feasible'] for p in points] == [False, True, True]
    assert 'under the cheapest policy' in points[0]['reason']
    costs = [m['cost'] for m in curve['members']]
    assert points[2]['val']['cost'] <= 1e12 and points[1]['val']['cost'] <= 1.2e9 + 1e-3
    for point in points[1:]:
        rate = point['test']['escalation_rate']
        assert point['test']['cost'] == pytest.approx(costs[0] + rate * costs[1])
    assert curve['headline']['best_single'] in ('cheap', 'costly')
    assert curve['oracle']['miou'] >= max(m['test_miou'] for m in curve['members']) - 1e-9
    stored = _stored(world, 'SELECT cascade, resource FROM cascade_curves', [])
    assert ('fit_cascade', 'macs') in stored


def test_gate_statistics_from_a_histogram() -> None:
    histogram = np.zeros(100, dtype=np.int64)
    histogram[[20, 95]] = [30, 70]            # 30 pixels at ~0.205, 70 at ~0.955
    assert P.gate_statistic(histogram, 'mean_max_prob', 0.5) == pytest.approx(0.3 * 0.205 + 0.7 * 0.955)
    assert P.gate_statistic(histogram, 'fraction_below', 0.5) == pytest.approx(0.3)
    assert P.gate_statistic(histogram, 'fraction_below', 0.96) == pytest.approx(1.0)
