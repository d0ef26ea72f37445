"""What the clusters follow beyond pixel properties: for each transformation of data/invariance.py (mirror,
upside down, shifted, zoomed in, turned, negative, colour channels turned), how often an image and its
transformed copy fall in different clusters. A grouping that splits mirror images follows which way an object
faces; the flag that makes the encoder ignore the transformation comes with it. No labels are used.

The transformed copy's cluster is that of its nearest original query in the embedding (cosine), so that any
grouping (k-means, a cluster head) is judged the same way.
"""

from __future__ import annotations

import numpy as np
import torch

EXAMPLES = 6  # queries kept per transformation whose copy fell in another cluster (the report shows them)


def split_by(ids: np.ndarray, emb: torch.Tensor, moved_emb: torch.Tensor) -> np.ndarray:
    """bool [Q]: whether query i's transformed copy (moved_emb [Q, E]) falls in another cluster than query i
    (ids [Q]) - the cluster of its nearest original query (emb [Q, E])."""
    from .knn import knn_search
    unit = lambda x: torch.nn.functional.normalize(x.float(), dim=1)
    _, nearest = knn_search(unit(moved_emb), unit(emb), 1)
    return ids[nearest[:, 0].numpy()] != ids


def consistency(encoder, pipeline, images: torch.Tensor, emb: torch.Tensor, ids: np.ndarray, device) -> dict:
    """{transformation: {"split": % of queries whose copy falls in another cluster, "flag", "examples": query
    positions}} for queries `images` (uint8 [Q, C, H, W]) with embeddings emb [Q, E] and clusters ids [Q]."""
    from ..data.invariance import applicable
    from .embed import embed_images
    out = {}
    for name, (transform, flag) in applicable(images.shape[1]).items():
        moved = embed_images(encoder, pipeline, transform(images), device)
        split = split_by(np.asarray(ids), emb, moved)
        out[name] = {"split": round(100.0 * float(split.mean()), 2), "flag": flag,
                     "examples": np.flatnonzero(split)[:EXAMPLES].tolist()}
    return out
