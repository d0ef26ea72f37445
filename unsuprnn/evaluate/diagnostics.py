"""What a person cleaning a set of images wants to see first, without labels: the odd ones out, the
near-copies, and for each cluster how tight it is and which of its images are typical or not.

Near-copies and cluster shapes are judged on centred embeddings (the mean embedding subtracted, then
L2-normalized): a recurrent encoder's features share one large common direction (every cosine is near 1
before centring), which would hide how far apart two look-alikes really are.
"""

from __future__ import annotations

import numpy as np
import torch

RATIO = 0.25  # Lowe's ratio test: a nearest neighbour this many times closer than the second is distinctive
CANDIDATES = 10      # embedding neighbours whose pixels are compared with an image's
PIXEL_MATCH = 0.995  # normalized cross-correlation from which two images' pixels match
MAX_SHIFT = 2        # pixels each way over which pixels are matched


def centred(x: torch.Tensor) -> torch.Tensor:
    """x [N, E] centred and L2-normalized."""
    x = x.float()
    return torch.nn.functional.normalize(x - x.mean(0, keepdim=True), dim=1)


def outlier_scores(x: torch.Tensor) -> np.ndarray:
    """[N] in [0, 2], higher for odder images: one less the mean cosine similarity of an embedding to its
    nearest neighbours (n/50 of them, at least 10: a few junk images alike are still far from the rest).
    Noise and blank images planted among digits or MNIST all rank in the top 40 of 2,000 (RESULTS.md).
    Not centred: centring spreads the rest of the set over the sphere until the junk looks no odder."""
    from .knn import knn_search
    n = len(x)
    if n < 2:
        return np.zeros(n)
    unit = torch.nn.functional.normalize(x.float(), dim=1)
    k = min(max(10, n // 50), n - 1)
    sims, _ = knn_search(unit, unit, k + 1)
    return (1 - sims[:, 1:].mean(1)).numpy().astype(np.float64)


def _nearest_two(sims: torch.Tensor, idx: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From a self-search's similarities and indices [N, k] (k >= 3 where N allows): (nearest other point [N],
    its similarity [N], the second nearest's similarity [N])."""
    n = len(sims)
    nn, s1, s2 = np.zeros(n, np.int64), np.zeros(n), np.zeros(n)
    for i in range(n):
        others = [(s, j) for s, j in zip(sims[i, :3].tolist(), idx[i, :3].tolist()) if j != i and j >= 0]
        nn[i], s1[i] = others[0][1], others[0][0]
        s2[i] = others[1][0] if len(others) > 1 else -1.0
    return nn, s1, s2


def near_duplicates(x: torch.Tensor, threshold: float, rows: np.ndarray | None = None,
                    images: torch.Tensor | None = None, image_rows: torch.Tensor | None = None) -> np.ndarray:
    """[N]: for each image, the row (in `rows`, default its position) of an earlier image it nearly copies,
    else -1. Two images are near-copies when their cosine similarity (centred) reaches `threshold`, or:
    - given the images (uint8 [M, C, H, W]; x's row i is image `image_rows[i]`): when one of an image's
      CANDIDATES nearest neighbours matches its pixels up to a shift (`pixel_match`: a checked copy, as copy
      detection verifies its candidates);
    - without them: when each is the other's nearest neighbour and RATIO times closer than its second nearest
      (Lowe's ratio test: a shifted copy stands out from a crowd of look-alikes). With the images this rule
      only added pairs the pixels did not confirm (RESULTS.md)."""
    z = centred(x)
    rows = np.arange(len(z)) if rows is None else np.asarray(rows)
    out = np.full(len(z), -1, dtype=np.int64)
    if len(z) < 2:
        return out
    from .knn import knn_search
    sims, idx = knn_search(z, z, min(3 if images is None else max(3, CANDIDATES + 1), len(z)))  # one search for both
    nn, s1, s2 = _nearest_two(sims, idx)
    distinct = (1 - s1) <= RATIO * (1 - s2)
    for i, j in enumerate(nn):
        if s1[i] >= threshold or (images is None and nn[j] == i and distinct[i] and distinct[j]):
            out[i] = rows[j] if rows[j] < rows[i] else -1
    if images is not None:
        at = torch.arange(len(z)) if image_rows is None else torch.as_tensor(image_rows)
        for k in range(1, idx.shape[1]):  # nearest candidates first
            j = idx[:, k].clamp(min=0).numpy()
            free = np.flatnonzero((out < 0) & (rows[j] < rows) & (idx[:, k].numpy() >= 0))
            if len(free):
                match = pixel_match(images, at[free], at[j[free]]) >= PIXEL_MATCH
                out[free[match]] = rows[j[free[match]]]
    return out


def pixel_match(images: torch.Tensor, a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> np.ndarray:
    """[n]: the best normalized cross-correlation of images[a[i]] and images[b[i]] over whole-pixel shifts of up
    to MAX_SHIFT each way, on the overlap. Constant images match nothing (their correlation is 0)."""
    out = np.zeros(len(a))
    h, w = images.shape[-2:]
    for start in range(0, len(a), chunk):
        p = images[a[start:start + chunk]].float()
        q = images[b[start:start + chunk]].float()
        best = torch.full((len(p),), -1.0)
        for dy in range(-MAX_SHIFT, MAX_SHIFT + 1):
            for dx in range(-MAX_SHIFT, MAX_SHIFT + 1):
                u = p[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)].flatten(1)
                v = q[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)].flatten(1)
                if u.shape[1] < 2:
                    continue
                u, v = u - u.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
                best = torch.maximum(best, (u * v).sum(1) / (u.norm(dim=1) * v.norm(dim=1)).clamp(min=1e-6))
        out[start:start + len(p)] = best.numpy()
    return out


def duplicate_pairs(dup: np.ndarray, rows: np.ndarray | None = None) -> list[tuple[int, int]]:
    """(copy, original) positions of the points that `near_duplicates` marked."""
    rows = np.arange(len(dup)) if rows is None else np.asarray(rows)
    where = {int(r): i for i, r in enumerate(rows)}
    return [(i, where[int(d)]) for i, d in enumerate(dup) if d >= 0 and int(d) in where]


def cluster_summary(x: torch.Tensor, ids: np.ndarray, score: np.ndarray | None = None, strip: int = 8) -> list[dict]:
    """Per cluster (largest first; -1, noise, left out): its size, the mean of `score` (default: each image's
    silhouette, cosine on centred embeddings) and the positions of its `strip` most typical images (highest
    score) and least typical ones (the strip ends with the least typical)."""
    ids = np.asarray(ids)
    valid = ids >= 0
    if score is None:
        from sklearn.metrics import silhouette_samples
        score = np.zeros(len(ids))
        found = np.unique(ids[valid])
        if 1 < len(found) < valid.sum():
            score[valid] = silhouette_samples(centred(x).numpy()[valid], ids[valid], metric="cosine")
    score = np.asarray(score, dtype=np.float64)
    out = []
    for c in sorted(set(ids[valid].tolist()), key=lambda c: (-(ids == c).sum(), c)):
        members = np.flatnonzero(ids == c)
        order = members[np.argsort(-score[members], kind="stable")]
        out.append({"cluster": int(c), "size": int(len(members)), "score": float(score[members].mean()),
                    "typical": order[:strip].tolist(), "atypical": order[::-1][:strip][::-1].tolist()})
    return out
