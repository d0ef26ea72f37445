"""The clustering stage's guard (cluster/guard.py): known groupings, a planted bad head, and the heads that carry
a grouping other than SCAN's."""

import numpy as np
import torch

from unsuprnn.cluster.guard import fit_head, guard, umap_kmeans
from unsuprnn.evaluate.metrics import clustering_metrics
from unsuprnn.models.heads import cluster_head, confident_clusters, kmeans_head


def blobs(n_per: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per)
    centres = rng.normal(0, 1, (3, 16)) * 6 + 20
    return torch.from_numpy(centres[y] + rng.normal(0, 1, (len(y), 16))).float(), y


def test_a_head_planted_to_be_worse_is_replaced_by_kmeans_and_a_good_one_is_kept():
    x, y = blobs()
    bad = np.random.default_rng(1).integers(0, 3, len(y))  # a head that groups at random
    record, head = guard(x, {"head": bad}, 3)
    assert record["kept"] == "kmeans" and record["modularity"]["kmeans"] > record["modularity"]["head"]
    ids, conf = confident_clusters(head(x))
    assert clustering_metrics(y, ids.numpy())["accuracy"] == 100.0 and float(conf.min()) > 0.5
    record, head = guard(x, {"head": y}, 3)  # the true grouping: as good as k-means', and the head comes first
    assert record["kept"] == "head" and head is None


def test_a_better_candidate_is_handed_back_as_a_head_that_gives_its_clusters():
    x, y = blobs()
    half = np.where(np.arange(len(y)) % 2 == 0, y, (y + 1) % 3)  # the head: half its images in the wrong cluster
    record, head = guard(x, {"head": half, "umap": y}, 3)
    assert record["kept"] == "umap"
    assert np.array_equal(confident_clusters(head(x))[0].numpy(), y)


def test_kmeans_head_gives_the_nearest_centroid_of_the_normalized_embedding():
    c = torch.nn.functional.normalize(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]), dim=1)
    z = torch.tensor([[5.0, 1, 0], [0.1, 0.2, 3], [0, 2, 1.9]])  # nearest after normalizing: 0, 2, 1
    assert confident_clusters(kmeans_head(c, 0.5)(z))[0].tolist() == [0, 2, 1]


def test_fit_head_reproduces_a_linearly_separable_grouping():
    x, y = blobs()
    head = fit_head(cluster_head(16, 3), x, y)
    assert np.array_equal(confident_clusters(head(x))[0].numpy(), y)


def test_umap_kmeans_finds_separated_blobs():
    x, y = blobs()
    assert clustering_metrics(y, umap_kmeans(x, 3))["accuracy"] == 100.0


def test_the_head_is_kept_unless_another_grouping_splits_the_graph_clearly_better():
    from unsuprnn.cluster.guard import MARGIN
    x, y = blobs()
    nearly = y.copy()
    nearly[:3] = (nearly[:3] + 1) % 3  # three images of 300 elsewhere: a little less modular than the truth
    record, head = guard(x, {"head": nearly, "umap": y}, 3)
    q = record["modularity"]
    assert 0 < q["umap"] - q["head"] <= MARGIN and record["kept"] == "head" and head is None


def test_labels_score_each_grouping_in_the_record_and_do_not_change_the_choice():
    x, y = blobs()
    half = np.where(np.arange(len(y)) % 2 == 0, y, (y + 1) % 3)
    unscored, _ = guard(x, {"head": half, "umap": y}, 3)
    labels = y.copy()
    labels[:30] = -1  # unknown labels are left out of the scores
    record, _ = guard(x, {"head": half, "umap": y}, 3, labels=labels)
    assert "accuracy" not in unscored and record["kept"] == unscored["kept"] == "umap"
    assert record["modularity"] == unscored["modularity"]
    assert record["accuracy"]["umap"] == record["accuracy"]["kmeans"] == 100.0
    expected = clustering_metrics(y[30:], half[30:])["accuracy"]
    assert record["accuracy"]["head"] == expected and expected < 100.0
    record, _ = guard(x, {"head": half}, 3, labels=np.full(len(y), -1))
    assert "accuracy" not in record
