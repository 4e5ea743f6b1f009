"""The frugality score of Evchenko et al. and the registry of resources it is computed on.

Evchenko, Vanschoren, Hoos, Schoenauer, Sebag, "Frugal Machine Learning", arXiv:2111.03731 (2021):

    frugality = A - w / (1 + 1/R)

with A the accuracy measure (here the dataset-level mIoU as a fraction in [0, 1]), R >= 0 the
resource and w >= 0 the weight of the resource against accuracy. The penalty w / (1 + 1/R) grows
from 0 (R = 0) towards w (R -> infinity) and equals w/2 at R = 1. Since it saturates once R >> 1,
R is the resource divided by a stated reference value (a constant of the benchmark file), so a
run's score never depends on which other runs are in the database.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Literal

from frugalbench.errors import BenchmarkError, UsageError

ResourceKind = Literal['data', 'training', 'compute', 'memory', 'latency', 'energy']


@dataclass(frozen=True)
class Resource:
    """One resource a frugality score can be computed on (lower is always better)."""

    name: str
    unit: str
    key: str  # the key of RunRecord.resources (and the store's column) that holds its value
    description: str
    kind: ResourceKind
    training_budget: bool = False  # the value is verified only when the harness trained the model
    hardware_dependent: bool = False  # compare only runs measured on the same hardware
    energy: bool = False  # measured and estimated values are never compared
    lower_is_better: bool = True
    compute_count: bool = False  # counted on the model: ranked only for runs whose compute is trusted
    protocol_measured: bool = False  # measured under the measurement protocol: one version per group


def _resource(name: str, unit: str, description: str, kind: ResourceKind, **flags: bool) -> Resource:
    return Resource(name=name, unit=unit, key=name, description=description, kind=kind, **flags)


RESOURCES: Mapping[str, Resource] = {r.name: r for r in (
    _resource('train_images', 'images', 'labelled training images used', 'data',
              training_budget=True),
    _resource('annotation_seconds', 's', 'estimated human time to annotate the training set',
              'data', training_budget=True),
    _resource('train_energy_joules', 'J', 'energy spent training', 'energy',
              training_budget=True, hardware_dependent=True, energy=True),
    _resource('train_seconds', 's', 'wall-clock training time', 'training',
              training_budget=True, hardware_dependent=True),
    _resource('macs', 'MACs', 'multiply-accumulates per image at the evaluation size', 'compute',
              compute_count=True),
    _resource('params', 'parameters', 'number of model parameters', 'memory', compute_count=True),
    _resource('latency_ms', 'ms', 'inference latency per image', 'latency',
              hardware_dependent=True, protocol_measured=True),
    _resource('peak_rss_mb', 'MB', 'peak resident memory during inference', 'memory',
              hardware_dependent=True, protocol_measured=True),
    _resource('energy_joules_per_image', 'J/image', 'inference energy per image', 'energy',
              hardware_dependent=True, energy=True, protocol_measured=True),
)}


def get_resource(name: str) -> Resource:
    """The resource called ``name``, or a UsageError with a 'did you mean' and the list."""
    if name in RESOURCES:
        return RESOURCES[name]
    close = difflib.get_close_matches(name, RESOURCES, n=1)
    hint = f' Did you mean {close[0]!r}?' if close else ''
    raise UsageError(f'unknown resource {name!r}.{hint} Known: {", ".join(RESOURCES)}')


def check_weight(w: float) -> float:
    """``w`` as a float, or a UsageError unless it is a finite number >= 0."""
    if isinstance(w, bool) or not isinstance(w, Real) or not math.isfinite(w) or w < 0:
        raise UsageError(f'weight w must be a finite number >= 0, got {w!r}')
    return float(w)


def check_reference(reference: float, resource: str = 'the resource') -> float:
    """``reference`` as a float, or a UsageError unless it is a finite number > 0."""
    if (isinstance(reference, bool) or not isinstance(reference, Real)
            or not math.isfinite(reference) or reference <= 0):
        raise UsageError(f'reference value for {resource} must be a finite number > 0, got '
                         f'{reference!r}: set it under references: in the benchmark file')
    return float(reference)


def check_accuracy(accuracy: float) -> float:
    """``accuracy`` as a float, or a UsageError unless it lies in [0, 1] (a fraction, not a %)."""
    if (isinstance(accuracy, bool) or not isinstance(accuracy, Real)
            or not 0.0 <= accuracy <= 1.0):
        raise UsageError(f'accuracy must be a fraction in [0, 1] (not a percentage), got {accuracy!r}')
    return float(accuracy)


def check_resource_value(value: float, resource: str = 'the resource') -> float:
    """``value`` as a float, or a UsageError unless it is a finite number >= 0."""
    if (isinstance(value, bool) or not isinstance(value, Real)
            or not math.isfinite(value) or value < 0):
        raise UsageError(f'value of {resource} must be a finite number >= 0, got {value!r}')
    return float(value)


def normalized_resource(resource_value: float | None, reference: float,
                        resource: str = 'the resource') -> float | None:
    """R = resource_value / reference; None when the value is missing."""
    reference = check_reference(reference, resource)
    if resource_value is None:
        return None
    return check_resource_value(resource_value, resource) / reference


def penalty(R: float, w: float) -> float:
    """w / (1 + 1/R), the resource penalty; exactly 0 at R = 0."""
    w = check_weight(w)
    R = check_resource_value(R, 'R')
    if R == 0.0:
        return 0.0
    return w / (1.0 + 1.0 / R)


def score_from_ratio(accuracy: float, R: float | None, w: float) -> float | None:
    """A - w / (1 + 1/R) for an already normalised R; None when R is missing."""
    accuracy = check_accuracy(accuracy)
    w = check_weight(w)
    if R is None:
        return None
    return accuracy - penalty(R, w)


def frugality_score(accuracy: float, resource_value: float | None, reference: float,
                    w: float) -> float | None:
    """The frugality score A - w / (1 + 1/R) with R = resource_value / reference.

    ``accuracy`` is a fraction in [0, 1]; a missing resource value (None) gives None: the run is
    not ranked on that resource. R = 0 gives a penalty of exactly 0.
    """
    return score_from_ratio(accuracy, normalized_resource(resource_value, reference), w)


def parse_references(raw: Mapping[str, object] | None) -> dict[str, float]:
    """Validate a benchmark file's ``references:`` mapping (resource name -> reference value).

    Raises BenchmarkError naming the bad entry; numeric strings such as ``1e9`` (which YAML 1.1
    reads as a string) are accepted.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise BenchmarkError(f'references: must map resource names to numbers, got {raw!r}')
    references: dict[str, float] = {}
    for name, value in raw.items():
        try:
            resource = get_resource(str(name)).name
            if isinstance(value, str):
                value = _number_from_string(value, resource)
            references[resource] = check_reference(value, resource)  # type: ignore[arg-type]
        except UsageError as exc:
            raise BenchmarkError(f'references: {exc}') from None
    return references


def _number_from_string(text: str, resource: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f'reference value for {resource} must be a number, got {text!r}') from None
