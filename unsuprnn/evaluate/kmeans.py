"""k-means from greedy k-means++ seeds with FAISS, or torch on a CUDA device where FAISS has no GPU;
several seeded restarts, the lowest objective kept; scored against labels with the spread over restarts.

Choosing K without labels (`choose_k`, `--clusters auto`): the number of k-means clusters whose
partition best splits the embeddings' kNN graph, by modularity (the share of graph edges inside clusters, less what clusters of the
same sizes would hold at random; Newman 2006).

For each K in the range, k-means (L2-normalized, as the probe's) partitions the points; the kNN graph
(cosine, each point's GRAPH_NEIGHBORS neighbours, symmetric) scores each partition. The chosen K is the
smallest whose modularity is within TOLERANCE of the best: more clusters that do not split the graph
clearly better are not taken (the spirit of the one-standard-error rule). On these encoders the silhouette
and the stability of k-means fell to K = 2 on MNIST, and the spectral eigengap moved between 11 and 20
with the graph's size (RESULTS.md, "choosing K").
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..errors import UserError
from ..progress import tracked
from ..names.clusters import AUTO, parse_k_range, resolve_k
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

    first = torch.randint(n, (1,), generator=generator, device=x.device)
    chosen = [int(first)]
    closest = dist2(x[first])[0]
    for _ in range(1, k):
        total = closest.sum()
        if total > 0:
            cand = torch.multinomial(closest.double(), trials, replacement=True, generator=generator)
        else:
            cand = torch.randint(n, (trials,), generator=generator, device=x.device)
        pot = torch.minimum(closest, dist2(x[cand]))  # [trials, N]: the potential with each candidate added
        best = int(pot.sum(1).argmin())
        chosen.append(int(cand[best]))
        closest = pot[best]
    return x[chosen]


BACKENDS = ("auto", "faiss", "torch")


def lloyd(x: torch.Tensor, init: torch.Tensor, niter: int, chunk: int = 65536) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Lloyd iterations in torch, on x's device. x: [N, E], init: [k, E] ->
    (cluster ids [N], centroids [k, E], objective = sum of squared distances to the final centroids).
    A centroid left without points keeps its place."""
    c = init.clone()
    k = len(c)
    for _ in range(niter):
        assign, _ = _nearest(x, c, chunk)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1)
        c = torch.where(counts > 0, sums / counts.clamp_min(1), c)
    assign, d2 = _nearest(x, c, chunk)
    return assign, c, float(d2.sum())


