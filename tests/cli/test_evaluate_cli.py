"""The command line as a user runs it: exit codes, one JSON document on stdout, no tracebacks."""
from __future__ import annotations

import json
import os
import subprocess
import sys


def frugalbench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'frugalbench', *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_evaluate_json_is_one_document_with_the_promised_keys(tiny_benchmark, make_submission,
                                                              quick_protocol) -> None:
    folder = make_submission()
    result = frugalbench('evaluate', str(folder), '--format', 'json', '--protocol', str(quick_protocol))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document['status'] == 'ok'
    assert document['submission'] == 'tiny_fastscnn' and document['benchmark'] == 'tiny'
    assert 0.0 <= document['accuracy']['miou'] <= 1.0
    assert set(document['accuracy']['per_class_iou']) == {'background', 'disc', 'bar'}
    assert document['compute']['params'] > 0
    for key in ('macs', 'flops'):
        assert document['compute'][key] > 0
    assert document['latency']['median_ms'] > 0 and document['latency']['p90_ms'] >= document['latency']['median_ms']
    assert document['memory']['peak_rss_mb'] > 0
    assert document['energy']['measured'] in (True, False) and document['energy']['method']
    assert 'instructions_per_image' in document and document['hardware']['fingerprint']
    assert document['timings']['total'] > 0


def test_failed_evaluation_exits_1_with_one_line_and_no_traceback(tiny_benchmark, make_submission) -> None:
    folder = make_submission(checkpoint='../../something')
    result = frugalbench('evaluate', str(folder))
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert 'points outside' in result.stderr or 'without ".."' in result.stderr


def test_results_lists_stored_runs_as_json_and_exports_csv(tiny_benchmark, make_submission, tmp_path) -> None:
    frugalbench('evaluate', str(make_submission(checkpoint='missing.pth')))
    listed = frugalbench('results', '--format', 'json')
    assert listed.returncode == 0
    runs = json.loads(listed.stdout)
    assert [r['status'] for r in runs] == ['failed']
    out = tmp_path / 'runs.csv'
    assert frugalbench('results', '--format', 'csv', '--out', str(out)).returncode == 0
    assert out.read_text().splitlines()[0].startswith('run_id,')


def test_usage_error_exits_2() -> None:
    result = frugalbench('evaluate', '--device', 'tpu')
    assert result.returncode == 2


def test_validate_reports_the_problem(make_submission, tiny_benchmark) -> None:
    folder = make_submission(technique='magic')
    result = frugalbench('submissions', 'validate', str(folder))
    assert result.returncode == 1
    assert "field 'technique'" in result.stdout
