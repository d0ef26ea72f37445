"""Write a folder of generated colour shapes: an image set that is not digits, for checking that defaults
and clustering work on data they were never tuned on.

    python scripts/make_shapes.py --out data/shapes --classes circle,square,triangle,cross --per-class 300 --size 32

Each image: one filled shape of a random colour, size and rotation, near the centre (`--jitter`), on a
random background colour with noise, SIZE x SIZE RGB PNG, in DIR/CLASS/NNNNN.png (or flat, unlabelled, with --flat).
Seeded: the same arguments write the same files.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "cross", "ring", "star")


def polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Corner points of a regular shape of circumradius r centred at (cx, cy), turned by `angle`."""
    if kind == "square":
        corners = [(math.cos(angle + math.pi / 4 + k * math.pi / 2), math.sin(angle + math.pi / 4 + k * math.pi / 2))
                   for k in range(4)]
    elif kind == "triangle":
        corners = [(math.cos(angle + k * 2 * math.pi / 3), math.sin(angle + k * 2 * math.pi / 3)) for k in range(3)]
    elif kind == "star":
        corners = [((1 if k % 2 == 0 else 0.45) * math.cos(angle + k * math.pi / 5),
                    (1 if k % 2 == 0 else 0.45) * math.sin(angle + k * math.pi / 5)) for k in range(10)]
    elif kind == "cross":
        w = 0.33
        arm = [(1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w), (-w, -1), (w, -1), (w, -w), (1, -w)]
        corners = [(x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle)) for x, y in arm]
    else:
        raise ValueError(kind)
    return [(cx + r * x, cy + r * y) for x, y in corners]


def draw_shape(kind: str, size: int, rng: np.random.Generator, jitter: float = 0.15, grey: bool = False) -> Image.Image:
    scale = 4  # drawn large and scaled down: smooth edges
    s = size * scale
    bg = tuple(int(v) for v in rng.integers(0, 256, 3))
    fg = tuple(int(v) for v in rng.integers(0, 256, 3))
    if grey:  # grey levels: the shape, not its colour, tells the images apart
        bg, fg = (bg[0],) * 3, (fg[0],) * 3
    while sum(abs(a - b) for a, b in zip(bg, fg)) < 150:  # keep the shape visible
        fg = tuple(int(v) for v in rng.integers(0, 256, 3))
        fg = (fg[0],) * 3 if grey else fg
    img = Image.new("RGB", (s, s), bg)
    d = ImageDraw.Draw(img)
    r = rng.uniform(0.22, 0.38) * s
    # near the centre, as photographed objects and scanned characters are (position is not what differs)
    cx, cy = (np.clip(s / 2 + rng.uniform(-jitter, jitter, 2) * s, r, s - r) if jitter < 1
              else (rng.uniform(r, s - r), rng.uniform(r, s - r)))
    angle = rng.uniform(0, 2 * math.pi)
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif kind == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
        d.ellipse([cx - 0.55 * r, cy - 0.55 * r, cx + 0.55 * r, cy + 0.55 * r], fill=bg)
    else:
        d.polygon(polygon(kind, cx, cy, r, angle), fill=fg)
    small = np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.float64)
    small += rng.normal(0, rng.uniform(3, 15), small.shape)  # sensor noise
    img = Image.fromarray(np.clip(np.rint(small), 0, 255).astype(np.uint8), "RGB")
    return img.convert("L") if grey else img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--classes", default="circle,square,triangle,cross", help="comma list of: " + ", ".join(SHAPES))
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flat", action="store_true", help="one folder, no class subfolders (unlabelled)")
    ap.add_argument("--grey", action="store_true", help="grey levels instead of colours (one channel)")
    ap.add_argument("--jitter", type=float, default=0.15,
                    help="the centre moves by up to this share of the side (1: anywhere in the image)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    kinds = args.classes.split(",")
    for i in range(args.per_class):
        for kind in kinds:
            folder = out if args.flat else out / kind
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{kind}-{i:05d}.png" if args.flat else f"{i:05d}.png"
            draw_shape(kind, args.size, rng, args.jitter, args.grey).save(folder / name)
    print(f"wrote {args.per_class * len(kinds)} images of {len(kinds)} shapes to {out}")


if __name__ == "__main__":
    main()
