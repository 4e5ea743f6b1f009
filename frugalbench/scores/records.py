"""RunRecord: the plain, typed view of one stored run that the scoring functions work on.

The store turns its rows into RunRecords (``RunRecord.from_dict`` accepts a flat row whose
resource columns are named by ``Resource.key``); nothing here knows about the database.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from numbers import Integral, Real
from typing import Any

from frugalbench.errors import UsageError
from frugalbench.scores.frugality import RESOURCES, check_resource_value, get_resource

STATUS_OK = 'ok'
BUDGET_STATES = ('verified', 'recorded', 'declared')  # docs/metrics.md, "Budget states"
UNTRUSTED_WITHOUT_REASON = 'compute counts taken where submission code ran (no reason stored)'


@dataclass(frozen=True)
class RunRecord:
    """One evaluated run: identity, provenance, accuracy and resource values.

    ``miou`` is a fraction in [0, 1]; ``resources`` maps resource keys (see ``RESOURCES``) to
    values in the resource's unit, None where not measured. ``budget_state`` says where the
    training figures come from: ``verified`` (this harness trained the model: observed),
    ``recorded`` (a harness training record shipped in the submission folder, checkpoint hash
    matching, not re-verified) or ``declared`` (the manifest); ``budget_verified`` is True for
    ``verified`` only. ``energy_measured`` is True when energy came from a hardware
    counter, False when it was estimated. ``annotation_type`` uses the names of submission.yaml
    (full, coarse, scribble, points, image-tags, none). ``compute_trusted`` is False when the
    run's compute counts (params, MACs) were taken where submission code ran (``untrusted_reason``
    says so): they are shown, never ranked. ``measurement_protocol_version`` is the version of the
    measurement protocol its latency, memory and energy were measured under (None: unknown, e.g.
    a failed run). See ``frugalbench.scores.trust``.
    """

    run_id: str
    submission: str
    benchmark: str
    protocol_version: int
    hardware_fingerprint: str
    miou: float | None
    miou_ci: tuple[float, float] | None = None
    resources: Mapping[str, float | None] = field(default_factory=dict, hash=False)
    technique: str = ''
    energy_measured: bool = False
    annotation_type: str | None = None
    budget_verified: bool = False
    status: str = STATUS_OK
    budget_state: str = ''  # '' : from budget_verified ('verified' or 'declared')
    compute_trusted: bool = True
    untrusted_reason: str | None = None
    measurement_protocol_version: int | None = 1
    zero_shot_split: str | None = None   # the zero-shot split a verified training ran under
    training_free: bool = False          # declared: no training image of this benchmark, annotation none

    def __post_init__(self) -> None:
        if not isinstance(self.compute_trusted, bool):
            raise UsageError(f'run {self.run_id}: compute_trusted must be true or false, '
                             f'got {self.compute_trusted!r}')
        if self.compute_trusted:
            object.__setattr__(self, 'untrusted_reason', None)
        elif not self.untrusted_reason:
            object.__setattr__(self, 'untrusted_reason', UNTRUSTED_WITHOUT_REASON)
        version = self.measurement_protocol_version
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, Integral) or version < 1:
                raise UsageError(f'run {self.run_id}: measurement_protocol_version must be an integer >= 1 '
                                 f'or None, got {version!r}')
            object.__setattr__(self, 'measurement_protocol_version', int(version))
        state = self.budget_state or ('verified' if self.budget_verified else 'declared')
        if state not in BUDGET_STATES:
            raise UsageError(f'run {self.run_id}: budget_state must be one of {", ".join(BUDGET_STATES)}, '
                             f'got {self.budget_state!r}')
        object.__setattr__(self, 'budget_state', state)
        object.__setattr__(self, 'budget_verified', state == 'verified')
        if self.miou is not None and not (isinstance(self.miou, Real) and 0.0 <= self.miou <= 1.0):
            raise UsageError(f'run {self.run_id}: miou must be a fraction in [0, 1], got {self.miou!r}')
        if self.miou is not None:
            object.__setattr__(self, 'miou', float(self.miou))
        if self.miou_ci is not None:
            low, high = (float(v) for v in self.miou_ci)
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise UsageError(f'run {self.run_id}: miou_ci must be (low, high) with low <= high, '
                                 f'got {self.miou_ci!r}')
            object.__setattr__(self, 'miou_ci', (low, high))
        resources: dict[str, float | None] = {}
        for key, value in self.resources.items():
            name = get_resource(key).name
            resources[name] = None if value is None else check_resource_value(value, name)
        object.__setattr__(self, 'resources', resources)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def train_images(self) -> float | None:
        return self.resources.get('train_images')

    def resource_value(self, name: str) -> float | None:
        """The value of resource ``name``, None when missing."""
        return self.resources.get(get_resource(name).key)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> RunRecord:
        """Build from a mapping with the field names; resource values may sit under
        ``resources`` or as top-level keys named by each ``Resource.key``. Other keys are ignored.
        """
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in row.items() if k in names and k != 'resources'}
        resources = dict(row.get('resources') or {})
        for resource in RESOURCES.values():
            if resource.key in row and resource.key not in resources:
                resources[resource.key] = row[resource.key]
        resources = {k: None if _is_nan(v) else v for k, v in resources.items()}
        if 'compute_trusted' in kwargs:  # numpy and pandas booleans from data frames
            kwargs['compute_trusted'] = bool(kwargs['compute_trusted'])
        version = kwargs.get('measurement_protocol_version')
        if isinstance(version, Real) and not isinstance(version, bool):  # a float column: 2.0, or NaN for none
            kwargs['measurement_protocol_version'] = None if _is_nan(version) else (
                int(version) if float(version).is_integer() else version)
        if kwargs.get('untrusted_reason') is not None and not isinstance(kwargs['untrusted_reason'], str):
            kwargs['untrusted_reason'] = None  # NaN: none stored
        if kwargs.get('miou_ci') is not None:
            kwargs['miou_ci'] = tuple(kwargs['miou_ci'])
        return cls(**kwargs, resources=resources)


def _is_nan(value: Any) -> bool:
    """True for a float NaN (how data frames spell a missing value)."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isnan(value)
