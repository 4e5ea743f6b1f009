"""Energy of a run and per image, from hardware counters where they exist, else an estimate.

Backends, tried in order (the first that works is used; why the others were not is kept):

1. ``rapl``: Intel/AMD RAPL counters in ``/sys/class/powercap/intel-rapl:*/energy_uj``
   (package zones, plus their ``dram`` sub-zones; ``core``/``uncore`` are inside the
   package and ``psys`` contains it, so those are not added). Counters wrap at
   ``max_energy_range_uj``: a reading lower than the previous one adds the range.
2. ``nvml``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta+),
   through pynvml, for CUDA devices (tried first there).
3. ``pyjoules``: pyJoules' RAPL/NVIDIA devices (its "no device" ``TypeError`` and
   ``NoSuchDeviceError`` mean unavailable).
4. ``codecarbon``: ``OfflineEmissionsTracker`` (never the online tracker, which calls the
   network and silently falls back to Canada's grid). Without RAPL it *estimates* CPU energy
   (``process`` tracking: process-tree CPU seconds x TDP / logical CPUs), so the method is
   ``estimate-cpu-time-tdp`` and ``measured`` is False. The value is its CPU figure; its
   constant RAM power guess (and any GPU figure) is kept in details, not added.

Counter backends measure idle power over a short window first and subtract it (idle watts x
run duration) from the run's energy; the figure is ``measured=True``. Windows shorter than
the protocol minimum give no figure (repeat the work: see `measure_energy`). CO2e uses the
protocol's grid intensity. A measured figure and an estimate are never added together.
"""
from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol as TypingProtocol

from frugalbench.measurements.protocol import Protocol
from frugalbench.measurements.record import Measurement

POWERCAP_ROOT = Path('/sys/class/powercap')
JOULES_PER_KWH = 3.6e6
UNIT = 'J'
class BackendUnavailable(Exception):
    """This backend cannot measure on this machine (the message says why)."""


@dataclass(frozen=True)
class Domain:
    """One energy counter: its name, joules per counter unit, and wrap range (0: never wraps)."""

    name: str
    joules_per_unit: float
    max_range: float = 0.0


@dataclass(frozen=True)
class Reading:
    """Counter values of every domain at monotonic time ``t`` (seconds)."""

    t: float
    values: Mapping[str, float]


class EnergyCounter(TypingProtocol):
    """A source of cumulative energy readings (RAPL, NVML, pyJoules, or recorded values)."""

    method: str
    tool_version: str | None

    @property
    def domains(self) -> tuple[Domain, ...]: ...

    def read(self) -> Reading: ...


def counter_delta(before: float, after: float, max_range: float) -> float:
    """Counter increase from ``before`` to ``after``, across at most one wrap-around."""
    delta = after - before
    if delta >= 0:
        return delta
    if max_range <= 0:
        raise BackendUnavailable(f'an energy counter went backwards ({before} -> {after}) '
                                 'and its wrap range is unknown')
    return delta + max_range


def joules_between(readings: Sequence[Reading], domains: Sequence[Domain]) -> dict[str, float]:
    """Joules per domain accumulated over consecutive readings (one wrap allowed between two)."""
    totals = {d.name: 0.0 for d in domains}
    for before, after in zip(readings, readings[1:], strict=False):
        for d in domains:
            raw = counter_delta(before.values[d.name], after.values[d.name], d.max_range)
            totals[d.name] += raw * d.joules_per_unit
    return totals


# ---------------------------------------------------------------- RAPL (powercap sysfs)

class RaplCounter:
    """RAPL package (+ dram) zones under a powercap sysfs root (a fake tree in tests)."""

    method = 'rapl'
    tool_version: str | None = None

    def __init__(self, root: Path = POWERCAP_ROOT) -> None:
        self.root = Path(root)
        zones = sorted(self.root.glob('intel-rapl:*')) if self.root.is_dir() else []
        if not zones:
            raise BackendUnavailable(f'no RAPL zones under {self.root} (no powercap energy counter '
                                     'on this machine, as on most VMs)')
        self._files: dict[str, Path] = {}
        domains: list[Domain] = []
        for zone in zones:
            name = _read_text(zone / 'name')
            top_level = zone.name.count(':') == 1
            if (top_level and name.startswith('package')) or (not top_level and name == 'dram'):
                label = f'{zone.name}/{name}'
                self._files[label] = zone / 'energy_uj'
                max_range = float(_read_text(zone / 'max_energy_range_uj'))
                domains.append(Domain(label, 1e-6, max_range))
        if not domains:
            raise BackendUnavailable(f'RAPL zones under {self.root} have no package zone')
        self._domains = tuple(domains)
        self.read()  # fail now, not mid-run, when energy_uj is root-only

    @property
    def domains(self) -> tuple[Domain, ...]:
        return self._domains

    def read(self) -> Reading:
        t = time.monotonic()
        return Reading(t, {label: float(_read_text(path)) for label, path in self._files.items()})


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except PermissionError as exc:
        raise BackendUnavailable(f'{path} is not readable (root-only since Linux 5.10: run as '
                                 'root or grant read access)') from exc
    except OSError as exc:
        raise BackendUnavailable(f'cannot read {path}: {exc.strerror}') from exc


