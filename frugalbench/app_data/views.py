"""What the leaderboard shows, as pandas frames built from stored runs (no database access here).

Rankings, Pareto flags, frugality curves and intervals come from ``frugalbench.scores``; this
module joins them with the runs' other columns, and labels a display copy in which estimated
energy is marked ``estimated`` and a training budget is marked ``verified``, ``recorded`` or ``declared``.
Compute counts (params, MACs) of a run whose compute is not trusted are greyed (``styled_table``),
and its row says why it is never ranked on them (``frugalbench.scores.trust``).
"""
from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from frugalbench.benchmarks import load_benchmark
from frugalbench.errors import BenchmarkError, UsageError
from frugalbench.scores import (
    DEFAULT_WS,
    OPEN_TRACK,
    RESOURCES,
    Interval,
    RunRecord,
    Track,
    bootstrap_miou_ci,
    exclusion_reason,
    frugality_curve,
    get_resource,
    parse_references,
    parse_tracks,
    rank_runs,
)
from frugalbench.scores.frugality import check_weight
from frugalbench.scores.trust import COMPUTE_COUNTS
from frugalbench.text import csv_safe, visible

NOT_MEASURED = 'not measured'
MISSING = '-'
UNTRUSTED_STYLE = 'color: #a0a0a0; background-color: #f2f2f2'  # greyed: shown, never ranked
MAX_STYLED_CELLS = 200_000  # pandas' Styler (and so Streamlit) refuses more than 262,144 cells


DEFAULT_RESOURCE = 'params'  # the harness counts parameters for every successful run
DEFAULT_W = 0.5


@dataclass(frozen=True)
class BenchmarkSetup:
    """A benchmark file's reference values, tracks and default view (the resource and weight the
    leaderboard opens on and labels are scored at), or a note saying why they are unknown."""

    references: dict[str, float] = field(default_factory=dict)
    tracks: dict[str, Track] = field(default_factory=lambda: {OPEN_TRACK.name: OPEN_TRACK})
    note: str | None = None
    default_resource: str = DEFAULT_RESOURCE
    default_w: float = DEFAULT_W


def _defaults(raw: Mapping[str, Any]) -> tuple[str, float]:
    """``default_resource`` and ``default_w`` of a benchmark file, else params and 0.5."""
    try:
        resource = get_resource(str(raw.get('default_resource', DEFAULT_RESOURCE))).name
        return resource, check_weight(raw.get('default_w', DEFAULT_W))
    except UsageError as exc:
        raise BenchmarkError(f'default_resource / default_w: {exc}') from None


def benchmark_setup(name: str, definition: Mapping[str, Any] | None = None) -> BenchmarkSetup:
    """References, tracks and default view from ``definition`` (a benchmark file's mapping, e.g.
    the one a snapshot carries), else from the benchmark file ``name``; only the open track, and a
    note, when neither can be read."""
    try:
        if definition is not None:
            references, tracks, extra = definition.get('references'), definition.get('tracks'), definition
        else:
            benchmark = load_benchmark(name)
            references, tracks, extra = benchmark.references, benchmark.tracks, benchmark.model_extra or {}
        resource, w = _defaults(extra)
        return BenchmarkSetup(parse_references(references), parse_tracks(tracks), None, resource, w)
    except BenchmarkError as exc:
        return BenchmarkSetup(note=f'benchmark file not readable here ({exc}): only the open '
                                   'track is shown, and reference values must be entered')


def latest_per_submission(runs: pd.DataFrame) -> pd.DataFrame:
    """The newest run of each submission per hardware, protocol version and status-ok-ness."""
    if runs.empty:
        return runs
    ordered = runs.sort_values(['created_at', 'run_id'])
    keys = ['submission', 'hardware_fingerprint', 'protocol_version', 'status']
    return ordered.drop_duplicates(keys, keep='last').reset_index(drop=True)


