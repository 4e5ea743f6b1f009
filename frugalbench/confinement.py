"""What a confined child sees of the file system, and the user it runs as (root on Linux).

Planned in the parent (`plan_confinement`), carried out in the child between fork and exec
(`confine`), in a private mount namespace:

* ``/tmp``, ``/var/tmp``, ``/dev/shm`` and ``/run/lock`` (every folder anyone may write) are
  fresh tmpfs mounts capped at the child's scratch size and counted by its memory group; a
  Python environment that lives under one of them (a checkout cloned into ``/tmp``) is shown
  inside it read-only, alone;
* a folder that other users cannot enter but that holds the Python environment (pyenv under
  ``/root``) is shown as an empty folder holding only that environment;
* every protected folder (benchmark data, results, overlays, logs, work folders) is covered by
  an empty read-only tmpfs;
* the child's own folder (``CONFINED_VIEW``, its working directory and HOME) lives in its
  private ``/tmp`` and holds a read-only view of the submission (``submission/``), never a copy;
* it then runs as a user id of its own (no other process on the machine has it: two runs can
  neither signal, trace nor read each other) with ``no_new_privs``.
"""
from __future__ import annotations

import ctypes
import os
import secrets
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
CONFINED_VIEW = Path('/tmp/frugalbench-child')   # where a confined child sees its own folder
PRIVATE_FOLDERS = (Path('/tmp'), Path('/var/tmp'), Path('/dev/shm'), Path('/run/lock'))
CHILD_UID_BASE, CHILD_UID_SPAN = 1_000_000, 1_000_000   # per-child user ids (no user owns them)


@dataclass(frozen=True)
class Confinement:
    """A child that may read ``submission`` (shown as ``submission/``) and must not see ``protected``."""

    submission: Path | None = None
    protected: tuple[Path, ...] = ()


@dataclass(frozen=True)
class MountPlan:
    """What the child does between fork and exec (computed in the parent)."""

    submission: str | None
    private: tuple[tuple[str, tuple[str, ...]], ...]   # (folder, Python trees shown inside it)
    mask: tuple[tuple[str, tuple[str, ...]], ...]      # (closed folder, Python trees shown inside it)
    hide: tuple[str, ...]                              # covered by empty read-only tmpfs
    scratch_mb: int
    uid: int | None                                    # None: stays root


def python_paths() -> list[Path]:
    """What a child needs to read to start Python and import frugalbench, torch and mmseg."""
    import frugalbench
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent,
             Path(frugalbench.__file__).resolve().parent}
    return _outermost(sorted(p.resolve() for p in paths))


def _outermost(paths: list[Path]) -> list[Path]:
    return [p for p in paths if not any(q != p and inside(p, q) for q in paths)]


def inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _closed_ancestor(path: Path) -> Path | None:
    """The topmost folder above ``path`` that other users cannot enter (None: they can reach it)."""
    for folder in reversed(path.parents):
        if not folder.stat().st_mode & 0o001:
            return folder
    return None


def already_hidden(folder: Path, covered: dict[Path, list[Path]]) -> bool:
    """Whether ``folder`` lies inside a covered folder and outside what that folder still shows."""
    return any(inside(folder, root) and not any(inside(folder, p) for p in shown)
               for root, shown in covered.items())


def unreadable_entries(folder: Path, limit: int = 3) -> list[str]:
    """Files or folders under ``folder`` (itself included) that other users cannot read."""
    found = []
    for path in [folder, *sorted(folder.rglob('*'))]:
        mode = path.lstat().st_mode
        needed = 0o005 if stat.S_ISDIR(mode) else 0o004
        if not stat.S_ISLNK(mode) and mode & needed != needed:
            found.append(f'{path.relative_to(folder.parent)} (mode {stat.S_IMODE(mode):04o})')
            if len(found) >= limit:
                break
    return found


