"""Per-file manifests: the sha256 of every image and label of a benchmark's reference split.

A manifest (``frugalbench/benchmarks/manifests/<name>.json``, named by the benchmark file's
``manifest:`` key) lists, per split, each ``image annotation`` pair by relative path with the
sha256 of both files. ``check_manifest`` compares a folder with it and names every problem:

    missing         a reference file (or a pair of a split's list) is absent
    extra           a listed or stored file that the reference split does not have
    corrupt         a reference path whose bytes differ from the reference
    wrong split     a file of one split listed (or stored) in another

Hashes are cached by (size, mtime) in ``$FRUGALBENCH_DATA/prepared/<name>.hashes.json``, so a
second check reads only the files that changed. ``write_manifest`` makes a manifest from a folder
known to be right (``scripts/make_manifest.py``).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from frugalbench.benchmarks.definition import BUILTIN_DIR, PREPARED_DIR_NAME, Benchmark
from frugalbench.errors import BenchmarkError
from frugalbench.settings import data_dir

MANIFEST_DIR = BUILTIN_DIR / 'manifests'
MANIFEST_FORMAT = 1
EXAMPLES_SHOWN = 3
CHUNK = 1 << 20

# progress(description, total) -> advance(): same contract as frugalbench.benchmarks.prepare.Progress
Progress = Callable[[str, int], Callable[[], None]]


@dataclass(frozen=True)
class Manifest:
    """Reference pairs per split: (image path, image sha256, annotation path, annotation sha256)."""

    benchmark: str
    source: str
    list_prefix: str                        # a prefix the publisher's list files put before each path
    splits: dict[str, list[tuple[str, str, str, str]]]

    def files(self) -> dict[str, tuple[str, str]]:
        """Relative path -> (split, sha256) for every image and annotation."""
        out = {}
        for split, pairs in self.splits.items():
            for image, image_sha, annotation, annotation_sha in pairs:
                out[image] = (split, image_sha)
                out[annotation] = (split, annotation_sha)
        return out


@dataclass
class ManifestReport:
    """What a check found; ``ok`` when every list is the reference's and every file matches."""

    manifest: str                           # the benchmark the manifest describes
    manifest_file: str = ''
    files_checked: int = 0
    hashed_now: int = 0                     # files read this time (others: cached by size and mtime)
    problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def add(self, kind: str, message: str) -> None:
        self.problems.setdefault(kind, []).append(message)

    def summary(self) -> str:
        parts = []
        for kind, messages in self.problems.items():
            shown = '; '.join(messages[:EXAMPLES_SHOWN])
            more = f' (and {len(messages) - EXAMPLES_SHOWN} more)' if len(messages) > EXAMPLES_SHOWN else ''
            parts.append(f'{len(messages)} {kind}: {shown}{more}')
        return ' | '.join(parts)


def manifest_path(benchmark: Benchmark) -> Path | None:
    """The manifest a benchmark file names with ``manifest:`` (relative to the manifests folder)."""
    name = (benchmark.model_extra or {}).get('manifest')
    if not name:
        return None
    path = Path(name)
    if not path.is_absolute():
        path = (benchmark.source_file.parent / 'manifests' / name) if benchmark.source_file else MANIFEST_DIR / name
        if not path.is_file():
            path = MANIFEST_DIR / name
    if not path.is_file():
        raise BenchmarkError(f'benchmark {benchmark.name!r} names manifest {name!r}, which is not at {path}')
    return path


