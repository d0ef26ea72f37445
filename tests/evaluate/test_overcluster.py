"""Over-clustering merged along the kNN graph (evaluate/overcluster.py), on geometry with a known answer: two
classes, each a long thin arc (one object in every pose), lying side by side. k-means into two clusters cuts
both arcs across (each half of the circle is tighter than each arc); finer clusters are pieces of one arc, and
the kNN links run along the arcs, so merging by links gives the arcs back. Too few finer clusters (2 x K) still
hold pieces of both arcs, and nothing merged from them can part them."""

import numpy as np
import scipy.sparse as sp
import torch

from unsuprnn.evaluate.kmeans import kmeans
from unsuprnn.evaluate.metrics import clustering_metrics
from unsuprnn.evaluate.overcluster import merge_by_links, overclustered


def two_arcs(points: int = 300):
    angle = torch.linspace(0, np.pi, points)
    arc = torch.stack([angle.cos(), angle.sin(), torch.zeros(points)], 1)
    lifted = arc + torch.tensor([0.0, 0.0, 0.5])
    x = torch.nn.functional.normalize(torch.cat([arc, lifted]), dim=1)
    return x, np.repeat([0, 1], points)


def test_merging_by_links_joins_the_clusters_that_share_most_links():
    """Four clusters of two points; clusters 0-1 and 2-3 are joined by three links each, 1-2 by one."""
    edges = [(0, 1), (2, 3), (4, 5), (6, 7), (1, 2), (0, 3), (1, 3), (3, 4), (4, 7), (5, 6), (5, 7)]
    rows, cols = zip(*edges)
    w = sp.coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(8, 8)).tocsr()
    w = ((w + w.T) > 0).astype(np.float64)
    ids = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    assert merge_by_links(w, ids, 2).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert merge_by_links(w, ids, 4).tolist() == ids.tolist()  # nothing to merge


def test_k_means_cuts_two_arcs_across_and_merged_over_clusters_give_them_back():
    x, y = two_arcs()
    plain = kmeans(x, 2, seed=0, restarts=5)[0]
    assert clustering_metrics(y, plain)["accuracy"] < 70
    merged = overclustered(x, x, k=2, factor=6, seed=0, restarts=5)
    assert clustering_metrics(y, merged)["accuracy"] > 99
    assert sorted(np.bincount(merged).tolist()) == [300, 300]
    assert clustering_metrics(y, overclustered(x, x, k=2, factor=2, seed=0, restarts=5))["accuracy"] < 70


def test_a_factor_of_one_is_plain_k_means():
    x, _ = two_arcs(100)
    assert (overclustered(x, x, 2, 1, seed=0, restarts=5) == kmeans(x, 2, seed=0, restarts=5)[0]).all()


def test_a_chain_of_linked_clusters_is_merged_before_two_unlinked_small_ones():
    """Clusters along two separate chains (a class drawn out by pose): one chain of a large and a small cluster,
    another of two small ones. Modularity's chance term would join the two unlinked small ends across the chains;
    links over expected links joins each chain."""
    sizes, chains = [40, 6, 6, 6], [(0, 1), (2, 3)]
    ids = np.repeat(np.arange(4), sizes)
    start = np.concatenate([[0], np.cumsum(sizes)])
    edges = [(i, i + 1) for c in range(4) for i in range(start[c], start[c + 1] - 1)]   # each cluster a path
    edges += [(start[b] - 1, start[b]) for a, b in chains]                             # one link along each chain
    rows, cols = zip(*edges)
    w = sp.coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(len(ids), len(ids))).tocsr()
    merged = merge_by_links(((w + w.T) > 0).astype(np.float64), ids, 2)
    assert merged.tolist() == np.repeat([0, 1], [46, 12]).tolist()
