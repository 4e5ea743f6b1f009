"""Budget tracks: named resource limits declared in a benchmark file's ``tracks:`` mapping.

    tracks:
      open: {description: no limit}            # always present, never limited
      tiny: {max_params: 1000000, max_macs: 2.0e+9}
      10-shot: {max_train_images: 10}
      points: {allowed_annotations: [points]}   # or annotation_types: [points]
      zero-shot: {max_train_images: 0}

A limit ``max_<resource>`` exists for every resource in ``RESOURCES``; limits are inclusive, and a
run whose limited resource is unknown does not qualify, nor does a run whose compute is not
trusted on a limit of its compute counts (``frugalbench.scores.trust.ranked_value``). Annotation
types are the names of submission.yaml (full, coarse, scribble, points, image-tags, none),
compared as given.

Limits on training-budget resources (training images, annotation time, training time and
energy) and annotation limits count only for runs whose budget is in a state the track admits
(``budget_states``, default ``[verified]``: the harness trained the model). A benchmark file may
admit ``recorded`` budgets too (a harness training record shipped with the submission, checkpoint
hash matching, not re-verified: it can be forged) or even ``declared`` ones::

      10-images: {max_train_images: 10, budget_states: [verified, recorded]}

A track object of the benchmark schema (anything with pydantic's ``model_dump``) is read through
the fields its file set, so a default "every annotation type" list is not taken as a limit.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real

from frugalbench.errors import BenchmarkError, UsageError
from frugalbench.scores.frugality import RESOURCES, get_resource
from frugalbench.scores.records import RunRecord
from frugalbench.scores.trust import ranked_value

OPEN = 'open'
_LIMIT_PREFIX = 'max_'
_ANNOTATION_KEYS = ('allowed_annotations', 'annotation_types')  # two spellings, one meaning
_OTHER_KEYS = ('description', *_ANNOTATION_KEYS, 'requires_verified_budget', 'budget_states')
_STATES = ('verified', 'recorded', 'declared')


@dataclass(frozen=True)
class Track:
    """A named budget: upper limits per resource and the annotation types it admits."""

    name: str
    description: str = ''
    limits: Mapping[str, float] = field(default_factory=dict, hash=False)  # resource -> max value
    allowed_annotations: frozenset[str] | None = None  # None: any annotation type
    requires_verified_budget: bool = False  # also demand an admitted budget state without data limits
    budget_states: frozenset[str] = frozenset({'verified'})  # the budget states a limited track admits
    zero_shot_split: str | None = None  # a `zero-shot:NAME` track (see ``zero_shot_tracks``)

    @property
    def max_params(self) -> float | None:
        return self.limits.get('params')

    @property
    def max_macs(self) -> float | None:
        return self.limits.get('macs')

    @property
    def max_train_images(self) -> float | None:
        return self.limits.get('train_images')

    @property
    def is_open(self) -> bool:
        """No limit of any kind: every run qualifies."""
        return (not self.limits and self.allowed_annotations is None and not self.requires_verified_budget
                and self.zero_shot_split is None)

    @property
    def data_limited(self) -> bool:
        """Whether the track limits data, annotation or training budgets."""
        return (self.allowed_annotations is not None
                or any(RESOURCES[name].training_budget for name in self.limits))

    @property
    def needs_verified_budget(self) -> bool:
        return self.requires_verified_budget or self.data_limited


OPEN_TRACK = Track(name=OPEN, description='no limit')


def qualifies(run: RunRecord, track: Track) -> bool:
    """Whether ``run`` meets every limit of ``track`` (the open track admits every run)."""
    if track.is_open:
        return True
    if track.zero_shot_split is not None:
        return _zero_shot_qualifies(run, track.zero_shot_split)
    if track.needs_verified_budget and run.budget_state not in track.budget_states:
        return False
    for name, limit in track.limits.items():
        value = ranked_value(run, name).value  # None: unknown, or an untrusted compute count
        if value is None or value > limit:
            return False
    return track.allowed_annotations is None or run.annotation_type in track.allowed_annotations


ZERO_SHOT_PREFIX = 'zero-shot:'


def _zero_shot_qualifies(run: RunRecord, split: str) -> bool:
    """Trained by this harness under the split (a verified record), or declared training-free on this
    benchmark (0 training images, annotation ``none``: nothing of it was trained here to verify).
    A declared, or shipped but not re-verified, training under the split never qualifies."""
    if run.budget_state == 'verified':
        return run.zero_shot_split == split
    return run.budget_state == 'declared' and run.training_free


def zero_shot_tracks(splits: Mapping[str, object] | None) -> dict[str, Track]:
    """One ``zero-shot:NAME`` track per zero-shot split of a benchmark file (ranked by hIoU)."""
    return {f'{ZERO_SHOT_PREFIX}{name}': Track(
        name=f'{ZERO_SHOT_PREFIX}{name}', zero_shot_split=str(name),
        description=f'zero-shot split {name}: trained by frugalbench without its unseen classes, or training-free')
        for name in (splits or {})}


def qualifying_tracks(run: RunRecord, tracks: Mapping[str, Track]) -> tuple[str, ...]:
    """Names of the tracks ``run`` qualifies for, in the order of ``tracks``."""
    return tuple(name for name, track in tracks.items() if qualifies(run, track))


def get_track(tracks: Mapping[str, Track], name: str) -> Track:
    """The track called ``name``, or a UsageError with a 'did you mean' and the list."""
    if name in tracks:
        return tracks[name]
    close = difflib.get_close_matches(name, tracks, n=1)
    hint = f' Did you mean {close[0]!r}?' if close else ''
    raise UsageError(f'unknown track {name!r}.{hint} Known: {", ".join(tracks)}')


def parse_tracks(raw: Mapping[str, object] | None,
                 zero_shot: Mapping[str, object] | None = None) -> dict[str, Track]:
    """Tracks from a benchmark file's ``tracks:`` mapping; ``open`` comes first and always exists;
    then one ``zero-shot:NAME`` track per split of its ``zero_shot:`` mapping."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise BenchmarkError(f'tracks: must map track names to their limits, got {raw!r}')
    tracks = {OPEN: OPEN_TRACK}
    for name, spec in raw.items():
        track = parse_track(str(name), spec)
        if track.name == OPEN and not track.is_open:
            raise BenchmarkError('tracks: the open track takes no limits: give the limits a new track name')
        tracks[track.name] = track
    tracks.update(zero_shot_tracks(zero_shot))
    return tracks