# ---------------------------------------------------------------- NVML

class NvmlReader(TypingProtocol):
    """Reads one GPU's total energy counter: (monotonic seconds, millijoules)."""

    name: str

    def read_millijoules(self) -> tuple[float, float]: ...


class PynvmlReader:
    """`NvmlReader` for GPU ``index`` through pynvml (``nvidia-ml-py``)."""

    def __init__(self, index: int = 0) -> None:
        try:
            import pynvml
        except ImportError as exc:
            raise BackendUnavailable('pynvml is not installed (pip install nvidia-ml-py)') from exc
        self._nvml = pynvml
        try:
            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(self._handle)
            self.name = name.decode() if isinstance(name, bytes) else str(name)
            self.driver = _text(pynvml.nvmlSystemGetDriverVersion())
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except pynvml.NVMLError as exc:
            raise BackendUnavailable(f'NVML cannot read GPU {index} energy: {exc}') from exc

    def read_millijoules(self) -> tuple[float, float]:
        value = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        return time.monotonic(), float(value)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlCounter:
    """Energy counter of one GPU (millijoules, 64-bit: no wrap in practice)."""

    method = 'nvml'

    def __init__(self, reader: NvmlReader) -> None:
        self.reader = reader
        self.tool_version = _version('nvidia-ml-py')
        self._domains = (Domain(f'gpu:{reader.name}', 1e-3, 0.0),)

    @property
    def domains(self) -> tuple[Domain, ...]:
        return self._domains

    def read(self) -> Reading:
        t, mj = self.reader.read_millijoules()
        return Reading(t, {self._domains[0].name: mj})


# ---------------------------------------------------------------- pyJoules

class PyJoulesCounter:
    """pyJoules' devices (package, dram and GPU domains only: core/uncore are inside package)."""

    method = 'pyjoules'

    def __init__(self) -> None:
        try:
            from pyJoules.device.device_factory import DeviceFactory
            from pyJoules.device.rapl_device import RaplDevice
            from pyJoules.exception import NoSuchDeviceError
        except ImportError as exc:
            raise BackendUnavailable(f'pyJoules cannot be imported: {exc}') from exc
        try:
            from pyJoules.device.nvidia_device import NvidiaGPUDevice, NvidiaGPUDomain
        except ImportError:  # pyJoules' NVIDIA support needs pynvml
            NvidiaGPUDevice = NvidiaGPUDomain = None
        sources = [RaplDevice.available_package_domains, RaplDevice.available_dram_domains]
        if NvidiaGPUDevice is not None:
            sources.append(NvidiaGPUDevice.available_domains)
        domains: list[Any] = []
        try:
            for source in sources:
                try:
                    domains += source()
                except NoSuchDeviceError:
                    continue
            devices = DeviceFactory.create_devices(domains) if domains else []
        except (TypeError, NoSuchDeviceError) as exc:  # TypeError: reduce() of empty iterable
            raise BackendUnavailable(
                f'pyJoules found no energy device ({type(exc).__name__}: {exc})') from exc
        if not devices:
            raise BackendUnavailable('pyJoules found no RAPL or NVIDIA energy device')
        self.tool_version = _version('pyJoules')
        self._devices = devices
        labels: list[Domain] = []
        for device in devices:
            for domain in device.get_configured_domains():
                gpu = NvidiaGPUDomain is not None and isinstance(domain, NvidiaGPUDomain)
                unit = 1e-3 if gpu else 1e-6
                labels.append(Domain(repr(domain), unit, 0.0))
        self._domains = tuple(labels)

    @property
    def domains(self) -> tuple[Domain, ...]:
        return self._domains

    def read(self) -> Reading:
        t = time.monotonic()
        values = [float(v) for device in self._devices for v in device.get_energy()]
        return Reading(t, dict(zip((d.name for d in self._domains), values, strict=True)))


# ---------------------------------------------------------------- meters