def load_manifest(path: Path) -> Manifest:
    try:
        raw = json.loads(path.read_text())
        if raw.get('format') != MANIFEST_FORMAT:
            raise ValueError(f'format {raw.get("format")!r}, expected {MANIFEST_FORMAT}')
        splits = {split: [tuple(pair) for pair in pairs] for split, pairs in raw['splits'].items()}
        if any(len(pair) != 4 for pairs in splits.values() for pair in pairs):
            raise ValueError('each pair must be [image, sha256, annotation, sha256]')
        return Manifest(benchmark=raw['benchmark'], source=raw.get('source', ''),
                        list_prefix=raw.get('list_prefix', ''), splits=splits)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BenchmarkError(f'manifest {path} is unreadable ({exc}): reinstall frugalbench') from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class HashCache:
    """sha256 per file, reused while the file's size and mtime are unchanged."""

    def __init__(self, path: Path | None, root: Path) -> None:
        self.path, self.root, self.hashed = path, str(root), 0
        self.entries: dict[str, list] = {}
        if path is not None and path.is_file():
            try:
                raw = json.loads(path.read_text())
                if raw.get('root') == self.root:
                    self.entries = raw.get('files', {})
            except (json.JSONDecodeError, AttributeError):
                self.entries = {}

    def sha256(self, relative: str, path: Path) -> str:
        stat = path.stat()
        cached = self.entries.get(relative)
        if cached and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
            return cached[2]
        value = sha256_file(path)
        self.entries[relative] = [stat.st_size, stat.st_mtime_ns, value]
        self.hashed += 1
        return value

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f'.tmp-{os.getpid()}')
        tmp.write_text(json.dumps({'root': self.root, 'files': self.entries}))
        tmp.replace(self.path)


def read_pair_list(path: Path, prefix: str) -> tuple[list[tuple[str, str]], bool]:
    """``image annotation`` pairs of a list file as relative paths; True if they carried ``prefix``."""
    pairs, prefixed = [], False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise BenchmarkError(f'{path}:{number}: expected "image annotation", got {line!r}')
        if prefix and any(p.startswith(prefix) for p in parts):
            parts, prefixed = [p.removeprefix(prefix) for p in parts], True
        pairs.append((parts[0].lstrip('/'), parts[1].lstrip('/')))
    return pairs, prefixed


def check_manifest(benchmark: Benchmark, root: Path, manifest: Manifest,
                   progress: Progress | None = None, cache_path: Path | None = None) -> ManifestReport:
    """Compare ``root`` with ``manifest``; a report naming every missing, extra, corrupt or wrongly
    split file (``root`` must be in the benchmark's ``pair-lists`` layout)."""
    if benchmark.layout != 'pair-lists':
        raise BenchmarkError(f'per-file manifests support the pair-lists layout; {benchmark.name} uses '
                             f'{benchmark.layout}')
    report = ManifestReport(manifest=manifest.benchmark)
    reference = manifest.files()
    by_hash = {sha: (split, path) for path, (split, sha) in reference.items()}
    cache = HashCache(cache_path, root)
    seen: set[str] = set()
    for split, list_file in benchmark.splits.items():
        if split not in manifest.splits:
            report.add('extra', f'split {split!r} is not in the manifest')
            continue
        listed = _listed_pairs(root, list_file, manifest, report)
        advance = (progress or (lambda d, t: lambda: None))(f'checking {benchmark.name}/{split} files', len(listed))
        for image, annotation in listed:
            for relative in (image, annotation):
                seen.add(relative)
                _check_file(root, relative, split, list_file, reference, by_hash, cache, report)
            advance()
        listed_set = {p for pair in listed for p in pair}
        for image, _, annotation, _ in manifest.splits[split]:
            for relative in (image, annotation):
                if relative not in listed_set and reference[relative][0] == split:
                    report.add('missing', f'{list_file} does not list {relative} ({split} file of the reference)')
    _unlisted_files(root, reference, seen, report)
    cache.save()
    report.hashed_now = cache.hashed
    return report


def _listed_pairs(root: Path, list_file: str, manifest: Manifest, report: ManifestReport) -> list[tuple[str, str]]:
    path = root / list_file
    if not path.is_file():
        report.add('missing', f'split list {list_file}')
        return []
    pairs, prefixed = read_pair_list(path, manifest.list_prefix)
    if prefixed:
        report.add('list paths', f'{list_file} lists absolute paths under {manifest.list_prefix} (the publisher\'s '
                                 f'original lists): rewrite them relative to the folder, e.g. '
                                 f"`sed -i 's|{manifest.list_prefix}||' {list_file}`")
    return pairs


