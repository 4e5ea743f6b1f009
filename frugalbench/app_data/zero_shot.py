"""The leaderboard's Zero-shot tab (issue 20): per zero-shot split of the benchmark, the runs of its
``zero-shot:NAME`` track with seen mIoU, unseen mIoU and hIoU (ranked by hIoU), then every other run's
scores on the same split, with why it is not in the track. ``split_frames`` builds the frames from
the stored documents (``accuracy.zero_shot``); ``zero_shot_tab`` lays them out."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from frugalbench.app_data.queries import read
from frugalbench.documents import get_path
from frugalbench.ranking import latest_documents, record_from_document
from frugalbench.scores.tracks import ZERO_SHOT_PREFIX, qualifies, zero_shot_tracks
from frugalbench.store.runs import list_run_documents

COLUMNS = ['submission', 'name', 'hiou', 'seen_miou', 'unseen_miou', 'miou', 'budget', 'trained_under', 'why_not']


def documents(db_path: Path, benchmark: str) -> list[dict[str, Any]]:
    """The newest successful test run per idempotency key of ``benchmark`` (read-only)."""
    stored = read(db_path, lambda connection: list_run_documents(connection, benchmark))
    return [d for d in latest_documents(stored) if d.get('status') == 'ok']


def split_names(runs: list[dict[str, Any]]) -> list[str]:
    """The zero-shot splits the runs were scored on, in first-seen order."""
    names: list[str] = []
    for document in runs:
        for name in get_path(document, 'accuracy.zero_shot') or {}:
            if name not in names:
                names.append(name)
    return names


def split_frames(runs: list[dict[str, Any]], split: str) -> dict[str, pd.DataFrame]:
    """``track`` (runs in ``zero-shot:split``, best hIoU first) and ``others`` (the rest, with why)."""
    track = zero_shot_tracks({split: None})[f'{ZERO_SHOT_PREFIX}{split}']
    rows_in, rows_out = [], []
    for document in runs:
        scores = get_path(document, f'accuracy.zero_shot.{split}')
        if not isinstance(scores, dict):
            continue
        record = record_from_document(document)
        row = {'submission': document['submission'], 'name': str(get_path(document, 'manifest.name') or ''),
               'hiou': scores.get('hiou'), 'seen_miou': scores.get('seen_miou'),
               'unseen_miou': scores.get('unseen_miou'), 'miou': record.miou, 'budget': record.budget_state,
               'trained_under': record.zero_shot_split or ('training-free (declared)' if record.training_free else '-'),
               'why_not': ''}
        if qualifies(record, track):
            rows_in.append(row)
        else:
            row['why_not'] = _why_not(record, split)
            rows_out.append(row)
    frame = lambda rows: pd.DataFrame(rows, columns=COLUMNS).sort_values(
        'hiou', ascending=False, na_position='last').reset_index(drop=True)
    return {'track': frame(rows_in).drop(columns=['why_not']), 'others': frame(rows_out)}


def _why_not(record: Any, split: str) -> str:
    if record.budget_state == 'verified':
        trained = record.zero_shot_split
        return (f'trained by frugalbench under split {trained}' if trained else
                'trained by frugalbench with every class labelled')
    if record.budget_state == 'recorded':
        return 'training record shipped, not re-verified here: the track admits verified trainings only'
    return 'declared budget with training images: the track admits verified trainings or training-free runs'


def zero_shot_tab(db_path: Path, benchmark: str) -> None:
    """The tab: one table per split, and the runs outside each track."""
    import streamlit as st

    from frugalbench.app_data.views import plain_text
    from frugalbench.text import markdown_literal
    runs = documents(db_path, benchmark)
    names = split_names(runs)
    if not names:
        st.info('No run of this benchmark has zero-shot scores: declare splits in its benchmark file '
                '(`zero_shot: {NAME: {unseen: [...]}}`) and evaluate; see docs/zero-shot.md.')
        return
    st.caption('Seen mIoU, unseen mIoU and hIoU = 2 s u / (s + u), from dataset-level areas of the test split. '
               'A track admits runs trained by `frugalbench train --zero-shot NAME` (verified) and runs declared '
               'training-free (0 images, annotation none).')
    config = {k: st.column_config.NumberColumn(k, format='%.4f') for k in ('hiou', 'seen_miou', 'unseen_miou', 'miou')}
    for name in names:
        frames = {k: plain_text(v) for k, v in split_frames(runs, name).items()}
        unseen = next((get_path(d, f'accuracy.zero_shot.{name}.unseen_classes') for d in runs
                       if get_path(d, f'accuracy.zero_shot.{name}')), []) or []
        st.subheader(markdown_literal(f'{ZERO_SHOT_PREFIX}{name} (unseen: {", ".join(map(str, unseen))})'))
        if frames['track'].empty:
            st.info('No run qualifies for this track yet.')
        else:
            st.dataframe(frames['track'], hide_index=True, width='stretch', column_config=config,
                         key=f'zero-shot-{name}')
        if not frames['others'].empty:
            st.caption('Other runs on the same split (not in the track):')
            st.dataframe(frames['others'], hide_index=True, width='stretch', column_config=config,
                         key=f'zero-shot-{name}-others')
