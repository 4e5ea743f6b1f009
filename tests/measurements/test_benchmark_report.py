"""A real pytest-benchmark JSON report becomes flat rows."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from frugalbench.errors import UsageError
from frugalbench.measurements.benchmark_report import ingest_benchmark_json

BENCH = '''
import pytest

@pytest.mark.benchmark(group="tiny")
def test_sum(benchmark):
    assert benchmark(sum, range(100)) == 4950

def test_sorted(benchmark):
    benchmark.extra_info["items"] = 50
    benchmark(sorted, list(range(50, 0, -1)))
'''


@pytest.fixture(scope='module')
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp('bench')
    (folder / 'test_tiny_bench.py').write_text(BENCH)
    out = folder / 'report.json'
    subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-o', 'addopts=',
                    '--rootdir', str(folder), str(folder / 'test_tiny_bench.py'), '--benchmark-only',
                    '--benchmark-max-time=0.02', '--benchmark-min-rounds=3', f'--benchmark-json={out}'],
                   check=True, capture_output=True, cwd=folder)
    return out


def test_rows_carry_the_statistics_of_each_benchmark(report: Path) -> None:
    raw = json.loads(report.read_text())
    rows = ingest_benchmark_json(report)
    assert [r['name'] for r in rows] == [b['name'] for b in raw['benchmarks']] == ['test_sum', 'test_sorted']
    by = {r['name']: r for r in rows}
    stats = raw['benchmarks'][0]['stats']
    assert by['test_sum']['group'] == 'tiny' and by['test_sorted']['group'] is None
    assert by['test_sum']['median'] == stats['median'] and by['test_sum']['rounds'] == stats['rounds'] >= 3
    assert by['test_sum']['min'] <= by['test_sum']['median'] <= by['test_sum']['max']
    assert json.loads(by['test_sorted']['extra_info']) == {'items': 50}
    assert json.loads(rows[0]['machine_info'])['python_version'] == raw['machine_info']['python_version']
    assert rows[0]['datetime'] == raw['datetime'] and rows[0]['version'] == raw['version']
    assert set(rows[0]) >= {'name', 'group', 'min', 'max', 'mean', 'median', 'stddev', 'rounds',
                            'iterations', 'machine_info', 'commit_info', 'datetime'}


def test_a_file_that_is_not_a_report_fails_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / 'bad.json'
    bad.write_text('{"results": []}')
    with pytest.raises(UsageError, match="no 'benchmarks' list.*--benchmark-json"):
        ingest_benchmark_json(bad)
    bad.write_text('{not json')
    with pytest.raises(UsageError, match='invalid JSON'):
        ingest_benchmark_json(bad)
    with pytest.raises(UsageError, match='cannot read'):
        ingest_benchmark_json(tmp_path / 'missing.json')
