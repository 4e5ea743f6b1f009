"""The public API of frugalbench.scores, and its independence from the store, app and CLI."""
from __future__ import annotations

import subprocess
import sys

import frugalbench.scores as scores


def test_all_names_exist() -> None:
    assert all(hasattr(scores, name) for name in scores.__all__)
    assert len(set(scores.__all__)) == len(scores.__all__)


def test_importing_scores_pulls_no_database_app_or_cli() -> None:
    code = ('import sys, frugalbench.scores; '
            'print(sorted(m for m in sys.modules if m.split(".")[0] in {"duckdb", "streamlit", "torch"}'
            ' or m.startswith("frugalbench.cli")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]'
