"""The evaluation document's headline resource figures, taken from its measurements.

Each figure keeps its unit in its key (``_ms``, ``_mb``, ``joules``); energy carries how it was
obtained (``method``) and whether it is a hardware measurement (``measured``).
"""
from __future__ import annotations

from typing import Any

MB = 1024 * 1024


def _value(by_name: dict[str, dict], name: str, scale: float = 1.0) -> float | None:
    item = by_name.get(name)
    if item is None or item.get('value') is None:
        return None
    return float(item['value']) / scale


def _detail(by_name: dict[str, dict], name: str, key: str) -> Any:
    return ((by_name.get(name) or {}).get('details') or {}).get(key)


def resource_summary(measurements: list[dict[str, Any]], params: int | None = None, *,
                     untrusted_reason: str | None = None) -> dict[str, Any]:
    """``compute``, ``latency``, ``memory``, ``energy`` and ``instructions_per_image`` sections.

    ``compute.trusted`` is False (with ``compute.untrusted_reason``) when submission code ran where
    the counts were taken: such figures are stored and shown, never ranked.
    """
    by = {m['name']: m for m in measurements}
    energy = by.get('energy_per_image') or {}
    counted = _value(by, 'params')
    params = int(counted) if counted is not None else params
    return {
        'compute': {
            'params': params,
            'params_method': (by.get('params') or {}).get('method'),
            'macs': _value(by, 'macs'), 'macs_unit': 'MACs (mmengine get_model_complexity_info)',
            'flops': _value(by, 'flops'), 'flops_unit': 'FLOPs (torch FlopCounterMode, 2 per MAC)',
            'macs_skipped_ops': _detail(by, 'macs', 'skipped_ops'),
            'flops_skipped_ops': _detail(by, 'flops', 'skipped_ops'),
            'input_shape': _detail(by, 'macs', 'input_shape'),
            'trusted': untrusted_reason is None,
            'untrusted_reason': untrusted_reason,
        },
        'latency': {
            'median_ms': _value(by, 'latency_b1'), 'p90_ms': _detail(by, 'latency_b1', 'p90_ms'),
            'iqr_ms': _detail(by, 'latency_b1', 'iqr_ms'),
            'throughput_ms_per_image': _detail(by, 'latency_b1', 'pass_ms_per_image'),
            'end_to_end_median_ms': _value(by, 'latency_b1'),
            'method': (by.get('latency_b1') or {}).get('method'),
            'threads': _detail(by, 'latency_b1', 'torch_threads'),
            'busy': _detail(by, 'latency_b1', 'busy'),
        },
        'memory': {
            'peak_rss_mb': _value(by, 'peak_rss', MB),
            'peak_rss_method': (by.get('peak_rss') or {}).get('method'),
            'model_size_on_disk_mb': _value(by, 'model_size_on_disk', MB),
            'cuda_peak_allocated_mb': _value(by, 'cuda_peak_allocated', MB),
        },
        'energy': {
            'joules_per_image': energy.get('value'),
            'joules_run': _value(by, 'energy_run'),
            'co2e_g_run': _value(by, 'co2e_run'),
            'method': energy.get('method', 'unavailable'),
            'measured': bool(energy.get('measured', False)),
            'unavailable_reason': energy.get('unavailable_reason'),
        },
        'instructions_per_image': _value(by, 'instructions_per_image'),
        'instructions_unavailable_reason': (by.get('instructions_per_image') or {}).get('unavailable_reason'),
    }
