"""Energy: RAPL and NVML code paths on a fake sysfs tree and recorded counter values (the
hardware is absent here), the codecarbon estimate for real, and the protocol's windows."""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from frugalbench.measurements.energy import (JOULES_PER_KWH, BackendUnavailable, CodecarbonMeter,
                                             CounterMeter, Domain, NvmlCounter, RaplCounter, Reading,
                                             counter_delta, joules_between, measure_energy, open_meter)
from frugalbench.measurements.record import by_name

MAX_RANGE = 262_143_328_850  # a real package zone's max_energy_range_uj
HAS_RAPL = Path('/sys/class/powercap/intel-rapl:0').exists()


def _zone(root: Path, zone: str, name: str, energy_uj: int, max_range: int = MAX_RANGE) -> None:
    folder = root / zone
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'name').write_text(name + '\n')
    (folder / 'energy_uj').write_text(f'{energy_uj}\n')
    (folder / 'max_energy_range_uj').write_text(f'{max_range}\n')


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    """A powercap tree as a 1-socket laptop shows it: package, its core/dram sub-zones, psys."""
    root = tmp_path / 'powercap'
    (root / 'intel-rapl').mkdir(parents=True)  # the control type folder, not a zone
    _zone(root, 'intel-rapl:0', 'package-0', MAX_RANGE - 2_000_000)
    _zone(root, 'intel-rapl:0:0', 'core', 500)
    _zone(root, 'intel-rapl:0:1', 'dram', 7_000_000, max_range=65_712_999_613)
    _zone(root, 'intel-rapl:1', 'psys', 9_000_000)
    return root


def test_rapl_reads_package_and_dram_zones_only(powercap: Path) -> None:
    counter = RaplCounter(powercap)
    assert [d.name for d in counter.domains] == ['intel-rapl:0/package-0', 'intel-rapl:0:1/dram']
    assert counter.domains[0].max_range == MAX_RANGE and counter.domains[0].joules_per_unit == 1e-6
    reading = counter.read()
    assert reading.values == {'intel-rapl:0/package-0': MAX_RANGE - 2_000_000,
                              'intel-rapl:0:1/dram': 7_000_000}


def test_rapl_wrap_around_between_two_readings(powercap: Path) -> None:
    counter = RaplCounter(powercap)
    first = counter.read()
    (powercap / 'intel-rapl:0' / 'energy_uj').write_text('3000000\n')  # wrapped: +5 J
    (powercap / 'intel-rapl:0:1' / 'energy_uj').write_text('8500000\n')  # +1.5 J
    second = counter.read()
    joules = joules_between([first, second], counter.domains)
    assert joules['intel-rapl:0/package-0'] == pytest.approx(5.0)
    assert joules['intel-rapl:0:1/dram'] == pytest.approx(1.5)


def test_rapl_meter_end_to_end_on_the_fake_tree(powercap: Path, fast_protocol) -> None:
    meter = CounterMeter(RaplCounter(powercap), fast_protocol)
    with meter:  # idle window: the counters do not move, so idle power is 0 W
        time.sleep(fast_protocol.energy.min_window_seconds + 0.05)
        (powercap / 'intel-rapl:0' / 'energy_uj').write_text('4000000\n')   # +6 J across the wrap
        (powercap / 'intel-rapl:0:1' / 'energy_uj').write_text('9000000\n')  # +2 J
    results = by_name(meter.measurements(images=4))
    run, per_image, co2e = results['energy_run'], results['energy_per_image'], results['co2e_run']
    assert meter.idle_watts == 0.0
    assert run.value == pytest.approx(8.0) and run.method == 'rapl' and run.measured
    assert per_image.value == pytest.approx(2.0) and per_image.unit == 'J'
    assert co2e.value == pytest.approx(8.0 / JOULES_PER_KWH * fast_protocol.energy.grid_intensity_g_per_kwh)
    assert co2e.measured is False and co2e.unit == 'gCO2e'


def test_no_rapl_zones_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match='no RAPL zones'):
        RaplCounter(tmp_path)


class RecordedCounter:
    """Replays recorded (t, value) rows of one counter domain (hardware absent here)."""

    def __init__(self, method: str, domain: Domain, rows: list[tuple[float, float]]) -> None:
        self.method, self.tool_version = method, None
        self.domains = (domain,)
        self._rows = iter(rows)

    def read(self) -> Reading:
        t, value = next(self._rows)
        return Reading(t, {self.domains[0].name: value})


def test_idle_power_is_subtracted(fast_protocol) -> None:
    # recorded package counter (uJ): idle 5 W for 2 s, then 60 J in 10 s across a wrap
    rows = [(100.0, MAX_RANGE - 11_000_000), (102.0, MAX_RANGE - 1_000_000),   # idle window
            (102.0, MAX_RANGE - 1_000_000), (112.0, 59_000_000)]              # run
    counter = RecordedCounter('rapl', Domain('package-0', 1e-6, MAX_RANGE), rows)
    meter = CounterMeter(counter, dataclasses.replace(fast_protocol, energy=dataclasses.replace(
        fast_protocol.energy, min_window_seconds=5.0)), sleep=lambda s: None)
    with meter:
        pass
    results = by_name(meter.measurements(images=5))
    assert meter.idle_watts == pytest.approx(5.0)
    run = results['energy_run']
    assert run.details['gross_joules'] == pytest.approx(60.0)
    assert run.details['idle_joules_subtracted'] == pytest.approx(50.0)
    assert run.value == pytest.approx(10.0) and results['energy_per_image'].value == pytest.approx(2.0)


