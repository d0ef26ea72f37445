"""The clustering stage end to end on digits: run directory, resume after a kill, probe, export,
report, and bad input."""

import json

import numpy as np
import pytest
import torch

import unsuprnn.cluster.stage as cluster_mod
from tests.conftest import copy_run, die_after_checkpoint, invoke
from unsuprnn.runs.checkpoint import load_checkpoint, load_encoder_file, save_encoder
from unsuprnn.cluster.stage import source_config, train_clusters
from unsuprnn.runs.checkpoint import load_cluster_head
from unsuprnn.config import ClusterConfig
from unsuprnn.errors import UserError
from unsuprnn.export import read_embeddings
from unsuprnn.models.encoders import build_encoder


def cluster_config(run, **cluster):
    cfg = source_config(run)
    cfg.cluster.epochs, cfg.cluster.selflabel_epochs, cfg.cluster.heads, cfg.cluster.neighbors = 2, 2, 2, 5
    cfg.cluster.threshold = 0.5  # an encoder trained for one epoch is rarely more confident
    for key, value in cluster.items():
        setattr(cfg.cluster, key, value)
    return cfg


@pytest.fixture(scope="module")
def pretrained(tiny_run, tmp_path_factory):
    return copy_run(tiny_run(), tmp_path_factory.mktemp("pre") / "con")


@pytest.fixture(scope="module")
def clustered(pretrained, tmp_path_factory):
    out = tmp_path_factory.mktemp("clu") / "run"
    metrics = train_clusters(cluster_config(pretrained), pretrained, out, quiet=True)
    return out, metrics


def test_cluster_run_directory(clustered, pretrained):
    out, metrics = clustered
    for name in ("config.yaml", "log.jsonl", "meta.json", "metrics.json", "checkpoint.pt", "encoder.pt",
                 "cluster_head.pt"):
        assert (out / name).is_file(), name
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [e["phase"] for e in log] == ["scan", "scan", "selflabel", "selflabel"]
    assert len(log[0]["head_losses"]) == 2 and log[1]["selected_head"] == metrics["selected_head"]
    assert 0 <= log[2]["confident"] <= 1 and "test_cluster_acc" in log[-1]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["stage"] == "cluster" and meta["clusters"] == 10 and meta["source_run"] == str(pretrained.resolve())
    assert 50 < meta["neighbor_accuracy"] <= 100  # labels score the mined neighbours, nothing more
    assert metrics["train"]["size"] == 1438 and sum(metrics["train"]["cluster_sizes"]) == 1438
    assert 0 <= metrics["test"]["accuracy"] <= 100 and 0 <= metrics["test"]["nmi"] <= 1
    head = load_cluster_head(out)
    assert head(torch.randn(3, 64)).shape == (3, 10)
    assert load_cluster_head(pretrained) is None


def test_labels_never_reach_training(pretrained, tmp_path, monkeypatch):
    """Shuffled labels give bit-identical weights: they are used to score, never to train."""
    cfg = cluster_config(pretrained, selflabel_epochs=1)
    a = train_clusters(cfg, pretrained, tmp_path / "a", quiet=True)
    import unsuprnn.data.dataset as data_mod
    real = data_mod.load_dataset

    def shuffled(c, seed):
        ds = real(c, seed)
        ds.labels = ds.labels[torch.randperm(len(ds.labels), generator=torch.Generator().manual_seed(5))]
        return ds
    monkeypatch.setattr(data_mod, "load_dataset", shuffled)
    b = train_clusters(cfg, pretrained, tmp_path / "b", quiet=True)
    wa = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["model"]
    wb = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["train"]["cluster_sizes"] == b["train"]["cluster_sizes"]
    assert a["test"]["accuracy"] != b["test"]["accuracy"]  # ...while the scores do see the labels


