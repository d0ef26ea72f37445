"""Over-clustering merged along the kNN graph: k-means into more clusters than wanted (`factor` x K), then, until K remain, the two clusters with the most kNN links between them for what
their sizes would draw by chance (e_ab / (a_a a_b): observed over expected links, as in modularity) are merged.
SCAN's over-clustering heads and TEMI ask the same of a grouping: more clusters than classes, joined where the
neighbours say so.

Why: on real sets the encoder's neighbours follow the class (kNN well above raw pixels) while k-means into K
splits a class by pose or orientation and joins two others (RESULTS.md, "Images nobody here generated"). Finer
clusters each hold one pose of one class; a class's poses are each other's neighbours, so their clusters share
links and merge first, while two classes share few. (Merging by the largest gain in modularity instead joined
two unlinked small clusters before two linked large ones: its chance term grows with both sizes, so a class
drawn out along a pose, a chain of clusters, stayed cut; tests/evaluate/test_overcluster.py.)

Measured beside the probe's k-means by scripts/overcluster_check.py; not a default anywhere: on the development
runs it grouped no better than k-means of the UMAP layout (RESULTS.md, "Over-clustering").
"""

from __future__ import annotations

import numpy as np
import torch


def merge_by_links(w, ids: np.ndarray, k: int) -> np.ndarray:
    """Merge the clusters `ids` [N] (0..K'-1) of the graph w [N, N] (scipy sparse, symmetric, nonnegative) into k:
    each step joins the pair with the highest e_ab / (a_a a_b) (e_ab the share of edge ends between a and b, a_a
    the share at a); where no two clusters are linked, the two with the fewest edge ends. Returns ids [N] in
    0..k-1, numbered by each merged cluster's smallest original id."""
    import scipy.sparse as sp
    n, fine = len(ids), int(ids.max()) + 1
    if k >= fine:
        return np.unique(ids, return_inverse=True)[1]
    member = sp.csr_matrix((np.ones(n), (np.arange(n), ids)), shape=(n, fine))
    links = np.asarray((member.T @ w @ member).todense(), dtype=np.float64)   # [K', K'] edge weight between clusters
    links /= max(links.sum(), 1e-12)
    ends = np.maximum(links.sum(1), 1e-12)
    alive = list(range(fine))
    root = np.arange(fine)
    while len(alive) > k:
        expected = np.outer(ends[alive], ends[alive])
        score = links[np.ix_(alive, alive)] / expected
        if score.max() <= 0:  # (no links left between clusters: the smallest pair)
            score = -expected
        np.fill_diagonal(score, -np.inf)
        i, j = np.unravel_index(int(np.argmax(score)), score.shape)
        a, b = sorted((alive[i], alive[j]))
        links[a, :] += links[b, :]
        links[:, a] += links[:, b]
        ends[a] += ends[b]
        root[root == b] = a
        alive.remove(b)
    return np.unique(root[ids], return_inverse=True)[1]


def overclustered(x: torch.Tensor, graph_features: torch.Tensor, k: int, factor: int, seed: int = 0,
                  restarts: int | None = None, normalize: bool = True) -> np.ndarray:
    """Cluster ids [Q] in 0..k-1: k-means of x [Q, D] (L2-normalized with `normalize`) into factor x k clusters
    (capped at Q / 2), merged along the cosine kNN graph of graph_features [Q, E]."""
    from .kmeans import default_restarts, kmeans, knn_graph
    x = torch.nn.functional.normalize(x.float(), dim=1) if normalize else x.float()
    fine = max(k, min(factor * k, len(x) // 2))
    ids = kmeans(x, fine, seed=seed, restarts=restarts or default_restarts(len(x)))[0]
    graph = knn_graph(torch.nn.functional.normalize(graph_features.float(), dim=1))
    return merge_by_links(graph, ids, k)
