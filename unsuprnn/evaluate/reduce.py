"""UMAP as a feature map (McInnes et al. 2018): points [N, E] -> [N, dims], the neighbourhood graph's layout.

- The `umap` baseline lays out raw pixels this way before kNN and k-means (N2D's recipe, McConville et al.
  2020, without the network): a strong grouping that uses no network at all, for the probe's table to beat.
- `--reduce umap` (`clustering_features`) has the clustering methods (k-means, HDBSCAN) group every feature set's
  queries by their layout, fitted on the bank and the queries together (no labels): k-means of an embedding
  follows its largest directions, k-means of its layout the communities of its neighbourhood graph."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import torch

from ..errors import UserError
from ..progress import stage

UMAP_DIMS = 10       # as N2D and the anchor: 10 dimensions from each point's 10 neighbours
UMAP_NEIGHBORS = 10
REDUCES = ("none", "umap")


def check_umap() -> None:
    """A UserError before any work where umap-learn is not installed."""
    try:
        import umap  # noqa: F401
    except ImportError:
        raise UserError("the umap baseline needs umap-learn: pip install 'unsuprnn[umap]'") from None


LAYOUTS_KEPT = 16  # the last layouts fitted, by content: a report's runs share their raw-pixel and PCA layouts
_LAYOUTS: "OrderedDict[tuple, np.ndarray]" = OrderedDict()


def umap_features(x: np.ndarray, dims: int = UMAP_DIMS, neighbors: int = UMAP_NEIGHBORS, seed: int = 0,
                  metric: str = "euclidean") -> np.ndarray:
    """x [N, E] -> float32 [N, dims]: UMAP fitted on the points themselves (min_dist 0: clusters stay tight),
    seeded. Fewer points than neighbours + 2 keep the neighbours that exist. A seeded fit is deterministic, so
    the same points and settings (the points compared by a digest of their bytes) reuse one of the last
    LAYOUTS_KEPT layouts: k-means and HDBSCAN of one feature set, and every run of a report, share a fit."""
    check_umap()
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(x)
    if n < 4:
        raise UserError(f"the umap baseline needs at least 4 images, got {n}")
    key = (hashlib.blake2b(x.tobytes(), digest_size=32).hexdigest(), x.shape, dims, neighbors, seed, metric)
    if key not in _LAYOUTS:
        import umap
        reducer = umap.UMAP(n_components=min(dims, n - 2), n_neighbors=max(2, min(neighbors, n - 1)), min_dist=0.0,
                            metric=metric, random_state=seed, n_jobs=1)  # (a seed makes UMAP single-threaded anyway)
        with stage(f"UMAP layout of {n} points x {x.shape[1]}"):
            _LAYOUTS[key] = reducer.fit_transform(x).astype(np.float32)
        while len(_LAYOUTS) > LAYOUTS_KEPT:
            _LAYOUTS.popitem(last=False)
    _LAYOUTS.move_to_end(key)
    return _LAYOUTS[key].copy()


def clustering_features(bank: torch.Tensor, query: torch.Tensor, reduce: str, seed: int = 0) -> torch.Tensor:
    """What the clustering methods group: the queries [Q, E] themselves (`none`), or (`umap`) the queries' part of
    the cosine UMAP layout of bank [N, E] and queries together -> [Q, UMAP_DIMS]."""
    if reduce == "none":
        return query
    if reduce not in REDUCES:
        raise UserError(f"unknown --reduce '{reduce}'; use one of: {', '.join(REDUCES)}")
    both = torch.cat([bank.float().cpu(), query.float().cpu()]).numpy()
    return torch.from_numpy(umap_features(both, seed=seed, metric="cosine")[len(bank):])


def kmeans_features(bank: torch.Tensor, query: torch.Tensor, reduce: str, seed: int = 0) -> torch.Tensor:
    """What k-means groups, [Q, *]: the L2-normalized queries (`none`: k-means in cosine geometry, as kNN), or their
    UMAP layout as it is (`umap`: the layout's distances are the geometry; normalizing would bend it). Every
    k-means of the probe, and the groupings judged against it, read their features here."""
    x = clustering_features(bank, query, reduce, seed).float()
    return torch.nn.functional.normalize(x, dim=1) if reduce == "none" else x
