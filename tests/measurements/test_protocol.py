"""The protocol file: versioned, complete, typed; a bad file fails with one clear line."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from frugalbench.errors import BenchmarkError
from frugalbench.measurements.protocol import DEFAULT_PROTOCOL_FILE, load_protocol


def test_bundled_protocol_loads_with_its_version_and_hash() -> None:
    p = load_protocol()
    raw = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text())
    assert p.version == raw['version'] >= 1
    assert p.source_hash == hashlib.sha256(DEFAULT_PROTOCOL_FILE.read_bytes()).hexdigest()
    assert p.latency.min_repeats == raw['latency']['min_repeats']
    assert isinstance(p.latency.min_seconds, float)
    assert p.energy.grid_intensity_g_per_kwh == raw['energy']['grid_intensity_g_per_kwh']
    assert p.instructions.threads == 1
    assert p.to_dict()['busy']['steal_fraction'] == raw['busy']['steal_fraction']


def _write(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text())
    edit(raw)
    path = tmp_path / 'protocol.yaml'
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize('edit, message', [
    (lambda r: r['latency'].pop('warmup'), r"lacks \['warmup'\]"),
    (lambda r: r['energy'].update(colour=1), r"unknown keys \['colour'\]"),
    (lambda r: r['latency'].update(min_repeats=2.5), 'must be an integer'),
    (lambda r: r['busy'].update(steal_fraction=-0.1), 'must be positive'),
    (lambda r: r.pop('version'), '`version`'),
    (lambda r: r['energy'].update(codecarbon_tracking_mode='online'), 'tracking_mode'),
    (lambda r: r.update(extras={}), 'unknown sections'),
])
def test_bad_protocol_files_fail_with_one_line(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(BenchmarkError, match=message):
        load_protocol(_write(tmp_path, edit))


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match='cannot read protocol file'):
        load_protocol(tmp_path / 'nope.yaml')
