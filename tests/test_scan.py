"""SCAN's pieces against hand-written references: neighbour mining on a hand-built bank, the SCAN
loss, the self-labeling loss, and heads that cluster separable blobs perfectly."""

import math

import pytest
import torch
import torch.nn.functional as F

from unsuprnn.evaluate.metrics import cluster_accuracy
from unsuprnn.cluster.scan import ClusterHeads, confidence_ce, mine_neighbors, scan_loss, strong_augment


def test_mine_neighbors_on_a_hand_built_bank():
    # unit vectors at angles 0, 10, 30, 100, 105, 190 degrees: cosine order is known
    ang = torch.tensor([0.0, 10.0, 30.0, 100.0, 105.0, 190.0]) * math.pi / 180
    bank = torch.stack([ang.cos(), ang.sin()], 1) * torch.tensor([[1.0], [3.0], [0.5], [2.0], [1.0], [4.0]])
    for backend in ("faiss", "torch"):
        nb = mine_neighbors(bank, 2, backend=backend)
        assert nb.tolist() == [[1, 2], [0, 2], [1, 0], [4, 2], [3, 2], [4, 3]], backend


def test_mine_neighbors_never_returns_the_row_itself_with_duplicates():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    nb = mine_neighbors(x, 2)
    assert nb.shape == (5, 2)
    for i, row in enumerate(nb.tolist()):
        assert i not in row
    assert sorted(nb[0].tolist()) == [1, 2] and sorted(nb[1].tolist()) == [0, 2] and sorted(nb[2].tolist()) == [0, 1]
    assert nb[3].tolist() == [4, 0] or nb[3].tolist()[0] == 4


def test_scan_loss_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    a, n = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    total, cons, ent = scan_loss(a, n, entropy_weight=2.5)
    pa, pn = a.softmax(1).tolist(), n.softmax(1).tolist()
    ref_cons = -sum(math.log(sum(x * y for x, y in zip(pa[i], pn[i]))) for i in range(6)) / 6
    mean = [sum(pa[i][c] for i in range(6)) / 6 for c in range(4)]
    ref_ent = -sum(m * math.log(m) for m in mean)
    assert cons.item() == pytest.approx(ref_cons, rel=1e-5)
    assert ent.item() == pytest.approx(ref_ent, rel=1e-5)
    assert total.item() == pytest.approx(ref_cons - 2.5 * ref_ent, rel=1e-5)


def test_scan_loss_prefers_consistent_confident_and_balanced_assignments():
    eye = torch.eye(3) * 20
    good, _, _ = scan_loss(eye, eye)                         # confident, consistent, all clusters used
    split, _, _ = scan_loss(eye, eye.roll(1, 0))              # neighbours disagree
    collapsed, _, _ = scan_loss(eye[[0, 0, 0]], eye[[0, 0, 0]])  # everything in one cluster
    assert good < split and good < collapsed


def test_self_labeling_touches_only_samples_above_the_threshold():
    weak = torch.tensor([[9.0, 0.0, 0.0], [0.0, 8.0, 0.0], [1.0, 1.2, 0.9], [0.0, 0.0, 9.0], [9.0, 0.0, 0.0]])
    strong = torch.randn(5, 3, requires_grad=True)
    loss, mask = confidence_ce(weak, strong, threshold=0.99)
    assert mask.tolist() == [True, True, False, True, True]
    # class-balanced weights: class 0 has 2 of the 4 confident samples -> weight 4/2, the others 4/1
    w = torch.tensor([2.0, 4.0, 4.0])
    keep = torch.tensor([0, 1, 3, 4])
    ref = F.cross_entropy(strong[keep], torch.tensor([0, 1, 2, 0]), weight=w)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    loss.backward()
    assert torch.all(strong.grad[2] == 0) and torch.all(strong.grad[keep].abs().sum(1) > 0)
    none, mask = confidence_ce(torch.zeros(4, 3), strong, threshold=0.5)
    assert not mask.any() and none.item() == 0.0


def test_heads_cluster_separable_blobs_perfectly():
    g = torch.Generator().manual_seed(0)
    k, per, dim = 4, 60, 16
    centres = torch.randn(k, dim, generator=g) * 4
    y = torch.arange(k).repeat_interleave(per)
    x = centres[y] + 0.3 * torch.randn(len(y), dim, generator=g)
    nb = mine_neighbors(x, 10)
    assert (y[nb] == y[:, None]).all()  # the blobs are apart: every mined neighbour shares the blob
    torch.manual_seed(0)
    heads = ClusterHeads(dim, k, heads=3)
    opt = torch.optim.Adam(heads.parameters(), lr=1e-2)
    for step in range(300):
        a = torch.randint(len(x), (64,), generator=g)
        n = nb[a, torch.randint(10, (64,), generator=g)]
        logits = heads(torch.cat([x[a], x[n]]))
        loss = sum(scan_loss(lg[:64], lg[64:])[0] for lg in logits)
        opt.zero_grad()
        loss.backward()
        opt.step()
    heads.eval()
    with torch.no_grad():
        for logits in heads(x):
            assert cluster_accuracy(y.numpy(), logits.argmax(1).numpy()) == 100.0


def test_strong_augment_scales_within_range():
    from unsuprnn.config import AugmentConfig
    from unsuprnn.data.augment import BatchAugment
    base = AugmentConfig()
    s = strong_augment(base, 2.0)
    assert s.rotate == 2 * base.rotate and s.crop_scale == pytest.approx(base.crop_scale ** 2)
    assert s.erase_prob == 2 * base.erase_prob and s.shear <= 60
    BatchAugment(strong_augment(AugmentConfig(shear=50, erase_prob=0.9, erase_max=0.5), 4.0))  # still valid
