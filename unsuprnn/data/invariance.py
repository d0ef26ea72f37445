"""Which transformations a set of images is closed under, read from the images themselves (no labels): a
mirrored photograph of an object lands among photographs of objects facing the other way; a mirrored digit lands
far from every digit. For each transformation T, the median cosine similarity of T(x) to its nearest image of the
set, over the median similarity of x to its nearest other image (pixels standardized per image): near 1, the set
holds images like T(x) as often as like x; well below, T makes images the set does not hold.

Measured on raw pixels (issue 38): 2,000 MNIST digits mirrored 0.80, photograph crops mirrored at random 1.00,
turned upside down every set 0.75-0.86. At pretraining, `augment.hflip: auto` turns mirroring on where the set
is closed under it (ratio >= CLOSED); `data.intensity: auto` keeps colour and polarity where a colour set is
closed under neither; `augment.colour_jitter: auto` turns the colour jitter off where a colour set's colours
follow its shapes (`colour_follows_shape` under COLOUR_FOLLOWS). What was measured is recorded in meta.json and
said by `unsuprnn data`. Shifted, zoomed in and turned copies are measured and shown (with the clusters'
consistency under them) but not acted on: the default views train with all three, and handwriting, drawn at
one place (MNIST shifted: 0.62), gained from stronger ones (RESULTS.md, "defaults for unseen data").
"""

from __future__ import annotations

import torch

from ..plan import AUTO
from .augment import LUMA

CLOSED = 0.95    # a ratio from which the set counts as closed under the transformation
SAMPLE = 2000    # images compared (a seeded sample of a larger set)
GREY_INTENSITY = "canonical"  # `intensity: auto` for grey images, whatever they hold


# The ratio of `colour_follows_shape` under which colour jitter goes off. Set on the development sets only: the
# photograph protocol at 96 px (each class one photograph, 0.10) and the icons family (random colours, 1.01).
COLOUR_FOLLOWS = 0.5
HUE_BINS = 12


def _mirror(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def _upside_down(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-2)


# the geometric copies stay inside the default augmentation's ranges (translate 0.12, rotate 15 degrees, crops of
# at least 0.75 of the side): a grouping split by them has not learnt what the views were meant to teach
SHIFT = 0.1     # shifted right and down by this share of each side
ZOOM = 0.85     # the centre 0.85 of each side, enlarged back to the image's size
TURN = 10.0     # degrees, anticlockwise


def _shifted(x: torch.Tensor) -> torch.Tensor:
    """The edge rows and columns repeat into the band uncovered: a uniform ground stays uniform."""
    h, w = x.shape[-2:]
    rows = (torch.arange(h) - max(1, round(SHIFT * h))).clamp_min(0)
    cols = (torch.arange(w) - max(1, round(SHIFT * w))).clamp_min(0)
    return x[..., rows, :][..., cols]


def _zoomed(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = round((1 - ZOOM) * h / 2), round((1 - ZOOM) * w / 2)  # as many rows off each side: centred
    crop = x[..., top:h - top, left:w - left].float()
    out = torch.nn.functional.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False, antialias=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def _turned(x: torch.Tensor) -> torch.Tensor:
    """Turned about the centre; corners brought in repeat the edges (padding "border")."""
    angle = torch.tensor(TURN * torch.pi / 180)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]]).expand(len(x), 2, 3)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def _negative(x: torch.Tensor) -> torch.Tensor:
    return 255 - x


def _channels_turned(x: torch.Tensor) -> torch.Tensor:
    return x.roll(1, dims=1) if x.shape[1] == 3 else x


# name -> (transformation of uint8 [N, C, H, W], the augmentation that makes the encoder ignore it)
TRANSFORMS = {"mirror": (_mirror, "--hflip true"),
              "upside down": (_upside_down, None),
              "shifted": (_shifted, f"--set augment.translate={SHIFT}"),
              "zoomed in": (_zoomed, f"--set augment.crop_scale={ZOOM}"),
              "turned": (_turned, f"--set augment.rotate={TURN:g}"),
              "negative": (_negative, "--set augment.invert=0.5"),
              "colour channels turned": (_channels_turned, "--set augment.hue=0.5")}


def flag_setting(flag: str) -> str:
    """The AugmentConfig key a TRANSFORMS flag sets ("--set augment.translate=0.1" -> "translate")."""
    return "hflip" if flag.startswith("--hflip") else flag.removeprefix("--set augment.").partition("=")[0]


