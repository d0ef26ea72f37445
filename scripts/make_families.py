"""Write the development suite of non-digit image families: PNG folders with one subfolder per class, each
family with nuisances that vary at random, for checking that the defaults group images by what they show.

    python scripts/make_families.py --out data/families                  # every family
    python scripts/make_families.py --out data/families --families glyphs --per-class 100

Families (OUT/NAME/CLASS/NNNNN.png; seeded, so the same arguments write the same files):
- `shapes3`: grey filled circle, square, triangle (scripts/make_shapes.py, 32x32); nuisances: size,
  rotation, grey levels and polarity (light on dark or dark on light), background noise.
- `textures`: stripes, checks, dots, blobs (band-passed noise), 28x28 grey; nuisances: scale, orientation,
  phase, brightness, contrast, polarity, sensor noise.
- `glyphs`: the letters A E K O S X drawn in the fonts installed on the machine (and matplotlib's own),
  28x28 grey; nuisances: font, size, position, slant, stroke width, polarity and grey levels.
- `icons`: a house, a tree, a car and a boat drawn from parts, 32x32 RGB; nuisances: every part's colour,
  a two-colour background gradient, size, position, facing left or right, noise.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_shapes import draw_shape  # noqa: E402

SUPER = 4  # drawn SUPER times larger, then scaled down: smooth edges


def finish(a: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Float image in [0, 1] ([H, W] or [H, W, 3]) plus sensor noise -> 8-bit PIL image."""
    a = a + rng.normal(0, rng.uniform(0.01, 0.06), a.shape)
    a = np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)
    return Image.fromarray(a, "L" if a.ndim == 2 else "RGB")


def shrink(img: Image.Image, size: int) -> np.ndarray:
    return np.asarray(img.resize((size, size), Image.LANCZOS), dtype=np.float64) / 255.0


# --- textures -------------------------------------------------------------------------------------------
TEXTURES = ("stripes", "checks", "dots", "blobs")


