"""Read a ``pytest --benchmark-json FILE`` report (pytest-benchmark) into flat rows.

One row per benchmark: its name, group and timing statistics in seconds, plus the report's
machine and commit information (as JSON text, one column each) and date, ready to be stored
next to the evaluation runs.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from frugalbench.errors import UsageError

STAT_KEYS = ('min', 'max', 'mean', 'median', 'stddev', 'iqr', 'ops', 'rounds', 'iterations')


def _fail(path: Path, problem: str) -> UsageError:
    return UsageError(f'{path} is not a pytest-benchmark report ({problem}): '
                      'write one with `pytest tests/perf --benchmark-only --benchmark-json FILE`')


def ingest_benchmark_json(path: str | Path) -> list[dict[str, Any]]:
    """Flat rows (name, fullname, group, min, max, mean, median, stddev, iqr, ops, rounds,
    iterations, params, extra_info, machine_info, commit_info, datetime, version) of a report."""
    source = Path(path)
    try:
        report = json.loads(source.read_text())
    except OSError as exc:
        raise UsageError(f'cannot read {source}: {exc.strerror}') from exc
    except json.JSONDecodeError as exc:
        raise _fail(source, f'invalid JSON at line {exc.lineno}') from exc
    if not isinstance(report, dict) or not isinstance(report.get('benchmarks'), list):
        raise _fail(source, "no 'benchmarks' list")
    machine = json.dumps(report.get('machine_info') or {}, sort_keys=True)
    commit = json.dumps(report.get('commit_info') or {}, sort_keys=True)
    rows = []
    for index, bench in enumerate(report['benchmarks']):
        stats = bench.get('stats') if isinstance(bench, dict) else None
        if not isinstance(stats, dict) or 'name' not in bench:
            raise _fail(source, f'benchmark #{index} has no name or stats')
        missing = [k for k in ('min', 'max', 'mean', 'median', 'stddev', 'rounds') if k not in stats]
        if missing:
            raise _fail(source, f'benchmark {bench["name"]!r} lacks {missing}')
        row: dict[str, Any] = {'name': bench['name'], 'fullname': bench.get('fullname', bench['name']),
                               'group': bench.get('group')}
        for key in STAT_KEYS:
            value = stats.get(key)
            row[key] = int(value) if key in ('rounds', 'iterations') and value is not None else value
        row['params'] = json.dumps(bench.get('params'), sort_keys=True) if bench.get('params') else None
        row['extra_info'] = json.dumps(bench.get('extra_info') or {}, sort_keys=True)
        row['machine_info'] = machine
        row['commit_info'] = commit
        row['datetime'] = report.get('datetime')
        row['version'] = report.get('version')
        rows.append(row)
    return rows
