import json

import numpy as np
import pytest
import torch

from tests.conftest import assert_one_error_line, copy_run, invoke
from unsuprnn.runs.checkpoint import load_run_encoder
from unsuprnn.evaluate.baselines import state_digest
from unsuprnn.export import gather_embeddings, read_embeddings, write_embeddings


@pytest.fixture(scope="module")
def runs(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    copy_run(tiny_run("contrastive"), root / "con")
    copy_run(tiny_run("supervised"), root / "sup")
    return root


def test_probe_all_with_baselines(runner, runs, tmp_path):
    digest = state_digest(load_run_encoder(runs / "con")[0])
    r = invoke(runner, "probe", "--run", runs / "con", "--method", "all", "--device", "cpu",
               "--baselines", f"raw,pca,random,supervised={runs / 'sup'}", "--json", tmp_path / "p.json")
    assert r.exit_code == 0, r.output
    for row in ("encoder ", "raw ", "pca (29 dims) ", "random ", "supervised "):
        assert f"\n{row}" in r.stdout
    rep = json.loads((tmp_path / "p.json").read_text())
    assert rep["bank_size"] == 1438 and rep["query_size"] == 359 and rep["embedding_dim"] == 64
    enc = rep["results"]["encoder"]
    assert set(enc) == {"knn", "linear", "kmeans", "hdbscan", "consistency"}
    assert set(enc["consistency"]) == {"mirror", "upside down", "shifted", "zoomed in", "turned", "negative"}  # (grey)
    assert all(0 <= v["split"] <= 100 for v in enc["consistency"].values())
    assert 0 <= enc["knn"]["weighted_top1"] <= enc["knn"]["weighted_top5"] <= 100
    assert 0 <= enc["kmeans"]["nmi"] <= 1 and len(enc["linear"]["confusion"]) == 10
    # raw pixels on digits are a strong, known baseline
    assert rep["results"]["raw"]["knn"]["weighted_top1"] > 90
    assert (runs / "con" / "probe.json").is_file()
    assert state_digest(load_run_encoder(runs / "con")[0]) == digest


def test_umap_lays_separate_blobs_out_as_separate_groups():
    from sklearn.cluster import KMeans

    from unsuprnn.evaluate.metrics import clustering_metrics
    from unsuprnn.evaluate import reduce
    from unsuprnn.evaluate.reduce import umap_features
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (3, 50))
    y = np.repeat(np.arange(3), 60)
    x = centres[y] + rng.normal(0, 1, (180, 50))
    z = umap_features(x, seed=0)
    assert z.shape == (180, 10) and z.dtype == np.float32
    ids = KMeans(3, n_init=5, random_state=0).fit_predict(z)
    assert clustering_metrics(y, ids)["accuracy"] == 100.0
    reduce._LAYOUTS.clear()
    assert np.array_equal(z, umap_features(x, seed=0))  # seeded: a fresh fit gives the same layout


def test_a_layout_is_fitted_once_for_the_same_points_and_again_for_any_change(monkeypatch):
    import umap
    from unsuprnn.evaluate import reduce
    fits = []
    real = umap.UMAP.fit_transform
    monkeypatch.setattr(umap.UMAP, "fit_transform", lambda self, x: fits.append(1) or real(self, x))
    reduce._LAYOUTS.clear()
    x = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32)
    z = reduce.umap_features(x, seed=0)
    z[:] = 0  # a caller changing its copy changes nothing kept
    again = reduce.umap_features(x.astype(np.float64), seed=0)  # the same float32 points
    assert len(fits) == 1 and np.abs(again).sum() > 0
    nudged = x.copy()
    nudged[7, 3] = np.nextafter(nudged[7, 3], np.float32(np.inf))  # one point moved by one ulp
    reduce.umap_features(nudged, seed=0)
    reduce.umap_features(x, seed=1)
    reduce.umap_features(x, seed=0, metric="cosine")
    assert len(fits) == 4
    for i in range(reduce.LAYOUTS_KEPT + 1):  # the oldest is dropped beyond LAYOUTS_KEPT
        reduce.umap_features(x + i + 1, seed=0)
    assert len(reduce._LAYOUTS) == reduce.LAYOUTS_KEPT


def test_the_umap_baseline_is_a_row_of_the_probe(runner, runs, tmp_path):
    r = invoke(runner, "probe", "--run", runs / "con", "--method", "knn,kmeans", "--device", "cpu", "--baselines",
               "raw,umap", "--reduce", "none", "--json", tmp_path / "p.json")
    assert r.exit_code == 0, r.output
    assert "\numap " in r.stdout
    res = json.loads((tmp_path / "p.json").read_text())["results"]
    # on digits, UMAP on raw pixels groups the digits far better than k-means on the pixels themselves
    assert res["umap"]["kmeans"]["accuracy"] > res["raw"]["kmeans"]["accuracy"] + 5
    assert res["umap"]["knn"]["weighted_top1"] > 90


