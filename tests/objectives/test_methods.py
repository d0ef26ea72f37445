"""The lightly methods: each loss against a hand-written formula, the momentum update against its
formula, teachers and memory banks through a checkpoint, and resume after a kill for byol and moco."""

import json

import pytest

from unsuprnn.errors import UserError
import torch
import torch.nn.functional as F

import unsuprnn.monitors as monitors
from tests.conftest import invoke, straight_and_resumed, tiny_config
from unsuprnn.runs.checkpoint import load_checkpoint
from unsuprnn.config import Config
from unsuprnn.data.pipeline import build_pipeline
from unsuprnn.models.encoders import build_encoder
from unsuprnn.names.objectives import specs
from unsuprnn.objectives import build_objective
from unsuprnn.schedules import momentum_schedule

NEW = ["byol", "simsiam", "vicreg", "barlowtwins", "moco", "nnclr", "dcl"]
g = torch.Generator().manual_seed(0)
A, B = torch.randn(16, 6, generator=g), torch.randn(16, 6, generator=g)


def offdiag(m):
    return m - torch.diag(torch.diag(m))


def test_vicreg_loss_by_hand():
    from lightly.loss import VICRegLoss

    def var(x):
        return F.relu(1 - torch.sqrt(x.var(0) + 1e-4)).mean()

    def cov(x):
        xc = x - x.mean(0)
        return (offdiag(xc.T @ xc / (len(x) - 1)) ** 2).sum() / x.shape[1]
    ref = 25 * F.mse_loss(A, B) + 25 * 0.5 * (var(A) + var(B)) + (cov(A) + cov(B))
    assert VICRegLoss()(A, B).item() == pytest.approx(ref.item(), rel=1e-5)


def test_barlow_twins_loss_by_hand():
    from lightly.loss import BarlowTwinsLoss

    def norm(x):
        return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)
    c = norm(A).T @ norm(B) / len(A)
    ref = ((torch.diag(c) - 1) ** 2).sum() + 5e-3 * (offdiag(c) ** 2).sum()
    assert BarlowTwinsLoss()(A, B).item() == pytest.approx(ref.item(), rel=1e-5)


def test_dcl_loss_by_hand():
    from lightly.loss import DCLLoss
    t = 0.2

    def one_way(u, v):
        u, v = F.normalize(u, dim=1), F.normalize(v, dim=1)
        n = len(u)
        pos = (u * v).sum(1) / t
        others = ~torch.eye(n, dtype=torch.bool)
        neg = torch.cat([(u @ u.T / t).masked_select(others).view(n, n - 1),
                         (u @ v.T / t).masked_select(others).view(n, n - 1)], 1)
        return (-pos + torch.logsumexp(neg, 1)).mean()
    ref = 0.5 * (one_way(A, B) + one_way(B, A))
    assert DCLLoss(temperature=t)(A, B).item() == pytest.approx(ref.item(), rel=1e-5)


def test_moco_loss_is_nt_xent_against_the_memory_bank():
    from lightly.loss import NTXentLoss
    t, n_bank = 0.2, 32
    loss = NTXentLoss(temperature=t, memory_bank_size=(n_bank, 6))
    bank = F.normalize(loss.memory_bank.bank.clone(), dim=1)  # [n_bank, 6], before the keys enter it
    q, k = F.normalize(A, dim=1), F.normalize(B, dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ bank.T], 1) / t
    ref = F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long))
    assert loss(A.clone().requires_grad_(), B).item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(loss.memory_bank.bank[:len(B)], k)  # in training, the (normalized) keys enter the bank


def small_objective(name, seed=0):
    torch.manual_seed(seed)
    cfg = Config()
    cfg.objective.name, cfg.objective.proj_hidden, cfg.objective.proj_out = name, 16, 8
    cfg.objective.pred_hidden, cfg.objective.bank_size = 16, 32
    cfg.encoder.hidden, cfg.encoder.layers = 8, 1
    pipe = build_pipeline(cfg.data, cfg.augment, (1, 8, 8), [0.3], [0.3])
    return build_objective(name, build_encoder(cfg.encoder, pipe.seq_shape[1]), pipe, cfg.objective, 10)


def images(n=12):
    return torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)


def test_byol_loss_is_the_symmetric_negative_cosine_of_prediction_and_teacher():
    obj = small_objective("byol")
    x = images()
    loss, _ = obj(x, None, torch.Generator().manual_seed(5))
    views = torch.cat([obj.pipeline.augmented(x, gen := torch.Generator().manual_seed(5)),
                       obj.pipeline.augmented(x, gen)])
    p = obj.prediction(obj.projection(obj.encoder(views)))
    z = obj.teacher["projection"](obj.teacher["encoder"](views))
    b = len(x)
    ref = -0.5 * (F.cosine_similarity(p[:b], z[b:]).mean() + F.cosine_similarity(p[b:], z[:b]).mean())
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)


@pytest.mark.parametrize("name", ["byol", "moco"])
def test_momentum_update_follows_its_formula(name):
    obj = small_objective(name)
    with torch.no_grad():
        for p in obj.encoder.parameters():
            p.add_(1.0)  # the student moves away from the teacher
    before = {k: v.clone() for k, v in obj.teacher.state_dict().items()}
    student = {"encoder": obj.encoder.state_dict(), "projection": obj.projection.state_dict()}
    obj.update_teacher(0.9)
    for key, new in obj.teacher.state_dict().items():
        part, sub = key.split(".", 1)
        if new.is_floating_point() and sub in dict(getattr(obj, part).named_parameters()):
            assert torch.allclose(new, 0.9 * before[key] + 0.1 * student[part][sub]), key
    assert not any(p.requires_grad for p in obj.teacher.parameters())