@pytest.mark.parametrize("die_after", [2, 3])  # at the SCAN -> self-labeling boundary, and inside self-labeling
def test_killed_and_resumed_cluster_run_is_identical(pretrained, clustered, tmp_path, monkeypatch, die_after):
    cfg = cluster_config(pretrained)
    die_after_checkpoint(monkeypatch, die_after)  # killed right after that checkpoint
    with pytest.raises(KeyboardInterrupt):
        train_clusters(cfg, pretrained, tmp_path / "r", quiet=True)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["epoch"] == die_after
    train_clusters(cfg, None, tmp_path / "r", resume=True, quiet=True)  # the source run comes from meta.json
    a = load_checkpoint(clustered[0] / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "r" / "checkpoint.pt")
    assert a["best_head"] == b["best_head"] and a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    la = [json.loads(x)["loss"] for x in (clustered[0] / "log.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert la == lb


def test_cluster_settings_come_from_defaults_not_from_the_source_run(pretrained, tmp_path):
    state, cfg, info = load_encoder_file(pretrained / "encoder.pt")
    cfg.cluster = ClusterConfig(heads=3, lr=0.5)  # a cluster run's encoder, clustered again: the stage starts afresh
    enc = build_encoder(cfg.encoder, info["sequence_shape"][1])
    enc.load_state_dict(state)
    save_encoder(tmp_path / "encoder.pt", enc, cfg, info)
    assert source_config(tmp_path).cluster == ClusterConfig()
    cfg.train.devices = 2  # an encoder trained under DDP: the stage's config records the one process it runs in
    save_encoder(tmp_path / "encoder.pt", enc, cfg, info)
    assert source_config(tmp_path).train.devices == 1


def test_frozen_encoder_stays_frozen(pretrained, tmp_path):
    from unsuprnn.runs.checkpoint import load_run_encoder
    from unsuprnn.evaluate.baselines import state_digest
    train_clusters(cluster_config(pretrained, encoder_lr=0.0, selflabel_epochs=1), pretrained, tmp_path / "f",
                   quiet=True)
    assert state_digest(load_run_encoder(tmp_path / "f")[0]) == state_digest(load_run_encoder(pretrained)[0])


def test_cluster_cli_probe_and_export(runner, pretrained, clustered, tmp_path):
    out, metrics = clustered
    r = invoke(runner, "probe", "--run", out, "--method", "kmeans", "--baselines", "raw", "--device", "cpu",
               "--json", tmp_path / "p.json")
    assert r.exit_code == 0, r.output
    assert "head acc" in r.stdout and "head NMI" in r.stdout
    rep = json.loads((tmp_path / "p.json").read_text())
    head = rep["results"]["encoder"]["head"]
    assert head["accuracy"] == pytest.approx(metrics["test"]["accuracy"])  # the same clean test images
    assert head["nmi"] == pytest.approx(metrics["test"]["nmi"]) and sum(head["sizes"]) == 359
    assert "kmeans" in rep["results"]["encoder"] and "head" not in rep["results"]["raw"]
    for ext in (".npz", ".npy", ".parquet", ".csv"):
        r = invoke(runner, "export", "--run", out, "--out", tmp_path / f"e{ext}", "--device", "cpu", "--quiet")
        assert r.exit_code == 0, r.output
        cols = read_embeddings(tmp_path / f"e{ext}")
        assert len(cols["cluster"]) == 1797 and cols["cluster"].max() < 10
        assert np.all((cols["confidence"] > 0.09) & (cols["confidence"] <= 1.0)), ext
    train_sizes = np.bincount(cols["cluster"][cols["split"] == "train"], minlength=10).tolist()
    assert train_sizes == metrics["train"]["cluster_sizes"]
    r = invoke(runner, "export", "--run", out, "--out", tmp_path / "k.npz", "--cluster", "5", "--device", "cpu")
    assert r.exit_code == 2 and "drop --cluster" in r.stderr


def test_cluster_cli_runs_and_resumes(runner, pretrained, tmp_path):
    args = ["--run", pretrained, "--epochs", "1", "--selflabel-epochs", "0", "--heads", "1", "--neighbors", "5",
            "--device", "cpu", "--quiet"]
    r = invoke(runner, "cluster", "--out", tmp_path / "c", *args)
    assert r.exit_code == 0, r.output
    assert "done:" in r.stdout and "test cluster accuracy" in r.stdout
    r = invoke(runner, "cluster", "--out", tmp_path / "c", *args)
    assert r.exit_code == 2 and "already holds a run" in r.stderr
    r = invoke(runner, "cluster", "--out", tmp_path / "c", "--resume", "--quiet")  # finished: nothing left to do
    assert r.exit_code == 0, r.output


def test_cluster_bad_input(runner, pretrained, tmp_path):
    (tmp_path / "empty").mkdir()
    cases = [("--clusters", "1"), ("--clusters", "5000"), ("--neighbors", "2000"), ("--lr", "nan"),
             ("--set", "cluster.threshold=1.5"), ("--set", "cluster.bogus=1"), ("--epochs", "0"),
             ("--set", "train.devices=2")]  # the stage runs in one process: a setting it would ignore is refused
    for args in cases:
        r = invoke(runner, "cluster", "--run", pretrained, "--out", tmp_path / "x", "--device", "cpu", *args)
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr)
        assert not (tmp_path / "x").exists(), args  # nothing written before the input is checked
    for args in (("--run", tmp_path / "empty"), ("--run", tmp_path / "missing"), ()):
        r = invoke(runner, "cluster", "--out", tmp_path / "y", "--device", "cpu", *args)
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr)
    with pytest.raises(UserError, match="new directory"):
        train_clusters(cluster_config(pretrained), pretrained, pretrained, force=True, quiet=True)


