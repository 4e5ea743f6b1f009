"""Reading nested JSON documents (evaluation and training records) by dotted path."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def get_path(document: Mapping[str, Any], dotted: str) -> Any:
    """``document['a']['b']`` for ``'a.b'``; None where any step is missing or not a mapping."""
    value: Any = document
    for part in dotted.split('.'):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
