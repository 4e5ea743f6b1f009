"""Unpacking a stranger's archive (.zip, .tar.gz, .tgz) without trusting it.

Refused, before anything is written: symbolic and hard links, device files, FIFOs and other
special members, absolute paths, ``..`` components, names with NUL or backslashes, more than
``max_files`` members, a declared total above ``max_bytes``, a file above ``max_file_bytes``, and
(zip) a compression ratio above ``max_ratio``. While extracting, the bytes actually written are
counted and capped again (a member cannot lie about its size). Extraction goes only into
``destination``, a fresh folder the caller owns (a temporary folder): on refusal it may hold a
partial extraction, which the caller removes.
"""
from __future__ import annotations

import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from frugalbench.errors import UsageError

ARCHIVE_SUFFIXES = ('.zip', '.tar.gz', '.tgz')
CHUNK = 1 << 20


class ArchiveRefused(UsageError):
    """The archive is refused (exit 2): the message names the problem and the fix."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int = 1000
    max_bytes: int = 1 << 30            # 1 GiB unpacked in all
    max_file_bytes: int = 512 << 20     # 512 MiB for one file
    max_ratio: float = 200.0            # zip: unpacked / compressed, per member (bombs)


DEFAULT_LIMITS = ArchiveLimits()


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith(ARCHIVE_SUFFIXES)


def _refuse(archive: Path, problem: str, fix: str) -> ArchiveRefused:
    return ArchiveRefused(f'archive {archive.name} refused: {problem}; {fix}')


def _safe_name(archive: Path, name: str) -> PurePosixPath | None:
    """The member's relative path, None for the archive root ('./'), or refuse."""
    if '\x00' in name or '\\' in name:
        raise _refuse(archive, f'member name {name!r} contains a NUL or a backslash',
                      'use plain relative paths with forward slashes')
    if name.startswith('/') or (len(name) > 1 and name[1] == ':'):
        raise _refuse(archive, f'member {name!r} has an absolute path',
                      'pack the submission with paths relative to its folder')
    parts = [p for p in PurePosixPath(name).parts if p not in ('', '.')]
    if '..' in parts:
        raise _refuse(archive, f'member {name!r} contains ".."',
                      'pack the submission with paths inside its folder (no "..")')
    return PurePosixPath(*parts) if parts else None


def _check_totals(archive: Path, count: int, total: int, limits: ArchiveLimits) -> None:
    if count > limits.max_files:
        raise _refuse(archive, f'it holds more than {limits.max_files} members',
                      'a submission needs a manifest, a config and a checkpoint: pack only those')
    if total > limits.max_bytes:
        raise _refuse(archive, f'it unpacks to more than {limits.max_bytes:,} bytes',
                      f'keep the submission under {limits.max_bytes:,} bytes unpacked')


def _too_big(archive: Path, name: str, limits: ArchiveLimits) -> ArchiveRefused:
    return _refuse(archive, f'member {name!r} is larger than {limits.max_file_bytes:,} bytes',
                   f'keep every file under {limits.max_file_bytes:,} bytes')


class _Budget:
    """Bytes actually written, capped per file and in all."""

    def __init__(self, archive: Path, limits: ArchiveLimits) -> None:
        self.archive, self.limits, self.total = archive, limits, 0

    def copy(self, source, target: Path, name: str) -> None:  # source: a binary file object
        written = 0
        with open(target, 'xb') as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                self.total += len(chunk)
                if written > self.limits.max_file_bytes:
                    raise _too_big(self.archive, name, self.limits)
                if self.total > self.limits.max_bytes:
                    raise _refuse(self.archive, f'it unpacks to more than {self.limits.max_bytes:,} bytes '
                                  '(more than it declares)', 'send an archive that is not a zip bomb')
                out.write(chunk)


