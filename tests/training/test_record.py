"""Totals of a training over its segments, and the segment log that survives a killed parent."""
from __future__ import annotations

from pathlib import Path

from frugalbench.training.record import totals_of
from frugalbench.training.segments import COMPLETED, INTERRUPTED, RUNNING, Segment, SegmentLog


def energy(joules: float | None, measured: bool = False) -> list[dict]:
    if joules is None:
        return [{'name': 'energy_run', 'value': None, 'method': 'estimate-cpu-time-tdp', 'measured': False,
                 'unavailable_reason': 'window too short'}]
    return [{'name': 'energy_run', 'value': joules, 'method': 'rapl' if measured else 'estimate-cpu-time-tdp',
             'measured': measured},
            {'name': 'co2e_run', 'value': joules / 3.6e6 * 475.0, 'method': 'x grid', 'measured': False}]


def segment(index: int, status: str, wall: float, cpu: float | None, peak: float | None, outside: bool,
            joules: float | None = None, measured: bool = False) -> Segment:
    return Segment(index=index, started_at='t', status=status, wall_seconds=wall, cpu_seconds=cpu,
                   peak_rss_mb=peak, measured_from_outside=outside,
                   energy=energy(joules, measured) if status == COMPLETED else [])


def test_completed_segments_add_up() -> None:
    totals = totals_of([segment(0, COMPLETED, 10.0, 8.0, 700.0, True, 40.0, True),
                        segment(1, COMPLETED, 5.5, 4.25, 720.5, True, 20.0, True)])
    assert (totals.wall_seconds, totals.cpu_seconds, totals.peak_rss_mb) == (15.5, 12.25, 720.5)
    assert totals.energy_joules == 60.0 and totals.energy_measured and totals.energy_method == 'rapl'
    assert totals.co2e_grams == round(60.0 / 3.6e6 * 475.0, 6)
    assert totals.complete and totals.notes == []


def test_an_interrupted_segment_leaves_energy_unknown_and_says_so() -> None:
    totals = totals_of([segment(0, INTERRUPTED, 24.0, 13.0, None, False),
                        segment(1, COMPLETED, 26.5, 14.0, 764.0, True, 50.0)])
    assert (totals.wall_seconds, totals.cpu_seconds, totals.peak_rss_mb) == (50.5, 27.0, 764.0)
    assert totals.energy_joules is None and not totals.energy_measured
    assert 'segment 0 (interrupted)' in totals.energy_unavailable_reason
    assert not totals.complete and 'segment(s) [0]' in totals.notes[0]


def test_an_estimate_in_any_segment_makes_the_total_an_estimate() -> None:
    totals = totals_of([segment(0, COMPLETED, 10.0, 8.0, 700.0, True, 40.0, True),
                        segment(1, COMPLETED, 10.0, 8.0, 700.0, True, 30.0, False)])
    assert totals.energy_joules == 70.0 and not totals.energy_measured
    assert totals.energy_method == 'estimate-cpu-time-tdp + rapl'


def test_an_unavailable_energy_figure_keeps_its_reason() -> None:
    totals = totals_of([segment(0, COMPLETED, 3.0, 2.0, 600.0, True, None)])
    assert totals.energy_joules is None and totals.energy_unavailable_reason == 'window too short'


def test_a_segment_left_running_by_a_killed_parent_is_marked_interrupted(tmp_path: Path) -> None:
    path = tmp_path / 'segments.json'
    first = SegmentLog(path)
    first.begin()
    first.observe({'event': 'started', 'start_iteration': 0, 'resumed_from': None})
    first.observe({'event': 'checkpoint', 'iteration': 10, 'cpu_seconds': 6.5})
    assert SegmentLog(path).current.status == RUNNING  # what a killed parent leaves behind
    second = SegmentLog(path)
    second.begin()
    second.observe({'event': 'started', 'start_iteration': 10, 'resumed_from': '/w/iter_10.pth'})
    second.finish(status=COMPLETED, wall_seconds=12.0, cpu_seconds=9.0, peak_rss_mb=700.0)
    reread = SegmentLog(path).segments
    assert [(s.status, s.start_iteration, s.last_iteration, s.cpu_seconds) for s in reread] == [
        (INTERRUPTED, 0, 10, 6.5), (COMPLETED, 10, 10, 9.0)]
    assert reread[1].resumed_from == '/w/iter_10.pth' and reread[1].measured_from_outside
