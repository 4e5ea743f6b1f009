"""Hostile archives are refused before anything leaves the temporary folder; the store is keyed by content."""
from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from frugalbench.errors import SubmissionError
from frugalbench.platform import store
from frugalbench.platform.archives import ArchiveLimits, ArchiveRefused, unpack


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob('*'))


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, 'w:gz') as bundle:
        for info, data in members:
            bundle.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, linkname: str = '') -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, linkname
    return info


def _manifest() -> tuple[tarfile.TarInfo, bytes]:
    return _info('sub/submission.yaml', size=5), b'name:'


@pytest.mark.parametrize('member, needle', [
    (_info('sub/evil', tarfile.SYMTYPE, linkname='/etc/passwd'), 'symbolic link'),
    (_info('sub/hard', tarfile.LNKTYPE, linkname='sub/submission.yaml'), 'hard link'),
    (_info('sub/../../escape.txt', size=2), '".."'),
    (_info('/tmp/absolute.txt', size=2), 'absolute path'),
    (_info('sub/fifo', tarfile.FIFOTYPE), 'FIFO'),
    (_info('sub/dev', tarfile.CHRTYPE), 'device'),
])
def test_hostile_tar_members_are_refused_and_nothing_is_written(tmp_path: Path, member, needle) -> None:
    data = b'hi' if member.size else None
    archive = _tar(tmp_path / 'bad.tar.gz', [_manifest(), (member, data)])
    destination = tmp_path / 'out'
    destination.mkdir()
    with pytest.raises(ArchiveRefused, match=needle) as refused:
        unpack(archive, destination)
    assert 'refused' in str(refused.value) and ';' in str(refused.value)   # the problem, then the fix
    assert _files(destination) == []
    assert not (tmp_path / 'escape.txt').exists() and not Path('/tmp/absolute.txt').exists()


def test_zip_link_dotdot_absolute_and_bomb_are_refused(tmp_path: Path) -> None:
    def make(name: str, writer) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as bundle:
            bundle.writestr('sub/submission.yaml', 'name: x')
            writer(bundle)
        return path

    link = zipfile.ZipInfo('sub/link')
    link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
    fifo = zipfile.ZipInfo('sub/fifo')
    fifo.create_system, fifo.external_attr = 3, (stat.S_IFIFO | 0o644) << 16
    cases = {
        'link.zip': (lambda b: b.writestr(link, '/etc/passwd'), 'symbolic link'),
        'fifo.zip': (lambda b: b.writestr(fifo, ''), 'FIFO'),
        'dotdot.zip': (lambda b: b.writestr('../escape.txt', 'x'), '".."'),
        'absolute.zip': (lambda b: b.writestr('/tmp/abs.txt', 'x'), 'absolute path'),
        'bomb.zip': (lambda b: b.writestr('sub/zeros.bin', b'\0' * (20 << 20)), 'zip bomb'),
    }
    for name, (writer, needle) in cases.items():
        destination = tmp_path / f'out-{name}'
        destination.mkdir()
        with pytest.raises(ArchiveRefused, match=needle):
            unpack(make(name, writer), destination)
        assert _files(destination) == [], name
    assert not (tmp_path / 'escape.txt').exists()


def test_a_zip_that_lies_about_its_sizes_is_stopped_while_extracting(tmp_path: Path) -> None:
    path = tmp_path / 'liar.zip'
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as bundle:
        bundle.writestr('sub/submission.yaml', 'name: x')
        bundle.writestr('sub/big.bin', b'a' * 4096)
    # rewrite the declared size of big.bin (central directory) to 10 bytes
    raw = bytearray(path.read_bytes())
    central = raw.rfind(b'PK\x01\x02')
    raw[central + 24:central + 28] = (10).to_bytes(4, 'little')
    path.write_bytes(bytes(raw))
    destination = tmp_path / 'out'
    destination.mkdir()
    with pytest.raises(ArchiveRefused):
        unpack(path, destination, ArchiveLimits(max_bytes=1000, max_file_bytes=1000))


def test_caps_on_count_and_size(tmp_path: Path) -> None:
    many = _tar(tmp_path / 'many.tar.gz', [(_info(f'sub/f{i}', size=1), b'x') for i in range(20)])
    big = _tar(tmp_path / 'big.tar.gz', [(_info('sub/big', size=3000), b'y' * 3000)])
    limits = ArchiveLimits(max_files=10, max_bytes=2000, max_file_bytes=2000)
    for archive, needle in ((many, 'more than 10 members'), (big, 'larger than|more than 2,000 bytes')):
        destination = tmp_path / f'out-{archive.name}'
        destination.mkdir()
        with pytest.raises(ArchiveRefused, match=needle):
            unpack(archive, destination, limits)
        assert _files(destination) == []


def test_a_good_archive_unpacks_and_the_store_is_keyed_by_content(tmp_path: Path, isolated: Path) -> None:
    archive = _tar(tmp_path / 'good.tar.gz', [(_info('sub/submission.yaml', size=7), b'name: x'),
                                              (_info('sub/dir/model.pth', size=3), b'abc')])
    with store.materialise(archive) as folder:
        assert folder.name == 'sub' and _files(folder) == ['dir', 'dir/model.pth', 'submission.yaml']
        digest, stored, new = store.put(folder)
    assert new and stored == store.stored_folder(digest) and stored.is_relative_to(isolated / 'data')
    assert _files(stored) == ['dir', 'dir/model.pth', 'submission.yaml']
    assert list(store.temp_dir().iterdir()) == []          # temporary folders removed
    plain = tmp_path / 'plain'
    (plain / 'dir').mkdir(parents=True)
    (plain / 'submission.yaml').write_bytes(b'name: x')
    (plain / 'dir' / 'model.pth').write_bytes(b'abc')
    assert store.put(plain) == (digest, stored, False)      # the same content: the same entry
    (plain / 'dir' / 'model.pth').write_bytes(b'abd')
    assert store.content_hash(plain) != digest
    os.symlink('/etc/passwd', plain / 'link')
    with pytest.raises(SubmissionError, match='symbolic link'):
        store.put(plain)
