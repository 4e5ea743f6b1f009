"""Gates, routing, expected cost and threshold fitting of a cascade (pure numpy, no I/O).

A cascade's members are called in order; after member ``j`` (all but the last) the harness
computes the gate statistic of its answer and escalates the image to member ``j + 1`` when the
statistic says the answer is doubtful (``escalates``). The image keeps the answer of the last
member it reached. mIoU is MMSeg's dataset-level definition over the images as routed: the
intersections and unions of each image's final answer are summed, then divided once.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from frugalbench.errors import FrugalbenchError

# Thresholds that never / always escalate (statistics lie in [0, 1]); JSON-safe, unlike infinities.
NEVER = {'mean_max_prob': 0.0, 'fraction_below': 1.0}
ALWAYS = {'mean_max_prob': 1.000001, 'fraction_below': -0.000001}
# Candidate thresholds per gate: all midpoints between distinct val statistics, thinned to quantiles
# so that the grid (the product over gates) stays at most about this many policies.
MAX_GRID = 20_000


class CascadeError(FrugalbenchError):
    """A cascade that cannot be evaluated or fitted (the message says why and what to do)."""


@dataclass(frozen=True)
class SplitData:
    """The members' answers on one split: per member, per image, class areas and the gate statistic."""

    images: tuple[str, ...]
    intersect: np.ndarray    # (members, images, classes)
    union: np.ndarray        # (members, images, classes)
    statistic: np.ndarray    # (members, images): the gate statistic of each member's answer

    @property
    def members(self) -> int:
        return int(self.intersect.shape[0])


