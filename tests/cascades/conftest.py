"""A tiny benchmark with a val split and two tiny Fast-SCNN members (different seeds), evaluated once
per module: the members' runs on val and test are what every cascade test routes."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_CLASSES, TINY_CONFIG, _tiny_scene, build_state_dict
from PIL import Image

SPLITS = {'train': 2, 'val': 5, 'test': 4}


@dataclass(frozen=True)
class World:
    root: Path
    db: Path
    submissions: Path
    data_root: Path
    protocol: Path

    def options(self, **overrides: object):
        from frugalbench.evaluation import EvaluationOptions
        return EvaluationOptions(db_path=self.db, protocol_path=self.protocol, **overrides)


def write_cascade(folder: Path, members: list[str], policy: dict, gate: dict | None = None,
                  benchmark: str = 'tinyv') -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {'name': f'cascade {folder.name}', 'authors': ['Test Author'], 'description': 'a test cascade',
                    'technique': 'cascade', 'benchmark': benchmark, 'members': members,
                    'gate': gate or {'statistic': 'mean_max_prob'}, 'policy': policy}
    (folder / 'submission.yaml').write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


def _member(submissions: Path, name: str, seed: int, benchmark: str = 'tinyv') -> Path:
    folder = submissions / name
    folder.mkdir(parents=True)
    (folder / 'config.py').write_text(TINY_CONFIG.format(num_classes=3))
    manifest = {'name': name, 'authors': ['Test Author'], 'description': 'a tiny member', 'technique': 'lightweight',
                    'benchmark': benchmark, 'classes': TINY_CLASSES, 'config': 'config.py', 'checkpoint': 'model.pth',
                    'training': {'images': 2, 'annotation': 'full'}}
    (folder / 'submission.yaml').write_text(yaml.safe_dump(manifest, sort_keys=False))
    torch.save(build_state_dict(folder / 'config.py', seed=seed), folder / 'model.pth')
    return folder


@pytest.fixture(scope='module')
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp('cascades')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('FRUGALBENCH_DATA', str(root / 'data'))
        patch.setenv('FRUGALBENCH_DB', str(root / 'data' / 'results.duckdb'))
        patch.setenv('FRUGALBENCH_WORK', str(root / 'work'))
        data_root = root / 'data' / 'tinyv'
        rng = np.random.default_rng(1)
        for split, count in SPLITS.items():
            (data_root / 'img_dir' / split).mkdir(parents=True)
            (data_root / 'ann_dir' / split).mkdir(parents=True)
            for index in range(count):
                image, label = _tiny_scene(rng)
                Image.fromarray(image).save(data_root / 'img_dir' / split / f'{split}{index}.png')
                Image.fromarray(label).save(data_root / 'ann_dir' / split / f'{split}{index}.png')
        (root / 'data' / 'benchmarks').mkdir()
        for name in ('tinyv', 'tinyw'):  # tinyw: the same data under another benchmark name
            definition = {'name': name, 'protocol_version': 1, 'description': 'tiny scenes with a val split',
                              'synthetic': True, 'root': 'tinyv', 'layout': 'mmseg', 'splits': {s: s for s in SPLITS},
                              'classes': TINY_CLASSES, 'ignore_index': 255}
            (root / 'data' / 'benchmarks' / f'{name}.yaml').write_text(yaml.safe_dump(definition))
        submissions = root / 'submissions'
        _member(submissions, 'cheap', seed=0)
        _member(submissions, 'costly', seed=1)
        _member(submissions, 'other_benchmark', seed=2, benchmark='tinyw')
        from frugalbench.measurements.protocol import DEFAULT_PROTOCOL_FILE
        protocol = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text())
        protocol['instructions'].update(images=1)
        protocol['energy'].update(min_window_seconds=0.3, idle_window_seconds=0.1, poll_seconds=0.1)
        (root / 'quick_protocol.yaml').write_text(yaml.safe_dump(protocol))
        yield World(root, root / 'data' / 'results.duckdb', submissions, data_root, root / 'quick_protocol.yaml')
