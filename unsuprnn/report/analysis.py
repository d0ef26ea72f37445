"""The clustering analysis the report shows for every run, labelled or not: the K the data chooses (the
encoder's curve beside raw pixels'), the clusters (the run's head, else k-means) with how typical each
image is of its cluster, which nuisance of the pixels the clusters may follow, the dataset's odd ones out and its
near-copies. All on the test split."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..evaluate.kmeans import choose_k
from ..evaluate.diagnostics import centred, cluster_summary, duplicate_pairs, near_duplicates, outlier_scores
from ..evaluate.nuisance import nuisances

OUTLIERS_SHOWN = 16
PAIRS_SHOWN = 8


def analyse(emb: np.ndarray, raw: torch.Tensor, images: torch.Tensor, labels: np.ndarray, n_classes: int,
            seed: int, head: tuple[np.ndarray, np.ndarray] | None, k_range: tuple[int, int],
            duplicate_threshold: float, grouping: tuple[str, Callable[[int], np.ndarray]]) -> dict:
    """emb [N, E], raw pixels [N, P], the images uint8 [N, C, H, W], labels [N] (-1 unknown), the head's
    (ids, confidence) or None; K is chosen within k_range (A, B). grouping: (what it is, K -> ids [N]), the
    probe's k-means: the one the run's table scored (report/collect.py `probe_grouping`).

    Clusters: the head's, else that k-means with one cluster per class where there are labels (the probe's
    protocol), else with the K chosen from the data."""
    x = torch.from_numpy(emb)
    k_auto, curve = choose_k(x, k_range, seed)
    raw_k, raw_curve = choose_k(raw, k_range, seed)
    out = {"k_auto": k_auto, "k_curve": curve, "raw_k_auto": raw_k, "raw_k_curve": raw_curve}
    if head is not None:
        ids, score, how, score_name = head[0], head[1], "the cluster head", "confidence"
    else:
        labelled = (labels >= 0).any() and n_classes >= 2
        k = min(n_classes if labelled else k_auto, len(x))
        ids = grouping[1](k)
        how = f"{grouping[0]}, K = {k} " + ("(one per class)" if labelled else "(chosen from the data)")
        score, score_name = None, "silhouette"
    outlier = outlier_scores(x)
    pairs = duplicate_pairs(near_duplicates(x, duplicate_threshold, images=images))
    z = centred(x)  # the similarity the threshold is on
    return out | {"ids": np.asarray(ids), "score_name": score_name, "clusters_by": how,
                  "summary": cluster_summary(x, ids, score), "outlier": outlier,
                  "outliers": np.argsort(-outlier, kind="stable")[:OUTLIERS_SHOWN].tolist(),
                  "pairs": [(i, j, float(z[i] @ z[j])) for i, j in pairs[:PAIRS_SHOWN]], "pair_count": len(pairs),
                  "duplicate_threshold": duplicate_threshold,
                  "nuisances": nuisances(emb, images, np.asarray(ids), labels)}
