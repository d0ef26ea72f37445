import numpy as np
import pytest
import torch

from unsuprnn.errors import UserError
from unsuprnn.evaluate.kmeans import faiss_lloyd, kmeans, kmeans_plus_plus, kmeans_scores, lloyd
from unsuprnn.evaluate.linear import linear_probe
from unsuprnn.evaluate.metrics import classification_metrics, cluster_accuracy


def blobs(n_per=50, k=4, dim=8, spread=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(dim)[:k] * 5
    x = torch.cat([c + spread * torch.randn(n_per, dim, generator=g) for c in centres])
    return x, torch.arange(k).repeat_interleave(n_per)


def test_kmeans_on_separated_blobs_is_perfect():
    x, y = blobs()
    s = kmeans_scores(x, y, 4, seed=0)
    assert s["nmi"] == pytest.approx(1.0) and s["ari"] == pytest.approx(1.0) and s["accuracy"] == 100.0


def test_kmeans_plus_plus_never_seeds_twice_in_a_covered_spot():
    # three copies of 0 and one 100: once one of them is a centre the other has all the D^2 mass
    x = torch.tensor([[0.0], [0.0], [0.0], [100.0]])
    for seed in range(20):
        c = kmeans_plus_plus(x, 2, torch.Generator().manual_seed(seed))
        assert sorted(c[:, 0].tolist()) == [0.0, 100.0]
    # all duplicates: falls back to uniform draws instead of dividing by a zero potential
    assert kmeans_plus_plus(torch.zeros(5, 3), 3, torch.Generator().manual_seed(0)).shape == (3, 3)


def unequal_blobs():
    g = torch.Generator().manual_seed(0)
    sizes = [400, 200, 100, 50, 25, 12, 6, 6, 3, 3]
    centres = torch.randn(10, 16, generator=g) * 20
    x = torch.cat([c + 0.1 * torch.randn(n, 16, generator=g) for c, n in zip(centres, sizes)])
    return x, torch.arange(10).repeat_interleave(torch.tensor(sizes))


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_kmeans_single_run_finds_ten_unequal_blobs(backend):
    # ten far-apart blobs of very unequal sizes: uniform random seeding puts two seeds in a big blob
    # and none in a small one, and Lloyd cannot recover; k-means++ seeds one per blob
    x, y = unequal_blobs()
    for seed in range(5):
        clusters, centroids, _ = kmeans(x, 10, seed=seed, restarts=1, backend=backend)
        assert cluster_accuracy(y.numpy(), clusters) == 100.0, seed


def test_torch_lloyd_matches_faiss_from_the_same_seeds():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(500, 8, generator=g)  # no structure: many iterations, many near-ties
    init = kmeans_plus_plus(x, 6, torch.Generator().manual_seed(0))
    assign, centroids, obj = lloyd(x, init, niter=30)
    km, _ = faiss_lloyd(x, init, 30, 0, False)
    _, faiss_assign = km.index.search(x.numpy(), 1)
    assert torch.allclose(centroids, torch.from_numpy(km.centroids), atol=1e-4)
    assert (assign.numpy() == faiss_assign[:, 0]).mean() > 0.99
    # the objective is the sum of squared distances to the final centroids
    assert obj == pytest.approx(float(((x - centroids[assign]) ** 2).sum()), rel=1e-5)


def test_kmeans_without_labels_says_it_cannot_score():
    x, _ = blobs()
    s = kmeans_scores(x, torch.full((len(x),), -1), 4)
    assert "nmi" not in s and "not scored" in s["note"]
    with pytest.raises(UserError, match="clusters for"):
        kmeans_scores(x[:3], None, 5)


def test_hungarian_accuracy_on_a_permutation():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    clusters = np.array([2, 2, 0, 0, 1, 1, 0])  # a relabelling with one mistake
    assert cluster_accuracy(y, clusters) == pytest.approx(100 * 6 / 7)
    assert cluster_accuracy(y, (y + 1) % 3) == 100.0


def test_linear_probe_separable_data_is_perfect():
    x, y = blobs(n_per=40, k=3, spread=0.3)
    xt, yt = blobs(n_per=20, k=3, spread=0.3, seed=1)
    out = linear_probe(x, y, xt, yt, 3)
    assert out["accuracy"] == 100.0 and out["f1"] == 100.0
    assert out["confusion"] == [[20, 0, 0], [0, 20, 0], [0, 0, 20]]
    assert str(out["weight_decay"]) in out["validation_accuracy"]


def test_classification_metrics_by_hand():
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], 2)
    assert m["accuracy"] == 75.0
    # class 0: P=1, R=.5; class 1: P=2/3, R=1 -> macro P=5/6, R=3/4
    assert m["precision"] == pytest.approx(100 * 5 / 6) and m["recall"] == pytest.approx(75.0)
    assert m["confusion"] == [[1, 1], [0, 2]]


def test_kmeans_scores_keep_the_lowest_objective_and_report_the_spread():
    from unsuprnn.evaluate.kmeans import default_restarts, kmeans_runs
    from unsuprnn.evaluate.metrics import clustering_metrics
    x, y = blobs(n_per=30, k=6, dim=6, spread=2.5, seed=1)  # overlapping blobs: restarts disagree
    s = kmeans_scores(x, y, 6, seed=0, restarts=8)
    runs = list(kmeans_runs(torch.nn.functional.normalize(x, dim=1), 6, seed=0, restarts=8))
    objectives = [r[2] for r in runs]
    best = int(np.argmin(objectives))
    scores = [clustering_metrics(y.numpy(), r[0])["accuracy"] for r in runs]
    assert s["restarts"] == 8 and s["objective"] == min(objectives)
    assert s["accuracy"] == scores[best]
    assert s["spread"]["accuracy"] == pytest.approx({"min": min(scores), "max": max(scores), "std": np.std(scores)})
    assert s["spread"]["accuracy"]["max"] > s["spread"]["accuracy"]["min"]  # the data really is ambiguous
    assert kmeans_scores(x, y, 6)["restarts"] == default_restarts(len(x)) == 20
    assert default_restarts(20001) == 5


def long_threads(n_per: int = 150, seed: int = 0):
    """Three parallel threads, 4 apart, each 20 long along a shared direction: k-means of the points follows the
    long direction (the 'nuisance'), the neighbourhood graph follows the threads (the 'classes')."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per)
    x = np.zeros((len(y), 8))
    x[:, 0] = rng.uniform(-10, 10, len(y))              # along the thread
    x[:, 1] = 4.0 * y + rng.normal(0, 0.3, len(y))      # which thread
    x[:, 2:] = rng.normal(0, 0.3, (len(y), 6))
    x += 50.0  # away from the origin, so that cosine neighbours are Euclidean ones
    return torch.from_numpy(x).float(), torch.from_numpy(y)


def test_reduce_umap_groups_the_neighbourhood_graph_where_kmeans_follows_the_largest_direction():
    from unsuprnn.config import ProbeSettings
    from unsuprnn.evaluate.kmeans import measure
    x, y = long_threads()
    bank, query, qy = x[::2], x[1::2], y[1::2]
    plain = measure(bank, y[::2], query, qy, 3, ProbeSettings(clusters=3, reduce="none"), 0, "cpu")
    laid = measure(bank, y[::2], query, qy, 3, ProbeSettings(clusters=3, reduce="umap"), 0, "cpu")
    assert plain["accuracy"] < 50 and laid["accuracy"] == 100.0, (plain["accuracy"], laid["accuracy"])