def texture(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A pattern in [-1, 1] at a random scale, orientation and phase, then random brightness, contrast and
    polarity."""
    s = size * SUPER
    yy, xx = np.mgrid[0:s, 0:s] / SUPER                               # pixel units of the final image
    theta = rng.uniform(0, math.pi)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    period = rng.uniform(4, 10)
    phase_u, phase_v = rng.uniform(0, 2 * math.pi, 2)
    sharp = rng.uniform(1, 6)                                          # soft sine to nearly square edges
    if kind == "stripes":
        p = np.tanh(sharp * np.sin(2 * math.pi * u / period + phase_u))
    elif kind == "checks":
        p = np.tanh(sharp * np.sin(2 * math.pi * u / period + phase_u) * np.sin(2 * math.pi * v / period + phase_v))
    elif kind == "dots":
        cu = (u / period + phase_u / (2 * math.pi)) % 1 - 0.5
        cv = (v / period + phase_v / (2 * math.pi)) % 1 - 0.5
        r = rng.uniform(0.18, 0.32)
        p = np.tanh(sharp * (r - np.hypot(cu, cv)) * 8)
    elif kind == "blobs":
        from scipy.ndimage import gaussian_filter
        noise = rng.normal(0, 1, (s, s))
        band = gaussian_filter(noise, period * SUPER / 4, mode="wrap") - gaussian_filter(noise, period * SUPER / 2, mode="wrap")
        p = np.tanh(sharp * band / (band.std() + 1e-8))
    else:
        raise ValueError(kind)
    p = np.asarray(Image.fromarray(p.astype(np.float32), "F").resize((size, size), Image.BILINEAR), dtype=np.float64)
    contrast = rng.uniform(0.12, 0.45) * rng.choice([-1, 1])
    brightness = rng.uniform(0.3, 0.7)
    return finish(brightness + contrast * p, rng)


# --- glyphs ---------------------------------------------------------------------------------------------
LETTERS = ("A", "E", "K", "O", "S", "X")
SYMBOL_FONTS = {"cmex10", "cmsy10"}  # TeX's symbol fonts: their letter slots hold other glyphs


def font_files() -> list[Path]:
    """TrueType fonts of the machine and matplotlib's own, those that draw every letter used here."""
    roots = [Path("/usr/share/fonts"), Path.home() / ".fonts"]
    try:
        import matplotlib
        roots.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    except ImportError:
        pass
    found = {}  # one file per font name: matplotlib ships copies of the system's DejaVu fonts
    for p in sorted(p.resolve() for r in roots if r.is_dir() for p in r.rglob("*.ttf")):
        found.setdefault(p.name, p)
    usable = []
    for p in found.values():
        if p.stem in SYMBOL_FONTS:
            continue
        try:
            font = ImageFont.truetype(str(p), 40)
        except OSError:
            continue
        # symbol fonts map letters to other glyphs or to nothing: keep fonts whose letters differ in shape
        masks = [np.asarray(font.getmask(ch)) for ch in LETTERS]
        if all(m.size > 0 and m.max() > 0 for m in masks) and len({m.tobytes() for m in masks}) == len(LETTERS):
            usable.append(p)
    if not usable:
        raise SystemExit("no TrueType font found (looked in /usr/share/fonts and matplotlib's fonts)")
    return usable


def glyph(letter: str, size: int, rng: np.random.Generator, fonts: list[Path]) -> Image.Image:
    s = size * SUPER
    font = ImageFont.truetype(str(fonts[rng.integers(len(fonts))]), int(rng.uniform(0.5, 0.85) * s))
    mask = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(mask)
    stroke = int(rng.integers(0, 3 * SUPER // 2 + 1))
    box = d.textbbox((0, 0), letter, font=font, stroke_width=stroke)
    w, h = box[2] - box[0], box[3] - box[1]
    room_x, room_y = max(s - w, 0), max(s - h, 0)
    x = room_x / 2 + rng.uniform(-0.35, 0.35) * room_x - box[0]
    y = room_y / 2 + rng.uniform(-0.35, 0.35) * room_y - box[1]
    d.text((x, y), letter, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    slant = rng.uniform(-0.25, 0.25)
    mask = mask.transform((s, s), Image.AFFINE, (1, slant, -slant * s / 2, 0, 1, 0), Image.BILINEAR)
    mask = mask.rotate(rng.uniform(-10, 10), Image.BILINEAR)
    m = shrink(mask, size)
    fg, bg = rng.uniform(0, 1, 2)
    while abs(fg - bg) < 0.4:  # keep the letter visible; which of the two is lighter is random (polarity)
        fg, bg = rng.uniform(0, 1, 2)
    return finish(bg + (fg - bg) * m, rng)


# --- icons (RGB) ----------------------------------------------------------------------------------------
ICONS = ("house", "tree", "car", "boat")


def colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def distinct(rng: np.random.Generator, avoid: tuple[int, int, int], gap: int = 160) -> tuple[int, int, int]:
    """A random colour at least `gap` away (sum of channel differences) from `avoid`: the part stays visible."""
    c = colour(rng)
    while sum(abs(a - b) for a, b in zip(c, avoid)) < gap:
        c = colour(rng)
    return c


def icon(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    s = size * SUPER
    top, bottom = colour(rng), colour(rng)
    ramp = np.linspace(0, 1, s)[:, None, None]
    bg = (1 - ramp) * np.array(top) + ramp * np.array(bottom)
    img = Image.fromarray(np.repeat(bg, s, axis=1).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    mid = tuple(int(v) for v in bg[s // 2, 0])
    r = rng.uniform(0.28, 0.42) * s                                    # half the icon's width
    cx = s / 2 + rng.uniform(-0.12, 0.12) * s
    cy = s / 2 + rng.uniform(-0.12, 0.12) * s
    a, b = distinct(rng, mid), distinct(rng, mid)
    face = rng.choice([-1, 1])                                         # facing right or left (car, boat)
    if kind == "house":
        d.rectangle([cx - r, cy - 0.1 * r, cx + r * 0.9, cy + r], fill=a)
        d.polygon([(cx - 1.15 * r, cy - 0.1 * r), (cx - 0.05 * r, cy - r), (cx + 1.05 * r, cy - 0.1 * r)], fill=b)
        d.rectangle([cx - 0.2 * r, cy + 0.35 * r, cx + 0.15 * r, cy + r], fill=distinct(rng, a))
    elif kind == "tree":
        d.rectangle([cx - 0.18 * r, cy + 0.1 * r, cx + 0.18 * r, cy + r], fill=a)
        d.ellipse([cx - 0.8 * r, cy - r, cx + 0.8 * r, cy + 0.35 * r], fill=b)
    elif kind == "car":
        d.rounded_rectangle([cx - r, cy - 0.15 * r, cx + r, cy + 0.45 * r], radius=0.15 * r, fill=a)
        front = cx + face * 0.15 * r
        d.polygon([(front - face * 0.75 * r, cy - 0.15 * r), (front - face * 0.55 * r, cy - 0.6 * r),
                   (front + face * 0.1 * r, cy - 0.6 * r), (front + face * 0.35 * r, cy - 0.15 * r)], fill=a)
        wheel = distinct(rng, a)
        for wx in (cx - 0.55 * r, cx + 0.55 * r):
            d.ellipse([wx - 0.25 * r, cy + 0.25 * r, wx + 0.25 * r, cy + 0.75 * r], fill=wheel)
    elif kind == "boat":
        d.polygon([(cx - r, cy + 0.3 * r), (cx + r, cy + 0.3 * r), (cx + face * 0.7 * r, cy + 0.75 * r),
                   (cx - face * 0.75 * r, cy + 0.75 * r)], fill=a)
        d.rectangle([cx - 0.05 * r, cy - r, cx + 0.05 * r, cy + 0.3 * r], fill=a)
        d.polygon([(cx + face * 0.1 * r, cy - 0.95 * r), (cx + face * 0.1 * r, cy + 0.2 * r),
                   (cx + face * 0.85 * r, cy + 0.2 * r)], fill=b)
    else:
        raise ValueError(kind)
    return finish(shrink(img, size), rng)


FAMILIES = {
    "shapes3": (("circle", "square", "triangle"), 32, lambda k, size, rng: draw_shape(k, size, rng, grey=True)),
    "textures": (TEXTURES, 28, texture),
    "glyphs": (LETTERS, 28, None),  # the fonts are looked up once, in main
    "icons": (ICONS, 32, icon),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma list of: " + ", ".join(FAMILIES))
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for name in args.families.split(","):
        if name not in FAMILIES:
            raise SystemExit(f"unknown family {name!r}; use some of: {', '.join(FAMILIES)}")
        classes, size, draw = FAMILIES[name]
        if name == "glyphs":
            fonts = font_files()
            draw = lambda k, size, rng: glyph(k, size, rng, fonts)  # noqa: E731
        rng = np.random.default_rng([args.seed, list(FAMILIES).index(name)])  # a family's images whatever else is asked
        root = Path(args.out) / name
        for i in range(args.per_class):
            for kind in classes:
                folder = root / kind
                folder.mkdir(parents=True, exist_ok=True)
                draw(kind, size, rng).save(folder / f"{i:05d}.png")
        print(f"wrote {args.per_class * len(classes)} images of {len(classes)} classes to {root}"
              + (f" ({len(fonts)} fonts)" if name == "glyphs" else ""))


if __name__ == "__main__":
    main()