def _make_parent(destination: Path, relative: PurePosixPath) -> Path:
    target = destination.joinpath(*relative.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def unpack(archive: Path, destination: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
    """Unpack ``archive`` into the empty folder ``destination``, or raise ArchiveRefused."""
    archive = Path(archive)
    name = archive.name.lower()
    if name.endswith('.zip'):
        _unpack_zip(archive, destination, limits)
    elif name.endswith(('.tar.gz', '.tgz')):
        _unpack_tar(archive, destination, limits)
    else:
        raise _refuse(archive, 'unknown archive type', 'send a .zip or .tar.gz file, or a folder')


def _unpack_zip(archive: Path, destination: Path, limits: ArchiveLimits) -> None:
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse(archive, f'not a readable zip file ({exc})', 'send a valid .zip or .tar.gz file') from None
    with bundle:
        members = bundle.infolist()
        _check_totals(archive, len(members), sum(m.file_size for m in members), limits)
        plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        for member in members:
            relative = _safe_name(archive, member.filename)
            mode = member.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if member.create_system == 3 and kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                what = 'a symbolic link' if kind == stat.S_IFLNK else 'a device file, FIFO or socket'
                raise _refuse(archive, f'member {member.filename!r} is {what}',
                              'pack regular files only (copy the file instead of linking it)')
            if member.flag_bits & 0x1:
                raise _refuse(archive, f'member {member.filename!r} is encrypted', 'pack it without a password')
            if member.file_size > limits.max_file_bytes:
                raise _too_big(archive, member.filename, limits)
            if member.file_size > 1 << 20 and member.file_size > limits.max_ratio * max(member.compress_size, 1):
                raise _refuse(archive, f'member {member.filename!r} expands {member.file_size:,} bytes from '
                              f'{member.compress_size:,} (a zip bomb)', 'send an archive that is not a zip bomb')
            if relative is not None:
                plan.append((member, relative))
        budget = _Budget(archive, limits)
        for member, relative in plan:
            try:
                target = _make_parent(destination, relative)
                if member.is_dir():
                    target.mkdir(exist_ok=True)
                    continue
                with bundle.open(member) as source:
                    budget.copy(source, target, member.filename)
            except FileExistsError:
                raise _refuse(archive, f'member {member.filename!r} appears twice', 'pack each file once') from None
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                raise _refuse(archive, f'member {member.filename!r} cannot be read ({exc})',
                              'send a valid .zip or .tar.gz file') from None


def _unpack_tar(archive: Path, destination: Path, limits: ArchiveLimits) -> None:
    try:
        bundle = tarfile.open(archive, mode='r:gz')  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _refuse(archive, f'not a readable .tar.gz file ({exc})', 'send a valid .zip or .tar.gz file') from None
    with bundle:
        members: list[tarfile.TarInfo] = []
        total = 0
        try:   # read headers one by one: the count is capped before the whole index is read
            for member in bundle:
                members.append(member)
                total += max(member.size, 0)
                _check_totals(archive, len(members), total, limits)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise _refuse(archive, f'not a readable .tar.gz file ({exc})',
                          'send a valid .zip or .tar.gz file') from None
        plan: list[tuple[tarfile.TarInfo, PurePosixPath]] = []
        for member in members:
            relative = _safe_name(archive, member.name)
            if member.issym() or member.islnk():
                raise _refuse(archive, f'member {member.name!r} is a {"symbolic" if member.issym() else "hard"} '
                              'link', 'pack regular files only (copy the file instead of linking it)')
            if not (member.isfile() or member.isdir()):
                raise _refuse(archive, f'member {member.name!r} is a device file, FIFO or other special file',
                              'pack regular files only')
            if member.size > limits.max_file_bytes:
                raise _too_big(archive, member.name, limits)
            if relative is not None:
                plan.append((member, relative))
        budget = _Budget(archive, limits)
        for member, relative in plan:
            try:
                target = _make_parent(destination, relative)
                if member.isdir():
                    target.mkdir(exist_ok=True)
                    continue
                source = bundle.extractfile(member)
                if source is None:
                    raise _refuse(archive, f'member {member.name!r} cannot be read', 'pack regular files only')
                with source:
                    budget.copy(source, target, member.name)
            except FileExistsError:
                raise _refuse(archive, f'member {member.name!r} appears twice', 'pack each file once') from None
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise _refuse(archive, f'member {member.name!r} cannot be read ({exc})',
                              'send a valid .zip or .tar.gz file') from None
