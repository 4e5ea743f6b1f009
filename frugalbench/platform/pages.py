"""The leaderboard's **Submit** page and **Queue** view (issue 17), drawn by ``app/leaderboard.py``.

Submit: an uploaded archive is checked here at once (unpacked safely into a temporary folder, the
manifest validated, its classes compared with the benchmark's; no model code runs) and, when it
passes, written to the uploads spool (``frugalbench.platform.uploads``) that ``frugalbench serve``
submits; the page then shows what became of it. Queue: the entries, their state, position and
reason, read with one short read-only connection. Text from submissions is shown as text (data
frames, ``st.text``, ``markdown_literal``).
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from frugalbench.errors import FrugalbenchError
from frugalbench.platform import queue, store, uploads
from frugalbench.platform.archives import (
    ARCHIVE_SUFFIXES,
    DEFAULT_LIMITS,
    ArchiveLimits,
    ArchiveRefused,
)
from frugalbench.text import markdown_literal, visible

MAX_UPLOAD_BYTES = 512 << 20
QUEUE_COLUMNS = ('position', 'name', 'benchmark', 'state', 'attempts', 'reason', 'submitted_at', 'started_at',
                 'finished_at', 'run_id', 'id')


def check_archive(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> tuple[str, str]:
    """(name, benchmark) of a valid archived submission, or raise ArchiveRefused / FrugalbenchError."""
    from frugalbench.benchmarks import load_benchmark
    from frugalbench.errors import SubmissionError
    from frugalbench.submission import load_submission
    with store.materialise(path, limits) as folder:
        store.list_files(folder, limits)
        submission = load_submission(folder)
        benchmark = load_benchmark(submission.manifest.benchmark)
        if list(submission.manifest.classes) != list(benchmark.classes):
            raise SubmissionError(f"field 'classes' does not match benchmark {benchmark.name!r}: use the "
                                  f"benchmark's class names in its order: {', '.join(benchmark.classes)}")
        return submission.manifest.name, benchmark.name


def _suffix(name: str) -> str | None:
    lowered = name.lower()
    return next((s for s in ARCHIVE_SUFFIXES if lowered.endswith(s)), None)


def _receive(upload: Any) -> dict[str, Any]:
    """Check an uploaded file and, when valid, put it in the uploads spool; the outcome to show."""
    suffix = _suffix(upload.name)
    if suffix is None:
        return {'state': 'refused', 'message': f'{upload.name} is not a .zip or .tar.gz archive: upload an archive '
                                               'of the submission folder'}
    if upload.size > MAX_UPLOAD_BYTES:
        return {'state': 'refused', 'message': f'{upload.name} is larger than {MAX_UPLOAD_BYTES:,} bytes'}
    token = uuid.uuid4().hex
    store.temp_dir().mkdir(parents=True, exist_ok=True)
    staged = store.temp_dir() / f'upload-{token}{suffix}'
    try:
        staged.write_bytes(upload.getvalue())
        try:
            name, benchmark = check_archive(staged)
        except ArchiveRefused as exc:   # named as the user named it, not as staged here
            return {'state': 'refused', 'message': str(exc).replace(staged.name, upload.name)}
        except FrugalbenchError as exc:
            return {'state': 'invalid', 'message': str(exc).replace(str(staged), upload.name)}
        uploads.uploads_dir().mkdir(parents=True, exist_ok=True)
        part = uploads.uploads_dir() / f'{token}.part'
        staged.rename(part)
        part.rename(uploads.uploads_dir() / f'{token}{suffix}')
        return {'state': 'valid', 'token': token, 'name': name, 'benchmark': benchmark,
                'message': f'valid: {name} on {benchmark}; it is queued when the server (frugalbench serve) '
                           'takes the upload'}
    finally:
        staged.unlink(missing_ok=True)


def submit_page(db: Path) -> None:
    st.subheader('Submit')
    st.caption('Upload an archive (.zip or .tar.gz) of a submission folder: submission.yaml, the MMSeg config '
               'and the checkpoint. It is checked here (nothing of it runs), then queued by the server.')
    upload = st.file_uploader('Submission archive', type=['zip', 'gz', 'tgz'], key='platform-upload')
    outcomes: dict[str, dict[str, Any]] = st.session_state.setdefault('platform-uploads', {})
    if upload is not None and upload.file_id not in outcomes:
        outcomes[upload.file_id] = {**_receive(upload), 'file': upload.name}
    if not outcomes:
        return
    rows = []
    for outcome in outcomes.values():
        state, message = outcome['state'], outcome['message']
        if state == 'valid':
            result = uploads.upload_result(outcome['token'])
            if result is not None:
                state, message = result['state'], result['message']
            else:
                state = 'waiting for the server'
        rows.append({'file': visible(outcome['file']), 'result': state, 'message': visible(message)})
    latest = rows[-1]
    kind = {'refused': st.error, 'invalid': st.error}.get(latest['result'], st.success)
    kind(markdown_literal(f'{latest["file"]}: {latest["result"]}: {latest["message"]}'))
    st.dataframe(pd.DataFrame(rows), hide_index=True, key='platform-upload-results')
    st.button('Refresh', key='platform-upload-refresh')


def queue_view(db: Path) -> None:
    st.subheader('Queue')
    try:
        entries = queue.list_entries(db)
    except FrugalbenchError as exc:
        st.warning(markdown_literal(f'The queue cannot be read now: {exc}'))
        return
    if not entries:
        st.info('No submissions in the queue yet: use the Submit page or `frugalbench submit`.')
        st.button('Refresh', key='platform-queue-refresh')
        return
    counts = pd.Series([e['state'] for e in entries]).value_counts()
    st.caption(', '.join(f'{count} {state}' for state, count in counts.items()))
    frame = pd.DataFrame([{k: (visible(e[k]) if isinstance(e[k], str) else e[k]) for k in QUEUE_COLUMNS}
                          for e in entries])
    st.dataframe(frame, hide_index=True, key='platform-queue-table',
                 column_config={'position': st.column_config.NumberColumn('position', format='%d'),
                                'reason': st.column_config.TextColumn('reason', width='large')})
    st.button('Refresh', key='platform-queue-refresh')


def platform_tabs(db: Path) -> None:
    """Submit and Queue, for when the leaderboard itself has nothing to show yet."""
    submit, queued = st.tabs(['Submit', 'Queue'])
    with submit:
        submit_page(db)
    with queued:
        queue_view(db)
