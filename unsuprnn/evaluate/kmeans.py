"""k-means with FAISS from k-means++ seeds: several seeded restarts, the best objective kept; scored against labels."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UserError
from .metrics import clustering_metrics


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator, trials: int | None = None) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; the variant scikit-learn uses).

    x: [N, E] -> initial centres [k, E], rows of x. Each new centre is the best of `trials` candidates
    drawn with probability proportional to the squared distance to the nearest centre so far; an
    all-duplicate remainder falls back to uniform draws.
    """
    n = len(x)
    trials = trials or 2 + int(np.log(k))
    sq = (x * x).sum(1)

    def dist2(c: torch.Tensor) -> torch.Tensor:  # [m, E] -> [m, N], clamped: the expansion can go below 0
        return ((c * c).sum(1, keepdim=True) - 2 * c @ x.T + sq).clamp_min_(0)

    first = torch.randint(n, (1,), generator=generator)
    chosen = [int(first)]
    closest = dist2(x[first])[0]
    for _ in range(1, k):
        total = closest.sum()
        if total > 0:
            cand = torch.multinomial(closest.double(), trials, replacement=True, generator=generator)
        else:
            cand = torch.randint(n, (trials,), generator=generator)
        pot = torch.minimum(closest, dist2(x[cand]))  # [trials, N]: the potential with each candidate added
        best = int(pot.sum(1).argmin())
        chosen.append(int(cand[best]))
        closest = pot[best]
    return x[chosen]


def kmeans(x: torch.Tensor, k: int, seed: int = 0, restarts: int = 5, niter: int = 50,
           use_gpu: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """x: [N, E] -> (cluster ids [N], centroids [k, E], objective).

    Lloyd iterations in FAISS from k-means++ seeds; `restarts` seeded runs, the lowest objective kept.
    (FAISS's own random seeding stalls in poor minima: on one embedding 5 random restarts reached 86%
    cluster accuracy where k-means++ reached 97%.)
    """
    import faiss

    if k < 1 or k > len(x):
        raise UserError(f"k={k} clusters for {len(x)} vectors; pass --k between 1 and {len(x)}")
    xs = x.detach().float().cpu().contiguous()
    data = xs.numpy()
    g = torch.Generator().manual_seed(seed)
    best = None
    for r in range(max(1, restarts)):
        init = kmeans_plus_plus(xs, k, g).numpy()
        km = faiss.Kmeans(data.shape[1], k, niter=niter, nredo=1, seed=seed + r, gpu=use_gpu, verbose=False,
                          min_points_per_centroid=1, max_points_per_centroid=1 << 20)
        obj = float(km.train(data, init_centroids=init))
        if best is None or obj < best[0]:
            best = (obj, km)
    obj, km = best
    _, assign = km.index.search(data, 1)
    return assign[:, 0].astype(np.int64), km.centroids.copy(), obj


def kmeans_scores(x: torch.Tensor, labels: torch.Tensor | None, k: int, seed: int = 0,
                  restarts: int = 5) -> dict:
    """Cluster the L2-normalized features; NMI, ARI and Hungarian accuracy where labels exist.

    labels are used for scoring only; where none are known the result says it cannot score.
    """
    x = torch.nn.functional.normalize(x.float(), dim=1)
    clusters, _, obj = kmeans(x, k, seed, restarts)
    out = {"k": k, "objective": obj}
    if labels is None or not (labels >= 0).any():
        out["note"] = "no labels: clusters computed but not scored"
        return out
    known = (labels >= 0).numpy()
    out.update(clustering_metrics(labels.numpy()[known], clusters[known]))
    return out
