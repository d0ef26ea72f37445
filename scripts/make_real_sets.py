"""Image folders of real images this machine has offline, for development and for the sets kept apart
(RESULTS.md, "Images nobody here generated"): one class subfolder of PNGs each.

    python scripts/make_real_sets.py --out data/real --debian debian   # every set below
    python scripts/make_real_sets.py --out data/real --sets faces letters

- `faces`: scikit-image's `lfw_subset`, 100 faces and 100 non-faces, 25 x 25 grey photographs;
- `textures`: 400 random 28 x 28 crops of each of scikit-image's brick, grass and gravel photographs;
- `letters`: the letters A to J in every TrueType/OpenType font file under /usr/share/fonts (Debian's font
  packages: dejavu, liberation, freefont, urw-base35, ...), 32 x 32 grey, each drawn at a random size and place;
- `photos_by_content`: crops of scikit-image's and scikit-learn's photographs by what they show, not by
  photograph (faces: astronaut, camera, lfw faces; animals: chelsea, cat...; see CONTENT), 64 x 64 colour;
- `artwork`: the 32 x 32 icons of Debian's `oxygen-icon-theme` by what they are for (actions, apps, devices,
  mimetypes, places, status; at most 240 of each, so imbalanced), colour, on white;
- `units`: the unit sprites of Debian's `wesnoth-1.16-data` by people (drakes, dwarves, elves, loyalists, saurians,
  undead; 240 of each, every pose and animation frame), 36 x 36 colour, on black;
- `tango`: the 32 x 32 icons of Debian's `tango-icon-theme`, grouped as `artwork` is, on white (fewer: 42 to 170
  distinct drawings a group);
- `themes`: the 32 x 32 icons of Debian's `mate-icon-theme` and `elementary-xfce-icon-theme` (two other themes,
  other artists), grouped and drawn as `artwork` is: a development set of real icons;
- `emoji`: Noto Color Emoji (`fonts-noto-color-emoji`) by Unicode's emoji groups (`unicode-data`: smileys,
  people, animals, food, travel, activities, objects, symbols, flags; at most 240 each), 32 x 32, on white.

The last five read the packages' files from --debian DIR, where they were unpacked:

    apt-get download oxygen-icon-theme wesnoth-1.16-data tango-icon-theme \
        fonts-noto-color-emoji unicode-data mate-icon-theme elementary-xfce-icon-theme
    for f in *.deb; do dpkg-deb -x "$f" debian; done
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def faces(out: Path, rng) -> None:
    from skimage.data import lfw_subset
    images = lfw_subset()  # [200, 25, 25] floats in [0, 1]: 100 faces, then 100 non-faces
    for i, img in enumerate(images):
        folder = out / ("face" if i < 100 else "not_face")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255).round().astype(np.uint8)).save(folder / f"{i:03d}.png")


def textures(out: Path, rng, per_class: int = 400, side: int = 28) -> None:
    from skimage import data
    for name in ("brick", "grass", "gravel"):
        img = getattr(data, name)()
        (out / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            y, x = rng.integers(0, img.shape[0] - side), rng.integers(0, img.shape[1] - side)
            Image.fromarray(img[y:y + side, x:x + side]).save(out / name / f"{i:04d}.png")


def letters(out: Path, rng, side: int = 32) -> None:
    fonts = sorted(p for p in Path("/usr/share/fonts").rglob("*") if p.suffix.lower() in (".ttf", ".otf"))
    for letter in "ABCDEFGHIJ":
        (out / letter).mkdir(parents=True, exist_ok=True)
        for k, path in enumerate(fonts):
            try:
                font = ImageFont.truetype(str(path), int(rng.integers(18, 27)))
            except OSError:
                continue
            canvas = Image.new("L", (side, side), 0)
            draw = ImageDraw.Draw(canvas)
            box = draw.textbbox((0, 0), letter, font=font)
            w, h = box[2] - box[0], box[3] - box[1]
            if w <= 0 or h <= 0 or w > side or h > side:
                continue
            x = int(rng.integers(0, side - w + 1)) - box[0]
            y = int(rng.integers(0, side - h + 1)) - box[1]
            draw.text((x, y), letter, fill=255, font=font)
            if np.asarray(canvas).max() > 0:  # (a font without the letter draws nothing)
                canvas.save(out / letter / f"{k:04d}.png")


# what each photograph shows (scikit-image, and scikit-learn's sample images)
CONTENT = {"faces": ("astronaut", "camera"), "animals": ("chelsea", "cat"), "machines": ("rocket", "motorcycle"),
           "sky": ("hubble_deep_field", "moon"), "tissue": ("immunohistochemistry", "retina"),
           "plants": ("flower", "china")}


def photos_by_content(out: Path, rng, per_photo: int = 80, side: int = 64) -> None:
    from skimage import data
    from sklearn.datasets import load_sample_images
    sample = dict(zip(("china", "flower"), load_sample_images().images))
    load = {"motorcycle": lambda: data.stereo_motorcycle()[0], **{k: (lambda v=v: v) for k, v in sample.items()}}
    for content, photos in CONTENT.items():
        (out / content).mkdir(parents=True, exist_ok=True)
        for name in photos:
            img = np.asarray(load[name]() if name in load else getattr(data, name)())
            img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]
            pil = Image.fromarray(img.astype(np.uint8))
            w, h = pil.size
            for i in range(per_photo):
                s = int(min(w, h) * rng.uniform(0.3, 0.6))
                x, y = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
                crop = pil.crop((x, y, x + s, y + s)).resize((side, side), Image.LANCZOS)
                if rng.random() < 0.5:
                    crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
                crop.save(out / content / f"{name}-{i:03d}.png")


def _flatten(path: Path, background: int, side: int) -> Image.Image:
    """An RGBA file -> RGB `side` x `side`, its transparent part filled with grey level `background`."""
    im = Image.open(path).convert("RGBA")
    canvas = Image.new("RGBA", im.size, (background, background, background, 255))
    canvas.alpha_composite(im)
    rgb = canvas.convert("RGB")
    return rgb if rgb.size == (side, side) else rgb.resize((side, side), Image.LANCZOS)


def _distinct(paths: list[Path]) -> list[Path]:
    """One path per distinct file: icon themes link one drawing under several names."""
    seen, out = set(), []
    for path in paths:
        key = path.read_bytes()
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


def _sampled(paths: list[Path], rng, most: int) -> list[Path]:
    paths = _distinct(sorted(paths))
    return [paths[i] for i in sorted(rng.choice(len(paths), most, replace=False))] if len(paths) > most else paths


ARTWORK = ("actions", "apps", "devices", "mimetypes", "places", "status")


def _icons(out: Path, rng, folders, most: int) -> None:
    """For each ARTWORK context: at most `most` distinct 32 px PNGs of the folders `folders(context)`, on white."""
    for context in ARTWORK:
        (out / context).mkdir(parents=True, exist_ok=True)
        paths = [path for folder in folders(context) for path in folder.glob("*.png")]
        for i, path in enumerate(_sampled(paths, rng, most)):
            _flatten(path, 255, 32).save(out / context / f"{i:03d}-{path.stem}.png")


def artwork(out: Path, rng, debian: Path, most: int = 240, theme: str = "oxygen/base") -> None:
    root = debian / "usr/share/icons" / theme / "32x32"
    _icons(out, rng, lambda context: [root / context], most)


def tango(out: Path, rng, debian: Path) -> None:
    artwork(out, rng, debian, theme="Tango")


def themes(out: Path, rng, debian: Path, most: int = 240) -> None:
    """mate's icons (context/ under 32x32/) and elementary-xfce's (32/ under each context; `mimes` for mimetypes)."""
    root = debian / "usr/share/icons"
    _icons(out, rng, lambda context: [root / "mate/32x32" / context, root / "elementary-xfce" /
                                      ("mimes" if context == "mimetypes" else context) / "32"], most)


UNITS = {"drakes": ("drakes",), "dwarves": ("dwarves",), "elves": ("elves-wood",), "loyalists": ("human-loyalists",),
         "saurians": ("saurians",), "undead": ("undead", "undead-skeletal", "undead-necromancers")}


def units(out: Path, rng, debian: Path, most: int = 240) -> None:
    root = debian / "usr/share/games/wesnoth/1.16/data/core/images/units"
    for people, folders in UNITS.items():
        (out / people).mkdir(parents=True, exist_ok=True)
        paths = [p for f in folders for p in (root / f).rglob("*.png") if Image.open(p).size == (72, 72)]
        for i, path in enumerate(_sampled(paths, rng, most)):
            _flatten(path, 0, 36).save(out / people / f"{i:03d}-{path.stem}.png")


EMOJI_SKIN = set(range(0x1F3FB, 0x1F400))  # skin-tone modifiers: five recoloured copies of one drawing


def emoji(out: Path, rng, debian: Path, most: int = 240, side: int = 32) -> None:
    """Every fully-qualified emoji of Unicode's emoji-test.txt but skin-tone variants, by its group (Smileys &
    Emotion, Animals & Nature, Food & Drink, Flags, ...; not Component), drawn by Noto Color Emoji on white."""
    font = ImageFont.truetype(str(debian / "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"), 109)  # its one size
    groups: dict[str, list[str]] = {}
    group = None
    for line in (debian / "usr/share/unicode/emoji/emoji-test.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.partition(":")[2].strip().split(" ")[0].lower()
        elif "; fully-qualified" in line and group != "component":
            points = [int(code, 16) for code in line.partition(";")[0].split()]
            if not EMOJI_SKIN & set(points):
                groups.setdefault(group, []).append("".join(map(chr, points)))
    for name, chars in groups.items():
        (out / name).mkdir(parents=True, exist_ok=True)
        pick = sorted(rng.choice(len(chars), most, replace=False)) if len(chars) > most else range(len(chars))
        for i, k in enumerate(pick):
            canvas = Image.new("RGB", (136, 128), "white")
            ImageDraw.Draw(canvas).text((0, 0), chars[k], font=font, embedded_color=True)
            canvas.resize((side, side), Image.LANCZOS).save(out / name / f"{i:03d}.png")


DEBIAN = {"artwork": artwork, "units": units, "tango": tango, "themes": themes, "emoji": emoji}
SETS = {"faces": faces, "textures": textures, "letters": letters, "photos_by_content": photos_by_content, **DEBIAN}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sets", nargs="*", default=list(SETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--debian", type=Path, help="where the Debian packages above were unpacked")
    args = ap.parse_args()
    if args.debian is None and set(args.sets) & set(DEBIAN):
        ap.error(f"--sets {' '.join(sorted(set(args.sets) & set(DEBIAN)))} need --debian DIR (see the top of this file)")
    for name in args.sets:
        rng = np.random.default_rng(args.seed)
        SETS[name](Path(args.out) / name, rng, *([args.debian] if name in DEBIAN else []))
        n = sum(1 for _ in (Path(args.out) / name).rglob("*.png"))
        print(f"{Path(args.out) / name}: {n} images")


if __name__ == "__main__":
    main()
