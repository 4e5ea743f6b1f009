"""The frugalbench leaderboard: ``frugalbench leaderboard [--db PATH]`` (Streamlit).

Reads the results database only through ``frugalbench.app_data``: read-only, one short
connection per query, so evaluations can write between two page loads; new runs appear on the
next refresh. Text that comes from submissions or benchmark files (names, descriptions, failure
reasons, class, track and benchmark names) is shown with ``st.text``, as select options, in data
frames, charts or JSON, never as HTML or Markdown; where an element reads Markdown (captions,
messages, image captions) it goes through ``markdown_literal``, and control and bidi characters
are shown as visible escapes everywhere (``frugalbench.text``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from frugalbench import app_data as data
from frugalbench import labels
from frugalbench.app_data.cascades import cascades_tab
from frugalbench.app_data.zero_shot import zero_shot_tab
from frugalbench.platform.pages import platform_tabs, queue_view, submit_page
from frugalbench.scores import RESOURCES, Interval, crossover_w, get_resource
from frugalbench.settings import default_db_path
from frugalbench.store.snapshot import is_snapshot
from frugalbench.text import code_span, markdown_literal, visible, visible_strings

DEFAULT_RESOURCE = 'params'  # the harness counts parameters for every successful run
DEFAULT_W = 0.5
MAX_INTERVAL_RUNS = 50  # bootstrap intervals (about 40 ms each) are computed for at most this many runs
CURVE_RUNS = 5  # runs drawn by default in the frugality curves
UNTRUSTED_HELP = ('greyed: counted where submission code ran (custom_imports), so shown but never ranked, '
                  'never on a Pareto front or in a budget track; see "not ranked on"')


def db_path_from_argv(argv: list[str]) -> Path:
    """``--db PATH`` after streamlit's ``--``; else $FRUGALBENCH_DB or the default database."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument('--db', type=Path, default=None)
    args, _ = parser.parse_known_args(argv)
    return args.db or default_db_path()


def snapshot_from_argv(argv: list[str]) -> Path | None:
    """``--snapshot DIR`` after streamlit's ``--`` (a public snapshot, served read-only), else None."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument('--snapshot', type=Path, default=None)
    args, _ = parser.parse_known_args(argv)
    return args.snapshot


@st.cache_resource(max_entries=4)
def document_cache(db: str) -> dict[str, tuple[Any, ...]]:
    """Values read from each run's document, by run id, kept for the server's life: stored runs
    are never edited, so a document is parsed once."""
    return {}


@st.cache_data(max_entries=16, show_spinner=False)
def runs_of(db: str, benchmark: str, version: tuple[Any, ...]) -> pd.DataFrame:
    """The runs of a benchmark, read again whenever ``version`` (run count, newest run, file
    modification time) changes."""
    return data.runs(Path(db), benchmark, document_cache(db))


@st.cache_data(max_entries=32, show_spinner='computing mIoU intervals')
def bootstrap_intervals(db: str, run_ids: tuple[str, ...]) -> dict[str, Interval]:
    """Bootstrap intervals of stored runs (immutable once written, so safe to cache)."""
    return data.bootstrap_intervals(data.image_areas(Path(db), run_ids))


def intervals_for(db: Path, runs: pd.DataFrame) -> dict[str, Interval]:
    """Stored intervals, else bootstrap ones for the best ``MAX_INTERVAL_RUNS`` ok runs by mIoU."""
    known = data.stored_intervals(runs)
    todo = runs[(runs['status'] == 'ok') & ~runs['run_id'].isin(list(known))]
    if len(todo) > MAX_INTERVAL_RUNS:
        st.caption(f'mIoU intervals are bootstrapped here for the {MAX_INTERVAL_RUNS} best runs by mIoU '
                   'only; the others show "-" unless their evaluation stored one.')
    todo = todo.sort_values('miou', ascending=False).head(MAX_INTERVAL_RUNS)
    if len(todo):
        known.update(bootstrap_intervals(str(db), tuple(sorted(todo['run_id']))))
    return known


def snapshot_caption(db: Path) -> None:
    """For a public snapshot: where it comes from, and that it was verified (StoreUnavailable if not)."""
    manifest = data.snapshot_info(db)
    if manifest is not None:
        st.caption(markdown_literal(
            f"Read-only public snapshot {db}: exported {manifest.get('created_at')} by frugalbench "
            f"{manifest.get('frugalbench_version')}; every file checked against its manifest (sha256)."))


def read_only_note(db: Path) -> None:
    st.info('This leaderboard serves a read-only public snapshot: submitting and the queue are not part of it.')


def label_downloads(db: Path, run_id: str) -> None:
    """Download buttons for the run's frugality label (SVG, PNG) and README badge (SVG)."""
    try:
        label = labels.label_for_run(db, run_id)
    except labels.LabelError as exc:
        st.caption(markdown_literal(f'No label: {exc}'))
        return
    st.caption(markdown_literal(f'Frugality label of this run (document sha256 {label.short_hash}): the figures '
                                'above with their provenance, for a paper, a model card or a README.'))
    columns = st.columns(3)
    for column, (kind, title, mime) in zip(columns, (('svg', 'Download label (SVG)', 'image/svg+xml'),
                                                      ('png', 'Download label (PNG)', 'image/png'),
                                                      ('badge', 'Download badge (SVG)', 'image/svg+xml'))):
        column.download_button(title, lambda kind=kind: labels.render(label, kind),  # rendered when clicked
                               labels.file_name(label, kind), mime, key=f'label-{kind}-{run_id}')