def filter_runs(runs: pd.DataFrame, hardware: Sequence[str] | None = None,
                techniques: Sequence[str] | None = None) -> pd.DataFrame:
    """Runs on the given hardware labels and techniques (None or empty: no filter)."""
    keep = pd.Series(True, index=runs.index)
    if hardware:
        keep &= runs['hardware'].isin(list(hardware))
    if techniques:
        keep &= runs['technique'].isin(list(techniques))
    return runs[keep].reset_index(drop=True)


def stored_intervals(runs: pd.DataFrame) -> dict[str, Interval]:
    """mIoU intervals already stored in the runs' documents (``accuracy.miou_ci``)."""
    known = runs.dropna(subset=['miou_ci_low', 'miou_ci_high'])
    return {str(r.run_id): Interval(float(r.miou_ci_low), float(r.miou_ci_high))
            for r in known.itertuples(index=False)}


def with_intervals(runs: pd.DataFrame, intervals: Mapping[str, Interval]) -> pd.DataFrame:
    """The runs with ``miou_ci_low``/``miou_ci_high`` filled from ``intervals`` where missing."""
    low = runs['run_id'].map(lambda i: intervals[i][0] if i in intervals else np.nan)
    high = runs['run_id'].map(lambda i: intervals[i][1] if i in intervals else np.nan)
    return runs.assign(miou_ci_low=runs['miou_ci_low'].fillna(low).astype('float64'),
                       miou_ci_high=runs['miou_ci_high'].fillna(high).astype('float64'))


def bootstrap_intervals(areas: Mapping[str, tuple[np.ndarray, np.ndarray]], n_boot: int = 1000,
                        seed: int = 0) -> dict[str, Interval]:
    """95 % bootstrap interval of each run's dataset-level mIoU from its per-image areas."""
    return {run_id: bootstrap_miou_ci(intersect, union, n_boot=n_boot, seed=seed)
            for run_id, (intersect, union) in areas.items() if len(intersect)}


def _value(value: Any) -> float | None:
    """A number, or None for a missing one (None, NaN, pandas' NA)."""
    return None if value is None or pd.isna(value) else float(value)


def _str(value: Any) -> str:
    """A string, or '' for a missing one."""
    return '' if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def run_records(runs: pd.DataFrame, intervals: Mapping[str, Interval] | None = None) -> list[RunRecord]:
    """The runs as ``RunRecord``s for ``frugalbench.scores`` (intervals by run id, where known).
    A frame without the trust columns (built by hand) is read as trusted, measurement protocol v1."""
    intervals = intervals or {}
    records = []
    for row in runs.to_dict('records'):
        version = _value(row.get('measurement_protocol_version', 1))
        run_id = str(row['run_id'])
        protocol = _value(row['protocol_version'])
        records.append(RunRecord(
            run_id=run_id, submission=str(row['submission']), benchmark=str(row['benchmark']),
            protocol_version=int(protocol) if protocol is not None else 0,  # failed runs have none
            hardware_fingerprint=_str(row['hardware_fingerprint']),
            miou=_value(row['miou']), miou_ci=intervals.get(run_id),
            resources={name: _value(row[resource.key]) for name, resource in RESOURCES.items()},
            technique=_str(row['technique']), energy_measured=bool(row['energy_measured']),
            annotation_type=row['annotation_type'] if isinstance(row['annotation_type'], str) else None,
            budget_verified=bool(row['budget_verified']), status=str(row['status']),
            budget_state=_str(row.get('budget_state')) or ('verified' if row['budget_verified'] else 'declared'),
            compute_trusted=_trusted(row),
            untrusted_reason=_str(row.get('untrusted_reason')) or None,
            measurement_protocol_version=int(version) if version is not None else None))
    return records


RUN_COLUMNS_IN_RANKING = (
    'submission_name', 'created_at', 'params', 'macs', 'latency_ms', 'peak_rss_mb',
    'energy_joules_per_image', 'energy_method', 'train_images', 'annotation_type',
    'annotation_seconds', 'hardware', 'architecture', 'parent', 'compute_trusted', 'untrusted_reason',
)

