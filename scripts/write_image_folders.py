"""Write seeded subsets of an idx image set (e.g. the MNIST test set) as PNG folders with one subfolder per
class: the image folders a user brings, for the defaults protocol (scripts/defaults_protocol.py).

    python scripts/write_image_folders.py --idx ../shared/data/mnist --out data/folders --sizes 1000,2000,5000,10000

Writes OUT/mnist-N/CLASS/NNNNN.png for each size N: N images drawn without replacement (seed 0).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from unsuprnn.config import DataConfig  # noqa: E402
from unsuprnn.data.sources import load_idx_source  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idx", default="../shared/data/mnist")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", default="1000,2000,5000,10000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prefix", default="mnist")
    args = ap.parse_args()
    images, labels, _, _, _ = load_idx_source(args.idx, DataConfig())
    images, labels = images.numpy()[:, 0], labels.numpy()
    for n in map(int, args.sizes.split(",")):
        pick = np.sort(np.random.default_rng(args.seed).choice(len(images), min(n, len(images)), replace=False))
        root = Path(args.out) / f"{args.prefix}-{n}"
        for i in pick:
            folder = root / str(labels[i])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i], "L").save(folder / f"{i:05d}.png")
        print(f"wrote {len(pick)} images to {root}")


if __name__ == "__main__":
    main()