def trains_with(flag: str | None, augment) -> bool:
    """Whether the views of `augment` (an AugmentConfig) already do what `flag` (a TRANSFORMS flag) asks for: a
    split under that transformation is then what the views left, not a setting to turn on."""
    if not flag:
        return False
    key = flag_setting(flag)
    have = getattr(augment, key)
    if key == "hflip":
        return have is True
    want = float(flag.partition("=")[2])
    return have <= want if key == "crop_scale" else have >= want  # (crops: the smaller, the wider their range)


def applicable(channels: int) -> dict:
    """The TRANSFORMS that change images of `channels` channels (turning colour channels needs three)."""
    return {name: v for name, v in TRANSFORMS.items() if name != "colour channels turned" or channels == 3}


def _unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> [N, C*H*W]: each image standardized, then L2-normalized."""
    z = x.float().flatten(1)
    z = z - z.mean(1, keepdim=True)
    return torch.nn.functional.normalize(z, dim=1)


def _to_others(moved: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[N, D] and [N, D] unit rows -> [N, N]: the cosine of moved[i] to x[j], and -2 (below any cosine) where
    j == i, so that an image's nearest is never the image it was made from (a symmetric image is its own mirror)."""
    sim = moved @ x.T
    return sim.fill_diagonal_(-2.0)


