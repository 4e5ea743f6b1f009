"""The measurement protocol: versioned constants, loaded from `protocol.yaml` into a frozen object.

The file names every number that decides how a resource is measured (warm-up, repeats,
minimum durations, thread counts, busy-machine thresholds, energy windows, grid intensity).
Its ``version`` is stored with every result; ``source_hash`` is the sha256 of the file.
Tests and callers derive variants with `dataclasses.replace`.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from frugalbench.errors import BenchmarkError

DEFAULT_PROTOCOL_FILE = Path(__file__).resolve().parent / 'protocol.yaml'


@dataclass(frozen=True)
class LatencyProtocol:
    warmup: int
    min_repeats: int
    min_seconds: float
    batch_size: int
    throughput_batch_size: int
    threads: int


@dataclass(frozen=True)
class QueriesProtocol:
    warmup: int
    determinism_images: int
    max_changed_pixels: int


@dataclass(frozen=True)
class InstructionsProtocol:
    event: str
    threads: int
    images: int
    attach_timeout_seconds: float


@dataclass(frozen=True)
class BusyThresholds:
    load_per_cpu: float
    other_cpu_fraction: float
    steal_fraction: float


@dataclass(frozen=True)
class EnergyProtocol:
    min_window_seconds: float
    idle_window_seconds: float
    poll_seconds: float
    grid_intensity_g_per_kwh: float
    country_iso_code: str
    codecarbon_tracking_mode: str


@dataclass(frozen=True)
class Protocol:
    version: int
    queries: QueriesProtocol
    latency: LatencyProtocol
    instructions: InstructionsProtocol
    busy: BusyThresholds
    energy: EnergyProtocol
    source_hash: str = ''

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_Section = TypeVar('_Section')
_SECTIONS: dict[str, type] = {
    'queries': QueriesProtocol,
    'latency': LatencyProtocol,
    'instructions': InstructionsProtocol,
    'busy': BusyThresholds,
    'energy': EnergyProtocol,
}
_NON_NEGATIVE = {'warmup', 'determinism_images', 'max_changed_pixels'}


def _section(source: Path, name: str, cls: type[_Section], raw: Any) -> _Section:
    if not isinstance(raw, dict):
        raise BenchmarkError(f'protocol file {source}: section {name!r} must be a mapping')
    expected = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
    missing, extra = set(expected) - set(raw), set(raw) - set(expected)
    if missing or extra:
        raise BenchmarkError(f'protocol file {source}: section {name!r} lacks {sorted(missing)} '
                             f'or has unknown keys {sorted(extra)}')
    values: dict[str, Any] = {}
    for key, kind in expected.items():
        value = raw[key]
        if kind == 'str':
            if not isinstance(value, str) or not value:
                raise BenchmarkError(f'protocol file {source}: {name}.{key} must be a non-empty string')
        elif kind == 'int':
            if isinstance(value, bool) or not isinstance(value, int):
                raise BenchmarkError(f'protocol file {source}: {name}.{key} must be an integer')
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BenchmarkError(f'protocol file {source}: {name}.{key} must be a number')
            value = float(value)
        if kind != 'str' and (value < 0 or (value == 0 and key not in _NON_NEGATIVE)):
            raise BenchmarkError(f'protocol file {source}: {name}.{key} must be positive, not {value}')
        values[key] = value
    return cls(**values)


def load_protocol(path: str | Path | None = None) -> Protocol:
    """Read and check a protocol file (default: the bundled `protocol.yaml`)."""
    source = Path(path) if path is not None else DEFAULT_PROTOCOL_FILE
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise BenchmarkError(f'cannot read protocol file {source}: {exc.strerror}') from exc
    raw = yaml.safe_load(data)
    if not isinstance(raw, dict):
        raise BenchmarkError(f'protocol file {source} is not a YAML mapping')
    extra = set(raw) - set(_SECTIONS) - {'version'}
    if extra:
        raise BenchmarkError(f'protocol file {source}: unknown sections {sorted(extra)}')
    version = raw.get('version')
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BenchmarkError(f'protocol file {source}: `version` must be an integer >= 1')
    sections: dict[str, Any] = {name: _section(source, name, cls, raw.get(name)) for name, cls in _SECTIONS.items()}
    if sections['energy'].codecarbon_tracking_mode not in ('process', 'machine'):
        raise BenchmarkError(f'protocol file {source}: energy.codecarbon_tracking_mode must be '
                             "'process' or 'machine'")
    return Protocol(version=version, source_hash=hashlib.sha256(data).hexdigest(), **sections)