def _nearest(x: torch.Tensor, c: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the nearest centroid [N] and the squared distance to it [N], row chunk by row chunk."""
    cc = (c * c).sum(1)
    ids, d2 = [], []
    for start in range(0, len(x), chunk):
        xb = x[start:start + chunk]
        d, i = ((xb * xb).sum(1, keepdim=True) - 2 * xb @ c.T + cc).min(1)
        ids.append(i)
        d2.append(d.clamp_min(0))
    return torch.cat(ids), torch.cat(d2)


def default_restarts(n: int) -> int:
    """Restarts for n vectors: on small sets one k-means run moves by points between seeds, and
    restarts cost little there."""
    return 20 if n <= 20000 else 5


def kmeans_runs(x: torch.Tensor, k: int, seed: int = 0, restarts: int = 5, niter: int = 50,
                device: torch.device | str = "cpu", backend: str = "auto"):
    """Yield (cluster ids [N] int64, centroids [k, E], objective) for each of `restarts` seeded runs.

    Lloyd iterations from greedy k-means++ seeds. backend auto: FAISS (on the GPU where FAISS has GPU
    support), or torch on a CUDA `device` when it has not, so that a faiss-cpu install still clusters
    on the GPU. (FAISS's own random seeding stalls in poor minima: on one embedding 5 random restarts
    reached 86% cluster accuracy where k-means++ reached 97%.) Seeds are drawn on `device`, so CPU
    and CUDA runs differ.
    """
    if k < 1 or k > len(x):
        raise UserError(f"k={k} clusters for {len(x)} vectors; pass --k between 1 and {len(x)}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown k-means backend {backend!r}; use one of {BACKENDS}")
    device = torch.device(device)
    on_cuda = device.type == "cuda"
    if backend == "auto":
        from .knn import faiss_has_gpu
        backend = "torch" if on_cuda and not faiss_has_gpu() else "faiss"
    xs = x.detach().float().to(device if backend == "torch" else "cpu").contiguous()
    g = torch.Generator(device=xs.device).manual_seed(seed)
    for r in tracked(range(max(1, restarts)), desc=f"k-means of {len(xs)} points into {k} clusters", unit="restarts"):
        init = kmeans_plus_plus(xs, k, g)
        if backend == "torch":
            assign, centroids, obj = lloyd(xs, init, niter)
            yield assign.cpu().numpy().astype(np.int64), centroids.cpu().numpy(), obj
        else:
            km, obj = faiss_lloyd(xs, init, niter, seed + r, on_cuda)
            _, assign = km.index.search(xs.numpy(), 1)
            yield assign[:, 0].astype(np.int64), km.centroids.copy(), obj


def kmeans(x: torch.Tensor, k: int, seed: int = 0, restarts: int = 5, niter: int = 50,
           device: torch.device | str = "cpu", backend: str = "auto") -> tuple[np.ndarray, np.ndarray, float]:
    """x: [N, E] -> (cluster ids [N], centroids [k, E], objective) of the restart with the lowest
    objective (see `kmeans_runs`)."""
    return min(kmeans_runs(x, k, seed, restarts, niter, device, backend), key=lambda run: run[2])


def faiss_lloyd(x: torch.Tensor, init: torch.Tensor, niter: int, seed: int, gpu: bool):
    """FAISS's Lloyd iterations on CPU tensors x [N, E] from init [k, E] -> (trained faiss.Kmeans, objective)."""
    import faiss

    km = faiss.Kmeans(x.shape[1], len(init), niter=niter, nredo=1, seed=seed, gpu=gpu, verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=1 << 20)
    obj = float(km.train(x.numpy(), init_centroids=init.numpy()))
    return km, obj


def kmeans_scores(x: torch.Tensor, labels: torch.Tensor | None, k: int, seed: int = 0,
                  restarts: int | None = None, device: torch.device | str = "cpu", normalize: bool = True) -> dict:
    """Cluster the L2-normalized features (`normalize`; else as they are: a UMAP layout); NMI, ARI and Hungarian
    accuracy where labels exist.

    The figures are those of the restart with the lowest objective (what an unlabelled user would
    keep); `spread` gives the min, max and standard deviation of each over all restarts, so that a
    difference between two rows can be told from restart noise. restarts None: `default_restarts`.
    Labels are used for scoring only; where none are known the result says it cannot score.
    """
    x = torch.nn.functional.normalize(x.float(), dim=1) if normalize else x.float()
    restarts = restarts or default_restarts(len(x))
    runs = list(kmeans_runs(x, k, seed, restarts, device=device))
    best = min(range(len(runs)), key=lambda i: runs[i][2])
    out = {"k": k, "objective": runs[best][2], "restarts": len(runs)}
    if labels is None or not (labels >= 0).any():
        out["note"] = "no labels: clusters computed but not scored"
        return out
    known = (labels >= 0).numpy()
    scores = [clustering_metrics(labels.numpy()[known], run[0][known]) for run in runs]
    out.update(scores[best])
    out["spread"] = {m: {"min": float(np.min(v)), "max": float(np.max(v)), "std": float(np.std(v))}
                     for m in scores[best] for v in [[s[m] for s in scores]]}
    return out


# --- choosing K without labels
GRAPH_NEIGHBORS = 10
TOLERANCE = 0.01
MAX_POINTS = 10000  # a larger set is judged on a seeded sample of this many points


def knn_graph(x, neighbors: int = GRAPH_NEIGHBORS):
    """The symmetric kNN graph (cosine) of x [N, E] as a scipy sparse 0/1 matrix [N, N]."""
    import scipy.sparse as sp

    from .knn import knn_search
    n, kk = len(x), min(neighbors, len(x) - 1)
    _, idx = knn_search(x, x, kk + 1)
    w = sp.csr_matrix((np.ones(n * kk), (np.repeat(np.arange(n), kk), idx[:, 1:].reshape(-1).numpy().clip(0))),
                      shape=(n, n))
    return ((w + w.T) > 0).astype(np.float64)


def modularity(w, ids) -> float:
    """Newman's modularity of the partition `ids` [N] of the graph w [N, N] (sparse, symmetric)."""
    m, deg = w.sum(), np.asarray(w.sum(1)).ravel()
    coo = w.tocoo()
    inside = float(coo.data[ids[coo.row] == ids[coo.col]].sum())
    per_cluster = np.bincount(ids, weights=deg)
    return inside / m - float(((per_cluster / m) ** 2).sum())


def modularity_curve(x, k_range: tuple[int, int], seed: int = 0,
                     restarts: int = 3) -> dict[int, float]:
    """{K: modularity of the k-means partition into K clusters} of x [N, E] for K in k_range (capped
    below the number of points)."""
    x = torch.nn.functional.normalize(x.float(), dim=1)
    if len(x) > MAX_POINTS:
        x = x[torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(x), MAX_POINTS, replace=False)))]
    lo, hi = k_range[0], min(k_range[1], len(x) // 2)
    if hi < lo:
        raise UserError(f"{len(x)} points are too few to choose between {k_range[0]} and {k_range[1]} clusters; "
                        "pass a smaller --k-range")
    w = knn_graph(x)
    return {k: modularity(w, kmeans(x, k, seed=seed, restarts=restarts)[0])
            for k in tracked(range(lo, hi + 1), desc=f"choosing K in {lo}:{hi} by modularity", unit="values of K")}


def choose_k(x, k_range: tuple[int, int], seed: int = 0) -> tuple[int, dict[int, float]]:
    """(the chosen K, the whole curve {K: modularity}) of embeddings x [N, E]."""
    curve = modularity_curve(x, k_range, seed)
    best = max(curve.values())
    return min(k for k, v in curve.items() if v >= best - TOLERANCE), curve


def chosen_k(x, k_range: str, seed: int = 0) -> dict:
    """The record of an automatic choice, as probe.json, metrics.json and checkpoints keep it: `k_auto`, how it
    was chosen, the curve {"K": modularity} of embeddings x [N, E] over the range 'A:B', and the range searched
    (`k_searched`: the range asked, capped at half the points)."""
    k, curve = choose_k(x, parse_k_range(k_range), seed)
    return {"k_auto": k, "k_chosen_by": "modularity", "k_curve": {str(i): v for i, v in curve.items()},
            "k_searched": f"{min(curve)}:{max(curve)}"}


# --- the `kmeans` probe method (see evaluate/methods.py): the queries are clustered, labels only score
NEEDS_LABELS = False
COLUMNS = (("auto K", "k_auto"), ("NMI", "nmi"), ("ARI", "ari"), ("cluster acc", "accuracy"))


SETTINGS = {"clusters": None, "k_range": ("clusters", AUTO), "reduce": None, "restarts": None}


def resolved(settings, result: dict):
    """The settings as the figure used them: `classes` is the K of the result (`auto` stays auto, with its range)."""
    return settings if settings.clusters == AUTO else dataclasses.replace(settings, clusters=result.get("k"))


def measure(bank, bank_y, query, query_y, num_classes: int, settings, seed: int, device) -> dict:
    """k-means of the queries into K clusters: --clusters K, the number of classes, or (auto) the K chosen
    from the queries themselves, whose whole curve is kept (`k_curve`). --reduce umap: of their UMAP layout."""
    from .reduce import kmeans_features
    k, chosen = resolve_k(settings.clusters, num_classes), {}
    if k == AUTO or not k:
        chosen = chosen_k(query, settings.k_range, seed)
        k = chosen["k_auto"]
    x = kmeans_features(bank, query, settings.reduce, seed)
    return kmeans_scores(x, query_y, k, seed=seed, restarts=settings.restarts, device=device,
                         normalize=False) | chosen
