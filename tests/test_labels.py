"""Frugality labels: every figure on the label of a really evaluated, stored run checked against the
run document as the database holds it (read here with plain DuckDB), the same label made from a
public snapshot of that database, and the label's rules (trust, failed runs, intervals, text)."""
from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from frugalbench import labels
from frugalbench.app_data import BenchmarkSetup
from frugalbench.cli import main
from frugalbench.errors import UsageError

SVG = '{http://www.w3.org/2000/svg}'
PARAMS_REFERENCE = 1.0e6


def fields(svg: str) -> dict[str, str]:
    """The label's value lines by field id (``<text id="field-...">``)."""
    root = ET.fromstring(svg)
    return {element.get('id').removeprefix('field-'): ''.join(element.itertext()).strip()
            for element in root.iter(f'{SVG}text') if (element.get('id') or '').startswith('field-')}


def three_significant(text: str, value: float) -> bool:
    """Whether ``text`` (a number with 3 significant digits) is ``value`` rounded that way."""
    return float(text) == float(f'{value:.3g}')


def stored_document(db: Path, run_id: str) -> dict[str, Any]:
    with duckdb.connect(str(db), read_only=True) as connection:
        return json.loads(connection.execute('SELECT document FROM runs WHERE run_id = ?', [run_id]).fetchone()[0])


@pytest.fixture
def evaluated(isolated: Path, tiny_benchmark: str, make_submission, quick_protocol: Path) -> tuple[Path, str]:
    """One real evaluation (Fast-SCNN, random weights, tiny benchmark with a params reference) in a
    database; returns (database, run id)."""
    import torch
    torch.set_num_threads(1)
    from frugalbench.evaluation import EvaluationOptions, evaluate_submission
    benchmark_file = isolated / 'data' / 'benchmarks' / f'{tiny_benchmark}.yaml'
    definition = yaml.safe_load(benchmark_file.read_text())
    benchmark_file.write_text(yaml.safe_dump({**definition, 'references': {'params': PARAMS_REFERENCE}}))
    db = isolated / 'data' / 'results.duckdb'
    outcome = evaluate_submission(make_submission(name='Label Fast-SCNN'),
                                  EvaluationOptions(db_path=db, protocol_path=quick_protocol))
    assert outcome.ok, outcome.document.get('failure_reason')
    return db, outcome.document['run_id']


