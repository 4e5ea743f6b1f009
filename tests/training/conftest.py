"""A trainable submission for the tiny benchmark: the shared Fast-SCNN config plus a schedule."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

SCHEDULE = """
train_schedule = dict(iters={iters}, batch_size=2, crop_size=(64, 64),
                      optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
                      checkpoint_interval={interval})
"""


@pytest.fixture
def trainable(make_submission: Callable[..., Path]) -> Callable[..., Path]:
    """``trainable(iters, interval)``: a submission folder without a checkpoint, with a train_schedule."""
    def factory(iters: int = 6, interval: int = 2, name: str = 'tiny_fastscnn') -> Path:
        folder = make_submission(name=name, write_checkpoint=False)
        config = folder / 'config.py'
        config.write_text(config.read_text() + SCHEDULE.format(iters=iters, interval=interval))
        return folder
    return factory