def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class _Window:
    started: float | None = None
    stopped: float | None = None

    @property
    def seconds(self) -> float:
        if self.started is None or self.stopped is None:
            raise RuntimeError('the energy meter was not started and stopped')
        return self.stopped - self.started


def _energy_measurements(protocol: Protocol, *, run_joules: float | None, seconds: float,
                         images: int, method: str, tool_version: str | None, measured: bool,
                         details: dict[str, Any]) -> list[Measurement]:
    """energy_run (J), energy_per_image (J) and co2e_run (g), or all three unavailable."""
    if images <= 0:
        raise ValueError(f'images must be positive, not {images}')
    rules = protocol.energy
    details = {**details, 'window_seconds': seconds, 'images': images,
               'min_window_seconds': rules.min_window_seconds,
               'grid_intensity_g_per_kwh': rules.grid_intensity_g_per_kwh,
               'protocol_version': protocol.version}
    reason: str | None = None
    if seconds < rules.min_window_seconds:
        reason = (f'measurement window {seconds:.2f} s is shorter than the protocol minimum '
                  f'{rules.min_window_seconds} s: repeat the work (measure_energy does)')
    elif run_joules is None:
        reason = details.get('reason') or 'no energy figure'
    if reason is not None:
        return [Measurement.unavailable(name, unit, reason, method=method, tool_version=tool_version,
                                        details=details)
                for name, unit in (('energy_run', UNIT), ('energy_per_image', UNIT), ('co2e_run', 'gCO2e'))]
    assert run_joules is not None
    co2e = run_joules / JOULES_PER_KWH * rules.grid_intensity_g_per_kwh
    return [
        Measurement('energy_run', run_joules, UNIT, method, tool_version, measured, details=details),
        Measurement('energy_per_image', run_joules / images, UNIT, method, tool_version, measured,
                    details=details),
        Measurement('co2e_run', co2e, 'gCO2e', f'{method} x grid intensity', tool_version, False,
                    details=details),
    ]


class CounterMeter:
    """Measures a window with an `EnergyCounter`: idle power first, then the run, polled.

    Use as a context manager around the work (idle window, start, poll, stop), then call
    `measurements` with the number of images processed.
    """

    def __init__(self, counter: EnergyCounter, protocol: Protocol, *,
                 sleep: Callable[[float], None] = time.sleep,
                 tried: list[dict[str, str]] | None = None) -> None:
        self.counter = counter
        self.protocol = protocol
        self.method = counter.method
        self.measured = True
        self.tried = tried or []
        self._sleep = sleep
        self.idle_watts: float | None = None
        self.readings: list[Reading] = []
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._lock = threading.Lock()

    def measure_idle(self) -> float:
        """Average power over the protocol's idle window, in watts."""
        first = self.counter.read()
        self._sleep(self.protocol.energy.idle_window_seconds)
        second = self.counter.read()
        joules = sum(joules_between([first, second], self.counter.domains).values())
        seconds = second.t - first.t
        self.idle_watts = joules / seconds if seconds > 0 else 0.0
        return self.idle_watts

    def start(self) -> None:
        self.readings = [self.counter.read()]
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll, name='energy-poll', daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.protocol.energy.poll_seconds):
            reading = self.counter.read()
            with self._lock:
                self.readings.append(reading)

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        with self._lock:
            self.readings.append(self.counter.read())

    def __enter__(self) -> CounterMeter:
        self.measure_idle()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def measurements(self, images: int) -> list[Measurement]:
        if len(self.readings) < 2:
            raise RuntimeError('the energy meter was not started and stopped')
        seconds = self.readings[-1].t - self.readings[0].t
        details: dict[str, Any] = {'idle_watts': self.idle_watts, 'readings': len(self.readings),
                                   'domains': [d.name for d in self.counter.domains],
                                   'backends_tried': self.tried}
        try:
            per_domain = joules_between(self.readings, self.counter.domains)
        except BackendUnavailable as exc:
            details['reason'] = str(exc)
            run: float | None = None
        else:
            gross = sum(per_domain.values())
            idle = (self.idle_watts or 0.0) * seconds
            details.update({'gross_joules': gross, 'idle_joules_subtracted': idle,
                            'joules_per_domain': per_domain, 'net_clamped_to_zero': gross < idle})
            run = max(0.0, gross - idle)
        return _energy_measurements(self.protocol, run_joules=run, seconds=seconds, images=images,
                                    method=self.method, tool_version=self.counter.tool_version,
                                    measured=True, details=details)


