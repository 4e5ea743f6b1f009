"""Measurement: a frozen, JSON-safe value that says how it was obtained."""
from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from frugalbench.measurements.record import Measurement, by_name


def test_round_trips_through_json() -> None:
    m = Measurement('latency_b1', 12.5, 'ms', 'time.perf_counter', None, True,
                    details={'n': np.int64(20), 'p90_ms': np.float32(14.0), 'shape': (1, 3),
                             'ops': Counter({'aten.add': 3}), 'file': Path('/a/b')})
    data = json.loads(json.dumps(m.to_dict()))
    assert data['details'] == {'n': 20, 'p90_ms': 14.0, 'shape': [1, 3], 'ops': {'aten.add': 3},
                               'file': '/a/b'}
    assert Measurement.from_dict(data) == m


def test_is_frozen_and_to_dict_is_a_copy() -> None:
    m = Measurement('params', 10, 'parameters', 'count', details={'a': {'b': 1}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.value = 3  # type: ignore[misc]
    m.to_dict()['details']['a']['b'] = 2
    assert m.details == {'a': {'b': 1}} and m.value == 10.0 and isinstance(m.value, float)


def test_unavailable_carries_a_reason_and_is_never_measured() -> None:
    m = Measurement.unavailable('energy_run', 'J', 'no counter')
    assert m.value is None and not m.measured and m.method == 'unavailable' and not m.available
    with pytest.raises(ValueError, match='no value and no unavailable_reason'):
        Measurement('energy_run', None, 'J', 'rapl')
    with pytest.raises(ValueError, match='measured=True'):
        Measurement('energy_run', None, 'J', 'rapl', measured=True, unavailable_reason='x')
    with pytest.raises(ValueError, match='value and an unavailable_reason'):
        Measurement('energy_run', 1.0, 'J', 'rapl', unavailable_reason='x')


def test_refuses_nan_and_unknown_fields() -> None:
    with pytest.raises(ValueError, match='None and a reason'):
        Measurement('macs', float('nan'), 'MACs', 'x')
    with pytest.raises(ValueError, match='non-finite'):
        Measurement('macs', 1.0, 'MACs', 'x', details={'q': float('inf')})
    with pytest.raises(ValueError, match='unknown measurement fields'):
        Measurement.from_dict({'name': 'a', 'value': 1, 'unit': 'u', 'method': 'm', 'colour': 'red'})


def test_by_name_refuses_duplicates() -> None:
    a = Measurement('macs', 1, 'MACs', 'x')
    assert by_name([a])['macs'] is a
    with pytest.raises(ValueError, match='two measurements'):
        by_name([a, a])