def gate_statistic(histogram: np.ndarray, statistic: str, level: float) -> float:
    """The gate statistic of one answer from its confidence histogram (bins over [0, 1]).

    ``mean_max_prob``: the pixel mean of the max probability, with each pixel at its bin's centre
    (within half a bin of the exact mean). ``fraction_below``: the fraction of pixels whose max
    probability is under ``level`` (rounded to the nearest bin edge; exact when ``level`` is a
    multiple of 1 / bins)."""
    counts = np.asarray(histogram, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise CascadeError('a confidence histogram counts no pixels')
    bins = len(counts)
    if statistic == 'mean_max_prob':
        centres = (np.arange(bins) + 0.5) / bins
        return float((counts * centres).sum() / total)
    if statistic == 'fraction_below':
        edge = round(level * bins)
        return float(counts[:edge].sum() / total)
    raise CascadeError(f'unknown gate statistic {statistic!r}: use mean_max_prob or fraction_below')


def escalates(values: np.ndarray, threshold: float, statistic: str) -> np.ndarray:
    """Which answers go on to the next member: low mean confidence, or many unconfident pixels."""
    if statistic == 'mean_max_prob':
        return values < threshold
    return values > threshold


def route(data: SplitData, thresholds: Sequence[float], statistic: str) -> np.ndarray:
    """The index of the member whose answer each image keeps (``len(thresholds) == members - 1``)."""
    final = np.zeros(len(data.images), dtype=np.int64)
    active = np.ones(len(data.images), dtype=bool)
    for j, threshold in enumerate(thresholds):
        active = active & escalates(data.statistic[j], threshold, statistic)
        final[active] = j + 1
    return final


def reach_rates(final: np.ndarray, members: int) -> list[float]:
    """The fraction of images each member is called on (1.0 for the first)."""
    return [float((final >= j).mean()) for j in range(members)]


def expected_cost(final: np.ndarray, costs: Sequence[float]) -> float:
    """Expected cost per image: every member an image reaches is paid (the first always)."""
    return float(sum(c * r for c, r in zip(costs, reach_rates(final, len(costs)))))


def routed_areas(data: SplitData, final: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image intersections and unions of the answers the images keep, (images, classes) each."""
    rows = np.arange(len(data.images))
    return data.intersect[final, rows], data.union[final, rows]


def miou(intersect: np.ndarray, union: np.ndarray) -> float:
    """Dataset-level mIoU: sum over images, divide once; classes with no union left out (as MMSeg)."""
    total_i, total_u = intersect.sum(axis=0), union.sum(axis=0)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = total_i / total_u
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else math.nan


def routed_miou(data: SplitData, final: np.ndarray) -> float:
    return miou(*routed_areas(data, final))


@dataclass(frozen=True)
class PolicyResult:
    thresholds: tuple[float, ...]
    miou: float
    cost: float
    reach: tuple[float, ...]

    @property
    def escalation_rate(self) -> float:
        return self.reach[1] if len(self.reach) > 1 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {'thresholds': list(self.thresholds), 'miou': self.miou, 'cost': self.cost,
                'escalation_rate': self.escalation_rate, 'reach_rates': list(self.reach)}


def evaluate_policy(data: SplitData, thresholds: Sequence[float], statistic: str,
                    costs: Sequence[float]) -> PolicyResult:
    final = route(data, thresholds, statistic)
    return PolicyResult(tuple(float(t) for t in thresholds), routed_miou(data, final),
                        expected_cost(final, costs), tuple(reach_rates(final, data.members)))


def candidate_thresholds(values: np.ndarray, statistic: str, limit: int) -> list[float]:
    """Never, always, and the midpoints between consecutive distinct values (thinned to ``limit``)."""
    distinct = np.unique(values)
    mids = ((distinct[1:] + distinct[:-1]) / 2.0).tolist()
    if len(mids) > limit:
        mids = [mids[int(i)] for i in np.linspace(0, len(mids) - 1, limit).round()]
    return [NEVER[statistic], *sorted(set(mids)), ALWAYS[statistic]]


def policy_grid(val: SplitData, statistic: str) -> list[tuple[float, ...]]:
    """Every combination of candidate thresholds, one list per gate, from the val statistics only."""
    gates = val.members - 1
    per_gate = max(2, int(MAX_GRID ** (1.0 / gates)) - 2)
    lists = [candidate_thresholds(val.statistic[j], statistic, per_gate) for j in range(gates)]
    return list(itertools.product(*lists))


def val_results(val: SplitData, statistic: str, costs: Sequence[float]) -> list[PolicyResult]:
    return [evaluate_policy(val, t, statistic, costs) for t in policy_grid(val, statistic)]


def best_under_budget(results: Sequence[PolicyResult], budget: float) -> PolicyResult:
    """The policy of highest val mIoU whose expected val cost is within the budget; ties: the cheaper,
    then the one escalating less."""
    feasible = [r for r in results if r.cost <= budget * (1 + 1e-9) and not math.isnan(r.miou)]
    if not feasible:
        cheapest = min(r.cost for r in results)
        raise CascadeError(f'budget {budget:g} is under the cheapest policy\'s expected cost {cheapest:g} '
                           '(the first member alone): raise the budget')
    return max(feasible, key=lambda r: (r.miou, -r.cost, -sum(r.reach)))


def frontier(results: Sequence[PolicyResult]) -> list[PolicyResult]:
    """The val policies that some budget selects: increasing cost, strictly increasing val mIoU."""
    chosen, best = [], -math.inf
    for result in sorted(results, key=lambda r: (r.cost, -r.miou)):
        if result.miou > best:
            chosen.append(result)
            best = result.miou
    return chosen


def oracle(data: SplitData, costs: Sequence[float]) -> dict[str, float]:
    """Per image, the member with the most correctly labelled pixels (ties: the cheaper); its
    dataset-level mIoU and the mean cost of the chosen members alone (an oracle calls no other)."""
    correct = data.intersect.sum(axis=2)                      # (members, images)
    choice = np.argmax(correct, axis=0)                       # first maximum: the cheaper member
    rows = np.arange(len(data.images))
    return {'miou': miou(data.intersect[choice, rows], data.union[choice, rows]),
            'cost': float(np.asarray(costs, dtype=np.float64)[choice].mean()),
            'rule': 'per image, the member with the most correctly labelled pixels (ties: the cheaper); cost: '
                    'the chosen member only'}