def codecarbon_method(cpu_mode: str, tracking_mode: str) -> tuple[str, bool]:
    """Our label for codecarbon's CPU power mode, and whether that is a measurement."""
    if cpu_mode == 'intel_rapl':
        return 'codecarbon-rapl', True
    if cpu_mode == 'cpu_load':
        return ('estimate-cpu-time-tdp' if tracking_mode == 'process' else 'estimate-cpu-load-tdp'), False
    return f'estimate-{cpu_mode.replace("_", "-")}', False


class CodecarbonMeter:
    """codecarbon's `OfflineEmissionsTracker` (process tracking by default; no network)."""

    def __init__(self, protocol: Protocol, *, tried: list[dict[str, str]] | None = None) -> None:
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError as exc:
            raise BackendUnavailable(f'codecarbon cannot be imported: {exc}') from exc
        rules = protocol.energy
        logging.getLogger('codecarbon').setLevel(logging.ERROR)
        self.protocol = protocol
        self.tried = tried or []
        self.tool_version = _version('codecarbon')
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=rules.country_iso_code,
            force_carbon_intensity_g_co2e_kwh=rules.grid_intensity_g_per_kwh,
            tracking_mode=rules.codecarbon_tracking_mode,
            measure_power_secs=rules.poll_seconds, output_methods=[],  # nothing written or sent
            log_level='error', allow_multiple_runs=True)
        self._window = _Window()
        self.cpu_mode = 'unknown'  # codecarbon picks its CPU power mode in start()
        self.tdp_watts: float | None = None
        self.method, self.measured = 'codecarbon', False

    def _detect_mode(self) -> None:
        cpu = next((h for h in getattr(self._tracker, '_hardware', []) if type(h).__name__ == 'CPU'), None)
        self.cpu_mode = str(getattr(cpu, '_mode', 'unknown'))
        tdp = getattr(cpu, '_tdp', None)
        self.tdp_watts = float(tdp) if isinstance(tdp, (int, float)) else None
        self.method, self.measured = codecarbon_method(self.cpu_mode,
                                                       self.protocol.energy.codecarbon_tracking_mode)

    def __enter__(self) -> CodecarbonMeter:
        self._tracker.start()
        self._window.started = time.monotonic()
        self._detect_mode()
        return self

    def __exit__(self, *exc: object) -> None:
        self._tracker.stop()
        self._window.stopped = time.monotonic()

    def measurements(self, images: int) -> list[Measurement]:
        data = self._tracker.final_emissions_data
        cpu_j = float(data.cpu_energy) * JOULES_PER_KWH
        gpu_j = float(data.gpu_energy) * JOULES_PER_KWH
        details: dict[str, Any] = {
            'codecarbon_cpu_mode': self.cpu_mode,
            'tdp_watts': self.tdp_watts,
            'tracking_mode': data.tracking_mode,
            'cpu_model': data.cpu_model,
            'cpu_joules': cpu_j, 'gpu_joules_not_included': gpu_j,
            'ram_joules_estimate_not_included': float(data.ram_energy) * JOULES_PER_KWH,
            'codecarbon_duration_seconds': float(data.duration),
            'idle_subtracted': False,
            'backends_tried': self.tried,
        }
        # the CPU figure only: codecarbon's GPU figure would come from NVML (a measurement)
        return _energy_measurements(self.protocol, run_joules=cpu_j, seconds=self._window.seconds,
                                    images=images, method=self.method, tool_version=self.tool_version,
                                    measured=self.measured, details=details)


class CpuTimeEstimate:
    """An energy *estimate* of a process group taken from outside: its CPU seconds x TDP / logical CPUs.

    The same formula as codecarbon's ``process`` tracking (``estimate-cpu-time-tdp``), applied by the
    parent to the CPU time the kernel accounted to the model process's group, so nothing the model
    process does can change it. The TDP comes from codecarbon's CPU database (`cpu_tdp_watts`).
    """

    def __init__(self, protocol: Protocol, cpu_seconds: Callable[[], float | None], *,
                 tried: list[dict[str, str]] | None = None) -> None:
        self.protocol = protocol
        self.tried = tried or []
        self.method, self.measured = 'estimate-cpu-time-tdp', False
        self.tool_version = _version('codecarbon')
        self._cpu_seconds = cpu_seconds
        self._window = _Window()
        self._cpu: list[float | None] = []

    def measure_idle(self) -> float:
        return 0.0  # an estimate from CPU time has no idle share to subtract

    def start(self) -> None:
        self._cpu = [self._cpu_seconds()]
        self._window.started = time.monotonic()

    def stop(self) -> None:
        self._window.stopped = time.monotonic()
        self._cpu.append(self._cpu_seconds())

    def __enter__(self) -> CpuTimeEstimate:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def measurements(self, images: int) -> list[Measurement]:
        watts, source = cpu_tdp_watts()
        cpus = os.cpu_count() or 1
        details: dict[str, Any] = {'tdp_watts': watts, 'tdp_source': source, 'logical_cpus': cpus,
                                   'backends_tried': self.tried, 'idle_subtracted': False}
        before, after = (self._cpu + [None, None])[:2]
        run: float | None = None
        if before is None or after is None:
            details['reason'] = 'the CPU time of the model process could not be read'
        else:
            details['cpu_seconds'] = after - before
            run = (after - before) * watts / cpus
        return _energy_measurements(self.protocol, run_joules=run, seconds=self._window.seconds, images=images,
                                    method=self.method, tool_version=self.tool_version, measured=False,
                                    details=details)


