#!/usr/bin/env python3
"""make_ro_seeds.py OUTDIR: seeds for fuzz_roimg, one file per image: a format byte
(0 dmg, 1 cloop, 2 bochs, as fuzz_roimg.c reads it) then an image that
tests/system/roimages.py builds, in each layout the drivers read."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "system"))
import roimages as R  # noqa: E402


def main(out):
    os.makedirs(out, exist_ok=True)
    d = R.pattern(64 << 10)
    mixed = [[(R.UDZO, d[:16384]), (R.UDRW, d[16384:20480]), (R.UDZE, bytes(4096)),
              (R.UDBZ, d[:8192]), (R.UDIG, bytes(512)), (R.ULFO, d[:512])],
             [(R.UDZO, d[:4096])]]
    seeds = {
        "dmg-xml": (0, R.dmg(mixed)[0]),
        "dmg-rsrc": (0, R.dmg(mixed, xml=False)[0]),
        "cloop-4k": (1, R.cloop(d, 4096)),
        "cloop-512": (1, R.cloop(d[:8192], 512)),
        "bochs-v2": (2, R.bochs(d, extent=4096)),
        "bochs-v1": (2, R.bochs(d, version=1, extent=512)),
    }
    for name, (fmt, img) in seeds.items():
        Path(out, name).write_bytes(bytes([fmt]) + img)


if __name__ == "__main__":
    main(sys.argv[1])
