"""The pure part of a cascade: routing, expected cost, the val grid search, the oracle (hand-computed)."""
from __future__ import annotations

import numpy as np
import pytest

from frugalbench.cascades import policy as P


def _data() -> P.SplitData:
    # 4 images, 2 classes; member 1 is right where member 0 is wrong on images 0 and 1
    union = np.full((2, 4, 2), 10.0)
    intersect = np.array([[[2, 2], [3, 3], [10, 10], [9, 9]],
                          [[10, 10], [9, 9], [8, 8], [9, 9]]], dtype=float)
    statistic = np.array([[0.5, 0.6, 0.9, 0.95], [0.9, 0.9, 0.9, 0.9]])
    return P.SplitData(('a', 'b', 'c', 'd'), intersect, union, statistic)


def test_routing_cost_and_miou_by_hand() -> None:
    data = _data()
    final = P.route(data, [0.7], 'mean_max_prob')           # images under 0.7 go on
    assert final.tolist() == [1, 1, 0, 0]
    assert P.expected_cost(final, [1.0, 4.0]) == pytest.approx(1.0 + 0.5 * 4.0)
    assert P.routed_miou(data, final) == pytest.approx((10 + 9 + 10 + 9) / 40)


def test_best_policy_under_each_budget() -> None:
    data = _data()
    results = P.val_results(data, 'mean_max_prob', [1.0, 4.0])
    assert P.best_under_budget(results, 1.0).escalation_rate == 0.0
    assert P.best_under_budget(results, 2.0).escalation_rate == pytest.approx(0.25)   # image a only
    assert P.best_under_budget(results, 3.0).thresholds == pytest.approx((0.75,))     # midpoint 0.6|0.9: a and b
    with pytest.raises(P.CascadeError, match='under the cheapest policy'):
        P.best_under_budget(results, 0.5)
    costs = [r.cost for r in P.frontier(results)]
    assert costs == sorted(costs) and costs[0] == 1.0


def test_oracle_takes_the_member_with_most_correct_pixels() -> None:
    oracle = P.oracle(_data(), [1.0, 4.0])
    assert oracle['miou'] == pytest.approx((10 + 9 + 10 + 9) / 40)
    assert oracle['cost'] == pytest.approx((4 + 4 + 1 + 1) / 4)   # image d ties: the cheaper member
