"""Archives uploaded through the leaderboard's Submit page wait in ``$FRUGALBENCH_DATA/platform/uploads/``
(written as ``<token>.part``, renamed to ``<token>.zip`` / ``<token>.tar.gz`` when complete);
``frugalbench serve`` submits each one and writes ``results/<token>.json`` (``state``: ``queued``,
``refused`` or ``invalid``, ``entry_id``, ``message``), which the page shows. The archive is then removed.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from frugalbench.errors import FrugalbenchError, StoreError
from frugalbench.platform.archives import ARCHIVE_SUFFIXES, ArchiveRefused
from frugalbench.platform.store import platform_dir

TOKEN = re.compile(r'^[0-9a-f]{32}$')


def uploads_dir() -> Path:
    return platform_dir() / 'uploads'


def results_dir() -> Path:
    return uploads_dir() / 'results'


def token_of(path: Path) -> str | None:
    name = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix) and TOKEN.match(name[:-len(suffix)]):
            return name[:-len(suffix)]
    return None


def upload_result(token: str) -> dict[str, Any] | None:
    if not TOKEN.match(token):
        return None
    try:
        return json.loads((results_dir() / f'{token}.json').read_text())
    except (OSError, ValueError):
        return None


def _write_result(token: str, result: dict[str, Any]) -> None:
    results_dir().mkdir(parents=True, exist_ok=True)
    part = results_dir() / f'{token}.json.part'
    part.write_text(json.dumps(result))
    part.rename(results_dir() / f'{token}.json')


def ingest_uploads(db_path: Path) -> list[str]:
    """Submit every complete upload; return one message per upload handled."""
    from frugalbench.platform.submit import submit
    folder = uploads_dir()
    if not folder.is_dir():
        return []
    messages = []
    for path in sorted(folder.iterdir()):
        token = token_of(path)
        if token is None or path.is_symlink() or not path.is_file():
            continue
        try:
            done = submit(path, db_path)
            result = {'state': 'queued', 'entry_id': done.entry['id'], 'new': done.new_entry,
                      'message': f'queued as {done.entry["id"]} ({done.entry["name"]} on {done.entry["benchmark"]})'}
        except ArchiveRefused as exc:
            result = {'state': 'refused', 'entry_id': None, 'message': str(exc)}
        except StoreError:
            continue   # the database is busy: the upload waits for the next pass
        except FrugalbenchError as exc:
            result = {'state': 'invalid', 'entry_id': None, 'message': str(exc)}
        _write_result(token, result)
        path.unlink(missing_ok=True)
        messages.append(f'upload {token}: {result["message"]}')
    return messages
