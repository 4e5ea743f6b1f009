"""Where frugalbench finds its data and database (environment variables and defaults)."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATA_ENV = 'FRUGALBENCH_DATA'
DB_ENV = 'FRUGALBENCH_DB'
WORK_ENV = 'FRUGALBENCH_WORK'


def data_dir() -> Path:
    """Folder for generated/prepared datasets and outputs (``FRUGALBENCH_DATA``, default ``data/``)."""
    return Path(os.environ.get(DATA_ENV) or PROJECT_ROOT / 'data')


def default_db_path() -> Path:
    """The results database (``FRUGALBENCH_DB``, default ``data/frugalbench.duckdb``)."""
    env = os.environ.get(DB_ENV)
    return Path(env) if env else data_dir() / 'frugalbench.duckdb'


def work_dir() -> Path:
    """Scratch folder for training runs and logs, outside any submission."""
    env = os.environ.get(WORK_ENV)
    return Path(env) if env else Path.home() / '.cache' / 'frugalbench' / 'work'
