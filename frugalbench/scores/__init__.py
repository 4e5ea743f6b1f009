"""Frugality scores, curves, Pareto fronts, uncertainty, budget tracks and rankings.

Pure functions over plain records (``RunRecord``): nothing here opens the store, the CLI or the
app. The score follows Evchenko, Vanschoren, Hoos, Schoenauer, Sebag, "Frugal Machine Learning",
arXiv:2111.03731 (2021): ``score = A - w / (1 + 1/R)`` with A the mIoU and R the resource over a
reference value from the benchmark file. See docs/metrics.md.
"""
from frugalbench.scores.curves import DEFAULT_WS, crossover_w, frugality_curve
from frugalbench.scores.frugality import (
    RESOURCES,
    Resource,
    frugality_score,
    get_resource,
    normalized_resource,
    parse_references,
    penalty,
    score_from_ratio,
)
from frugalbench.scores.pareto import pareto_flags
from frugalbench.scores.ranking import RankedRun, exclusion_reason, group_key, rank_runs
from frugalbench.scores.records import RunRecord
from frugalbench.scores.tracks import (
    OPEN_TRACK,
    Track,
    get_track,
    parse_tracks,
    qualifies,
    qualifying_tracks,
)
from frugalbench.scores.trust import RankedValue, measurement_group, ranked_value, untrusted_resources
from frugalbench.scores.uncertainty import (
    Interval,
    bootstrap_miou_ci,
    intervals_overlap,
    miou_from_areas,
    rank_with_ties,
    tie_groups,
)

__all__ = [
    'DEFAULT_WS', 'OPEN_TRACK', 'RESOURCES', 'Interval', 'RankedRun', 'RankedValue', 'Resource', 'RunRecord',
    'Track', 'bootstrap_miou_ci', 'crossover_w', 'exclusion_reason', 'frugality_curve',
    'frugality_score', 'get_resource', 'get_track', 'group_key', 'intervals_overlap',
    'measurement_group', 'miou_from_areas', 'normalized_resource', 'pareto_flags', 'parse_references',
    'parse_tracks', 'penalty', 'qualifies', 'qualifying_tracks', 'rank_runs', 'rank_with_ties',
    'ranked_value', 'score_from_ratio', 'tie_groups', 'untrusted_resources',
]
