"""Data budgets: nested, seeded, stable subsets of the training split."""
from __future__ import annotations

import hashlib
import json

import pytest

from frugalbench.benchmarks import Benchmark, select_subset, subset_id
from frugalbench.benchmarks.subsets import STANDARD_BUDGETS, seeded_order
from frugalbench.cli import main
from frugalbench.errors import BenchmarkError, UsageError


def names(samples: list) -> list[str]:
    return [s.name for s in samples]


def test_order_is_by_hash_of_seed_and_file_name(synthetic: Benchmark) -> None:
    all_names = names(synthetic.samples('train'))
    reference = sorted(all_names, key=lambda n: hashlib.sha256(f'7:{n}'.encode()).hexdigest())
    assert names(seeded_order(synthetic, 7)) == reference


def test_budgets_are_nested_prefixes(synthetic: Benchmark) -> None:
    subsets = [names(select_subset(synthetic, n, seed=0)) for n in STANDARD_BUDGETS]
    for smaller, larger in zip(subsets, subsets[1:]):
        assert larger[:len(smaller)] == smaller
    everything = names(select_subset(synthetic, None, seed=0))
    assert sorted(everything) == sorted(names(synthetic.samples('train')))
    assert everything[:100] == subsets[-1]


def test_seeds_give_different_subsets(synthetic: Benchmark) -> None:
    assert names(select_subset(synthetic, 10, seed=0)) != names(select_subset(synthetic, 10, seed=1))


def test_subset_id_names_size_seed_and_files(synthetic: Benchmark) -> None:
    chosen = select_subset(synthetic, 5, seed=3)
    digest = hashlib.sha256('\n'.join(names(chosen)).encode()).hexdigest()[:8]
    assert subset_id(synthetic, chosen, 3) == f'synthetic-train-n5-s3-{digest}'


def test_impossible_budgets_fail_clearly(synthetic: Benchmark) -> None:
    with pytest.raises(BenchmarkError, match='only 200 train images'):
        select_subset(synthetic, 201)
    with pytest.raises(UsageError, match='at least 1 image'):
        select_subset(synthetic, 0)


def _cli_subset(capsys: pytest.CaptureFixture[str], name: str, images: int) -> list[str]:
    assert main(['data', 'subset', name, '--images', str(images), '--format', 'json']) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_subset_json_is_nested_and_repeatable_on_camvid(
        camvid: Benchmark, capsys: pytest.CaptureFixture[str]) -> None:
    ten = _cli_subset(capsys, 'camvid', 10)
    five = _cli_subset(capsys, 'camvid', 5)
    assert len(ten) == 10 and set(five) <= set(ten)
    assert _cli_subset(capsys, 'camvid', 10) == ten
    assert ten == names(select_subset(camvid, 10, seed=0))


def test_cli_subset_json_on_synthetic(synthetic: Benchmark, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli_subset(capsys, 'synthetic', 3) == names(select_subset(synthetic, 3))
