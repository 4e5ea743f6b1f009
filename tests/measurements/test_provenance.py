"""Provenance: hardware, versions, threads and a stable fingerprint of comparable machines."""
from __future__ import annotations

import hashlib
import json
import os
import platform

import torch

from frugalbench.measurements.provenance import (fingerprint_of, hardware, hardware_fingerprint, provenance,
                                                 software_versions, thread_settings)


def test_fingerprint_is_a_short_hash_of_cpu_cpus_and_gpu() -> None:
    expected = hashlib.sha256(b'Intel(R) Xeon(R) Processor|2|').hexdigest()[:12]
    assert fingerprint_of('Intel(R) Xeon(R) Processor', 2, None) == expected
    assert fingerprint_of('Intel(R) Xeon(R) Processor', 2, 'NVIDIA H100') != expected
    assert fingerprint_of('Intel(R) Xeon(R) Processor', 4, None) != expected


def test_this_machine(monkeypatch) -> None:
    info = hardware()
    assert info['cpu_logical'] == os.cpu_count() and info['cpu_model']
    assert info['kernel'] == platform.release()
    assert info['gpus'] == [] or info['gpus'][0]['name']
    assert hardware_fingerprint() == hardware_fingerprint(info) == fingerprint_of(
        info['cpu_model'], info['cpu_logical'], info['gpus'][0]['name'] if info['gpus'] else None)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    threads = thread_settings()
    assert threads['torch_threads'] == torch.get_num_threads() and threads['omp_num_threads'] == '1'


def test_software_versions_and_everything_is_json_safe() -> None:
    versions = software_versions()
    assert versions['python'] == platform.python_version()
    assert versions['torch'] == torch.__version__
    assert versions['mmseg'] and versions['mmengine'] and versions['frugalbench']
    json.dumps(provenance())
