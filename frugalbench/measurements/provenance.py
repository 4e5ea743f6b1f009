"""Provenance of a run: hardware, software versions, thread settings, hardware fingerprint.

Stored with every result, so the leaderboard compares like with like: results are grouped
by `hardware_fingerprint` (CPU model, logical CPUs, GPU model) and the protocol version.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

import torch

from frugalbench.measurements.latency import thread_state

# distribution name -> key in software_versions()
PACKAGES = {
    'torch': 'torch', 'mmcv': 'mmcv', 'mmengine': 'mmengine', 'mmsegmentation': 'mmseg',
    'numpy': 'numpy', 'duckdb': 'duckdb', 'codecarbon': 'codecarbon', 'pyJoules': 'pyjoules',
    'nvidia-ml-py': 'nvidia_ml_py', 'frugalbench': 'frugalbench',
}


def _proc_field(path: Path, key: str) -> str | None:
    try:
        for line in path.read_text().splitlines():
            name, sep, value = line.partition(':')
            if sep and name.strip() == key:
                return value.strip()
    except OSError:
        return None
    return None


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; `platform.processor` elsewhere)."""
    return (_proc_field(Path('/proc/cpuinfo'), 'model name') or platform.processor()
            or platform.machine() or 'unknown')


def physical_cores() -> int | None:
    """Distinct (physical id, core id) pairs in /proc/cpuinfo; None where not reported."""
    try:
        text = Path('/proc/cpuinfo').read_text()
    except OSError:
        return None
    cores: set[tuple[str, str]] = set()
    for block in text.strip().split('\n\n'):
        pairs = (line.partition(':') for line in block.splitlines())
        fields = {k.strip(): v.strip() for k, _, v in pairs}
        if 'core id' in fields:
            cores.add((fields.get('physical id', '0'), fields['core id']))
    return len(cores) or None


def ram_bytes() -> int | None:
    value = _proc_field(Path('/proc/meminfo'), 'MemTotal')
    if value and value.endswith('kB'):
        return int(value.split()[0]) * 1024
    return None


def gpus() -> list[dict[str, Any]]:
    """CUDA devices seen by torch (name, memory, capability) with the NVIDIA driver version."""
    if not torch.cuda.is_available():
        return []
    driver = _nvidia_driver()
    found = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        found.append({'index': index, 'name': props.name, 'memory_bytes': props.total_memory,
                      'capability': f'{props.major}.{props.minor}', 'driver': driver,
                      'cuda_runtime': torch.version.cuda})
    return found


def _nvidia_driver() -> str | None:
    try:
        import pynvml
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else str(version)
        except pynvml.NVMLError:
            pass
    return _proc_field(Path('/proc/driver/nvidia/version'), 'NVRM version')


def _os_name() -> str:
    try:
        for line in Path('/etc/os-release').read_text().splitlines():
            if line.startswith('PRETTY_NAME='):
                return line.split('=', 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def hardware() -> dict[str, Any]:
    """CPU model, cores, logical CPUs (and those usable here), RAM, GPUs + driver, OS, kernel."""
    flags = _proc_field(Path('/proc/cpuinfo'), 'flags') or ''
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        'cpu_model': cpu_model(),
        'cpu_physical_cores': physical_cores(),
        'cpu_logical': os.cpu_count(),
        'cpu_usable': usable,
        'virtualized': 'hypervisor' in flags.split(),
        'ram_bytes': ram_bytes(),
        'gpus': gpus(),
        'os': _os_name(),
        'kernel': platform.release(),
        'machine': platform.machine(),
    }


def software_versions() -> dict[str, str | None]:
    """Python and library versions (None for a library that is not installed)."""
    versions: dict[str, str | None] = {'python': platform.python_version()}
    for distribution, key in PACKAGES.items():
        try:
            versions[key] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[key] = None
    versions['cuda'] = torch.version.cuda
    return versions


def thread_settings() -> dict[str, Any]:
    """Torch thread counts, thread environment variables, usable CPUs, MKL-DNN state."""
    return {**thread_state(), 'mkldnn_enabled': torch.backends.mkldnn.enabled,
            'cpu_count': os.cpu_count()}


def fingerprint_of(cpu: str, logical_cpus: int | None, gpu_model: str | None) -> str:
    """12 hex digits of sha256 over ``cpu|logical_cpus|gpu`` (stable across runs and versions)."""
    key = f'{cpu.strip()}|{logical_cpus or 0}|{(gpu_model or "").strip()}'
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def hardware_fingerprint(info: dict[str, Any] | None = None) -> str:
    """Fingerprint of this machine (or of a `hardware()` dict): groups comparable runs."""
    info = info if info is not None else hardware()
    gpu = info['gpus'][0]['name'] if info.get('gpus') else None
    return fingerprint_of(info['cpu_model'], info['cpu_logical'], gpu)


def provenance() -> dict[str, Any]:
    """Everything above in one JSON-safe dict."""
    info = hardware()
    return {'hardware': info, 'hardware_fingerprint': hardware_fingerprint(info),
            'software': software_versions(), 'threads': thread_settings()}