def plan_confinement(confine: Confinement, scratch_mb: int, enforced: dict[str, object]) -> MountPlan | None:
    """Decide what can be hidden here; record it (and what could not be done) in ``enforced``."""
    if sys.platform != 'linux' or os.geteuid() != 0:
        enforced['filesystem'] = ('not confined (needs root on Linux): the model process can read what '
                                  'this user can read, including benchmark annotations')
        enforced['user'] = f'uid {os.geteuid()} (not dropped)'
        return None
    python = python_paths()
    covered: dict[Path, list[Path]] = {}
    private = []
    for folder in PRIVATE_FOLDERS:
        if folder.is_dir() and not folder.is_symlink():
            shown = [p for p in python if inside(p, folder)]
            private.append((folder, shown))
            covered[folder] = shown
    masks: dict[Path, list[Path]] = {}
    for path in python:
        closed = _closed_ancestor(path)
        if closed is not None and not already_hidden(closed, covered):
            masks.setdefault(closed, []).append(path)
    covered.update(masks)
    hide, kept = [], []
    for folder in sorted({p.resolve() for p in confine.protected if p.exists()}):
        if folder.is_file():
            folder = folder.parent
        if any(inside(p, folder) for p in python):
            kept.append(f'{folder} (holds the Python environment)')
        elif not already_hidden(folder, covered) and not any(inside(folder, h) for h in hide):
            hide.append(folder)
    readable = all(path.stat().st_mode & 0o005 == 0o005 for path in python)
    uid = CHILD_UID_BASE + secrets.randbelow(CHILD_UID_SPAN) if readable else None
    enforced['filesystem'] = (
        'private mount namespace; hidden (empty, read-only): ' + ', '.join(str(h) for h in [*hide, *masks])
        + f'; private {", ".join(str(f) for f, _ in private)} (tmpfs, {scratch_mb} MB each, counted by its '
        'memory limit); writable: nothing else; the submission is shown read-only (not copied)'
        + (f'; not hidden: {"; ".join(kept)}' if kept else ''))
    enforced['user'] = (f'uid {uid} (its own, unique to this child), no_new_privs' if uid is not None else
                        'root (not dropped: the Python environment is not readable by other users)')
    return MountPlan(submission=str(confine.submission.resolve()) if confine.submission else None,
                     private=tuple((str(f), tuple(str(p) for p in shown)) for f, shown in private),
                     mask=tuple((str(k), tuple(str(p) for p in v)) for k, v in masks.items()),
                     hide=tuple(str(h) for h in hide), scratch_mb=scratch_mb, uid=uid)


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    encode = (lambda text: None if text is None else text.encode())
    if libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f'mount {source} on {target}: {os.strerror(error)}')


def _bind_read_only(libc: ctypes.CDLL, handle: int, target: str) -> None:
    _mount(libc, f'/proc/self/fd/{handle}', target, None, MS_BIND | MS_REC)
    _mount(libc, None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC | MS_NOSUID | MS_NODEV)


def _cover(libc: ctypes.CDLL, folder: str, shown: tuple[str, ...], handles: dict[str, int], *,
           writable: bool, size: str) -> None:
    """Replace ``folder`` by a fresh tmpfs that shows only read-only views of ``shown``."""
    mode = '1777' if writable else '0755'
    _mount(libc, 'tmpfs', folder, 'tmpfs', MS_NOSUID | MS_NODEV, f'size={size},mode={mode}')
    for path in shown:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _bind_read_only(libc, handles[path], path)
    if not writable:
        _mount(libc, None, folder, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def confine(libc: ctypes.CDLL, plan: MountPlan) -> None:
    """In the child, after unshare(CLONE_NEWNS): cover, hide, show the submission, drop privileges."""
    shown = {p for _, paths in (*plan.private, *plan.mask) for p in paths}
    handles = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in shown}   # reachable once covered
    submission = os.open(plan.submission, os.O_PATH | os.O_DIRECTORY) if plan.submission else None
    _mount(libc, None, '/', None, MS_REC | MS_PRIVATE)          # nothing propagates back to the host
    for folder, paths in plan.private:
        _cover(libc, folder, paths, handles, writable=True, size=f'{plan.scratch_mb}m')
    for folder, paths in plan.mask:
        _cover(libc, folder, paths, handles, writable=False, size='64k')
    for folder in plan.hide:
        _mount(libc, 'tmpfs', folder, 'tmpfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 'size=16k,mode=0755')
    for handle in handles.values():
        os.close(handle)
    (CONFINED_VIEW / 'home').mkdir(parents=True, mode=0o700)
    if submission is not None:
        (CONFINED_VIEW / 'submission').mkdir()
        _bind_read_only(libc, submission, str(CONFINED_VIEW / 'submission'))
        os.close(submission)
    os.chdir(CONFINED_VIEW)
    if plan.uid is not None:
        for path in (CONFINED_VIEW, CONFINED_VIEW / 'home'):
            os.chown(path, plan.uid, plan.uid)
        os.setgroups([])
        os.setgid(plan.uid)
        os.setuid(plan.uid)
        if libc.prctl(38, 1, 0, 0, 0) != 0:   # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), 'prctl(PR_SET_NO_NEW_PRIVS) failed')
