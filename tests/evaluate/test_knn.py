import math

import pytest
import torch

from unsuprnn.errors import UserError
from unsuprnn.evaluate.knn import knn_accuracy, knn_search, knn_vote

# bank on the unit circle: angles in degrees, with labels
ANGLES = [0, 10, 20, 90, 100, 180]
LABELS = torch.tensor([0, 0, 1, 1, 1, 2])


def vec(deg):
    r = math.radians(deg)
    return [math.cos(r), math.sin(r)]


BANK = torch.tensor([vec(a) for a in ANGLES])


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_known_neighbours(backend):
    q = torch.tensor([vec(5), vec(95)]) * 3.0  # scale does not matter: cosine
    sims, idx = knn_search(q, BANK, 3, backend)
    assert idx[0].tolist()[:2] in ([0, 1], [1, 0]) and idx[0, 2].item() == 2
    assert idx[1].tolist()[:2] in ([3, 4], [4, 3]) and idx[1, 2].item() == 2  # 20 deg is 75 from 95, 180 is 85
    assert sims[0, 0].item() == pytest.approx(math.cos(math.radians(5)), abs=1e-6)


def test_weighted_and_majority_votes_by_hand():
    # query at 14 deg, k=3: neighbours 10 (label 0, 4 deg), 20 (label 1, 6 deg), 0 (label 0, 14 deg)
    q = torch.tensor([vec(14)])
    sims, idx = knn_search(q, BANK, 3, "torch")
    nl = LABELS[idx]
    majority = knn_vote(sims, nl, 3, temperature=None)
    assert majority.tolist() == [[2.0, 1.0, 0.0]]
    t = 0.05
    w = knn_vote(sims, nl, 3, temperature=t)
    c = lambda d: math.exp(math.cos(math.radians(d)) / t)
    total = c(4) + c(14) + c(6)  # scores are exp(sim / t) up to one factor per query
    assert (w[0] / w[0].sum()).tolist() == pytest.approx([(c(4) + c(14)) / total, c(6) / total, 0.0], rel=1e-5)
    # a sharp temperature lets one very close neighbour outvote two further ones
    q2 = torch.tensor([vec(19.9)])
    s2, i2 = knn_search(q2, torch.tensor([vec(20), vec(60), vec(61)]), 3, "torch")
    lab = torch.tensor([1, 0, 0])[i2]
    assert knn_vote(s2, lab, 2, temperature=0.01).argmax().item() == 1
    assert knn_vote(s2, lab, 2, temperature=None).argmax().item() == 0


def test_faiss_and_torch_paths_agree():
    g = torch.Generator().manual_seed(0)
    bank, query = torch.randn(500, 32, generator=g), torch.randn(100, 32, generator=g)
    labels = torch.randint(0, 5, (500,), generator=g)
    s1, i1 = knn_search(query, bank, 10, "faiss")
    s2, i2 = knn_search(query, bank, 10, "torch", chunk=17)
    assert torch.equal(i1, i2) and torch.allclose(s1, s2, atol=1e-5)
    qy = torch.randint(0, 5, (100,), generator=g)
    assert knn_accuracy(query, qy, bank, labels, 5, k=20, temperature=0.07, backend="faiss") == \
        pytest.approx(knn_accuracy(query, qy, bank, labels, 5, k=20, temperature=0.07, backend="torch"))


def test_accuracy_top1_and_top5_only_where_it_means_something():
    q = torch.tensor([vec(5), vec(95), vec(178)])
    acc = knn_accuracy(q, torch.tensor([0, 1, 1]), BANK, LABELS, 3, k=2, temperature=0.07)
    assert acc["weighted_top1"] == pytest.approx(200 / 3) and "weighted_top5" not in acc  # 3 classes: trivially 100
    acc = knn_accuracy(q, torch.tensor([0, 1, 1]), BANK, LABELS, 7, k=2, temperature=0.07)
    assert acc["weighted_top5"] == 100.0 and acc["majority_top5"] == 100.0


def test_k_larger_than_bank():
    with pytest.raises(UserError, match="larger than the bank"):
        knn_search(BANK, BANK, 7)


def test_ivf_finds_the_exact_neighbours_when_probing_every_cell():
    g = torch.Generator().manual_seed(1)
    bank, query = torch.randn(2000, 16, generator=g), torch.randn(50, 16, generator=g)
    _, exact = knn_search(query, bank, 10, "faiss")
    _, all_cells = knn_search(query, bank, 10, "faiss", index="ivf", nlist=16, nprobe=16)
    assert torch.equal(exact, all_cells)
    _, few = knn_search(query, bank, 10, "faiss", index="ivf", nlist=16, nprobe=1)
    recall = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(exact, few)) / exact.numel()
    assert 0.1 < recall < 1.0  # one cell of sixteen: approximate, yet far better than chance (10/2000)


def test_missing_neighbours_do_not_vote():
    sims = torch.tensor([[0.9, float("-inf")]])
    nl = torch.tensor([[1, 0]])
    assert knn_vote(sims, nl, 2, temperature=0.07).tolist() == [[0.0, 1.0]]
    assert knn_vote(sims, nl, 2, temperature=None).tolist() == [[0.0, 1.0]]


@pytest.mark.parametrize("t", [0.0, -1.0, float("nan"), float("inf")])
def test_vote_temperature_out_of_range_is_refused(t):
    with pytest.raises(UserError, match="finite number > 0"):
        knn_vote(torch.ones(2, 3), torch.zeros(2, 3, dtype=torch.long), 2, temperature=t)


def test_majority_tie_goes_to_the_nearest_class_then_the_lower_id():
    from unsuprnn.evaluate.knn import ranked_classes
    sims = torch.tensor([[0.9, 0.8, 0.7, 0.6],     # 2 votes each for 3 and 1; 3 holds the nearest
                         [0.9, 0.8, 0.7, 0.6],     # the same votes listed in another order
                         [0.5, 0.5, 0.2, 0.1]])    # 2 and 0 tie on votes and on their nearest: lower id
    labels = torch.tensor([[3, 1, 3, 1], [1, 3, 1, 3], [2, 0, 2, 0]])
    votes = knn_vote(sims, labels, 4, temperature=None)
    top = ranked_classes(votes, sims, labels, 4)
    assert top.tolist() == [[3, 1, 0, 2], [1, 3, 0, 2], [0, 2, 1, 3]]
    # any order of the k neighbours gives the same answer
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.equal(ranked_classes(knn_vote(sims[:, perm], labels[:, perm], 4, temperature=None),
                                      sims[:, perm], labels[:, perm], 4), top)


def test_majority_accuracy_is_the_same_for_any_neighbour_order():
    # duplicated bank rows give equal similarities, whose order a search may return either way
    bank = torch.tensor([vec(0), vec(0), vec(90), vec(90)])
    labels = torch.tensor([1, 1, 0, 0])
    q = torch.tensor([vec(40)])  # 2 votes each; class 1 is nearer (40 deg against 50)
    for backend in ("faiss", "torch"):
        acc = knn_accuracy(q, torch.tensor([1]), bank, labels, 2, k=4, temperature=0.07, backend=backend)
        assert acc["majority_top1"] == 100.0
