"""Rank runs by frugality score on one resource, within groups of comparable runs.

A run is ranked when its status is ok, it has an mIoU and a value for the resource that a
ranking may use (``frugalbench.scores.trust.ranked_value``: never the compute counts of a run
whose compute is not trusted), and it qualifies for the requested track. Runs are only compared
inside a group sharing the benchmark and protocol version, plus, depending on the resource:
- the measurement protocol version, for resources measured under it (latency, memory, energy:
  ``trust.measurement_group``);
- the hardware fingerprint, when the resource depends on the hardware (latency, memory, energy,
  training time); MACs, parameters, images and annotation time are compared across hardware;
- measured vs estimated energy, for energy resources (never ranked against each other);
- the budget state (verified, recorded, declared), for training-budget resources (a declared or
  recorded image count is shown, but never ranked against counts the harness observed).

Within a group, ``rank`` is the competition rank by score (1 = best; scores within
``SCORE_TOLERANCE`` are equal and share a rank: 1, 2, 2, 4). Uncertainty is shown beside it:
the score's interval is the mIoU bootstrap interval shifted by the run's (deterministic) penalty,
and ``tied_with`` lists the runs of the group whose score intervals overlap this run's: the order
between those is within the noise of the test set. At w = 0 that is plain mIoU-interval overlap.
"""
from __future__ import annotations

import bisect

import numpy as np

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from frugalbench.errors import UsageError
from frugalbench.scores.frugality import (
    Resource,
    check_reference,
    check_weight,
    get_resource,
    penalty,
)
from frugalbench.scores.pareto import pareto_flags
from frugalbench.scores.records import RunRecord
from frugalbench.scores.tracks import OPEN_TRACK, Track, get_track, qualifies, qualifying_tracks
from frugalbench.scores.trust import measurement_group, ranked_value

SCORE_TOLERANCE = 1e-9  # scores closer than this are equal (float noise, far below any real gap)


@dataclass(frozen=True)
class RankedRun:
    """One run's place in a ranking; ``to_dict`` gives the JSON object."""

    run_id: str
    submission: str
    group: str
    technique: str
    miou: float
    miou_ci: tuple[float, float] | None
    resource: str
    unit: str
    resource_value: float
    reference: float
    normalized_resource: float  # R = resource_value / reference
    w: float
    score: float  # miou - w / (1 + 1/R); miou when R = 0
    score_ci: tuple[float, float] | None  # miou_ci shifted by the penalty
    pareto: bool  # on the (max mIoU, min resource) front of its group
    tracks: tuple[str, ...]  # every track the run qualifies for
    rank: int
    tied_with: tuple[str, ...]  # run ids of the group whose score intervals overlap this one
    budget_verified: bool
    energy_measured: bool
    budget_state: str = 'declared'  # verified | recorded | declared
    measurement_protocol_version: int | None = None  # the measurement protocol of its latency, memory, energy

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}


def exclusion_reason(run: RunRecord, resource: str, track: Track = OPEN_TRACK) -> str | None:
    """Why ``run`` is left out of a ranking on ``resource`` in ``track``; None if it is ranked."""
    if not run.ok:
        return f'status is {run.status!r}, not ok'
    if run.miou is None:
        return 'no mIoU'
    reason = ranked_value(run, resource).reason
    if reason is not None:
        return reason
    if not qualifies(run, track):
        return f'does not qualify for track {track.name!r}'
    return None


def group_key(run: RunRecord, resource: Resource) -> str:
    """The label of the group of runs that ``run`` may be compared with on ``resource``."""
    parts = [run.benchmark, f'protocol={run.protocol_version}']
    measurement = measurement_group(run, resource)
    if measurement is not None:
        parts.append(measurement)
    if resource.hardware_dependent:
        parts.append(f'hardware={run.hardware_fingerprint}')
    if resource.energy:
        parts.append('energy=' + ('measured' if run.energy_measured else 'estimated'))
    if resource.training_budget:
        parts.append('budget=' + run.budget_state)
    return '|'.join(parts)


