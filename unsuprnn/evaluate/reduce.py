"""UMAP as a feature map (McInnes et al. 2018): points [N, E] -> [N, dims], the neighbourhood graph's layout.
The `umap` baseline lays out raw pixels this way before kNN and k-means (N2D's recipe, McConville et al.
2020, without the network): a strong grouping that uses no network at all, for the probe's table to beat."""

from __future__ import annotations

import numpy as np

from ..errors import UserError

UMAP_DIMS = 10       # as N2D and the anchor: 10 dimensions from each point's 10 neighbours
UMAP_NEIGHBORS = 10


def check_umap() -> None:
    """A UserError before any work where umap-learn is not installed."""
    try:
        import umap  # noqa: F401
    except ImportError:
        raise UserError("the umap baseline needs umap-learn: pip install 'unsuprnn[umap]'") from None


def umap_features(x: np.ndarray, dims: int = UMAP_DIMS, neighbors: int = UMAP_NEIGHBORS, seed: int = 0,
                  metric: str = "euclidean") -> np.ndarray:
    """x [N, E] -> float32 [N, dims]: UMAP fitted on the points themselves (min_dist 0: clusters stay tight),
    seeded. Fewer points than neighbours + 2 keep the neighbours that exist."""
    check_umap()
    import umap
    n = len(x)
    if n < 4:
        raise UserError(f"the umap baseline needs at least 4 images, got {n}")
    reducer = umap.UMAP(n_components=min(dims, n - 2), n_neighbors=max(2, min(neighbors, n - 1)), min_dist=0.0,
                        metric=metric, random_state=seed, n_jobs=1)  # (a seed makes UMAP single-threaded anyway)
    return reducer.fit_transform(np.asarray(x, dtype=np.float32)).astype(np.float32)