def _check_file(root: Path, relative: str, split: str, list_file: str, reference: dict[str, tuple[str, str]],
                by_hash: dict[str, tuple[str, str]], cache: HashCache, report: ManifestReport) -> None:
    path = root / relative
    ref = reference.get(relative)
    if ref is not None and ref[0] != split:
        report.add('wrong split', f'{list_file} lists {relative}, a {ref[0]} file of the reference split')
        return
    if not path.is_file():
        report.add('missing', f'{relative} (listed in {list_file})')
        return
    report.files_checked += 1
    sha = cache.sha256(relative, path)
    if ref is not None:
        if sha != ref[1]:
            other = by_hash.get(sha)
            what = f'holds the bytes of {other[1]}' if other else 'differs from the reference (sha256 ' \
                                                                   f'{sha[:12]}…, expected {ref[1][:12]}…)'
            report.add('corrupt', f'{relative} {what}')
        return
    other = by_hash.get(sha)
    if other is not None and other[0] != split:
        report.add('wrong split', f'{list_file} lists {relative}, which is {other[1]}, a {other[0]} file of the '
                                  'reference split')
    elif other is not None:
        report.add('extra', f'{relative} is {other[1]} under another name')
    else:
        report.add('extra', f'{relative} (listed in {list_file}) is not in the reference split')


def _unlisted_files(root: Path, reference: dict[str, tuple[str, str]], seen: set[str],
                    report: ManifestReport) -> None:
    """Files in the reference's folders that no list names and the reference does not have."""
    folders = sorted({str(PurePosixPath(p).parent) for p in reference})
    for folder in folders:
        directory = root / folder
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            relative = f'{folder}/{path.name}' if folder != '.' else path.name
            if path.name.startswith('.') or relative in seen or not path.is_file():
                continue
            if relative in reference:
                continue  # a reference file left out of its list: reported as missing from the list
            report.add('extra', f'{relative} (not in the reference split)')


def cache_path_for(name: str) -> Path:
    return data_dir() / PREPARED_DIR_NAME / f'{name}.hashes.json'


def verify_manifest(benchmark: Benchmark, root: Path, progress: Progress | None = None) -> ManifestReport | None:
    """Check ``root`` against the benchmark's manifest, if it names one; BenchmarkError on any problem."""
    path = manifest_path(benchmark)
    if path is None:
        return None
    manifest = load_manifest(path)
    report = check_manifest(benchmark, root, manifest, progress, cache_path=cache_path_for(benchmark.name))
    report.manifest_file = path.name
    if not report.ok:
        raise BenchmarkError(
            f'{root} is not {manifest.source or manifest.benchmark} as the manifest {path.name} records it: '
            f'{report.summary()}. Fix: get the reference copy with `frugalbench data download {benchmark.name}` '
            f'(or repair the files named), then run `frugalbench data prepare {benchmark.name}` again')
    return report


def write_manifest(benchmark: Benchmark, root: Path, out: Path, source: str, list_prefix: str = '') -> Path:
    """Write the manifest of a folder known to be the reference (one pair per line, sorted as listed)."""
    lines = []
    for split, list_file in benchmark.splits.items():
        pairs, _ = read_pair_list(root / list_file, list_prefix)
        rows = [json.dumps([image, sha256_file(root / image), annotation, sha256_file(root / annotation)])
                for image, annotation in pairs]
        lines.append(f'    {json.dumps(split)}: [\n      ' + ',\n      '.join(rows) + '\n    ]')
    header = {'format': MANIFEST_FORMAT, 'benchmark': benchmark.name, 'algorithm': 'sha256',
              'source': source, 'list_prefix': list_prefix}
    head = json.dumps(header, indent=2)[:-2]  # drop the closing "\n}" to append the splits
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f'{head},\n  "splits": {{\n' + ',\n'.join(lines) + '\n  }\n}\n')
    load_manifest(out)
    return out
