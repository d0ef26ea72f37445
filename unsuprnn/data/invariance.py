"""Which transformations a set of images is closed under, read from the images themselves (no labels): a
mirrored photograph of an object lands among photographs of objects facing the other way; a mirrored digit lands
far from every digit. For each transformation T, the median cosine similarity of T(x) to its nearest image of the
set, over the median similarity of x to its nearest other image (pixels standardized per image): near 1, the set
holds images like T(x) as often as like x; well below, T makes images the set does not hold.

Measured on raw pixels (issue 38): 2,000 MNIST digits mirrored 0.80, photograph crops mirrored at random 1.00,
turned upside down every set 0.75-0.86. `augment.hflip: auto` turns mirroring on where the set is closed under it
(ratio >= CLOSED), at pretraining; what was measured is recorded in meta.json and said by `unsuprnn data`.
"""

from __future__ import annotations

import torch

CLOSED = 0.95    # a ratio from which the set counts as closed under the transformation
SAMPLE = 2000    # images compared (a seeded sample of a larger set)


def _mirror(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def _upside_down(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-2)


def _negative(x: torch.Tensor) -> torch.Tensor:
    return 255 - x


def _channels_turned(x: torch.Tensor) -> torch.Tensor:
    return x.roll(1, dims=1) if x.shape[1] == 3 else x


# name -> (transformation of uint8 [N, C, H, W], the augmentation that makes the encoder ignore it)
TRANSFORMS = {"mirror": (_mirror, "--hflip true"),
              "upside down": (_upside_down, None),
              "negative": (_negative, "--set augment.invert=0.5"),
              "colour channels turned": (_channels_turned, "--set augment.hue=0.5")}


def _unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> [N, C*H*W]: each image standardized, then L2-normalized."""
    z = x.float().flatten(1)
    z = z - z.mean(1, keepdim=True)
    return torch.nn.functional.normalize(z, dim=1)


def closure(images: torch.Tensor, transform, seed: int = 0) -> float:
    """The ratio of the module docstring for `transform` on (a sample of) images uint8 [N, C, H, W]."""
    if len(images) > SAMPLE:
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:SAMPLE]
        images = images[pick.sort().values]
    x = _unit(images)
    own = x @ x.T
    own.fill_diagonal_(-2.0)
    moved = _unit(transform(images)) @ x.T
    moved.fill_diagonal_(-2.0)  # (not the image it was made from: a symmetric image is its own mirror)
    base = own.max(1).values.median().clamp_min(1e-6)
    return float(moved.max(1).values.median() / base)


def invariances(images: torch.Tensor, seed: int = 0) -> dict:
    """{name: {"ratio", "closed", "flag"}} of every transformation in TRANSFORMS that applies to these images."""
    out = {}
    for name, (transform, flag) in TRANSFORMS.items():
        if name == "colour channels turned" and images.shape[1] != 3:
            continue
        ratio = closure(images, transform, seed)
        out[name] = {"ratio": round(ratio, 3), "closed": ratio >= CLOSED, "flag": flag}
    return out


def resolve_augment(augment, images: torch.Tensor, seed: int = 0) -> str | None:
    """Resolve `auto` in augment.hflip from the images (uint8 [N, C, H, W], the train split), in place; returns
    what was chosen and why (None where nothing was auto)."""
    if augment.hflip != "auto":
        return None
    ratio = closure(images, _mirror, seed)
    augment.hflip = ratio >= CLOSED
    return (f"augment auto: mirroring {'on' if augment.hflip else 'off'} (a mirrored image's nearest image is "
            f"{ratio:.2f} as close as an image's own nearest; on from {CLOSED})")


def intensity_hint(measured: dict, intensity: str) -> str | None:
    """A line for `unsuprnn data` where a colour set (`measured`: `invariances` of RGB images) is closed neither
    under negatives nor under turned colour channels while `intensity` is canonical, which removes both: on two
    such sets of photographs `standardize` read them better (RESULTS.md, "Colour as information"). None else."""
    colour, negative = measured.get("colour channels turned"), measured.get("negative")
    if intensity != "canonical" or colour is None or negative is None or colour["closed"] or negative["closed"]:
        return None
    return (f"colour and polarity may say what these images show (not closed under negatives, {negative['ratio']:.2f}, "
            f"nor turned colour channels, {colour['ratio']:.2f}); --intensity canonical removes both: try "
            "--intensity standardize, which keeps them")