def _nearest_other(moved: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Median over i of the cosine of moved[i] to its nearest x[j], j != i."""
    return _to_others(moved, x).max(1).values.median()


def _sample(images: torch.Tensor, seed: int, indices: torch.Tensor | None) -> torch.Tensor:
    """A seeded sample of at most SAMPLE of images (of images[indices] where given: the train split, not copied
    whole), in their order."""
    indices = torch.arange(len(images)) if indices is None else indices
    if len(indices) > SAMPLE:
        pick = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))[:SAMPLE]
        indices = indices[pick.sort().values]
    return images[indices]


def closures(images: torch.Tensor, transforms: dict, seed: int = 0, indices: torch.Tensor | None = None) -> dict:
    """{name: the ratio of the module docstring} for each `transforms` {name: transformation} on a seeded sample
    of at most SAMPLE of images uint8 [N, C, H, W] (`_sample`); the set's own similarities are computed once for
    all of them."""
    sample = _sample(images, seed, indices)
    x = _unit(sample)
    base = _nearest_other(x, x).clamp_min(1e-6)
    return {name: float(_nearest_other(_unit(transform(sample)), x) / base) for name, transform in transforms.items()}


def closure(images: torch.Tensor, transform, seed: int = 0) -> float:
    """The ratio of the module docstring for `transform` on (a sample of) images uint8 [N, C, H, W]."""
    return closures(images, {"it": transform}, seed)["it"]


def invariances(images: torch.Tensor, seed: int = 0, indices: torch.Tensor | None = None) -> dict:
    """{name: {"ratio", "closed", "flag"}} of every transformation in TRANSFORMS that applies to these images
    (images[indices] where given)."""
    ratios = closures(images, {name: v[0] for name, v in applicable(images.shape[1]).items()}, seed, indices)
    return {name: {"ratio": ratio, "closed": ratio >= CLOSED, "flag": TRANSFORMS[name][1]}
            for name, ratio in ratios.items()}


def _hue_histogram(x: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [N, 3, H, W] -> [N, HUE_BINS]: each image's chroma per pixel (opponent colours, 0 for grey, up
    to about 1), summed by hue, over the pixel count; grey pixels add nothing."""
    r, g, b = x.float().unbind(1)
    red_green, yellow_blue = (r - g) / 2 ** 0.5, (r + g - 2 * b) / 6 ** 0.5
    chroma = torch.hypot(red_green, yellow_blue).flatten(1) / 255
    hue = torch.atan2(yellow_blue, red_green).flatten(1)
    bins = ((hue + torch.pi) / (2 * torch.pi) * HUE_BINS).long().clamp(0, HUE_BINS - 1)
    return torch.zeros(len(x), HUE_BINS).scatter_add_(1, bins, chroma) / chroma.shape[1]


def colour_follows_shape(images: torch.Tensor, seed: int = 0, indices: torch.Tensor | None = None) -> float:
    """How far an image's colour is from its nearest image by luminance alone, over how far it is from any
    image's (images uint8 RGB [N, 3, H, W], a seeded sample of at most SAMPLE of images[indices]). Colour: the
    L1 distance of the images' hue histograms. Near 0: images drawn alike are coloured alike (crops of one
    photograph, one people's sprites), so an encoder that keeps colour keeps what the shapes say; near 1: colour
    varies whatever the shape (icons coloured at random), and an encoder that keeps it groups by it."""
    sample = _sample(images, seed, indices)
    luma = (sample.float() * LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True)
    shape = _unit(luma)
    hues = _hue_histogram(sample)
    apart = torch.cdist(hues, hues, p=1)
    apart.fill_diagonal_(float("nan"))
    nearest = apart.gather(1, _to_others(shape, shape).argmax(1, keepdim=True)).squeeze(1)
    return float(nearest.median() / apart.nanmedian().clamp_min(1e-6))


def resolve_from_data(data, augment, images: torch.Tensor, seed: int = 0, indices: torch.Tensor | None = None,
                      measured: dict | None = None) -> dict[str, str]:
    """Resolve `auto` in augment.hflip, augment.colour_jitter and data.intensity from images uint8 [N, C, H, W]
    (images[indices], the train split, where given), in place; `measured` {name: ratio} holds ratios measured
    already. Returns what was chosen and why, {"augment": line, "colour": line, "intensity": line}, for the
    settings that were auto.

    - hflip: mirrored views where the set is closed under mirroring.
    - colour_jitter: off for a colour set whose colours follow its shapes (`colour_follows_shape` under
      COLOUR_FOLLOWS); on otherwise, and for grey images, where it does nothing.
    - intensity: `standardize` (colour and polarity kept) for a colour set closed neither under negatives nor
      under turned colour channels: in it, which colours an image has and which way round says what it shows
      (photographs, artwork); `canonical` (both removed) for every other set: grey images, and colour images whose
      colours and polarity vary at random, where canonical raised kNN by 17 to 28 points (RESULTS.md)."""
    need = {}
    if augment.hflip == AUTO:
        need["mirror"] = _mirror
    colour = images.shape[1] == 3
    if data.intensity == AUTO and colour:
        need |= {"negative": _negative, "colour channels turned": _channels_turned}
    ratios = {k: v for k, v in (measured or {}).items() if k in need}
    missing = {k: v for k, v in need.items() if k not in ratios}
    if missing:
        ratios |= closures(images, missing, seed, indices)
    said = {}
    if augment.hflip == AUTO:
        augment.hflip = ratios["mirror"] >= CLOSED
        said["augment"] = (f"augment auto: mirroring {'on' if augment.hflip else 'off'} (a mirrored image's nearest "
                           f"image is {ratios['mirror']:.2f} as close as an image's own nearest; on from {CLOSED})")
    if augment.colour_jitter == AUTO:
        if not colour:
            augment.colour_jitter = True
            said["colour"] = "colour jitter auto: on (grey images: it changes nothing)"
        else:
            follows = colour_follows_shape(images, seed, indices)
            augment.colour_jitter = follows >= COLOUR_FOLLOWS
            why = ("colour varies whatever the shape" if augment.colour_jitter
                   else "images drawn alike are coloured alike")
            said["colour"] = (f"colour jitter auto: {'on' if augment.colour_jitter else 'off'} (an image's colour is "
                              f"{follows:.2f} as far from its nearest image by luminance as from any image's; off "
                              f"under {COLOUR_FOLLOWS}: {why})")
    if data.intensity == AUTO:
        if not colour:
            data.intensity = GREY_INTENSITY
            said["intensity"] = f"intensity auto: {GREY_INTENSITY} (grey images: brightness, contrast and polarity removed)"
        else:
            negative, turned = ratios["negative"], ratios["colour channels turned"]
            keep = negative < CLOSED and turned < CLOSED
            data.intensity = "standardize" if keep else "canonical"
            said["intensity"] = (f"intensity auto: {data.intensity} (negatives {negative:.2f}, colour channels turned "
                                 f"{turned:.2f}, closed from {CLOSED}: " + (
                                     "closed under neither, so colour and polarity are kept as information)" if keep
                                     else "colour or polarity varies in the set, so both are removed)"))
    return said