def rank_runs(runs: Iterable[RunRecord], resource: str, w: float, references: Mapping[str, float],
              track: Track | str = OPEN_TRACK,
              tracks: Mapping[str, Track] | None = None) -> list[RankedRun]:
    """Rank ``runs`` on ``resource`` at weight ``w`` within ``track``, group by group.

    ``references`` maps resource names to the reference values of the benchmark file (with any
    user override already applied); ``tracks`` are the benchmark's tracks, used to resolve a
    track name and to list each run's qualifying tracks (default: only ``open``). The result is
    sorted by group, then rank, then run id.
    """
    res = get_resource(resource)
    w = check_weight(w)
    if res.name not in references:
        raise UsageError(f'no reference value for resource {res.name!r}: add "{res.name}: <value in '
                         f'{res.unit}>" under references: in the benchmark file, or pass one')
    reference = check_reference(references[res.name], res.name)
    tracks = dict(tracks) if tracks is not None else {OPEN_TRACK.name: OPEN_TRACK}
    if isinstance(track, str):
        track = get_track(tracks, track)
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        if exclusion_reason(run, res.name, track) is None:
            groups.setdefault(group_key(run, res), []).append(run)
    ranked: list[RankedRun] = []
    for key in sorted(groups):
        ranked.extend(_rank_group(key, groups[key], res, w, reference, tracks))
    return ranked


@dataclass(frozen=True)
class _Scored:
    run: RunRecord
    miou: float
    value: float
    R: float
    score: float
    score_ci: tuple[float, float] | None


def _score(run: RunRecord, res: Resource, w: float, reference: float) -> _Scored:
    value, miou = ranked_value(run, res).value, run.miou
    assert value is not None and miou is not None  # excluded before
    R = value / reference
    cost = penalty(R, w)
    ci = None if run.miou_ci is None else (run.miou_ci[0] - cost, run.miou_ci[1] - cost)
    return _Scored(run, miou, value, R, miou - cost, ci)


def _rank_group(group: str, runs: Sequence[RunRecord], res: Resource, w: float, reference: float,
                tracks: Mapping[str, Track]) -> list[RankedRun]:
    scored = [_score(run, res, w, reference) for run in runs]
    front = pareto_flags([(s.miou, s.value) for s in scored])
    ranks = _competition_ranks([s.score for s in scored])
    tied = _overlapping(scored)
    rows = []
    for k, s in enumerate(scored):
        rows.append(RankedRun(
            run_id=s.run.run_id, submission=s.run.submission, group=group,
            technique=s.run.technique, miou=s.miou,
            miou_ci=s.run.miou_ci, resource=res.name, unit=res.unit, resource_value=s.value,
            reference=reference, normalized_resource=s.R, w=w, score=s.score, score_ci=s.score_ci,
            pareto=front[k], tracks=qualifying_tracks(s.run, tracks), rank=ranks[k], tied_with=tied[k],
            budget_verified=s.run.budget_verified, energy_measured=s.run.energy_measured,
            budget_state=s.run.budget_state, measurement_protocol_version=s.run.measurement_protocol_version))
    return sorted(rows, key=lambda r: (r.rank, r.run_id))


def _competition_ranks(scores: Sequence[float]) -> list[int]:
    """1 + the number of strictly better scores (beyond SCORE_TOLERANCE), in O(n log n)."""
    ordered = sorted(scores)
    n = len(ordered)
    return [1 + n - bisect.bisect_right(ordered, score + SCORE_TOLERANCE) for score in scores]


def _overlapping(scored: Sequence[_Scored]) -> list[tuple[str, ...]]:
    """Per run, the sorted ids of the other runs whose score intervals overlap its own."""
    ids = np.array([s.run.run_id for s in scored], dtype=object)
    present = np.array([s.score_ci is not None for s in scored])
    low = np.array([s.score_ci[0] if s.score_ci else np.nan for s in scored], dtype=float)
    high = np.array([s.score_ci[1] if s.score_ci else np.nan for s in scored], dtype=float)
    result: list[tuple[str, ...]] = []
    for k, s in enumerate(scored):
        if s.score_ci is None:
            result.append(())
            continue
        mask = present & (low <= s.score_ci[1]) & (high >= s.score_ci[0])
        mask[k] = False
        result.append(tuple(sorted(ids[mask])))
    return result
