"""The `hdbscan` probe method: density clusters of the queries (scikit-learn's HDBSCAN), which finds its own
number of clusters and leaves points in no dense region as noise (-1).

The L2-normalized embeddings are first projected on their PCA_DIMS leading components (density estimates
in hundreds of dimensions see every point as isolated); the smallest cluster is 1% of the points (at
least 5). Clusters are the condensed tree's leaves: the default (excess of mass) merged the MNIST
encoders' ten digits into 2 clusters (NMI 0.23-0.27) where leaves kept 9-10 (NMI 0.58-0.64); RESULTS.md. Where labels exist: NMI and ARI with noise as a cluster of its own, and Hungarian accuracy with
every noise point counted as wrong.
"""

from __future__ import annotations

import numpy as np
import torch

from .metrics import clustering_metrics

NEEDS_LABELS = False
COLUMNS = (("HDBSCAN clusters", "clusters"), ("noise %", "noise"), ("HDBSCAN NMI", "nmi"), ("HDBSCAN ARI", "ari"),
           ("HDBSCAN acc", "accuracy"))
PCA_DIMS = 32


def min_cluster_size(n: int) -> int:
    return max(5, n // 100)


def hdbscan_clusters(x: torch.Tensor, seed: int = 0, laid_out: bool = False) -> np.ndarray:
    """Cluster ids [N] of x [N, E] (-1 = noise); `laid_out`: x is a UMAP layout, clustered as it is."""
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA
    z = x.float().numpy() if laid_out else torch.nn.functional.normalize(x.float(), dim=1).numpy()
    dims = min(PCA_DIMS, z.shape[1], max(len(z) - 1, 1))
    if dims < z.shape[1] and not laid_out:
        z = PCA(n_components=dims, random_state=seed).fit_transform(z)
    from ..progress import stage
    with stage(f"HDBSCAN of {len(z)} points"):
        return HDBSCAN(min_cluster_size=min_cluster_size(len(z)), cluster_selection_method="leaf",
                       copy=True).fit_predict(z).astype(np.int64)


def noise_scores(y: np.ndarray, ids: np.ndarray) -> dict:
    """NMI and ARI (noise as its own cluster) and accuracy with noise counted wrong, in %."""
    out = clustering_metrics(y, np.where(ids < 0, ids.max() + 1, ids))
    kept = ids >= 0
    out["accuracy"] = clustering_metrics(y[kept], ids[kept])["accuracy"] * kept.mean() if kept.any() else 0.0
    return out


SETTINGS = {"reduce": None}
RESULT_KEYS = ("min_cluster_size",)  # chosen from the number of queries


def measure(bank, bank_y, query, query_y, num_classes: int, settings, seed: int, device) -> dict:
    from .reduce import clustering_features
    ids = hdbscan_clusters(clustering_features(bank, query, settings.reduce, seed), seed,
                           laid_out=settings.reduce != "none")
    out = {"clusters": int(ids.max()) + 1, "noise": 100.0 * float((ids < 0).mean()),
           "min_cluster_size": min_cluster_size(len(query))}
    known = (query_y >= 0).numpy()
    if not known.any():
        return out | {"note": "no labels: clusters computed but not scored"}
    return out | noise_scores(query_y.numpy()[known], ids[known])
