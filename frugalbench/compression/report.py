"""What a compression method did: the step's record, and the error for a model it cannot handle."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from frugalbench.errors import ModelError

# The classifier of an MMSeg decode head: its output channels are the classes, never pruned.
CLASSIFIER_SUFFIX = 'conv_seg'
AUXILIARY_PREFIX = 'auxiliary_head'
QUANTIZATION_SCHEMES = ('int8',)


class CompressionError(ModelError):
    """A compression method cannot handle this model; the message names the layers and why."""


@dataclass
class StepReport:
    """One method applied to a model: settings, layers changed and skipped (with reasons).

    ``plan_step`` is what ``rebuild.apply_plan`` needs to give a freshly built model the new
    architecture (None when the architecture is unchanged, e.g. unstructured pruning).
    """

    method: str
    settings: dict[str, Any]
    changed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    plan_step: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {'method': self.method, 'settings': dict(self.settings), 'layers_changed': dict(self.changed),
                'layers_skipped': dict(self.skipped), 'notes': list(self.notes)}


def is_classifier(name: str) -> bool:
    return name == CLASSIFIER_SUFFIX or name.endswith('.' + CLASSIFIER_SUFFIX)


def is_auxiliary(name: str) -> bool:
    return name == AUXILIARY_PREFIX or name.startswith(AUXILIARY_PREFIX + '.')


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Conv2d and Linear layers outside auxiliary heads, in module order."""
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, (nn.Conv2d, nn.Linear)) and not is_auxiliary(name)]


def summarize_skipped(skipped: dict[str, str], limit: int = 8) -> str:
    """``name: reason`` for the first ``limit`` layers, and how many more."""
    items = [f'{name}: {reason}' for name, reason in list(skipped.items())[:limit]]
    more = len(skipped) - limit
    return '; '.join(items) + (f'; and {more} more' if more > 0 else '')