def show_store_problem(status: data.StoreStatus) -> None:
    st.warning(status.message)  # Markdown built by app_data: its paths and reasons are made literal there
    st.button('Refresh', key='refresh-problem')


def sidebar(db: Path, benchmarks: pd.DataFrame) -> dict[str, Any]:
    """The filters, the weight and the resource; returns the choices and the benchmark's runs."""
    bar = st.sidebar
    bar.header('View')
    counts = dict(zip(benchmarks['benchmark'], benchmarks['ok_runs']))
    benchmark = bar.selectbox('Benchmark', list(counts), key='benchmark',
                              format_func=lambda b: f'{visible(b)} ({counts[b]} ok runs)')
    row = benchmarks.set_index('benchmark').loc[benchmark]
    runs = runs_of(str(db), benchmark, (int(row['runs']), str(row['latest']), db.stat().st_mtime_ns))
    setup = data.benchmark_setup(benchmark, data.benchmark_definition(db, benchmark))
    track = bar.selectbox('Track', list(setup.tracks), key=f'track-{benchmark}', format_func=visible,
                          help='budget tracks declared in the benchmark file')
    names = list(RESOURCES)
    resource = bar.selectbox('Resource', names, index=names.index(setup.default_resource), key='resource',
                             format_func=lambda r: f'{r} ({RESOURCES[r].unit}): {RESOURCES[r].description}')
    w = bar.slider('Weight w of the resource', 0.0, 1.0, setup.default_w, 0.05, key='w',
                   help='score = mIoU - w / (1 + 1/R), R = resource / reference (docs/metrics.md)')
    unit = RESOURCES[resource].unit
    reference = bar.number_input(f'Reference value ({unit})', value=setup.references.get(resource),
                                 min_value=0.0, format='%g', key=f'reference-{benchmark}-{resource}',
                                 help='R = resource / reference; the default comes from the benchmark file')
    hardware = bar.multiselect('Hardware', sorted(runs['hardware'].dropna().unique()), format_func=visible,
                               key=f'hardware-{benchmark}', help='no choice: every machine')
    techniques = bar.multiselect('Technique', sorted(runs['technique'].dropna().unique()), format_func=visible,
                                 key=f'technique-{benchmark}', help='no choice: every technique')
    latest = bar.checkbox('Latest run per submission and hardware', value=True, key='latest')
    bar.button('Refresh', key='refresh', help='read the database again (new runs appear)')
    if setup.note:
        bar.caption(markdown_literal(setup.note))
    return dict(benchmark=benchmark, runs=runs, setup=setup, track=track, resource=resource, w=w,
                reference=reference or None, hardware=hardware, techniques=techniques, latest=latest)