def test_report_shows_the_cluster_gallery(clustered, tmp_path):
    from unsuprnn.report.build import build_report
    out, _ = clustered
    build_report([out], tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "cluster gallery" in page and "head acc" in page and "contrastive + cluster stage" in page
    # its encoder is its source's, unchanged: the source's figures in a row of their own, the run adds its head's
    assert "cluster stage on the encoder of con" in page and "the encoder run clusters" in page
    import re
    headings = re.findall(r"<h2>([^<]*)</h2>", page)
    titles = [t.split(": ", 1)[-1] for t in headings[headings.index("Provenance") + 1:]]
    # its own gallery by its head; no confusion matrix (the linear probe is the source's)
    assert titles[:6] == ["Training", "embedding map", "number of clusters", "cluster gallery",
                          "split by a transformation", "odd ones out"]
    assert "confusion matrix" not in titles


def test_damaged_cluster_head_is_refused(clustered, tmp_path):
    import shutil
    out = tmp_path / "copy"
    shutil.copytree(clustered[0], out)
    (out / "cluster_head.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="cluster_head.pt is damaged"):
        load_cluster_head(out)
    torch.save({"format": "something else", "embed_dim": 64, "clusters": 10,
                "state_dict": load_cluster_head(clustered[0]).state_dict()}, out / "cluster_head.pt")
    with pytest.raises(UserError, match="not an unsuprnn clustering head"):
        load_cluster_head(out)


def test_interrupted_cluster_force_leaves_the_finished_cluster_run_whole(pretrained, clustered, tmp_path, monkeypatch):
    import shutil

    from unsuprnn.errors import RunInterrupted
    out = tmp_path / "runs" / "clu"
    shutil.copytree(clustered[0], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(cluster_mod, "cluster_one_epoch", interrupt)
    with pytest.raises(RunInterrupted, match="still holds the previous run"):
        train_clusters(cluster_config(pretrained), pretrained, out, force=True, quiet=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["clu"]


def test_a_budget_stage_scales_its_phases_to_fit_and_resumes_on_its_schedule(pretrained, tmp_path, monkeypatch):
    """On a fake clock where every epoch takes 1 s and the setup 2 s, a 10 s --budget (asked for 30 + 10 epochs)
    plans its epochs in that ratio to end in its budget; killed after its third checkpoint and resumed, it ends
    with the weights of the stage that was not interrupted."""
    import unsuprnn.pacing as pacing
    import unsuprnn.runs.lifecycle as lifecycle
    clock, real_epoch, real_end = {"now": 2.0}, cluster_mod.cluster_one_epoch, lifecycle.RunRecorder.end_epoch
    monkeypatch.setattr(pacing, "now", lambda: clock["now"])

    def epoch_of_one_second(*args):
        entry = real_epoch(*args)
        clock["now"] += 1.0
        return entry | {"seconds": 1.0}
    monkeypatch.setattr(cluster_mod, "cluster_one_epoch", epoch_of_one_second)
    cfg = cluster_config(pretrained, epochs=30, selflabel_epochs=10, budget="10s")
    straight = train_clusters(cfg, pretrained, tmp_path / "straight", quiet=True, started=0.0)
    log = [json.loads(x) for x in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    plan = json.loads((tmp_path / "straight" / "meta.json").read_text())["schedule"]
    assert clock["now"] <= 10.0 and len(log) == sum(plan["epochs"]) >= 6
    assert plan["epochs"][0] == round(len(log) * 0.75) and [e["phase"] for e in log].count("scan") == plan["epochs"][0]
    clock["now"] = 2.0
    die_after_checkpoint(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        train_clusters(cfg, pretrained, tmp_path / "resumed", quiet=True, started=0.0)
    monkeypatch.setattr(lifecycle.RunRecorder, "end_epoch", real_end)
    train_clusters(cfg, pretrained, tmp_path / "resumed", resume=True, quiet=True)
    a, b = (load_checkpoint(tmp_path / r / "checkpoint.pt") for r in ("straight", "resumed"))
    assert a["epoch"] == b["epoch"] and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert straight["selected_head"] is not None