def parse_track(name: str, spec: object) -> Track:
    """One track from its mapping (None or {} means no limits) or schema object."""
    if spec is None:
        spec = {}
    if hasattr(spec, 'model_dump'):
        spec = spec.model_dump(exclude_unset=True)
    if not isinstance(spec, Mapping):
        raise BenchmarkError(f'tracks: {name}: expected a mapping of limits, got {spec!r}')
    limits: dict[str, float] = {}
    for key, value in spec.items():
        key = str(key)
        if key in _OTHER_KEYS:
            continue
        resource = key[len(_LIMIT_PREFIX):] if key.startswith(_LIMIT_PREFIX) else None
        if resource not in RESOURCES:
            known = [f'{_LIMIT_PREFIX}{r}' for r in RESOURCES] + list(_OTHER_KEYS)
            close = difflib.get_close_matches(key, known, n=1)
            hint = f' Did you mean {close[0]!r}?' if close else ''
            raise BenchmarkError(f'tracks: {name}: unknown key {key!r}.{hint} Known: {", ".join(known)}')
        limits[get_resource(resource).name] = _limit(name, key, value)
    return Track(name=name, description=str(spec.get('description') or ''), limits=limits,
                 allowed_annotations=_annotations(name, spec),
                 requires_verified_budget=_flag(name, spec.get('requires_verified_budget', False)),
                 budget_states=_states(name, spec.get('budget_states')))


def _states(track: str, value: object) -> frozenset[str]:
    if value is None:
        return frozenset({'verified'})
    items = [value] if isinstance(value, str) else value
    if (not isinstance(items, (list, tuple, set, frozenset)) or not items
            or any(item not in _STATES for item in items)):
        raise BenchmarkError(f'tracks: {track}: budget_states must be a non-empty list of '
                             f'{", ".join(_STATES)}, got {value!r}')
    return frozenset(items)


def _limit(track: str, key: str, value: object) -> float:
    number: object = value
    if isinstance(value, str):  # YAML 1.1 reads 2e9 (no dot) as a string
        try:
            number = float(value)
        except ValueError:
            number = None
    if (isinstance(number, bool) or not isinstance(number, Real)
            or not math.isfinite(number) or number < 0):
        raise BenchmarkError(f'tracks: {track}: {key} must be a finite number >= 0, got {value!r}')
    return float(number)


def _annotations(track: str, spec: Mapping[str, object]) -> frozenset[str] | None:
    given = [key for key in _ANNOTATION_KEYS if spec.get(key) is not None]
    if len(given) > 1:
        raise BenchmarkError(f'tracks: {track}: give allowed_annotations or annotation_types, not both')
    if not given:
        return None
    value = spec[given[0]]
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items or not all(isinstance(v, str) and v for v in items):
        raise BenchmarkError(f'tracks: {track}: {given[0]} must be a non-empty list of '
                             f'annotation types, got {value!r}')
    return frozenset(items)


def _flag(track: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise BenchmarkError(f'tracks: {track}: requires_verified_budget must be true or false, got {value!r}')
    return value