def test_the_umap_baseline_without_umap_learn_is_one_line_before_any_work(runner, runs, tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "umap", None)
    r = invoke(runner, "probe", "--run", runs / "con", "--device", "cpu", "--baselines", "umap", "--json",
               tmp_path / "p.json")
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "unsuprnn[umap]" in lines[0]
    assert not (tmp_path / "p.json").exists()


def test_probe_test_dataset_from_another_source(runner, runs, tmp_path):
    from unsuprnn.config import DataConfig
    from unsuprnn.data import load_dataset
    ds = load_dataset(DataConfig(), 0)
    x, y = ds.split("test")
    np.savez(tmp_path / "q.npz", images=x[:, 0].numpy(), labels=y.numpy())
    r = invoke(runner, "probe", "--run", runs / "con", "--method", "knn", "--device", "cpu",
               "--test-dataset", f"npz:{tmp_path / 'q.npz'}", "--json", tmp_path / "a.json")
    assert r.exit_code == 0, r.output
    invoke(runner, "probe", "--run", runs / "con", "--method", "knn", "--device", "cpu", "--json", tmp_path / "b.json")
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a["query_size"] == 359  # the same images through another source give the same scores
    assert a["results"]["encoder"]["knn"] == b["results"]["encoder"]["knn"]


def test_probe_bad_inputs(runner, runs, tmp_path):
    np.savez(tmp_path / "rgb.npz", images=np.zeros((20, 8, 8, 3), np.uint8))
    np.savez(tmp_path / "unl.npz", images=np.zeros((20, 8, 8), np.uint8))
    cases = [("--run", tmp_path),
             ("--run", runs / "con", "--dataset", f"npz:{tmp_path / 'rgb.npz'}"),
             ("--run", runs / "con", "--dataset", f"npz:{tmp_path / 'unl.npz'}", "--method", "knn"),
             ("--run", runs / "con", "--k", "5000", "--method", "knn"),
             ("--run", runs / "con", "--method", "svm"),
             ("--run", runs / "con", "--baselines", "vgg")]
    for args in cases:
        r = invoke(runner, "probe", "--device", "cpu", *args)
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr)


