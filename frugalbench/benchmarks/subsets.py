"""Data budgets: deterministic, nested training subsets by image count.

The images of a split are put in one order per seed: by the SHA-256 of ``"<seed>:<file name>"``.
A budget of N images is the first N of that order, so every budget contains every smaller one
(nested), every submission gets the same images for a given seed, and the order depends on
neither the numpy version nor the order of the split's list file. A subset is recorded with
its id (``subset_id``), which names the benchmark, split, size and seed, plus a hash of the
chosen file names.
"""
from __future__ import annotations

import hashlib

from frugalbench.benchmarks.definition import Benchmark, Sample
from frugalbench.errors import BenchmarkError, UsageError

STANDARD_BUDGETS = (1, 5, 10, 25, 50, 100)  # plus "all": the image counts of the data-budget ladder
TRAIN_SPLIT = 'train'


def _rank_key(seed: int, name: str) -> bytes:
    return hashlib.sha256(f'{seed}:{name}'.encode()).digest()


def seeded_order(benchmark: Benchmark, seed: int, split: str = TRAIN_SPLIT) -> list[Sample]:
    """Every sample of ``split`` in the seed's order (the permutation that budgets are prefixes of)."""
    samples = benchmark.samples(split)
    names = [s.name for s in samples]
    if len(set(names)) != len(names):
        raise BenchmarkError(f'split {split!r} of {benchmark.name!r} has repeated image file names: '
                             'subsets are defined by file name, so names must be unique')
    return sorted(samples, key=lambda s: _rank_key(seed, s.name))


def select_subset(benchmark: Benchmark, images: int | None, seed: int = 0,
                  split: str = TRAIN_SPLIT) -> list[Sample]:
    """The first ``images`` samples of the seeded order (``None``: the whole split)."""
    order = seeded_order(benchmark, seed, split)
    if images is None:
        return order
    if images < 1:
        raise UsageError(f'a data budget needs at least 1 image, got {images}')
    if images > len(order):
        raise BenchmarkError(f'{benchmark.name!r} has only {len(order)} {split} images; '
                             f'ask for --images {len(order)} or fewer (or "all")')
    return order[:images]


def subset_id(benchmark: Benchmark, samples: list[Sample], seed: int, split: str = TRAIN_SPLIT) -> str:
    """A stable id such as ``camvid-train-n10-s0-1a2b3c4d`` (the hash covers the file names)."""
    digest = hashlib.sha256('\n'.join(s.name for s in samples).encode()).hexdigest()[:8]
    return f'{benchmark.name}-{split}-n{len(samples)}-s{seed}-{digest}'
