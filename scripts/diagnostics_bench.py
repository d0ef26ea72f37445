"""Do the outlier scores and near-duplicates find what was planted? For a run's encoder and for raw pixels:
the first 2,000 images of its dataset (or fewer), with 10 replaced by uniform noise, 10 by blank images, then
10 exact copies and 10 copies shifted by --shift pixels appended.

    python scripts/diagnostics_bench.py RUN [--shift 1] [--threshold 0.995] [--seeds 3]

Prints, per seed: how many of the 20 junk images rank in the top 40 outlier scores, how many copies
`duplicate_of` finds (exact, shifted), and how many other pairs it marks (blank-blank pairs apart).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from unsuprnn.data.dataset import load_dataset
from unsuprnn.evaluate.baselines import raw_features
from unsuprnn.evaluate.diagnostics import near_duplicates, outlier_scores
from unsuprnn.evaluate.embed import embed_images
from unsuprnn.runs.checkpoint import load_run_encoder


def shifted(images: torch.Tensor, pixels: float) -> torch.Tensor:
    """uint8 images moved `pixels` to the right (bilinear), rounded back to uint8."""
    u = images.float()
    theta = torch.tensor([[1, 0, -2 * pixels / u.shape[-1]], [0, 1, 0]], dtype=torch.float32).expand(len(u), 2, 3)
    grid = torch.nn.functional.affine_grid(theta, list(u.shape), align_corners=False)
    return torch.nn.functional.grid_sample(u, grid, align_corners=False).round().clamp(0, 255).to(torch.uint8)


def planted_set(images: torch.Tensor, seed: int, shift: float):
    """(images with junk and copies, junk rows, copy rows, their originals)."""
    g = np.random.default_rng(seed)
    n = len(images)
    picked = g.choice(n, 40, replace=False)
    junk, sources = picked[:20], picked[20:]
    x = images.clone()
    x[junk[:10]] = torch.from_numpy(g.integers(0, 256, (10,) + tuple(x.shape[1:])).astype(np.uint8))
    x[junk[10:]] = 0
    allx = torch.cat([x, x[sources[:10]].clone(), shifted(x[sources[10:]], shift)])
    return allx, junk, np.arange(n, n + 20), sources


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--shift", type=float, default=1.0)
    ap.add_argument("--threshold", type=float, default=0.995)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--no-pixels", dest="pixels", action="store_false",
                    help="near-duplicates from the embeddings alone, without checking candidates' pixels")
    a = ap.parse_args()
    encoder, pipeline, cfg, _ = load_run_encoder(a.run)
    ds = load_dataset(cfg.data, cfg.train.seed)
    images = ds.images[:2000]
    print(f"{ds.spec}: {len(images)} images + 40 planted; shift {a.shift} px; threshold {a.threshold}; "
          f"pixels checked: {a.pixels}")
    for seed in range(a.seeds):
        x, junk, copies, sources = planted_set(images, seed, a.shift)
        blanks = set(junk[10:].tolist())
        for name, f in (("encoder", embed_images(encoder, pipeline, x, "cpu")),
                        ("raw pixels", raw_features(pipeline, x, torch.arange(len(x))))):
            top = set(np.argsort(-outlier_scores(f))[:40].tolist())
            dup = near_duplicates(f, a.threshold, images=x if a.pixels else None)
            found = dup[copies] == sources
            others = sum(1 for i in np.flatnonzero(dup >= 0)
                         if i not in set(copies.tolist()) and not (i in blanks and dup[i] in blanks))
            print(f"seed {seed} {name:10s}: junk in the top 40 outlier scores {len(set(junk.tolist()) & top)}/20; "
                  f"copies found: exact {int(found[:10].sum())}/10, shifted {int(found[10:].sum())}/10; "
                  f"other pairs {others}")


if __name__ == "__main__":
    main()
