"""Importing the model code a submission ships (its config's ``custom_imports``), in a child."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any


def import_custom_modules(config: dict[str, Any], code_dir: str | None, failure: type[Exception]) -> None:
    """Import the config's ``custom_imports`` from ``code_dir``; raise ``failure`` naming a module that fails."""
    custom = config.get('custom_imports') or {}
    if not custom.get('imports'):
        return
    if code_dir:
        sys.path.insert(0, str(Path(code_dir).resolve()))
    for module in custom['imports']:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - foreign code
            raise failure(f'custom import {module!r} failed: {type(exc).__name__}: {exc}') from None