RANKING_COLUMNS = (
    'rank', 'submission_name', 'technique', 'miou', 'miou_ci_low', 'miou_ci_high', 'score',
    'score_ci_low', 'score_ci_high', 'pareto', 'resource', 'unit', 'resource_value', 'reference',
    'normalized_resource', 'w', 'tracks', 'tied_with', 'group', 'measurement_protocol_version',
    *RUN_COLUMNS_IN_RANKING[2:],
    'energy_measured', 'budget_verified', 'budget_state', 'run_id', 'submission', 'created_at',
)


def ranking(runs: pd.DataFrame, resource: str, w: float, references: Mapping[str, float],
            track: str = OPEN_TRACK.name, tracks: Mapping[str, Track] | None = None,
            intervals: Mapping[str, Interval] | None = None) -> pd.DataFrame:
    """The ranking of ``runs`` on ``resource`` at weight ``w`` in ``track`` (``rank_runs``), one
    row per ranked run with its other measurements (columns ``RANKING_COLUMNS``). mIoU intervals:
    ``intervals`` by run id, else those stored in the runs' documents."""
    intervals = {**stored_intervals(runs), **(intervals or {})}
    ranked = rank_runs(run_records(runs, intervals), resource, w, references, track, tracks)
    if not ranked:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in RANKING_COLUMNS})
    frame = pd.DataFrame([r.to_dict() for r in ranked])
    frame['miou_ci_low'] = [c[0] if c else np.nan for c in frame['miou_ci']]
    frame['miou_ci_high'] = [c[1] if c else np.nan for c in frame['miou_ci']]
    frame['score_ci_low'] = [c[0] if c else np.nan for c in frame['score_ci']]
    frame['score_ci_high'] = [c[1] if c else np.nan for c in frame['score_ci']]
    frame['tracks'] = frame['tracks'].map(', '.join)
    frame['tied_with'] = frame['tied_with'].map(', '.join)
    details = runs.set_index('run_id')[list(RUN_COLUMNS_IN_RANKING)]
    frame = frame.join(details, on='run_id')
    return frame[list(RANKING_COLUMNS)]


def unranked(runs: pd.DataFrame, resource: str, track: Track = OPEN_TRACK) -> pd.DataFrame:
    """Runs left out of the ranking on ``resource`` in ``track``, with the reason for each."""
    rows = []
    for record, row in zip(run_records(runs), runs.to_dict('records')):
        reason = exclusion_reason(record, resource, track)
        if reason is not None:
            if row['status'] != 'ok' and isinstance(row['failure_reason'], str):
                reason = f"{reason}: {row['failure_reason']}"
            rows.append({'submission': row['submission_name'], 'status': row['status'], 'reason': reason,
                         'run': row['run_id']})
    return pd.DataFrame(rows, columns=['submission', 'status', 'reason', 'run'])


def _budget(state: object) -> str:
    """verified | recorded | declared (a bool, from older frames: verified or declared)."""
    if isinstance(state, bool):
        return 'verified' if state else 'declared'
    return str(state) if state in ('verified', 'recorded', 'declared') else 'declared'


def _budget_of(r: Mapping[str, Any]) -> str:
    state = r.get('budget_state')
    return _budget(state if isinstance(state, str) and state else bool(r.get('budget_verified')))


def _missing(value: object) -> bool:
    return _value(value) is None


def _number(value: object) -> float:
    return float('nan') if _missing(value) else float(value)  # type: ignore[arg-type]


def _interval(low: object, high: object) -> str:
    return MISSING if _missing(low) or _missing(high) else f'{low:.4f} - {high:.4f}'


def _energy_kind(r: Mapping[str, Any]) -> str:
    if _missing(r['energy_joules_per_image']):
        return MISSING
    return 'measured' if r['energy_measured'] else 'estimated'


def _hours(seconds: object) -> float:
    return _number(seconds) / 3600


