"""The platform's submission store: ``$FRUGALBENCH_DATA/platform/submissions/<content hash>/``.

A submission is keyed by the SHA-256 of its content (every regular file's relative path and
bytes, in sorted order): the same content submitted twice is one stored folder. Folders are
copied without following links; links, device files, FIFOs and sockets are refused, and so are
more files or bytes than an archive may hold. A copy is written to a temporary folder in the
store and renamed into place, so a stored folder is always complete.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from frugalbench.errors import SubmissionError
from frugalbench.platform.archives import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    ArchiveRefused,
    is_archive,
    unpack,
)
from frugalbench.settings import data_dir

HASH_CHUNK = 1 << 20


def platform_dir() -> Path:
    return data_dir() / 'platform'


def store_dir() -> Path:
    return platform_dir() / 'submissions'


def temp_dir() -> Path:
    return platform_dir() / 'tmp'


def stored_folder(content_hash: str) -> Path:
    return store_dir() / content_hash


def list_files(folder: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[str]:
    """Sorted relative paths (POSIX) of the folder's regular files; refuse links and special files."""
    folder = Path(folder)
    files: list[str] = []
    total = 0
    for root, dirs, names in os.walk(folder, followlinks=False):
        for name in sorted(dirs + names):
            path = Path(root) / name
            info = path.lstat()
            relative = path.relative_to(folder).as_posix()
            if stat.S_ISLNK(info.st_mode):
                raise SubmissionError(f'{relative} is a symbolic link: submit regular files only (copy the file '
                                      'instead of linking it)')
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise SubmissionError(f'{relative} is a device file, FIFO or socket: submit regular files only')
            files.append(relative)
            total += info.st_size
            if len(files) > limits.max_files:
                raise SubmissionError(f'the folder holds more than {limits.max_files} files: submit only the '
                                      'manifest, config, checkpoint and what they need')
            if info.st_size > limits.max_file_bytes or total > limits.max_bytes:
                raise SubmissionError(f'the folder is too large ({relative}): keep every file under '
                                      f'{limits.max_file_bytes:,} bytes and all under {limits.max_bytes:,}')
    return sorted(files)


def content_hash(folder: Path, files: list[str] | None = None) -> str:
    """SHA-256 over sorted (relative path, size, bytes) of every regular file."""
    folder = Path(folder)
    digest = hashlib.sha256(b'frugalbench-submission-v1\0')
    for relative in files if files is not None else list_files(folder):
        path = folder / relative
        digest.update(relative.encode('utf-8', 'surrogateescape') + b'\0')
        digest.update(str(path.lstat().st_size).encode() + b'\0')
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, 'rb') as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def temporary_folder() -> Iterator[Path]:
    """A fresh folder inside the store's tmp/ (same file system: renames are atomic), always removed."""
    temp_dir().mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix='incoming-', dir=temp_dir()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def submission_root(unpacked: Path) -> Path:
    """The folder holding submission.yaml: the unpacked root, or its one top-level folder."""
    if (unpacked / 'submission.yaml').is_file():
        return unpacked
    entries = [p for p in unpacked.iterdir() if not p.name.startswith('__MACOSX')]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() \
            and (entries[0] / 'submission.yaml').is_file():
        return entries[0]
    raise SubmissionError('no submission.yaml at the top of the archive (nor in its one top-level folder): '
                          'pack the submission folder itself')


@contextlib.contextmanager
def materialise(source: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> Iterator[Path]:
    """The submission folder to validate: ``source`` itself, or an archive unpacked in a temporary folder."""
    source = Path(source)
    if source.is_dir():
        yield source
        return
    if not is_archive(source):
        raise ArchiveRefused(f'{source.name} is neither a folder nor a .zip/.tar.gz archive: '
                             'submit a submission folder or an archive of it')
    with temporary_folder() as temporary:
        unpack(source, temporary, limits)
        yield submission_root(temporary)


def put(folder: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> tuple[str, Path, bool]:
    """Copy a (validated) submission folder into the store; return (content hash, stored folder, new)."""
    files = list_files(folder, limits)
    digest = content_hash(folder, files)
    target = stored_folder(digest)
    if target.is_dir():
        return digest, target, False
    store_dir().mkdir(parents=True, exist_ok=True)
    with temporary_folder() as temporary:
        staged = temporary / 'copy'
        staged.mkdir()
        for relative in files:
            destination = staged / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(Path(folder) / relative, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, 'rb') as source, open(destination, 'xb') as out:
                shutil.copyfileobj(source, out, HASH_CHUNK)
            destination.chmod(0o644)
        if content_hash(staged, files) != digest:
            raise SubmissionError('the submission changed while it was copied: submit it again')
        for directory in [staged, *(p for p in staged.rglob('*') if p.is_dir())]:
            directory.chmod(0o755)
        try:
            staged.rename(target)
        except OSError:
            if not target.is_dir():   # else another submit stored the same content meanwhile
                raise
            return digest, target, False
    return digest, target, True
