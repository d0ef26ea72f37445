"""Which nuisance the embedding and its clusters may follow, read without labels: for a few properties of the
pixels that rarely say what an image shows (its brightness, its contrast, its polarity, its colour, and where and
how large its object is), how much of the embedding's variance each explains, and how closely the clusters
follow it.

    images: uint8 [N, C, H, W], embeddings [N, E], cluster ids [N]

A property that explains much of the embedding, or that the clusters follow closely (NMI with its quartiles,
or with light-on-dark against dark-on-light), is what k-means and the clustering stage may be grouping by,
rather than what the images show. RESULTS.md measured such cases: shapes grouped by polarity at NMI 0.8.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import normalized_mutual_info_score

FOLLOWS = 0.3  # NMI of the clusters with a property from which the report says that they may follow it
OBJECT_LEVEL = 0.1  # how far (of the [0, 1] range, in some channel) a pixel is from the ground to be the object


def pixel_properties(images: torch.Tensor) -> dict[str, np.ndarray]:
    """name -> [N] or [N, 3]: brightness (mean), contrast (std), polarity (skewness of the grey levels: > 0
    where the image's sparse part is light), for RGB images colour (the mean of each channel), and the object's
    size and place (`object_properties`)."""
    x = images.float() / 255.0
    grey = x.mean(1).flatten(1)                                       # [N, H*W]
    mean, std = grey.mean(1), grey.std(1, unbiased=False)
    skew = ((grey - mean[:, None]) ** 3).mean(1) / std.clamp_min(1e-3) ** 3
    out = {"brightness": mean.numpy(), "contrast": std.numpy(), "polarity": skew.numpy()}
    if images.shape[1] == 3:
        out["colour"] = x.mean((2, 3)).numpy()
    return out | object_properties(x)


def object_properties(x: torch.Tensor) -> dict[str, np.ndarray]:
    """name -> [N] for images x [N, C, H, W] in [0, 1]: where and how large the object is, for sets drawn on a
    plain ground (sprites, icons, digits; real sets vary an object's size and place, issue 38). The ground is
    each image's median border colour; the object, the pixels that differ from it by more than OBJECT_LEVEL in
    some channel. size: the object's share of the image; place across, place down: its centre of mass, from 0
    (left, top) to 1. An image with no object pixels has size 0 and its centre at 0.5. On photographs and
    textures, where there is no ground, these read a pattern's contrast with its border, not an object."""
    n, _, h, w = x.shape
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], 2)   # [N, C, 2W + 2H]
    ground = border.median(2).values[:, :, None, None]
    mask = ((x - ground).abs().amax(1) > OBJECT_LEVEL).float()                       # [N, H, W]
    area = mask.sum((1, 2))
    rows, cols = torch.linspace(0, 1, h), torch.linspace(0, 1, w)
    weight = area.clamp_min(1)
    across = torch.where(area > 0, (mask.sum(1) * cols).sum(1) / weight, torch.full_like(area, 0.5))
    down = torch.where(area > 0, (mask.sum(2) * rows).sum(1) / weight, torch.full_like(area, 0.5))
    return {"size": (area / (h * w)).numpy(), "place across": across.numpy(), "place down": down.numpy()}


def explained_share(embeddings: np.ndarray, prop: np.ndarray) -> float:
    """Share in [0, 1] of the total variance of the L2-normalized embeddings [N, E] that a linear function of
    the property [N] or [N, k] explains (least squares with an intercept; R^2 pooled over dimensions)."""
    z = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)
    z = z - z.mean(0)
    p = prop.reshape(len(prop), -1).astype(np.float64)
    p = np.hstack([p - p.mean(0), np.ones((len(p), 1))])
    coef, *_ = np.linalg.lstsq(p, z, rcond=None)
    total = (z ** 2).sum()
    return 0.0 if total == 0 else float(1 - ((z - p @ coef) ** 2).sum() / total)


def property_groups(name: str, prop: np.ndarray) -> np.ndarray:
    """[N] discrete groups of a property: polarity's sign, colour's dominant channel, else its quartiles."""
    if name == "polarity":
        return (prop > 0).astype(int)
    if prop.ndim == 2:
        return prop.argmax(1)
    return np.searchsorted(np.quantile(prop, [0.25, 0.5, 0.75]), prop)


def nuisances(embeddings: np.ndarray, images: torch.Tensor, ids: np.ndarray,
              labels: np.ndarray | None = None) -> list[dict]:
    """One row per property: its share of the embedding's variance, the clusters' NMI with it and, where
    labels are known, the classes' NMI with it (how much the property says about the class itself)."""
    rows = []
    known = labels is not None and (labels >= 0).any()
    for name, prop in pixel_properties(images).items():
        groups = property_groups(name, prop)
        row = {"property": name, "variance_share": explained_share(embeddings, prop),
               "cluster_nmi": float(normalized_mutual_info_score(groups, ids))}
        if known:
            row["label_nmi"] = float(normalized_mutual_info_score(groups[labels >= 0], labels[labels >= 0]))
        rows.append(row)
    return rows


# what takes each property out of what the encoder reads (the report names it beside a property the clusters follow)
REMEDY = {"brightness": "`--intensity canonical`", "contrast": "`--intensity canonical`",
          "polarity": "`--intensity canonical`", "colour": "`--intensity canonical` or the colour jitter "
          "(`--colour-jitter true`, `--set augment.hue=...`)",
          "size": "views that zoom further (a lower `--set augment.crop_scale=...`)",
          "place across": "views that shift further (a higher `--set augment.translate=...`)",
          "place down": "views that shift further (a higher `--set augment.translate=...`)"}


def remedies(names: list[str]) -> list[str]:
    """The settings, each once, that take the properties `names` out of what the encoder reads."""
    return list(dict.fromkeys(REMEDY[name] for name in names if name in REMEDY))


def followed(rows: list[dict]) -> list[str]:
    """The properties the clusters may follow: NMI at least FOLLOWS (and, with labels, above the classes' own)."""
    return [r["property"] for r in rows
            if r["cluster_nmi"] >= FOLLOWS and r["cluster_nmi"] > r.get("label_nmi", 0.0)]