def test_kmeans_on_unlabelled_data_reports_it_cannot_score(runner, runs, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "unl.npz", images=rng.integers(0, 255, (40, 8, 8)).astype(np.uint8))
    r = invoke(runner, "probe", "--run", runs / "con", "--dataset", f"npz:{tmp_path / 'unl.npz'}",
               "--method", "kmeans", "--k", "3", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "not scored" in r.stdout


@pytest.mark.parametrize("ext", ["npz", "npy", "parquet", "csv"])
def test_export_round_trip(runs, tmp_path, ext, monkeypatch):
    cols = gather_embeddings(runs / "con", split="test", cluster=4)
    out = write_embeddings(cols, tmp_path / f"e.{ext}")
    back = read_embeddings(out)
    assert np.allclose(back["embeddings"], np.asarray(cols["embeddings"]), atol=1e-6)
    for k in ("labels", "indices", "cluster"):
        assert np.array_equal(np.asarray(back[k]).astype(np.int64), cols[k]), k
    assert list(np.asarray(back["split"])) == ["test"] * 359
    assert back["config_hash"] == cols["config_hash"]
    # the indices point at the images that were embedded
    enc, pipe, cfg, _ = load_run_encoder(runs / "con")
    from unsuprnn.data import load_dataset
    from unsuprnn.evaluate.embed import embed_images
    imgs = load_dataset(cfg.data, cfg.train.seed).images[torch.from_numpy(cols["indices"][:5])]
    z = embed_images(enc, pipe, imgs, "cpu")
    # L2-normalized by default, as the probes' kNN and k-means see them, and recorded as such
    assert back["normalization"] == "l2"
    assert np.allclose(torch.nn.functional.normalize(z, dim=1).numpy(), back["embeddings"][:5], atol=1e-5)


@pytest.mark.parametrize("ext", ["npz", "npy", "parquet", "csv"])
def test_export_streams_in_chunks(runs, tmp_path, ext, monkeypatch):
    from unsuprnn.export import LazyEmbeddings
    monkeypatch.setattr(LazyEmbeddings, "CHUNK", 100)  # 359 rows: four chunks, the last one short
    lazy = gather_embeddings(runs / "con", split="test", diagnostics=False)  # (diagnostics need every row at once)
    assert isinstance(lazy["embeddings"], LazyEmbeddings)
    back = read_embeddings(write_embeddings(lazy, tmp_path / f"e.{ext}"))
    full = gather_embeddings(runs / "con", split="test", cluster=2)["embeddings"]
    assert back["embeddings"].shape == (359, 64) and np.allclose(back["embeddings"], full, atol=1e-5)
    assert np.array_equal(np.asarray(back["indices"]).astype(int), lazy["indices"])


def test_export_cli_refuses_overwrite_and_unknown_format(runner, runs, tmp_path):
    out = tmp_path / "e.npz"
    assert invoke(runner, "export", "--run", runs / "con", "--out", out, "--split", "all", "--device", "cpu").exit_code == 0
    assert len(np.load(out)["embeddings"]) == 1797
    before = out.read_bytes()
    for args in (("--out", out), ("--out", tmp_path / "e.xlsx"), ("--out", tmp_path / "x.npz", "--split", "val")):
        r = invoke(runner, "export", "--run", runs / "con", "--device", "cpu", *args)
        assert r.exit_code == 2 and r.stderr.startswith("error: "), args
    assert out.read_bytes() == before and not (tmp_path / "x.npz").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


@pytest.mark.parametrize("ext", ["npy", "parquet", "csv", "npz"])
def test_export_interrupted_mid_write_leaves_no_file(runs, tmp_path, ext, monkeypatch):
    import unsuprnn.export as export
    from unsuprnn.export import LazyEmbeddings
    monkeypatch.setattr(LazyEmbeddings, "CHUNK", 100)
    real_chunks = LazyEmbeddings.chunks

    def dies_after_one(self):
        it = real_chunks(self)
        yield next(it)
        raise KeyboardInterrupt  # stands for a kill between two chunks
    monkeypatch.setattr(export.LazyEmbeddings, "chunks", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        write_embeddings(gather_embeddings(runs / "con", split="test", diagnostics=False), tmp_path / f"e.{ext}")
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary remains


def test_parquet_without_pyarrow_fails_before_any_embedding(runner, runs, tmp_path, monkeypatch):
    import sys

    import unsuprnn.export as export
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.setattr(export, "gather_embeddings", lambda *a, **k: pytest.fail("embedded before checking"))
    r = invoke(runner, "export", "--run", runs / "con", "--out", tmp_path / "e.parquet")
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "unsuprnn[parquet]" in lines[0]
    assert not list(tmp_path.iterdir())


def test_clustering_an_export_reproduces_the_probe(runner, runs, tmp_path):
    """The default export is L2-normalized like the probes' inputs: its k-means column (k-means of the embeddings
    themselves) scores exactly what the probe's k-means of them (--reduce none) scored, and k-means on the
    exported vectors gives the same column."""
    from unsuprnn.evaluate.kmeans import default_restarts, kmeans
    from unsuprnn.evaluate.metrics import clustering_metrics
    r = invoke(runner, "probe", "--run", runs / "con", "--method", "kmeans", "--reduce", "none", "--json",
               tmp_path / "p.json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    probe = json.loads((tmp_path / "p.json").read_text())["results"]["encoder"]["kmeans"]
    r = invoke(runner, "export", "--run", runs / "con", "--split", "test", "--cluster", "10",
               "--out", tmp_path / "e.npz", "--device", "cpu")
    assert r.exit_code == 0 and "l2 normalization" in r.stdout
    e = read_embeddings(tmp_path / "e.npz")
    assert e["normalization"] == "l2" and np.allclose(np.linalg.norm(e["embeddings"], axis=1), 1, atol=1e-5)
    scores = clustering_metrics(e["labels"], e["cluster"])
    assert scores["accuracy"] == pytest.approx(probe["accuracy"]) and scores["nmi"] == pytest.approx(probe["nmi"])
    again = kmeans(torch.from_numpy(e["embeddings"]), 10, seed=0, restarts=default_restarts(len(e["labels"])))[0]
    assert np.array_equal(again, e["cluster"])
    r = invoke(runner, "export", "--run", runs / "con", "--split", "test", "--no-normalize",
               "--out", tmp_path / "raw.csv", "--device", "cpu")
    raw = read_embeddings(tmp_path / "raw.csv")
    assert raw["normalization"] == "none" and not np.allclose(np.linalg.norm(raw["embeddings"], axis=1), 1)
    assert np.allclose(raw["embeddings"] / np.linalg.norm(raw["embeddings"], axis=1, keepdims=True),
                       e["embeddings"], atol=1e-5)


@pytest.mark.parametrize("baseline", ["raw", "umap", "pca", "random"])
def test_a_set_too_small_for_a_test_split_is_one_line_for_every_baseline(runner, tmp_path, baseline):
    """Four images leave the test split empty: every baseline says so in one line (raw pixels were a traceback)."""
    images = (np.random.default_rng(0).random((4, 8, 8)) * 255).astype(np.uint8)
    np.savez(tmp_path / "s.npz", images=images, labels=np.array([0, 1, 0, 1]))
    r = invoke(runner, "pretrain", "--dataset", f"npz:{tmp_path / 's.npz'}", "--out", tmp_path / "r", "--epochs", "1",
               "--batch-size", "2", "--hidden", "8", "--layers", "1", "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    r = invoke(runner, "probe", "--run", tmp_path / "r", "--baselines", baseline, "--device", "cpu")
    assert_one_error_line(r)
    assert "queries (its test split)" in r.stderr and "--test-dataset" in r.stderr
