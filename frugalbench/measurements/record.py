"""`Measurement`: one measured (or estimated, or unavailable) quantity, as a small frozen value.

Every number frugalbench reports about a model's resources is one of these: the value and its
unit, how it was obtained (``method`` and the tool's version), whether it comes from a direct
measurement or a hardware counter (``measured=True``) or is an estimate (``measured=False``),
and what the meter could not see (``unavailable_reason`` when there is no value, ``details``
for skipped operators, repeat counts, percentiles, machine load...).
"""
from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

UNAVAILABLE = 'unavailable'


def json_safe(value: Any) -> Any:
    """Return ``value`` as plain JSON types (dict/list/str/int/float/bool/None).

    Tuples and sets become lists, mappings (Counter, defaultdict) plain dicts with string
    keys, numpy scalars Python numbers, paths strings. NaN and infinities are refused: a
    measurement that could not be taken is ``None`` with a reason, never NaN.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f'non-finite number {value!r} in a measurement: use None and a reason')
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(json_safe(v) for v in value)
    if isinstance(value, PurePath):
        return str(value)
    item = getattr(value, 'item', None)  # numpy and torch scalars
    if callable(item):
        return json_safe(item())
    raise TypeError(f'{type(value).__name__} is not JSON-safe in a measurement: convert it first')


@dataclass(frozen=True)
class Measurement:
    """One quantity about a model run: value + unit + method, and what it could not see.

    ``value`` is None exactly when the quantity could not be obtained; then
    ``unavailable_reason`` says why (one line, naming the fix where there is one).
    """

    name: str
    value: float | None
    unit: str
    method: str
    tool_version: str | None = None
    measured: bool = False
    unavailable_reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.unit or not self.method:
            raise ValueError('a measurement needs a name, a unit and a method')
        if self.value is None:
            if not self.unavailable_reason:
                raise ValueError(f'measurement {self.name!r} has no value and no unavailable_reason')
            if self.measured:
                raise ValueError(f'measurement {self.name!r} has no value but says measured=True')
        else:
            if self.unavailable_reason is not None:
                raise ValueError(f'measurement {self.name!r} has a value and an unavailable_reason')
            value = float(self.value)
            if not math.isfinite(value):
                raise ValueError(f'measurement {self.name!r} is {value!r}: use None and a reason')
            object.__setattr__(self, 'value', value)
        object.__setattr__(self, 'details', json_safe(dict(self.details)))

    @property
    def available(self) -> bool:
        return self.value is not None

    @classmethod
    def unavailable(cls, name: str, unit: str, reason: str, *, method: str = UNAVAILABLE,
                    tool_version: str | None = None,
                    details: Mapping[str, Any] | None = None) -> Measurement:
        """A measurement that could not be taken, with the reason."""
        return cls(name=name, value=None, unit=unit, method=method, tool_version=tool_version,
                   measured=False, unavailable_reason=reason, details=dict(details or {}))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (a deep copy: editing it leaves the measurement unchanged)."""
        return {
            'name': self.name,
            'value': self.value,
            'unit': self.unit,
            'method': self.method,
            'tool_version': self.tool_version,
            'measured': self.measured,
            'unavailable_reason': self.unavailable_reason,
            'details': copy.deepcopy(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        """Rebuild a measurement from `to_dict`'s output (unknown keys are an error)."""
        known = {'name', 'value', 'unit', 'method', 'tool_version', 'measured',
                 'unavailable_reason', 'details'}
        extra = set(data) - known
        if extra:
            raise ValueError(f'unknown measurement fields: {sorted(extra)}')
        return cls(name=data['name'], value=data.get('value'), unit=data['unit'],
                   method=data['method'], tool_version=data.get('tool_version'),
                   measured=bool(data.get('measured', False)),
                   unavailable_reason=data.get('unavailable_reason'),
                   details=dict(data.get('details') or {}))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def by_name(measurements: list[Measurement]) -> dict[str, Measurement]:
    """Index measurements by name (a repeated name is an error: it would hide one)."""
    index: dict[str, Measurement] = {}
    for m in measurements:
        if m.name in index:
            raise ValueError(f'two measurements are named {m.name!r}')
        index[m.name] = m
    return index
