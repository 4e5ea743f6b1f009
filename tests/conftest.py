"""Shared fixtures: an isolated data folder and database, a tiny MMSeg-layout benchmark, and
submission folders built from a real MMSeg model."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

TINY_CLASSES = ['background', 'disc', 'bar']
TINY_CONFIG = """\
_base_ = ['mmseg::_base_/models/fast_scnn.py']
norm_cfg = dict(type='BN', requires_grad=True, momentum=0.01)
model = dict(
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(num_classes={num_classes}, norm_cfg=norm_cfg,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None,
    test_cfg=dict(mode='whole'))
"""


@pytest.fixture
def camvid_root() -> Path:
    """The real CamVid folder, or skip the test saying how to enable it."""
    root = os.environ.get('FRUGALBENCH_CAMVID')
    if not root or not Path(root).is_dir():
        pytest.skip('real CamVid data not available: set FRUGALBENCH_CAMVID to the CamVid folder')
    return Path(root)


def _isolate(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv('FRUGALBENCH_DATA', str(root / 'data'))
    monkeypatch.setenv('FRUGALBENCH_DB', str(root / 'data' / 'results.duckdb'))
    monkeypatch.setenv('FRUGALBENCH_WORK', str(root / 'work'))
    (root / 'data').mkdir()
    return root


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """FRUGALBENCH_DATA, FRUGALBENCH_DB and FRUGALBENCH_WORK inside tmp_path."""
    return _isolate(tmp_path, monkeypatch)


@pytest.fixture(scope='module')
def module_isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Like ``isolated``, but one folder (and database) shared by the tests of a module: for an
    evaluation or compression that several tests check. Its tests must not need an empty database."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _isolate(tmp_path_factory.mktemp('module'), monkeypatch)


def _tiny_scene(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    label = np.zeros((size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    cy, cx, r = rng.integers(16, 48), rng.integers(16, 48), rng.integers(6, 14)
    label[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = 1
    x0 = rng.integers(0, size - 8)
    label[:, x0:x0 + 6] = 2
    label[0:4, 0:4] = 255  # some ignored pixels
    image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    image[label == 1] += np.uint8(120)
    image[label == 2, 1] = 250
    return image, label


@pytest.fixture
def tiny_benchmark(isolated: Path) -> str:
    """A 3-class benchmark in MMSeg layout, registered by a YAML file only (no code)."""
    return _write_tiny_benchmark(isolated)


@pytest.fixture(scope='module')
def module_tiny_benchmark(module_isolated: Path) -> str:
    """``tiny_benchmark`` in ``module_isolated``."""
    return _write_tiny_benchmark(module_isolated)


def _write_tiny_benchmark(isolated: Path) -> str:
    root = isolated / 'data' / 'tiny'
    rng = np.random.default_rng(0)
    for split, count in (('train', 4), ('test', 3)):
        (root / 'img_dir' / split).mkdir(parents=True)
        (root / 'ann_dir' / split).mkdir(parents=True)
        for index in range(count):
            image, label = _tiny_scene(rng)
            Image.fromarray(image).save(root / 'img_dir' / split / f'{split}{index}.png')
            Image.fromarray(label).save(root / 'ann_dir' / split / f'{split}{index}.png')
    (isolated / 'data' / 'benchmarks').mkdir()
    definition = dict(name='tiny', protocol_version=1, description='tiny test scenes', synthetic=True,
                      root='tiny', layout='mmseg', splits={'train': 'train', 'test': 'test'},
                      classes=TINY_CLASSES, ignore_index=255)
    (isolated / 'data' / 'benchmarks' / 'tiny.yaml').write_text(yaml.safe_dump(definition))
    return 'tiny'


def build_state_dict(config_path: Path, seed: int = 0) -> dict:
    """Build the model a config describes (in the test process) and return its state dict."""
    import torch
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(seed)
    model = MODELS.build(Config.fromfile(str(config_path)).model)
    model.init_weights()
    return {k: v.clone() for k, v in model.state_dict().items()}


SubmissionFactory = Callable[..., Path]
_DEFAULT_STATES: dict[int, dict] = {}  # build_state_dict(seed 0) per class count, for the whole session


@pytest.fixture
def make_submission(tmp_path: Path) -> SubmissionFactory:
    """Write a submission folder for the tiny benchmark; keyword arguments override the manifest."""
    return _submission_factory(tmp_path)


@pytest.fixture(scope='module')
def module_make_submission(module_isolated: Path) -> SubmissionFactory:
    """``make_submission`` writing into ``module_isolated``."""
    return _submission_factory(module_isolated)


def _submission_factory(tmp_path: Path) -> SubmissionFactory:
    import torch
    cache = _DEFAULT_STATES  # the same seeded weights every time: built once, not once per test

    def factory(name: str = 'tiny_fastscnn', num_classes: int = 3, state: dict | None = None,
                write_checkpoint: bool = True, **manifest_overrides: object) -> Path:
        folder = tmp_path / 'submissions' / name
        folder.mkdir(parents=True)
        (folder / 'config.py').write_text(TINY_CONFIG.format(num_classes=num_classes))
        manifest = dict(name=name, authors=['Test Author'], description='a test submission',
                        technique='lightweight', benchmark='tiny', classes=TINY_CLASSES,
                        config='config.py', checkpoint='model.pth',
                        training=dict(images=4, annotation='full'))
        manifest.update(manifest_overrides)
        (folder / 'submission.yaml').write_text(yaml.safe_dump(manifest, sort_keys=False))
        if write_checkpoint:
            if state is None:
                if num_classes not in cache:
                    cache[num_classes] = build_state_dict(folder / 'config.py')
                state_to_save = cache[num_classes]
            else:
                state_to_save = state
            torch.save(state_to_save, folder / 'model.pth')
        return folder

    return factory


@pytest.fixture
def quick_protocol(tmp_path: Path) -> Path:
    """The bundled measurement protocol with short windows, so tests measure in seconds."""
    return _write_quick_protocol(tmp_path)


@pytest.fixture(scope='module')
def module_quick_protocol(module_isolated: Path) -> Path:
    """``quick_protocol`` in ``module_isolated``."""
    return _write_quick_protocol(module_isolated)


def _write_quick_protocol(tmp_path: Path) -> Path:
    from frugalbench.measurements.protocol import DEFAULT_PROTOCOL_FILE
    protocol = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text())
    protocol['latency'].update(warmup=1, min_repeats=3, min_seconds=0.05, throughput_batch_size=2)
    protocol['instructions'].update(images=1)
    protocol['energy'].update(min_window_seconds=0.3, idle_window_seconds=0.1, poll_seconds=0.1)
    path = tmp_path / 'quick_protocol.yaml'
    path.write_text(yaml.safe_dump(protocol))
    return path
