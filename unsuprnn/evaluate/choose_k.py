"""K from the data, without labels: the number of k-means clusters whose partition best splits the
embeddings' kNN graph, by modularity (the share of graph edges inside clusters, less what clusters of the
same sizes would hold at random; Newman 2006).

For each K in the range, k-means (L2-normalized, as the probe's) partitions the points; the kNN graph
(cosine, each point's GRAPH_NEIGHBORS neighbours, symmetric) scores each partition. The chosen K is the
smallest whose modularity is within TOLERANCE of the best: more clusters that do not split the graph
clearly better are not taken (the spirit of the one-standard-error rule). On these encoders the silhouette
and the stability of k-means fell to K = 2 on MNIST, and the spectral eigengap moved between 11 and 20
with the graph's size (RESULTS.md, "choosing K").
"""

from __future__ import annotations

from ..errors import UserError

# (numpy and torch are imported where used: the config reads parse_k_range before anything heavy loads)

DEFAULT_RANGE = (2, 20)
GRAPH_NEIGHBORS = 10
TOLERANCE = 0.01
MAX_POINTS = 10000  # a larger set is judged on a seeded sample of this many points


def parse_k_range(text: str) -> tuple[int, int]:
    """'A:B' -> (A, B) with 2 <= A <= B, else a UserError naming the flag."""
    if isinstance(text, int) or str(text).isdigit():  # YAML 1.1 reads an unquoted 2:20 as the number 140
        raise UserError(f"--k-range {text!r} is not A:B; pass e.g. --k-range 2:20 (in a YAML file quote it: '2:20')")
    try:
        lo, hi = (int(v) for v in str(text).split(":"))
    except ValueError:
        raise UserError(f"--k-range {text!r} is not A:B; pass e.g. --k-range 2:20") from None
    if not 2 <= lo <= hi <= 1 << 20:
        raise UserError(f"--k-range {text!r} must have 2 <= A <= B (a range of numbers of clusters); "
                        "pass e.g. --k-range 2:20")
    return lo, hi


def knn_graph(x, neighbors: int = GRAPH_NEIGHBORS):
    """The symmetric kNN graph (cosine) of x [N, E] as a scipy sparse 0/1 matrix [N, N]."""
    import numpy as np
    import scipy.sparse as sp

    from .knn import knn_search
    n, kk = len(x), min(neighbors, len(x) - 1)
    _, idx = knn_search(x, x, kk + 1)
    w = sp.csr_matrix((np.ones(n * kk), (np.repeat(np.arange(n), kk), idx[:, 1:].reshape(-1).numpy().clip(0))),
                      shape=(n, n))
    return ((w + w.T) > 0).astype(np.float64)


def modularity(w, ids) -> float:
    """Newman's modularity of the partition `ids` [N] of the graph w [N, N] (sparse, symmetric)."""
    import numpy as np
    m, deg = w.sum(), np.asarray(w.sum(1)).ravel()
    coo = w.tocoo()
    inside = float(coo.data[ids[coo.row] == ids[coo.col]].sum())
    per_cluster = np.bincount(ids, weights=deg)
    return inside / m - float(((per_cluster / m) ** 2).sum())


def modularity_curve(x, k_range: tuple[int, int] = DEFAULT_RANGE, seed: int = 0,
                     restarts: int = 3) -> dict[int, float]:
    """{K: modularity of the k-means partition into K clusters} of x [N, E] for K in k_range (capped
    below the number of points)."""
    import numpy as np
    import torch

    from .kmeans import kmeans
    x = torch.nn.functional.normalize(x.float(), dim=1)
    if len(x) > MAX_POINTS:
        x = x[torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(x), MAX_POINTS, replace=False)))]
    lo, hi = k_range[0], min(k_range[1], len(x) // 2)
    if hi < lo:
        raise UserError(f"{len(x)} points are too few to choose between {k_range[0]} and {k_range[1]} clusters; "
                        "pass a smaller --k-range")
    w = knn_graph(x)
    return {k: modularity(w, kmeans(x, k, seed=seed, restarts=restarts)[0]) for k in range(lo, hi + 1)}


def choose_k(x, k_range: tuple[int, int] = DEFAULT_RANGE, seed: int = 0) -> tuple[int, dict[int, float]]:
    """(the chosen K, the whole curve {K: modularity}) of embeddings x [N, E]."""
    curve = modularity_curve(x, k_range, seed)
    best = max(curve.values())
    return min(k for k, v in curve.items() if v >= best - TOLERANCE), curve


def chosen_k(x, k_range: str, seed: int = 0) -> dict:
    """The record of an automatic choice, as probe.json, metrics.json and checkpoints keep it: `k_auto`, how it
    was chosen, and the curve {"K": modularity} of embeddings x [N, E] over the range 'A:B'."""
    k, curve = choose_k(x, parse_k_range(k_range), seed)
    return {"k_auto": k, "k_chosen_by": "modularity", "k_curve": {str(i): v for i, v in curve.items()}}
