"""Submitting: validate, copy into the store (keyed by content), write the queue entry.

Used by ``frugalbench submit`` and by ``frugalbench serve`` for archives uploaded through the
leaderboard (``$FRUGALBENCH_DATA/platform/uploads/``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugalbench.errors import SubmissionError
from frugalbench.platform import queue, store
from frugalbench.platform.archives import DEFAULT_LIMITS, ArchiveLimits


@dataclass(frozen=True)
class Submitted:
    entry: dict[str, Any]
    content_hash: str
    folder: Path
    new_entry: bool


def validate(folder: Path, benchmark: str | None) -> tuple[str, str]:
    """(name, benchmark) of a valid submission, or SubmissionError/BenchmarkError naming the problem."""
    from frugalbench.benchmarks import load_benchmark
    from frugalbench.evaluation import (
        check_classes,  # imports torch: only when submitting
    )
    from frugalbench.submission import load_submission
    submission = load_submission(folder)
    name = benchmark or submission.manifest.benchmark
    check_classes(submission, load_benchmark(name))
    return submission.manifest.name, name


def submit(source: Path, db_path: Path, benchmark: str | None = None,
           limits: ArchiveLimits = DEFAULT_LIMITS) -> Submitted:
    """Validate ``source`` (a folder or an archive), store it and queue it. Raises ArchiveRefused
    (exit 2) or SubmissionError/BenchmarkError (exit 1) before anything is stored or queued."""
    with store.materialise(source, limits) as folder:
        store.list_files(folder, limits)       # links, special files, caps: before reading anything
        name, benchmark_name = validate(folder, benchmark)
        digest, stored, _ = store.put(folder, limits)
    try:
        validate(stored, benchmark_name)        # the stored copy is the one evaluated
    except SubmissionError as exc:
        raise SubmissionError(f'the stored copy is invalid: {exc}') from None
    entry, new = queue.enqueue(db_path, digest, name, benchmark_name)
    return Submitted(entry=entry, content_hash=digest, folder=stored, new_entry=new)