def _trusted(r: Mapping[str, Any]) -> bool:
    """``compute_trusted`` of a row (True where the frame has no such column; a missing value, NaN
    or None, is not trusted)."""
    value = r.get('compute_trusted', True)
    return False if _value(value) is None else bool(value)


def _compute_kind(r: Mapping[str, Any]) -> str:
    if r.get('status', 'ok') != 'ok':
        return MISSING  # a failed run has no counts to trust
    return 'trusted' if _trusted(r) else 'untrusted'


def _not_ranked_on(r: Mapping[str, Any]) -> str:
    """For a run whose compute is not trusted: the resources it is never ranked on, and why."""
    if _trusted(r):
        return MISSING
    names = ', '.join(COMPUTE_COUNT_LABELS.values())  # params, MACs: the counts ranked_value never ranks
    return f"{names}: {_str(r.get('untrusted_reason')) or 'compute counts not trusted'}"


def _protocol(r: Mapping[str, Any]) -> str:
    version = _value(r.get('measurement_protocol_version'))
    return MISSING if version is None else f'v{int(version)}'


# Table column -> (the source column it needs, how a row becomes the cell), in display order.
# Measurements stay numbers (so the table sorts on them; a missing one is NaN, shown as
# ``NOT_MEASURED`` by the table's placeholder); markers are text columns beside them.
DISPLAY_COLUMNS: dict[str, tuple[str, Callable[[Mapping[str, Any]], object]]] = {
    'rank': ('rank', lambda r: int(r['rank'])),
    'submission': ('submission_name', lambda r: r['submission_name']),
    'technique': ('technique', lambda r: _str(r['technique']) or MISSING),
    'mIoU': ('miou', lambda r: _number(r['miou'])),
    'mIoU 95% CI': ('miou_ci_low', lambda r: _interval(r['miou_ci_low'], r['miou_ci_high'])),
    'score': ('score', lambda r: _number(r['score'])),
    'resource value': ('resource_value', lambda r: _number(r['resource_value'])),
    'R': ('normalized_resource', lambda r: _number(r['normalized_resource'])),
    'Pareto': ('pareto', lambda r: bool(r['pareto'])),
    'params': ('params', lambda r: _number(r['params'])),
    'MACs': ('macs', lambda r: _number(r['macs'])),
    'compute counts': ('compute_trusted', _compute_kind),
    'not ranked on': ('compute_trusted', _not_ranked_on),
    'latency (ms)': ('latency_ms', lambda r: _number(r['latency_ms'])),
    'peak memory (MB)': ('peak_rss_mb', lambda r: _number(r['peak_rss_mb'])),
    'energy (J/image)': ('energy_joules_per_image', lambda r: _number(r['energy_joules_per_image'])),
    'energy kind': ('energy_joules_per_image', _energy_kind),
    'training images': ('train_images', lambda r: _number(r['train_images'])),
    'annotation': ('annotation_type',
                   lambda r: r['annotation_type'] if isinstance(r['annotation_type'], str) else MISSING),
    'annotator-hours': ('annotation_seconds', lambda r: _hours(r['annotation_seconds'])),
    'budget': ('budget_verified', _budget_of),
    'tracks': ('tracks', lambda r: r['tracks']),
    'tied with': ('tied_with', lambda r: r['tied_with'] or MISSING),
    'status': ('status', lambda r: r['status']),
    'hardware': ('hardware', lambda r: _str(r['hardware']) or MISSING),
    'measurement protocol': ('measurement_protocol_version', _protocol),
    'group': ('group', lambda r: r['group']),
    'run': ('run_id', lambda r: r['run_id']),
}