def column_config(w: float, resource: str) -> dict[str, Any]:
    """How the table shows each numeric column (units in the headers)."""
    number = st.column_config.NumberColumn
    unit = RESOURCES[resource].unit
    return {
        'mIoU': number(format='%.4f'),
        'score': number(f'score (w={w:g})', format='%.4f', help='mIoU - w / (1 + 1/R)'),
        'resource value': number(f'{resource} ({unit})', format='%.4g'),
        'R': number('R', format='%.3g', help='resource / reference value'),
        'Pareto': st.column_config.CheckboxColumn('Pareto', help='on the (mIoU, resource) front'),
        'params': number(format='compact', help=UNTRUSTED_HELP),
        'MACs': number(format='compact', help=UNTRUSTED_HELP),
        'not ranked on': st.column_config.TextColumn(
            help='resources this run is never ranked on, and why (its compute counts are untrusted)'),
        'measurement protocol': st.column_config.TextColumn(
            help='the measurement protocol version of its latency, memory and energy; versions are '
                 'never ranked together'),
        'latency (ms)': number(format='%.3g', help='median latency at batch 1'),
        'peak memory (MB)': number(format='%.4g'),
        'energy (J/image)': number(format='%.3g', help='see "energy kind": measured or estimated'),
        'training images': number(format='%d', help='see "budget": declared, recorded or verified'),
        'annotator-hours': number(format='%.3g', help='see "budget": declared, recorded or verified'),
    }


def table(frame: pd.DataFrame, w: float, resource: str, key: str) -> None:
    st.dataframe(data.styled_table(frame), hide_index=True, width='stretch', key=key,
                 placeholder=data.NOT_MEASURED, column_config=column_config(w, resource))


def ranking_tab(view: dict[str, Any], ranked: pd.DataFrame | None, shown: pd.DataFrame) -> None:
    resource = get_resource(view['resource'])
    if ranked is None:
        st.info(f'No reference value for {resource.name} in this benchmark file: enter one in the '
                'sidebar (or add it under references: in the benchmark file) to compute frugality '
                'scores. Stored runs, by mIoU:')
        trust_captions(shown, resource.name)
        table(shown.sort_values('miou', ascending=False), view['w'], resource.name, 'runs-table')
        return
    st.caption(f"{len(ranked)} runs ranked on {resource.name} ({resource.unit}) at w = {view['w']:g} "
               f"in track {code_span(view['track'])}; rank 1 is the best score. Click a column "
               'header to sort.')
    trust_captions(shown, resource.name)
    table(ranked, view['w'], resource.name, 'ranking-table')
    export = data.export_frame(ranked)
    left, right = st.columns(2)
    stem = _file_name(f"frugalbench-{view['benchmark']}-{view['track']}-{resource.name}-w{view['w']:g}")
    left.download_button('Download CSV', data.to_csv_bytes(export), f'{stem}.csv', 'text/csv',
                         key='export-csv')
    right.download_button('Download Parquet', data.to_parquet_bytes(export), f'{stem}.parquet',
                          'application/vnd.apache.parquet', key='export-parquet')
    left_out = data.unranked(shown, resource.name, view['setup'].tracks[view['track']])
    if len(left_out):
        with st.expander(f'{len(left_out)} runs not ranked here, and why'):
            st.dataframe(data.plain_text(left_out), hide_index=True, width='stretch')


def trust_captions(shown: pd.DataFrame, resource: str) -> None:
    """Which runs are never ranked on their compute counts and why; how protocol versions are kept apart."""
    for note in data.trust_notes(shown, resource):
        st.caption(markdown_literal(note))


def _file_name(stem: str) -> str:
    """A download file name from names in benchmark files: letters, digits, '.', '_', '-' only."""
    return ''.join(c if c.isascii() and (c.isalnum() or c in '._-') else '_' for c in stem)


