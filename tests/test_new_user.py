"""What a new user tripped over: baselines and metrics that mean something on small and unlabelled sets,
every command on an unlabelled folder, a line per step in a redirected log, a cluster run's report row."""

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import TINY, invoke
from unsuprnn.config import DataConfig
from unsuprnn.data.pipeline import build_pipeline
from unsuprnn.evaluate.baselines import pca_features
from unsuprnn.evaluate.linear import linear_probe
from unsuprnn.evaluate.probe import ProbeData
from unsuprnn.evaluate.table import columns


def blobs(n_per_class: int, classes: int = 4, side: int = 8, seed: int = 0):
    """uint8 images [n, 1, side, side] of `classes` separable patterns (one bright block each) with noise."""
    g = np.random.default_rng(seed)
    images, labels = [], []
    for c in range(classes):
        for _ in range(n_per_class):
            img = g.normal(60, 20, (side, side))
            img[(c // 2) * 4:(c // 2) * 4 + 4, (c % 2) * 4:(c % 2) * 4 + 4] += 150
            images.append(np.clip(img, 0, 255).astype(np.uint8)[None])
            labels.append(c)
    return torch.from_numpy(np.stack(images)), torch.tensor(labels)


def test_pca_baseline_on_a_small_set_keeps_a_dimension_the_data_supports():
    x, y = blobs(10)  # 40 images of 64 pixels: rank at most 39
    xq, yq = blobs(10, seed=1)
    pipe = build_pipeline(DataConfig(), __import__("unsuprnn.config", fromlist=["AugmentConfig"]).AugmentConfig(),
                          (1, 8, 8), [0.3], [0.2])
    data = ProbeData(x, torch.arange(40), y, xq, torch.arange(40), yq, list("abcd"), "blobs", "blobs")
    bank, query, dim = pca_features(pipe, data, embedding_dim=512, seed=0)
    assert 1 <= dim < 39 and bank.shape == (40, dim) and query.shape == (40, dim)
    assert linear_probe(bank, y, query, yq, 4)["accuracy"] > 90  # chance is 25


def test_no_top5_column_with_five_classes_or_fewer():
    four = {"results": {"encoder": {"knn": {"weighted_top1": 90.0, "majority_top1": 89.0}}}}
    ten = {"results": {"encoder": {"knn": {"weighted_top1": 90.0, "weighted_top5": 99.0, "majority_top1": 89.0}}}}
    assert "kNN top-5" not in [c for c, _ in columns([four])] and "kNN top-5" in [c for c, _ in columns([ten])]


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory):
    """A tiny run on a flat folder of images without labels, and a cluster run on it."""
    from typer.testing import CliRunner
    root = tmp_path_factory.mktemp("flat")
    x, _ = blobs(30, side=8)
    for i, img in enumerate(x.numpy()[:, 0]):
        Image.fromarray(img, "L").save(root / f"img{i:03d}.png")
    runner = CliRunner()
    r = invoke(runner, "pretrain", "--out", root / "run", *TINY, "--epochs", "2", "--dataset", f"folder:{root}")
    assert r.exit_code == 0, r.output
    r = invoke(runner, "cluster", "--run", root / "run", "--out", root / "clu", "--clusters", "4", "--device", "cpu",
               "--quiet", "--epochs", "2", "--selflabel-epochs", "1", "--neighbors", "5")
    assert r.exit_code == 0, r.output
    return root


def test_every_command_works_on_an_unlabelled_folder(runner, flat_run, tmp_path):
    r = invoke(runner, "probe", "--run", flat_run / "run", "--device", "cpu")
    assert r.exit_code == 0 and "knn, linear need labels" in r.stdout and "auto K" in r.stdout  # K from the data
    r = invoke(runner, "probe", "--run", flat_run / "run", "--clusters", "4", "--device", "cpu")
    assert r.exit_code == 0 and "clusters computed but not scored" in r.stdout
    r = invoke(runner, "probe", "--run", flat_run / "clu", "--device", "cpu")
    assert r.exit_code == 0 and "head K" in r.stdout and "head conf." in r.stdout
    r = invoke(runner, "probe", "--run", flat_run / "run", "--method", "knn", "--device", "cpu")
    assert r.exit_code == 2 and "has no labels" in r.stderr  # asked for by name: an error, not a note
    r = invoke(runner, "export", "--run", flat_run / "clu", "--out", tmp_path / "e.csv", "--device", "cpu")
    assert r.exit_code == 0 and "cluster" in (tmp_path / "e.csv").read_text().splitlines()[0]
    r = invoke(runner, "report", flat_run / "run", flat_run / "clu", "--out", tmp_path / "r.html", "--device", "cpu")
    assert r.exit_code == 0, r.output
    page = (tmp_path / "r.html").read_text()
    assert page.count("<table class='comparison'>") == 1 and "no accuracy can be scored" in page
    assert "With labels" in page and "What the clusters may follow" in page
    assert "cluster-gallery" in page


def test_probe_says_each_step_in_a_redirected_log(runner, tiny_run):
    r = invoke(runner, "probe", "--run", tiny_run(), "--baselines", "raw,pca", "--device", "cpu")
    steps = [line for line in r.stderr.splitlines() if line.startswith("probe: ")]
    assert r.exit_code == 0 and any("bank and" in s for s in steps) and any("embedded" in s for s in steps)
    for name in ("baseline raw", "baseline pca", "encoder knn", "encoder linear", "encoder kmeans", "raw knn"):
        assert any(name in s for s in steps), (name, steps)


def test_the_cli_answers_a_mistyped_dataset_at_once(tmp_path):
    import subprocess
    import sys
    import time
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "unsuprnn.cli", "pretrain", "--dataset", "nosuch", "--out", tmp_path / "x"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: unknown dataset 'nosuch'")
    assert "torch" not in r.stderr and time.perf_counter() - t0 < 10  # (about 0.2 s here; the bound allows a busy CI)
    r = subprocess.run([sys.executable, "-c", "import sys, unsuprnn.cli; print('torch' in sys.modules)"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "False"  # the CLI parses and checks before torch is imported