@pytest.mark.slow
def test_label_of_an_evaluated_run_shows_every_figure_of_its_document(evaluated: tuple[Path, str],
                                                                       isolated: Path, capsysbinary) -> None:
    db, run_id = evaluated
    document = stored_document(db, run_id)

    def label_command(*argv: str) -> str:
        code = main(['label', *argv])
        out, err = capsysbinary.readouterr()
        assert code == 0, err.decode()
        return out.decode()
    svg = label_command(run_id[:10], '--db', str(db))  # a unique start of the run id is enough
    shown = fields(svg)

    assert shown['model'] == document['manifest']['name'] == 'Label Fast-SCNN'
    assert shown['benchmark'] == 'tiny  (SYNTHETIC scenes)'
    miou = re.fullmatch(r'(\d\.\d{3})  \(95% CI (\d\.\d{3}) - (\d\.\d{3}), (stored|bootstrap)\)', shown['miou'])
    assert miou, shown['miou']
    accuracy = document['accuracy']
    assert float(miou[1]) == round(accuracy['miou'], 3)
    if miou[4] == 'stored':
        assert [float(miou[2]), float(miou[3])] == [round(v, 3) for v in accuracy['miou_ci']]
    params = document['compute']['params']
    assert shown['params'] == f'{params:,} parameters'
    expected_score = accuracy['miou'] - 0.5 / (1 + 1 / (params / PARAMS_REFERENCE))  # by hand, docs/metrics.md
    score = re.fullmatch(r'(-?\d\.\d{3})  \(params, w = 0\.5, reference 1e\+06 parameters\)', shown['score'])
    assert score and float(score[1]) == round(expected_score, 3), shown['score']
    macs = re.fullmatch(r'(\S+) GMACs per image', shown['macs'])
    assert macs and three_significant(macs[1], document['compute']['macs'] / 1e9)
    latency = re.fullmatch(r'(\S+) ms \(median, batch 1\)', shown['latency'])
    assert latency and three_significant(latency[1], document['latency']['median_ms'])
    energy = re.fullmatch(r'(\S+) J/image \((measured|estimated)\)', shown['energy'])
    assert energy and three_significant(energy[1], document['energy']['joules_per_image'])
    assert energy[2] == ('measured' if document['energy']['measured'] else 'estimated')
    declared = document['training']['declared']
    assert shown['data'] == f"{declared['images']} images (declared)"
    assert shown['annotation'] == f"{declared['annotation']} (declared)"
    hardware = document['hardware']
    assert shown['hardware'].startswith(f"{hardware['cpu_model']} x{hardware['cpu_logical']}")
    assert f"[{hardware['fingerprint']}]" in shown['hardware'] and shown['hardware'].endswith('(cpu)')
    assert shown['protocol'] == (f"benchmark v{document['protocol_version']}, "
                                 f"measurement v{document['measurement_protocol']['protocol_version']}")
    assert shown['run'].startswith(run_id)
    canonical = json.dumps(document, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()
    assert shown['hash'] == f'sha256 {hashlib.sha256(canonical).hexdigest()[:12]}'

    # JSON, PNG and badge carry the same figures; the label made from a snapshot is the same label
    as_json = json.loads(label_command(run_id, '--db', str(db), '--format', 'json'))
    assert as_json['document_sha256'] == hashlib.sha256(canonical).hexdigest()
    assert as_json['miou'] == accuracy['miou'] and as_json['params'] == params
    label = labels.label_for_run(db, run_id)
    assert labels.render_png(label).startswith(b'\x89PNG\r\n\x1a\n')
    badge = labels.render_badge(label)
    assert '\n' not in badge.strip() and f'mIoU {accuracy["miou"]:.3f}' in badge and label.short_hash in badge
    from frugalbench.store.snapshot import export_snapshot
    export_snapshot(db, isolated / 'public')
    (isolated / 'data' / 'benchmarks' / 'tiny.yaml').unlink()  # the snapshot carries the benchmark file
    assert label_command(run_id, '--snapshot', str(isolated / 'public')) == svg


def document(**changes: Any) -> dict[str, Any]:
    """A successful run document with the sections a label reads."""
    base = {
        'run_id': 'r1', 'status': 'ok', 'created_at': '2026-11-20T09:00:00+00:00', 'submission': 'sub',
        'benchmark': 'street', 'protocol_version': 1, 'device': 'cpu',
        'manifest': {'name': 'Model', 'technique': 'lightweight'},
        'accuracy': {'miou': 0.61234, 'miou_ci': [0.6, 0.62], 'num_images': 6},
        'compute': {'params': 2_000_000, 'macs': 9.0e8, 'trusted': True},
        'latency': {'median_ms': 40.0}, 'energy': {'joules_per_image': 0.5, 'measured': False},
        'training': {'declared': {'images': 367, 'annotation': 'full'}, 'verified': False},
        'hardware': {'cpu_model': 'Xeon', 'cpu_logical': 2, 'fingerprint': 'abc'},
        'measurement_protocol': {'protocol_version': 2},
    }
    for key, value in changes.items():
        base[key] = value
    return base


SETUP = BenchmarkSetup(references={'params': 1.0e6})


def test_untrusted_compute_counts_are_marked_and_never_scored() -> None:
    label = labels.build_label(document(custom_code=True, compute={
        'params': 2_000_000, 'macs': 9.0e8, 'trusted': False, 'untrusted_reason': 'ran mymodels.net'}), SETUP)
    shown = fields(labels.render_svg(label))
    assert shown['params'] == '2,000,000 parameters (untrusted: shown, never ranked)'
    assert label.score.value is None and 'untrusted compute counts' in shown['score']
    assert 'score' not in labels.badge_texts(label)[1]


def test_score_and_budget_follow_the_benchmark_defaults_and_the_training_record() -> None:
    setup = BenchmarkSetup(references={'train_images': 100.0}, default_resource='train_images', default_w=0.2)
    record = {'images': 10, 'annotation': 'points', 'annotator_seconds': 7200.0}
    label = labels.build_label(document(training={'declared': {'images': 367, 'annotation': 'full'},
                                                  'state': 'verified', 'verified': True, 'record': record}), setup)
    shown = fields(labels.render_svg(label))
    assert label.score.value == pytest.approx(0.61234 - 0.2 / (1 + 1 / 0.1))
    assert shown['data'] == '10 images (verified)' and shown['annotation'] == 'points, 2 annotator-hours (verified)'


def test_failed_run_gets_no_label_and_interval_falls_back_to_bootstrap() -> None:
    with pytest.raises(labels.LabelError, match='only a successful run'):
        labels.build_label(document(status='failed', failure_reason='boom', accuracy=None), SETUP)
    label = labels.build_label(document(accuracy={'miou': 0.5}), SETUP, interval=(0.45, 0.55))
    assert label.miou_ci == (0.45, 0.55) and 'bootstrap' in fields(labels.render_svg(label))['miou']
    assert 'no interval stored' in fields(labels.render_svg(labels.build_label(document(accuracy={'miou': 0.5}),
                                                                                 SETUP)))['miou']


def test_submission_text_on_a_label_is_text() -> None:
    hostile = 'Evil</text><script>alert(1)</script>\u202e\x1b[31m'
    svg = labels.render_svg(labels.build_label(document(manifest={'name': hostile}), SETUP))
    root = ET.fromstring(svg)  # still well-formed XML
    assert not list(root.iter(f'{SVG}script')) and not list(root.iter('script'))
    assert fields(svg)['model'].startswith('Evil</text><script>') and '\\u202e' in fields(svg)['model']
    ET.fromstring(labels.render_badge(labels.build_label(document(benchmark=hostile), SETUP)))


def test_ambiguous_run_prefix_is_a_usage_error(isolated: Path) -> None:
    from frugalbench import app_data
    from frugalbench.store import connect, save_run
    db = isolated / 'data' / 'results.duckdb'
    with connect(db) as connection:
        for run_id in ('abc1', 'abc2'):
            save_run(connection, document(run_id=run_id))
    with pytest.raises(UsageError, match='several run ids'):
        app_data.resolve_run_id(db, 'abc')
    assert app_data.resolve_run_id(db, 'abc2') == 'abc2' and app_data.resolve_run_id(db, 'zzz') is None
    with pytest.raises(labels.LabelError, match='no run'):
        labels.label_for_run(db, 'zzz')


def test_a_label_is_scored_at_the_default_view_of_the_benchmark_file(isolated: Path) -> None:
    from frugalbench.store import connect, save_run
    folder = isolated / 'data' / 'benchmarks'
    folder.mkdir(parents=True)
    street = {'name': 'street', 'protocol_version': 1, 'root': 'street', 'splits': {'test': 'test'},
              'classes': ['road', 'car'], 'references': {'params': 1.0e6, 'macs': 1.0e9},
              'default_resource': 'macs', 'default_w': 0.3}
    (folder / 'street.yaml').write_text(yaml.safe_dump(street))
    db = isolated / 'data' / 'results.duckdb'
    with connect(db) as connection:
        save_run(connection, document(run_id='r9'))
    score = labels.label_for_run(db, 'r9').score
    assert (score.resource, score.w, score.reference) == ('macs', 0.3, 1.0e9)
    assert score.value == pytest.approx(0.61234 - 0.3 / (1 + 1 / 0.9))
    (folder / 'street.yaml').write_text(yaml.safe_dump({**street, 'default_w': -1}))
    score = labels.label_for_run(db, 'r9').score  # a bad default: the file is not readable as a setup
    assert score.value is None and 'default_w' in score.note and 'not readable' in score.note