def _x(field: str, title: str, values: pd.Series) -> alt.X:
    return alt.X(f'{field}:Q', title=title, scale=alt.Scale(type=data.axis_scale(values), zero=False))


def pareto_tab(view: dict[str, Any], ranked: pd.DataFrame | None) -> None:
    if ranked is None or ranked.empty:
        st.info('Nothing to plot: no run is ranked on this resource in this view.')
        return
    resource = get_resource(view['resource'])
    points = data.plain_text(data.with_labels(ranked))
    x = _x('resource_value', f'{resource.name} ({resource.unit})', points['resource_value'])
    y = alt.Y('miou:Q', title='mIoU', scale=alt.Scale(zero=False))
    tooltip = [alt.Tooltip('label:N', title='run'), 'technique:N', alt.Tooltip('miou:Q', format='.4f'),
               alt.Tooltip('resource_value:Q', title=resource.name, format='.4g'),
               alt.Tooltip('score:Q', format='.4f'), 'pareto:N', 'hardware:N', 'run_id:N']
    dots = alt.Chart(points).mark_circle(size=90, opacity=0.85).encode(
        x=x, y=y, color=alt.Color('technique:N', title='technique'), tooltip=tooltip)
    front = alt.Chart(data.plain_text(data.pareto_front(ranked))).mark_line(
        color='black', strokeDash=[5, 3], interpolate='step-after').encode(x=x, y=y, detail='group:N')
    trajectories = alt.Chart(data.lineage_segments(ranked)).mark_line(color='gray', opacity=0.6).encode(
        x=x, y=y, detail='segment:N')
    st.altair_chart(trajectories + front + dots, width='stretch')
    st.caption('Dashed line: the Pareto front (no other run has a higher mIoU with less of the resource). '
               'Grey lines: from a parent submission to the variants derived from it (compression). '
               f'Axis: {data.axis_scale(points["resource_value"])} scale.')


def curves_tab(view: dict[str, Any], ranked: pd.DataFrame | None) -> None:
    if ranked is None or ranked.empty:
        st.info('No frugality curves: no run is ranked on this resource in this view.')
        return
    labelled = data.with_labels(ranked)
    labels = dict(zip(labelled['label'], labelled['run_id']))
    chosen = st.multiselect('Runs', list(labels), default=list(labels)[:CURVE_RUNS])
    curves = data.frugality_curves(ranked, [labels[label] for label in chosen])
    if curves.empty:
        st.info('Choose runs to draw their curves.')
        return
    lines = alt.Chart(data.plain_text(curves)).mark_line(point=True).encode(
        x=alt.X('w:Q', title='w'), y=alt.Y('score:Q', title='frugality score'),
        color=alt.Color('label:N', title='run'),
        tooltip=['label:N', alt.Tooltip('w:Q', format='.2f'), alt.Tooltip('score:Q', format='.4f')])
    rule = alt.Chart(pd.DataFrame({'w': [view['w']]})).mark_rule(strokeDash=[2, 2]).encode(x='w:Q')
    st.altair_chart(lines + rule, width='stretch')
    rows = labelled.set_index('label')
    swaps = []
    for i, a in enumerate(chosen):
        for b in chosen[i + 1:]:
            w = crossover_w(rows.at[a, 'miou'], rows.at[a, 'normalized_resource'],
                            rows.at[b, 'miou'], rows.at[b, 'normalized_resource'])
            if w is not None:
                swaps.append({'run A': a, 'run B': b, 'they swap rank at w': w})
    if swaps:
        st.dataframe(data.plain_text(pd.DataFrame(swaps)), hide_index=True, width='stretch')


