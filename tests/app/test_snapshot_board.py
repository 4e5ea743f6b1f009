"""The leaderboard on a public snapshot (issue 22): the same runs, rankings, intervals and run pages as
the database it was exported from, even where the benchmark files are absent (the snapshot carries
them); a tampered snapshot is refused on the page, with no Submit or Queue."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from frugalbench import app_data as data
from frugalbench.store.snapshot import export_snapshot

APP = Path(__file__).resolve().parents[2] / 'app' / 'leaderboard.py'
VIEWS = [('params', 0.5, 'open'), ('macs', 0.3, 'open'), ('latency_ms', 0.5, 'open'), ('params', 0.5, 'tiny'),
         ('train_images', 0.8, 'open')]


def board(source: Path, benchmark: str) -> dict[str, pd.DataFrame]:
    """What the leaderboard computes for ``benchmark`` from ``source`` (database or snapshot)."""
    runs = data.runs(source, benchmark)
    setup = data.benchmark_setup(benchmark, data.benchmark_definition(source, benchmark))
    shown = data.latest_per_submission(runs)
    intervals = {**data.stored_intervals(shown), **data.bootstrap_intervals(data.image_areas(source, shown['run_id']))}
    frames = {'runs': runs, 'benchmarks': data.benchmarks(source)}
    for resource, w, track in VIEWS:
        if resource in setup.references and track in setup.tracks:
            frames[f'{resource}-{w}-{track}'] = data.ranking(shown, resource, w, setup.references, track,
                                                             setup.tracks, intervals)
    return frames


def test_a_snapshot_serves_the_same_board_as_its_database(leaderboard_db: Path, isolated: Path) -> None:
    expected = {benchmark: board(leaderboard_db, benchmark) for benchmark in ('street', 'toyshapes')}
    assert len(expected['street']) == 2 + 5 and not expected['street']['params-0.5-open'].empty
    folder = isolated / 'public'
    export_snapshot(leaderboard_db, folder)
    for file in (isolated / 'data' / 'benchmarks').glob('*.yaml'):
        file.unlink()  # served elsewhere: only the snapshot is there
    leaderboard_db.unlink()
    for benchmark, frames in expected.items():
        published = board(folder, benchmark)
        assert published.keys() == frames.keys()
        for name, frame in frames.items():
            pd.testing.assert_frame_equal(published[name], frame, obj=f'{benchmark} {name}')
    detail = data.run_detail(folder, 'b2cgnet000')
    assert detail is not None and detail.document['manifest']['name'] == 'CGNet <i>street</i> **v2**'
    assert len(detail.class_scores) == 3 and not detail.measurements.empty
    areas = data.image_areas(folder, ['a1fastscnn'])['a1fastscnn']
    assert areas[0].shape == (6, 3) and np.all(areas[0] <= areas[1])
    assert data.store_status(folder).ready


def test_a_tampered_snapshot_is_refused_on_the_page(leaderboard_db: Path, isolated: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = isolated / 'public'
    export_snapshot(leaderboard_db, folder)
    measurements = folder / 'measurements.parquet'
    original = measurements.read_bytes()
    assert b'perf_counter' in original  # a measurement's method, stored uncompressed
    measurements.write_bytes(original.replace(b'perf_counter', b'perf_c0unter'))
    assert data.store_status(folder).state == 'invalid'
    monkeypatch.setattr(sys, 'argv', ['leaderboard.py', '--snapshot', str(folder)])
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    message = ' '.join(w.value for w in at.warning).replace('\\', '').replace('\u2060', '')  # as Markdown shows it
    assert 'measurements.parquet does not match its manifest' in message and 'tampered' in message
    assert not at.tabs and not at.dataframe  # nothing shown, and no Submit or Queue on a snapshot


def test_every_page_of_the_app_reads_a_snapshot(leaderboard_db: Path, isolated: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder = isolated / 'public'
    export_snapshot(leaderboard_db, folder)
    leaderboard_db.unlink()
    monkeypatch.setattr(sys, 'argv', ['leaderboard.py', '--snapshot', str(folder)])
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert 'Fast-SCNN street' in at.tabs[0].dataframe[0].value['submission'].tolist()
    assert any('Read-only public snapshot' in c.value.replace('\\', '') for c in at.caption)
    names = [tab.label for tab in at.tabs]
    for name in ('Submit', 'Queue'):
        assert any('read-only public snapshot' in i.value for i in at.tabs[names.index(name)].info)
    assert not at.get('file_uploader')
