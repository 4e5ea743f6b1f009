"""`frugalbench results ingest-benchmark`: a real pytest-benchmark report lands in DuckDB."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from frugalbench.store import connect

BENCH = '''
def test_sum(benchmark):
    assert benchmark(sum, range(1000)) == 499500
'''


def test_pytest_benchmark_report_is_ingested(tmp_path: Path) -> None:
    (tmp_path / 'test_bench.py').write_text(BENCH)
    report, db = tmp_path / 'report.json', tmp_path / 'r.duckdb'
    run = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', str(tmp_path / 'test_bench.py'),
                          '--benchmark-only', f'--benchmark-json={report}', '--benchmark-min-rounds=3'],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    ingest = subprocess.run([sys.executable, '-m', 'frugalbench', 'results', 'ingest-benchmark', str(report),
                             '--db', str(db)], capture_output=True, text=True, timeout=120)
    assert ingest.returncode == 0, ingest.stderr
    with connect(db) as connection:
        name, rounds, median = connection.execute('SELECT name, rounds, median_s FROM perf_benchmarks').fetchone()
    assert name == 'test_sum' and rounds >= 3 and median > 0