def budget_tab(shown: pd.DataFrame) -> None:
    points = data.plain_text(data.budget_points(shown))
    if points.empty:
        st.info('No successful runs in this view.')
        return
    tooltip = ['label:N', 'architecture:N', 'train_images:Q', 'annotation_type:N', 'budget:N',
               alt.Tooltip('annotator_hours:Q', format='.3g'), alt.Tooltip('miou:Q', format='.4f')]
    for field, title in (('train_images', 'training images'), ('annotator_hours', 'annotator-hours')):
        usable = points.dropna(subset=[field])
        st.subheader(f'mIoU against {title}')
        if usable.empty:
            st.info(f'No run in this view has its {title} stored.')
            continue
        chart = alt.Chart(usable.sort_values(field)).mark_line(point=True).encode(
            x=_x(field, title, usable[field]), y=alt.Y('miou:Q', title='mIoU', scale=alt.Scale(zero=False)),
            color=alt.Color('architecture:N'), shape=alt.Shape('budget:N', title='budget'),
            tooltip=tooltip)
        st.altair_chart(chart, width='stretch')
    st.caption('One line per architecture. "declared" budgets come from the submitter\'s manifest; '
               '"recorded" ones from a training record of `frugalbench train` shipped with the submission '
               '(checkpoint hash matching, not re-verified here); "verified" ones were observed by this '
               'harness when it trained the model.')


def submission_tab(db: Path, benchmark: str, shown: pd.DataFrame) -> None:
    if shown.empty:
        st.info('No runs in this view.')
        return
    labelled = data.with_labels(shown.sort_values('miou', ascending=False, na_position='last'))
    labels = dict(zip(labelled['label'], labelled['run_id']))
    label = st.selectbox('Run', list(labels), key=f'run-{benchmark}',
                         help='runs in this view, best mIoU first')
    detail = data.run_detail(db, labels[label])
    if detail is None:
        st.warning('This run is no longer in the database: refresh the page.')
        return
    document = detail.document
    manifest = document.get('manifest') or {}
    st.text(visible(f"Name: {manifest.get('name', document.get('submission'))}"))
    st.text(visible(f"Submission folder: {document.get('submission')}    Run: {document.get('run_id')}    "
                    f"Created: {document.get('created_at')}    Status: {document.get('status')}"))
    budget = (document.get('training') or {})
    st.text(visible(f"Training budget: {budget.get('state') or ('verified' if budget.get('verified') else 'declared')}"
                    + (f"  ({budget['note']})" if budget.get('note') else '')))
    if document.get('status') == 'ok':
        trusted, reason = detail.compute_trust
        st.text(f'Measurement protocol: v{detail.measurement_protocol_version}')
        st.text(visible('Compute counts (params, MACs, FLOPs): trusted' if trusted else
                        f'Compute counts (params, MACs, FLOPs): untrusted, shown but never ranked: {reason}'))
        label_downloads(db, str(document.get('run_id')))
    if document.get('status') != 'ok':
        st.error('This run failed. Reason:')
        st.text(visible(str(document.get('failure_reason')), keep_newlines=True))
    if manifest.get('description'):
        st.text(visible(str(manifest['description']), keep_newlines=True))
    with st.expander('Manifest (submission.yaml as stored)', expanded=False):
        st.json(visible_strings(manifest))
    _class_bars(detail, document)
    st.subheader('Measurements')
    if detail.measurements.empty:
        st.info('No measurements stored for this run beyond accuracy and parameter count.')
    else:
        st.dataframe(data.plain_text(detail.measurements), hide_index=True, width='stretch')
    with st.expander('Provenance (hardware, software, hashes, limits, timings)'):
        st.json(visible_strings({key: document.get(key) for key in (
            'hardware', 'versions', 'hashes', 'protocol_version', 'device', 'split', 'custom_code', 'training',
            'limits', 'model_process', 'timings', 'run_key')}))
    _lineage(db, document, manifest)
    if is_snapshot(db):
        st.caption('Test-image overlays are not part of a public snapshot.')
    else:
        _overlays(document)