def test_momentum_schedule_is_cosine_from_start_to_one():
    m = momentum_schedule(0.99, 11)  # lightly's cosine_schedule: step / (steps - 1), the last step at 1
    assert m[0] == pytest.approx(0.99) and m[-1] == pytest.approx(1.0) and m[5] == pytest.approx(0.995)
    assert all(a <= b for a, b in zip(m, m[1:]))


@pytest.mark.parametrize("name", ["byol", "moco", "nnclr"])
def test_teachers_and_memory_banks_survive_a_checkpoint(name, tmp_path):
    from unsuprnn.runs.checkpoint import save_checkpoint
    obj = small_objective(name)
    for _ in range(2):  # move the banks and their pointers off their start
        loss, _ = obj(images(), None, torch.Generator().manual_seed(2))
        if hasattr(obj, "update_teacher"):
            obj.update_teacher(0.5)
    save_checkpoint({"model": obj.state_dict()}, tmp_path / "c.pt")
    fresh = small_objective(name, seed=7)
    fresh.load_state_dict(load_checkpoint(tmp_path / "c.pt")["model"])
    a, b = obj.state_dict(), fresh.state_dict()
    assert [k for k in a if k.endswith("_extra_state")] == ([] if name == "byol" else ["_extra_state"])
    for k in a:
        if k.endswith("_extra_state"):
            for bank in a[k]:
                assert torch.equal(a[k][bank]["bank"], b[k][bank]["bank"]) and int(b[k][bank]["ptr"]) == 24
        else:
            assert torch.equal(a[k], b[k]), k
    gen = torch.Generator().manual_seed(3)
    assert obj(images(), None, gen)[0].item() == fresh(images(), None, torch.Generator().manual_seed(3))[0].item()


@pytest.mark.parametrize("name", ["byol", "moco"])
def test_resume_after_a_kill_is_identical(name, tmp_path, monkeypatch):
    cfg = tiny_config(name, epochs=3)
    cfg.objective.bank_size, cfg.train.batch_size = 512, 128
    a, b = straight_and_resumed(cfg, tmp_path, monkeypatch, kill_after=1)
    assert a.keys() == b.keys() and any(k.startswith("teacher.") for k in a)
    for k in a:
        if k.endswith("_extra_state"):
            assert all(torch.equal(a[k][n]["bank"], b[k][n]["bank"]) for n in a[k])
        else:
            assert torch.equal(a[k], b[k]), k
    loss = [[json.loads(x)["loss"] for x in (tmp_path / d / "log.jsonl").read_text().splitlines()]
            for d in ("straight", "resumed")]
    assert loss[0] == loss[1]


def test_every_objective_file_is_registered_and_named_in_the_config():
    import dataclasses

    from unsuprnn.config import Config
    from unsuprnn.names.objectives import names
    field = next(f for f in dataclasses.fields(Config().objective) if f.name == "name")
    for name in specs():  # the config accepts every objective file but the mix's own (A+B builds it)
        if name == "mix":
            with pytest.raises(UserError):
                field.metadata["parse"](name)
        else:
            assert field.metadata["parse"](name) == [name]
    assert set(names()) == set(specs()) - {"mix"} and set(NEW) <= set(names())
    assert all(n in field.metadata["help"] for n in names(uses_labels=False))


def test_unknown_objective_lists_the_valid_names(runner, tmp_path):
    r = invoke(runner, "pretrain", "--objective", "swav", "--out", tmp_path / "x")
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1
    assert all(name in lines[0] for name in NEW + ["contrastive", "autoencoder"])


def test_collapse_is_logged_and_reported(runner, tmp_path, monkeypatch):
    from unsuprnn.monitors import collapse_verdict
    assert collapse_verdict(0.001, 512)["collapsed"] and not collapse_verdict(0.04, 512)["collapsed"]
    r = invoke(runner, "pretrain", "--objective", "simsiam", "--out", tmp_path / "ok", "--dataset", "digits",
               "--hidden", "16", "--layers", "1", "--epochs", "1", "--device", "cpu", "--quiet")
    assert r.exit_code == 0 and "collapsed" not in r.stderr
    log = json.loads((tmp_path / "ok" / "log.jsonl").read_text().splitlines()[-1])
    metrics = json.loads((tmp_path / "ok" / "metrics.json").read_text())
    assert 0 < log["embedding_std"] == metrics["embedding_std"] and metrics["collapsed"] is False
    monkeypatch.setattr(monitors, "std_of_l2_normalized", lambda z: torch.tensor(0.0))  # a collapsed encoder
    r = invoke(runner, "pretrain", "--objective", "simsiam", "--out", tmp_path / "bad", "--dataset", "digits",
               "--hidden", "16", "--layers", "1", "--epochs", "1", "--device", "cpu", "--quiet")
    assert r.exit_code == 0 and "warning: the embeddings collapsed" in r.stderr
    assert json.loads((tmp_path / "bad" / "metrics.json").read_text())["collapsed"] is True