_TDP_CACHE: tuple[float, str] | None = None


def cpu_tdp_watts() -> tuple[float, str]:
    """This CPU's TDP in watts and where it came from (codecarbon's database; cached per process)."""
    global _TDP_CACHE
    if _TDP_CACHE is None:
        try:
            logging.getLogger('codecarbon').setLevel(logging.ERROR)
            from codecarbon.core.cpu import TDP
            tdp = TDP()
            if tdp.tdp:
                _TDP_CACHE = float(tdp.tdp), f'codecarbon CPU database ({tdp.model})'
            else:
                raise ValueError('unknown CPU')
        except Exception:  # noqa: BLE001 - the database is optional; the default is stated
            cpus = os.cpu_count() or 1
            _TDP_CACHE = 4.0 * cpus, f'default 4 W per logical CPU x {cpus} (CPU model unknown)'
    return _TDP_CACHE


Meter = CounterMeter | CodecarbonMeter | CpuTimeEstimate


def open_outside_meter(protocol: Protocol, device: str, cpu_seconds: Callable[[], float | None], *,
                       powercap_root: Path = POWERCAP_ROOT) -> CounterMeter | CpuTimeEstimate:
    """A meter the parent reads while a child works: a hardware counter, else `CpuTimeEstimate`."""
    tried: list[dict[str, str]] = []
    factories: list[tuple[str, Callable[[], EnergyCounter]]] = [('rapl', lambda: RaplCounter(powercap_root))]
    if device.startswith('cuda'):
        index = int(device.split(':')[1]) if ':' in device else 0
        factories.insert(0, ('nvml', lambda: NvmlCounter(PynvmlReader(index))))
    for name, factory in factories:
        try:
            return CounterMeter(factory(), protocol, tried=tried)
        except BackendUnavailable as exc:
            tried.append({'backend': name, 'reason': str(exc)})
    return CpuTimeEstimate(protocol, cpu_seconds, tried=tried)


def open_meter(protocol: Protocol, device: str = 'cpu', *, powercap_root: Path = POWERCAP_ROOT,
               gpu_index: int = 0) -> Meter:
    """The first backend that works here for ``device`` ('cpu' or 'cuda[:N]').

    CPU: RAPL, pyJoules, codecarbon. CUDA: NVML, RAPL, pyJoules, codecarbon. The reasons
    the skipped backends gave are kept in ``meter.tried`` (and in each measurement's details).
    """
    tried: list[dict[str, str]] = []
    factories: list[tuple[str, Callable[[], EnergyCounter]]] = [('rapl', lambda: RaplCounter(powercap_root))]
    if device.startswith('cuda'):
        index = int(device.split(':')[1]) if ':' in device else gpu_index
        factories.insert(0, ('nvml', lambda: NvmlCounter(PynvmlReader(index))))
    factories.append(('pyjoules', PyJoulesCounter))
    for name, factory in factories:
        try:
            counter = factory()
        except BackendUnavailable as exc:
            tried.append({'backend': name, 'reason': str(exc)})
            continue
        return CounterMeter(counter, protocol, tried=tried)
    return CodecarbonMeter(protocol, tried=tried)


def measure_energy(work: Callable[[], int], protocol: Protocol, meter: Meter) -> list[Measurement]:
    """Run ``work`` (returns the images it processed) repeatedly inside ``meter`` until the
    protocol's minimum window is reached; energy per run covers all repeats."""
    images = 0
    calls = 0
    with meter:
        started = time.monotonic()
        while calls == 0 or time.monotonic() - started < protocol.energy.min_window_seconds:
            images += work()
            calls += 1
    results = meter.measurements(images)
    return [_with_detail(m, 'calls', calls) for m in results]


def _with_detail(m: Measurement, key: str, value: Any) -> Measurement:
    return Measurement(m.name, m.value, m.unit, m.method, m.tool_version, m.measured,
                       m.unavailable_reason, {**m.details, key: value})