def display_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a ranking (or of a runs frame) for the table, with columns labelled for people.

    Numbers stay numbers (NaN where the store has no value); beside them, text markers say
    whether energy was ``measured`` or ``estimated`` and whether the training budget is
    ``verified`` (observed by the harness) or ``declared``; ``-`` where there is nothing to mark.
    A column whose source is absent from ``frame`` is left out.
    """
    columns = {label: fn for label, (source, fn) in DISPLAY_COLUMNS.items() if source in frame.columns}
    rows = [{label: fn(r) for label, fn in columns.items()} for r in frame.to_dict('records')]
    return plain_text(pd.DataFrame(rows, columns=list(columns)))


COMPUTE_COUNT_LABELS = {source: label for label, (source, _) in DISPLAY_COLUMNS.items() if source in COMPUTE_COUNTS}


def styled_table(frame: pd.DataFrame) -> pd.DataFrame | Any:
    """``display_table(frame)``, with the compute counts (params, MACs) of runs whose compute is
    not trusted greyed (a pandas Styler; Streamlit shows its colours). A plain frame when no run
    is untrusted, or when the table is too large for a Styler: the ``compute counts`` and ``not
    ranked on`` columns say the same in words."""
    table = display_table(frame)
    if 'compute_trusted' not in frame.columns or table.empty or table.size > MAX_STYLED_CELLS:
        return table
    rows = np.flatnonzero(~frame['compute_trusted'].fillna(False).astype(bool).to_numpy())
    columns = [table.columns.get_loc(label) for label in COMPUTE_COUNT_LABELS.values() if label in table.columns]
    if not len(rows) or not columns:
        return table

    def grey(data: pd.DataFrame) -> pd.DataFrame:
        styles = pd.DataFrame('', index=data.index, columns=data.columns)
        styles.iloc[rows, columns] = UNTRUSTED_STYLE
        return styles
    return table.style.apply(grey, axis=None)


def trust_notes(runs: pd.DataFrame, resource: str, limit: int = 5) -> list[str]:
    """Plain-text lines for the ranking: which runs in view are never ranked on their compute
    counts and why (the first ``limit``), and, for a resource measured under the measurement
    protocol, that runs of different protocol versions are ranked in separate groups."""
    notes = []
    ok = runs[runs['status'] == 'ok'] if 'status' in runs.columns else runs
    if 'compute_trusted' in ok.columns:
        untrusted = ok[~ok['compute_trusted'].fillna(False).astype(bool)]
        if len(untrusted):
            names = ' and '.join(COMPUTE_COUNT_LABELS.values())
            notes.append(f'{len(untrusted)} run(s) with untrusted compute counts: their {names} are shown greyed, '
                         'never ranked, never on a Pareto front and never in a budget track on them; they are '
                         'ranked on accuracy and on resources measured from outside the model process.')
            for row in untrusted.head(limit).to_dict('records'):
                notes.append(f"{run_label(row['submission_name'], row['run_id'])}: {_not_ranked_on(row)}")
            if len(untrusted) > limit:
                notes.append(f'... and {len(untrusted) - limit} more (column "not ranked on").')
    if RESOURCES[resource].protocol_measured and 'measurement_protocol_version' in ok.columns:
        versions = sorted({int(v) for v in ok['measurement_protocol_version'].dropna()})
        shown = ', '.join(f'v{v}' for v in versions) or 'none recorded'
        notes.append(f'{resource} is measured under the measurement protocol: runs of different protocol '
                     f'versions are ranked in separate groups (measurement=vN in the group). Versions in '
                     f'view: {shown}.')
    return [visible(note) for note in notes]


def plain_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells show control and bidi characters as visible escapes
    (``frugalbench.text.visible``): names from submissions cannot reorder or hide what is shown."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype).startswith(('string', 'str')):
            out[column] = out[column].map(lambda v: visible(v, keep_newlines=True) if isinstance(v, str) else v)
    return out


def run_label(name: object, run_id: object) -> str:
    """'name [run id prefix]': unique even when a submission has several runs (control and bidi
    characters of the name shown as visible escapes)."""
    return f'{visible(name)} [{str(run_id)[:8]}]'


def with_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a ``label`` column (``run_label`` of each row)."""
    labels = [run_label(n, i) for n, i in zip(frame['submission_name'], frame['run_id'])]
    return frame.assign(label=labels)


