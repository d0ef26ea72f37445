"""k-means with FAISS: several seeded restarts, the best objective kept; scored against labels."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UserError
from .metrics import clustering_metrics


def kmeans(x: torch.Tensor, k: int, seed: int = 0, restarts: int = 5, niter: int = 50,
           use_gpu: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """x: [N, E] -> (cluster ids [N], centroids [k, E], objective). Restarts keep the lowest objective."""
    import faiss

    if k < 1 or k > len(x):
        raise UserError(f"k={k} clusters for {len(x)} vectors; pass --k between 1 and {len(x)}")
    data = np.ascontiguousarray(x.detach().float().cpu().numpy())
    km = faiss.Kmeans(data.shape[1], k, niter=niter, nredo=restarts, seed=seed, gpu=use_gpu,
                      verbose=False, min_points_per_centroid=1, max_points_per_centroid=1 << 20)
    km.train(data)
    _, assign = km.index.search(data, 1)
    return assign[:, 0].astype(np.int64), km.centroids.copy(), float(km.obj[-1])


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
