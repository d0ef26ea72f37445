"""Clustering analysis from the command line: K chosen where K is taken, exports that other tools read
(lightly's CSV, TensorBoard's projector), diagnostics columns with known answers, training curves through
Fabric's loggers."""

import csv
import re

import numpy as np
import pytest

from tests.conftest import TINY, assert_one_error_line, copy_run, invoke, snapshot
from unsuprnn.export import read_embeddings


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    return copy_run(tiny_run(), tmp_path_factory.mktemp("analysis") / "con")  # probes write into a run


def test_export_auto_k_and_hdbscan_columns(runner, run, tmp_path):
    r = invoke(runner, "export", "--run", run, "--out", tmp_path / "a.npz", "--split", "test", "--cluster", "auto",
               "--k-range", "3:12", "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    e = read_embeddings(tmp_path / "a.npz")
    k = int(re.search(r"K=(\d+) \(auto: modularity over 3:12\)", e["cluster_method"]).group(1))
    assert 3 <= k <= 12 and sorted(set(e["cluster"].tolist())) == list(range(k))
    assert f"cluster: kmeans K={k}" in r.stdout
    r = invoke(runner, "export", "--run", run, "--out", tmp_path / "h.parquet", "--split", "test", "--cluster",
               "hdbscan", "--device", "cpu", "--quiet")
    h = read_embeddings(tmp_path / "h.parquet")
    assert r.exit_code == 0 and h["cluster_method"].startswith("hdbscan") and h["cluster"].min() >= -1
    assert len(set(h["cluster"].tolist()) - {-1}) >= 2


def test_export_finds_planted_copies_and_ranks_planted_noise_first(runner, run, tmp_path):
    """Digits with 6 exact copies and 6 noise images appended: duplicate_of names each copy's original, and
    the noise images have the highest outlier scores."""
    from sklearn.datasets import load_digits
    d = load_digits()
    images = (d.images * 16).clip(0, 255).astype(np.uint8)
    originals = np.array([3, 50, 400, 777, 1000, 1500])
    noise = np.random.default_rng(0).integers(0, 256, (6, 8, 8)).astype(np.uint8)
    allx = np.concatenate([images, images[originals], noise])
    np.savez(tmp_path / "p.npz", images=allx, labels=np.concatenate([d.target, d.target[originals], [0] * 6]))
    r = invoke(runner, "export", "--run", run, "--dataset", f"npz:{tmp_path / 'p.npz'}", "--out", tmp_path / "e.csv",
               "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    e = read_embeddings(tmp_path / "e.csv")
    order = np.argsort(e["indices"])
    dup, score = e["duplicate_of"][order], e["outlier_score"][order]
    n = len(images)
    assert dup[n:n + 6].tolist() == originals.tolist()  # each copy points at its original
    assert (dup >= 0).sum() <= 6 + 3  # and few other pairs
    assert set(np.argsort(-score)[:6].tolist()) == set(range(n + 6, n + 12))


def test_lightly_csv_loads_with_lightly(runner, run, tmp_path):
    from lightly.utils.io import load_embeddings
    for fmt, out in (("lightly", "l.csv"), ("auto", "e.npz")):
        r = invoke(runner, "export", "--run", run, "--out", tmp_path / out, "--format", fmt, "--split", "test",
                   "--no-diagnostics", "--device", "cpu", "--quiet")
        assert r.exit_code == 0, r.output
    emb, labels, names = load_embeddings(str(tmp_path / "l.csv"))
    ours = read_embeddings(tmp_path / "e.npz")
    assert np.allclose(emb, ours["embeddings"], atol=1e-6) and labels == ours["labels"].tolist()
    assert names == [f"test/{i}" for i in ours["indices"]]
    assert np.array_equal(read_embeddings(tmp_path / "l.csv")["embeddings"], emb.astype(np.float32))


def test_projector_folder_reads_with_tensorboards_own_code(runner, run, tmp_path):
    from google.protobuf import text_format
    from PIL import Image
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
    from tensorboard.plugins.projector.projector_plugin import _read_tensor_tsv_file
    out = tmp_path / "proj"
    r = invoke(runner, "export", "--run", run, "--out", out, "--format", "projector", "--cluster", "10",
               "--split", "test", "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    config = text_format.Parse((out / "projector_config.pbtxt").read_text(), ProjectorConfig())
    emb = config.embeddings[0]
    tensors = _read_tensor_tsv_file(str(out / emb.tensor_path))
    assert tensors.shape == (359, 64) and list(emb.tensor_shape) == [359, 64]
    with open(out / emb.metadata_path) as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    assert rows[0] == ["index", "split", "label", "cluster", "outlier_score", "duplicate_of"] and len(rows) == 360
    side = emb.sprite.single_image_dim
    assert list(side) == [8, 8] and Image.open(out / emb.sprite.image_path).size == (19 * 8, 19 * 8)  # 19^2 >= 359


def test_projector_never_writes_over_files_it_did_not_write(runner, run, tmp_path):
    out = tmp_path / "proj"
    out.mkdir()
    (out / "tensors.tsv").write_text("mine\n")
    (out / "notes.txt").write_text("keep\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    for target, force in ((out, "--force"), (tmp_path / "link", "--force"), (out / "notes.txt", "--force")):
        before = snapshot(tmp_path)
        r = invoke(runner, "export", "--run", run, "--out", target, "--format", "projector", "--device", "cpu", force)
        assert_one_error_line(r)
        assert snapshot(tmp_path) == before
    fresh = tmp_path / "fresh"
    args = ("export", "--run", run, "--out", fresh, "--format", "projector", "--split", "test", "--device", "cpu")
    assert invoke(runner, *args).exit_code == 0
    (fresh / "notes.txt").write_text("keep\n")
    assert "pass --force" in invoke(runner, *args).stderr
    assert invoke(runner, *args, "--force").exit_code == 0 and (fresh / "notes.txt").read_text() == "keep\n"


@pytest.mark.parametrize("kind", ["tensorboard", "csv"])
def test_training_curves_reach_fabric_loggers(runner, tmp_path, kind):
    out = tmp_path / "run"
    r = invoke(runner, "pretrain", *TINY, "--epochs", "3", "--out", out, "--logger", kind)
    assert r.exit_code == 0, r.output
    log = [__import__("json").loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    if kind == "tensorboard":
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        events = EventAccumulator(str(out / "tensorboard" / "version_0"))
        events.Reload()
        losses = [(e.step, e.value) for e in events.Scalars("loss")]
    else:
        with open(out / "csv" / "version_0" / "metrics.csv") as fh:
            losses = [(int(row["step"]), float(row["loss"])) for row in csv.DictReader(fh)]
    assert [s for s, _ in losses] == [1, 2, 3]
    assert np.allclose([v for _, v in losses], [e["loss"] for e in log], rtol=1e-6)


def test_bad_logger_and_k_range_are_one_line_and_touch_nothing(runner, run, tmp_path):
    before = snapshot(run)
    for args in (("pretrain", *TINY, "--out", tmp_path / "x", "--logger", "wandb"),
                 ("pretrain", *TINY, "--out", tmp_path / "x", "--set", "train.logger=tensorbored"),
                 ("cluster", "--run", run, "--out", tmp_path / "x", "--clusters", "auto", "--k-range", "20:2"),
                 ("probe", "--run", run, "--method", "kmeans", "--clusters", "auto", "--k-range", "1:5"),
                 ("probe", "--run", run, "--method", "kmeans", "--clusters", "many")):
        r = invoke(runner, *args, "--device", "cpu")
        assert_one_error_line(r)
        assert not (tmp_path / "x").exists()
    assert snapshot(run) == before


def test_cluster_stage_chooses_k(run, tmp_path):
    """`cluster --clusters auto`: K chosen from the frozen training embeddings, its curve kept, and the heads
    built with that K (the resolved config records it)."""
    import yaml

    from unsuprnn.cluster.stage import source_config, train_clusters
    cfg = source_config(run)
    cfg.cluster.clusters, cfg.cluster.k_range = "auto", "3:12"
    cfg.cluster.epochs, cfg.cluster.selflabel_epochs, cfg.cluster.heads, cfg.cluster.neighbors = 1, 0, 1, 5
    m = train_clusters(cfg, run, tmp_path / "c", quiet=True)
    k = m["k_auto"]
    assert 3 <= k <= 12 and m["clusters"] == k and set(m["k_curve"]) == {str(i) for i in range(3, 13)}
    assert m["k_curve"][str(k)] >= max(m["k_curve"].values()) - 0.01
    assert len(m["train"]["cluster_sizes"]) == k
    assert yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())["cluster"]["clusters"] == k


def test_probe_auto_k_records_its_curve(runner, run, tmp_path):
    r = invoke(runner, "probe", "--run", run, "--method", "kmeans", "--clusters", "auto", "--json", tmp_path / "p.json",
               "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    res = __import__("json").loads((tmp_path / "p.json").read_text())["results"]["encoder"]["kmeans"]
    assert res["k"] == res["k_auto"] and res["k_chosen_by"] == "modularity" and len(res["k_curve"]) == 19
