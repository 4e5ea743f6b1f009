"""The leaderboard's data layer: read-only store queries (``queries``) and the frames the app
shows (``views``), built with ``frugalbench.scores``. The Streamlit app (app/leaderboard.py)
only lays these out; it opens no database itself.
"""
from frugalbench.app_data.queries import (
    DocumentCache,
    RunDetail,
    StoreStatus,
    StoreUnavailable,
    benchmark_definition,
    benchmarks,
    image_areas,
    lineage,
    resolve_run_id,
    run_detail,
    runs,
    snapshot_info,
    store_status,
)
from frugalbench.app_data.views import (
    DEFAULT_RESOURCE,
    DEFAULT_W,
    NOT_MEASURED,
    BenchmarkSetup,
    axis_scale,
    benchmark_setup,
    bootstrap_intervals,
    budget_points,
    display_table,
    export_frame,
    filter_runs,
    frugality_curves,
    latest_per_submission,
    lineage_segments,
    pareto_front,
    plain_text,
    ranking,
    run_label,
    stored_intervals,
    styled_table,
    to_csv_bytes,
    to_parquet_bytes,
    trust_notes,
    unranked,
    with_intervals,
    with_labels,
)

__all__ = [
    'DEFAULT_RESOURCE', 'DEFAULT_W', 'NOT_MEASURED', 'BenchmarkSetup', 'DocumentCache', 'RunDetail', 'StoreStatus', 'StoreUnavailable',
    'axis_scale', 'benchmark_definition', 'benchmark_setup', 'benchmarks', 'bootstrap_intervals', 'budget_points', 'display_table',
    'export_frame', 'filter_runs', 'frugality_curves', 'image_areas', 'latest_per_submission', 'lineage',
    'lineage_segments', 'pareto_front', 'plain_text', 'ranking', 'resolve_run_id', 'run_detail', 'run_label', 'runs', 'snapshot_info', 'store_status',
    'stored_intervals', 'styled_table', 'to_csv_bytes', 'to_parquet_bytes', 'trust_notes', 'unranked',
    'with_intervals', 'with_labels',
]
