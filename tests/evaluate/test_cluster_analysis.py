"""Clustering without labels, with known answers: K of separable blobs, density clusters that call planted
noise noise, planted outliers and copies found, per-cluster summaries."""

import numpy as np
import pytest
import torch

from unsuprnn.errors import UserError
from unsuprnn.evaluate.kmeans import choose_k, modularity
from unsuprnn.names.clusters import parse_k_range
from unsuprnn.evaluate.diagnostics import cluster_summary, duplicate_pairs, near_duplicates, outlier_scores
from unsuprnn.evaluate.hdbscan import hdbscan_clusters, noise_scores


def blobs(k: int, per: int = 60, dim: int = 16, spread: float = 0.15, seed: int = 0):
    """k Gaussian blobs about random unit centres: (points [k*per, dim], labels [k*per])."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(k, dim, generator=g), dim=1)
    y = torch.arange(k).repeat_interleave(per)
    return centres[y] + spread * torch.randn(k * per, dim, generator=g) / dim ** 0.5, y


@pytest.mark.parametrize("k", [3, 5, 8])
def test_auto_k_finds_the_number_of_separable_blobs(k):
    x, _ = blobs(k, seed=k)
    chosen, curve = choose_k(x, (2, 12))
    assert chosen == k and set(curve) == set(range(2, 13))
    assert curve[k] == max(curve.values()) or curve[k] >= max(curve.values()) - 0.01


def test_modularity_matches_its_formula_on_two_triangles():
    """Two triangles joined by one edge: Q = sum_c (e_c/m - (d_c/2m)^2) with m = 7 edges."""
    import scipy.sparse as sp
    edges = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]
    rows, cols = zip(*(edges + [(b, a) for a, b in edges]))
    w = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(6, 6))
    expected = 2 * (3 / 7 - (7 / 14) ** 2)
    assert modularity(w, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(expected)
    assert modularity(w, np.zeros(6, dtype=int)) == pytest.approx(0.0)


@pytest.mark.parametrize("text", ["5:2", "1:4", "x", "3", "2:3:4"])
def test_bad_k_ranges_are_one_clear_error(text):
    with pytest.raises(UserError, match="--k-range"):
        parse_k_range(text)
    assert parse_k_range("2:20") == (2, 20)


def test_hdbscan_calls_planted_noise_noise():
    # four tight blobs about one direction, and 20 points in scattered directions far from all of them
    g = torch.Generator().manual_seed(1)
    centres = torch.nn.functional.normalize(torch.eye(16)[0] + 0.35 * torch.randn(4, 16, generator=g), dim=1)
    x = centres.repeat_interleave(100, 0) + 0.03 * torch.randn(400, 16, generator=g)
    ids = hdbscan_clusters(torch.cat([x, torch.randn(20, 16, generator=g)]))
    assert len(set(ids[:400].tolist()) - {-1}) == 4 and (ids[:400] == -1).mean() <= 0.02
    assert (ids[400:] == -1).mean() >= 0.9
    # accuracy counts noise as wrong; NMI and ARI treat noise as a cluster of its own
    s = noise_scores(np.array([0, 0, 1, 1]), np.array([0, -1, 1, 1]))
    assert s["accuracy"] == pytest.approx(75.0)


def test_planted_outliers_rank_first_and_copies_are_found():
    x, _ = blobs(5, per=80, spread=0.2)
    g = torch.Generator().manual_seed(2)
    odd = torch.randn(8, 16, generator=g) * 2  # far from every blob
    copies = x[[3, 90, 170, 250, 333]] + 1e-4 * torch.randn(5, 16, generator=g)
    z = torch.cat([x, odd, copies])  # rows 400..407 odd, 408..412 copies of rows 3, 90, 170, 250, 333
    top = np.argsort(-outlier_scores(z))[:8]  # exactly the eight
    assert set(range(400, 408)) <= set(top.tolist())
    dup = near_duplicates(z, threshold=0.995)
    pairs = duplicate_pairs(dup)
    assert {(408, 3), (409, 90), (410, 170), (411, 250), (412, 333)} <= set(pairs) and len(pairs) <= 7
    assert all(dup[i] < i for i in np.flatnonzero(dup >= 0))  # a copy points at an earlier row, never itself


def test_cluster_summary_orders_typical_before_atypical():
    x, y = blobs(3, per=40, spread=0.1)
    x[5] = x[5] * 0.2 + x[45] * 0.8  # a point of cluster 0 drawn towards cluster 1: the least typical of its own
    summary = cluster_summary(x, y.numpy(), strip=4)
    assert [s["size"] for s in summary] == [40, 40, 40] and all(s["score"] > 0.5 for s in summary)
    zero = next(s for s in summary if s["cluster"] == 0)
    assert zero["atypical"][-1] == 5 and 5 not in zero["typical"]


def test_pixel_match_finds_shifted_copies_and_nothing_else():
    from unsuprnn.evaluate.diagnostics import pixel_match
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 1, 12, 12), generator=g, dtype=torch.uint8)
    images[1] = torch.roll(images[0], shifts=(1, -2), dims=(1, 2))  # shifted by 1 and 2 pixels
    images[3] = 7  # a constant image matches nothing, not even itself
    m = pixel_match(images, torch.tensor([1, 2, 3]), torch.tensor([0, 0, 3]))
    assert m[0] == pytest.approx(1.0) and m[1] < 0.5 and m[2] == 0.0


def test_near_duplicates_checks_candidates_pixels():
    """A shifted copy whose embedding is only near its original's (not above the threshold) is found by
    its pixels; a look-alike with other pixels is not."""
    from unsuprnn.evaluate.diagnostics import near_duplicates
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (30, 1, 10, 10), generator=g, dtype=torch.uint8)
    images[29] = torch.roll(images[4], shifts=1, dims=2)
    x = torch.randn(30, 16, generator=g)
    x[29] = x[4] + 0.3 * torch.randn(16, generator=g)  # near, far below a cosine of 0.995
    x[28] = x[7] + 0.3 * torch.randn(16, generator=g)  # as near, but other pixels
    dup = near_duplicates(x, 0.995, images=images)
    assert dup[29] == 4 and dup[28] == -1 and (dup >= 0).sum() == 1