def _class_bars(detail: data.RunDetail, document: dict[str, Any]) -> None:
    st.subheader('Per-class IoU')
    classes = detail.class_scores
    if classes.empty:
        per_class = (document.get('accuracy') or {}).get('per_class_iou') or {}
        classes = pd.DataFrame({'class_name': list(per_class), 'iou': list(per_class.values())})
    if classes.empty:
        st.info('No per-class scores stored for this run.')
        return
    classes = data.plain_text(classes)
    order = classes['class_name'].tolist()
    chart = alt.Chart(classes).mark_bar().encode(
        x=alt.X('iou:Q', title='IoU', scale=alt.Scale(domain=[0, 1])),
        y=alt.Y('class_name:N', title=None, sort=order),
        tooltip=['class_name:N', alt.Tooltip('iou:Q', format='.4f')])
    st.altair_chart(chart, width='stretch')


def _lineage(db: Path, document: dict[str, Any], manifest: dict[str, Any]) -> None:
    st.subheader('Lineage')
    parent = manifest.get('parent')
    related = data.lineage(db, str(document.get('submission')), manifest.get('name'), parent)
    if parent:
        st.text(visible(f'Derived from: {parent}'))
    if related.empty:
        st.caption('No parent or derived submission is stored.' if not parent
                   else 'The parent submission has no stored runs.')
    else:
        st.dataframe(data.plain_text(related), hide_index=True, width='stretch')


def _overlays(document: dict[str, Any]) -> None:
    st.subheader('Test images')
    overlays = [o for o in document.get('overlays') or [] if isinstance(o, dict) and o.get('path')
                and Path(str(o['path'])).is_file()]
    if not overlays:
        st.info('No test-image overlays are stored for this run: they are rendered at evaluation '
                'time, and this run has none.')
        return
    for overlay in overlays[:6]:
        st.image(str(overlay['path']), caption=markdown_literal(overlay.get('image', '')))


def main() -> None:
    st.set_page_config(page_title='frugalbench leaderboard', layout='wide')
    st.title('frugalbench leaderboard')
    db = snapshot_from_argv(sys.argv[1:]) or db_path_from_argv(sys.argv[1:])
    try:
        snapshot_caption(db)
        show(db)
    except data.StoreUnavailable as exc:  # missing, empty, locked or unreadable: say what to do
        show_store_problem(exc.status)
        if not is_snapshot(db):  # a snapshot is read-only: no Submit or Queue
            platform_tabs(db)  # submitting and the queue work before any run is stored (issue 17)


def show(db: Path) -> None:
    benchmarks = data.benchmarks(db)
    view = sidebar(db, benchmarks)
    synthetic = bool(benchmarks.set_index('benchmark').at[view['benchmark'], 'synthetic'])
    if synthetic:
        st.warning('SYNTHETIC benchmark: these scenes are generated by frugalbench, not photographs. '
                   'Results on it say nothing about real images.')
    shown = data.filter_runs(view['runs'], view['hardware'], view['techniques'])
    if view['latest']:
        shown = data.latest_per_submission(shown)
    st.caption(f'{len(shown)} runs in this view, from {code_span(db)}')
    intervals = intervals_for(db, shown)
    shown = data.with_intervals(shown, intervals)
    ranked = None
    if view['reference']:
        ranked = data.ranking(shown, view['resource'], view['w'], {view['resource']: view['reference']},
                              view['track'], view['setup'].tracks, intervals)
    tabs = st.tabs(['Ranking', 'Pareto plot', 'Frugality curves', 'Budget curves', 'Submission', 'Submit', 'Queue',
                    'Cascades', 'Zero-shot'])
    with tabs[0]:
        ranking_tab(view, ranked, shown)
    with tabs[1]:
        pareto_tab(view, ranked)
    with tabs[2]:
        curves_tab(view, ranked)
    with tabs[3]:
        budget_tab(shown)
    with tabs[4]:
        submission_tab(db, view['benchmark'], shown)
    with tabs[5]:
        read_only_note(db) if is_snapshot(db) else submit_page(db)
    with tabs[6]:
        read_only_note(db) if is_snapshot(db) else queue_view(db)
    with tabs[7]:
        cascades_tab(db, view['benchmark'], view['runs'])  # issue 19
    with tabs[8]:
        zero_shot_tab(db, view['benchmark'])  # issue 20


main()