class RecordedNvml:
    """An `NvmlReader` replaying recorded nvmlDeviceGetTotalEnergyConsumption values (mJ)."""

    name = 'NVIDIA H100 80GB HBM3'

    def __init__(self, rows: list[tuple[float, float]]) -> None:
        self._rows = iter(rows)

    def read_millijoules(self) -> tuple[float, float]:
        return next(self._rows)


def test_nvml_counter_in_millijoules_with_idle_subtraction(fast_protocol) -> None:
    # 60 W idle over 2 s, then 3000 J gross over 10 s (240 W): 2400 J net
    rows = [(0.0, 5_000_000), (2.0, 5_120_000), (2.0, 5_120_000), (12.0, 8_120_000)]
    protocol = dataclasses.replace(fast_protocol, energy=dataclasses.replace(
        fast_protocol.energy, min_window_seconds=10.0))
    meter = CounterMeter(NvmlCounter(RecordedNvml(rows)), protocol, sleep=lambda s: None)
    with meter:
        pass
    results = by_name(meter.measurements(images=100))
    assert meter.idle_watts == pytest.approx(60.0)
    assert results['energy_run'].value == pytest.approx(2400.0)
    assert results['energy_per_image'].value == pytest.approx(24.0)
    assert results['energy_run'].method == 'nvml' and results['energy_run'].measured
    assert results['energy_run'].details['domains'] == ['gpu:NVIDIA H100 80GB HBM3']


def test_a_counter_going_backwards_without_range_is_unavailable(fast_protocol) -> None:
    with pytest.raises(BackendUnavailable, match='went backwards'):
        counter_delta(10.0, 5.0, 0.0)
    rows = [(0.0, 10.0), (1.0, 10.0), (1.0, 10.0), (2.0, 3.0)]
    meter = CounterMeter(RecordedCounter('pyjoules', Domain('d', 1e-6), rows), fast_protocol,
                         sleep=lambda s: None)
    with meter:
        pass
    run = by_name(meter.measurements(images=1))['energy_run']
    assert run.value is None and 'went backwards' in run.unavailable_reason


def test_a_window_shorter_than_the_protocol_minimum_gives_no_figure(fast_protocol) -> None:
    rows = [(0.0, 0.0), (1.0, 0.0), (1.0, 0.0), (1.1, 1_000_000.0)]
    meter = CounterMeter(RecordedCounter('rapl', Domain('p', 1e-6, MAX_RANGE), rows), fast_protocol,
                         sleep=lambda s: None)
    with meter:
        pass
    for m in meter.measurements(images=1):
        assert m.value is None and 'shorter than the protocol minimum' in m.unavailable_reason


@pytest.mark.skipif(HAS_RAPL, reason='this machine has RAPL: codecarbon would measure, not estimate')
def test_codecarbon_estimate_is_labelled_and_follows_cpu_time(fast_protocol) -> None:
    meter = CodecarbonMeter(fast_protocol)
    with meter:
        cpu_before = os.times()
        end = time.monotonic() + 0.4
        while time.monotonic() < end:
            pass
        cpu_seconds = sum(os.times()[:2]) - sum(cpu_before[:2])
    run = by_name(meter.measurements(images=2))['energy_run']
    assert run.method == 'estimate-cpu-time-tdp' and run.measured is False
    assert run.details['codecarbon_cpu_mode'] == 'cpu_load' and run.details['tracking_mode'] == 'process'
    expected = cpu_seconds * run.details['tdp_watts'] / os.cpu_count()
    assert run.value == pytest.approx(expected, rel=0.25)
    assert run.details['ram_joules_estimate_not_included'] > 0


@pytest.mark.skipif(HAS_RAPL, reason='this machine has RAPL')
def test_on_this_machine_energy_is_an_estimate_and_the_window_is_reached(fast_protocol) -> None:
    meter = open_meter(fast_protocol, 'cpu')
    assert [t['backend'] for t in meter.tried][:1] == ['rapl']

    def work() -> int:
        time.sleep(0.05)
        return 2

    results = by_name(measure_energy(work, fast_protocol, meter))
    per_image = results['energy_per_image']
    assert per_image.measured is False and per_image.method.startswith('estimate-')
    assert per_image.details['calls'] >= 0.3 / 0.06
    assert per_image.details['images'] == 2 * per_image.details['calls']
    assert per_image.details['window_seconds'] >= fast_protocol.energy.min_window_seconds
    assert per_image.details['backends_tried'][0]['backend'] == 'rapl'
