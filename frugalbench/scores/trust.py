"""Which of a run's figures a ranking may use, and which runs its figures may be compared with.

This is the one place the rankings, the Pareto fronts and the budget tracks ask:

- ``ranked_value(run, resource)``: the value a ranking, a front or a track limit may use, or None
  with the reason. A run whose compute is not trusted (``RunRecord.compute_trusted`` False: the
  submission ran its own code, ``custom_imports``, where its parameters and MACs were counted, or
  could build weights the checkpoint does not hold) keeps its counts stored and shown, but is
  never ranked, put on a Pareto front or admitted to a budget track on the compute counts
  (``Resource.compute_count``: params, MACs; FLOPs are never a ranking resource). Its accuracy
  and the resources measured from outside the model process (latency, memory, energy,
  instructions, training data and annotation budgets) are ranked as any other run's.
- ``measurement_group(run, resource)``: the part of a ranking group's label that keeps runs of
  different measurement protocol versions apart on the resources measured under that protocol
  (``Resource.protocol_measured``: latency, peak memory, inference energy). Protocol v2 times
  every accuracy-pass query from the parent over the real test images and reads memory from the
  kernel for the whole model process; v1 timed one repeated image inside the model process: the
  figures are not the same quantity, so v1 and v2 runs are ranked in separate groups.
"""
from __future__ import annotations

from typing import NamedTuple

from frugalbench.scores.frugality import RESOURCES, Resource, get_resource
from frugalbench.scores.records import RunRecord

COMPUTE_COUNTS = tuple(name for name, res in RESOURCES.items() if res.compute_count)  # params, macs


class RankedValue(NamedTuple):
    """A resource value a ranking may use (``value``), or None and ``reason`` saying why not."""

    value: float | None
    reason: str | None


def ranked_value(run: RunRecord, resource: str | Resource) -> RankedValue:
    """The value of ``resource`` that rankings, Pareto fronts and track limits may use for ``run``.

    None with the reason when the run has no value, or when the resource is a compute count and
    the run's compute is not trusted (its value is still stored and shown, never ranked).
    """
    res = resource if isinstance(resource, Resource) else get_resource(resource)
    if res.compute_count and not run.compute_trusted:
        return RankedValue(None, f'{res.name} is not ranked: untrusted compute counts ({run.untrusted_reason})')
    value = run.resource_value(res.name)
    if value is None:
        return RankedValue(None, f'no {res.name} value')
    return RankedValue(value, None)


def untrusted_resources(run: RunRecord) -> tuple[str, ...]:
    """The ranking resources ``run`` has a value for but is never ranked on (its compute counts
    when its compute is not trusted); empty for a trusted run."""
    return () if run.compute_trusted else COMPUTE_COUNTS


def measurement_group(run: RunRecord, resource: str | Resource) -> str | None:
    """``measurement=v<N>`` for a resource measured under the measurement protocol (latency,
    memory, energy), so that runs of different protocol versions are never ranked together;
    None for the other resources (counts, training budgets), which the protocol does not measure."""
    res = resource if isinstance(resource, Resource) else get_resource(resource)
    if not res.protocol_measured:
        return None
    version = run.measurement_protocol_version
    return f'measurement=v{version}' if version is not None else 'measurement=unknown'
