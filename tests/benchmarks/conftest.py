"""Fixtures for the benchmark tests: the built-in synthetic benchmark, generated once per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from frugalbench.benchmarks import Benchmark, ensure_prepared, load_benchmark


@pytest.fixture(scope='session')
def synthetic_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FRUGALBENCH_DATA folder holding the built-in synthetic benchmark (made by ensure_prepared)."""
    data = tmp_path_factory.mktemp('synthetic-data')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('FRUGALBENCH_DATA', str(data))
        ensure_prepared(load_benchmark('synthetic'))
    return data


@pytest.fixture
def synthetic(synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Benchmark:
    """The synthetic benchmark, with FRUGALBENCH_DATA pointing at its generated data."""
    monkeypatch.setenv('FRUGALBENCH_DATA', str(synthetic_data_dir))
    return load_benchmark('synthetic')


@pytest.fixture
def camvid(camvid_root: Path) -> Benchmark:
    """The real CamVid benchmark (skipped when FRUGALBENCH_CAMVID is unset or missing)."""
    return load_benchmark('camvid')