def frugality_curves(ranked: pd.DataFrame, run_ids: Sequence[str],
                     ws: Sequence[float] = DEFAULT_WS) -> pd.DataFrame:
    """Score against w for the chosen ranked runs: columns label, run_id, w, score."""
    rows = []
    for r in with_labels(ranked[ranked['run_id'].isin(list(run_ids))]).to_dict('records'):
        for w, score in frugality_curve(r['miou'], r['normalized_resource'], ws):
            rows.append({'label': r['label'], 'run_id': r['run_id'], 'w': w, 'score': score})
    return pd.DataFrame(rows, columns=['label', 'run_id', 'w', 'score'])


ScaleType = Literal['linear', 'log', 'symlog']


def axis_scale(values: Sequence[float] | pd.Series, decades: float = 2.0) -> ScaleType:
    """'log' when the positive values span at least ``decades`` powers of ten ('symlog' if some
    are zero, which a log axis cannot show), else 'linear'."""
    array = np.asarray(pd.Series(values, dtype='float64').dropna())
    positive = array[array > 0]
    if positive.size < 2 or positive.max() / positive.min() < 10 ** decades:
        return 'linear'
    return 'symlog' if (array <= 0).any() else 'log'


def pareto_front(ranked: pd.DataFrame) -> pd.DataFrame:
    """The Pareto-optimal rows of each group, ordered by resource value (to draw the front line)."""
    front = ranked[ranked['pareto'].astype(bool)]
    return with_labels(front.sort_values(['group', 'resource_value', 'miou']))


def lineage_segments(ranked: pd.DataFrame) -> pd.DataFrame:
    """Line segments from each ranked parent run to the ranked runs derived from it (compression
    trajectories on the Pareto plot): columns segment, resource_value, miou, in drawing order."""
    columns = ['segment', 'resource_value', 'miou']
    if ranked.empty or 'parent' not in ranked:
        return pd.DataFrame(columns=columns)
    by_submission = ranked.drop_duplicates('submission').set_index('submission')
    rows = []
    for _, child in ranked[ranked['parent'].notna()].iterrows():
        if child['parent'] not in by_submission.index:
            continue
        parent = by_submission.loc[child['parent']]
        segment = f"{child['parent']} -> {child['submission']}"
        rows.append({'segment': segment, 'resource_value': parent['resource_value'], 'miou': parent['miou']})
        rows.append({'segment': segment, 'resource_value': child['resource_value'], 'miou': child['miou']})
    return pd.DataFrame(rows, columns=columns)


def budget_points(runs: pd.DataFrame) -> pd.DataFrame:
    """Successful runs with their training budget, for the budget curves: columns label,
    architecture, train_images, annotator_hours, annotation_type, budget, miou, technique."""
    ok = runs[(runs['status'] == 'ok') & runs['miou'].notna()]
    architecture = ok['architecture'].where(ok['architecture'].notna(),
                                            ok['technique'].fillna('?') + ' (architecture not stored)')
    frame = with_labels(ok).assign(
        architecture=architecture, annotator_hours=ok['annotation_seconds'] / 3600,
        budget=[_budget_of(r) for r in ok.to_dict('records')])
    return frame[['label', 'architecture', 'train_images', 'annotator_hours', 'annotation_type',
                  'budget', 'miou', 'technique', 'run_id']].sort_values(['architecture', 'train_images'])


def export_frame(ranked: pd.DataFrame) -> pd.DataFrame:
    """The ranking as stored values (no display text), for CSV and Parquet."""
    frame = ranked.copy()
    frame['created_at'] = frame['created_at'].astype(str)
    return frame.reset_index(drop=True)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV for spreadsheets: text cells with a formula prefix (``= + - @``, tab, CR) start with
    ``'``, control and bidi characters are escaped (``frugalbench.text.csv_safe``)."""
    return csv_safe(frame).to_csv(index=False).encode('utf-8')


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
