"""The Sequencer2D encoder: shapes, what a block lets each token hear, gradients, and the run round trip."""

import itertools

import pytest
import torch

from tests.conftest import TINY, invoke
from unsuprnn.config import EncoderConfig
from unsuprnn.errors import UserError
from unsuprnn.models.encoders import build_encoder
from unsuprnn.models.encoders.sequencer2d import Sequencer2DEncoder


def encoder(grid=(3, 4), d=5, **kw):
    torch.manual_seed(0)
    return Sequencer2DEncoder(d, grid, **{"hidden": 4, "blocks": 1} | kw).eval()


@pytest.mark.parametrize("grid,pool,cell,bidir,width", list(itertools.product(
    [(1, 1), (2, 2), (3, 5), (7, 7)], ["mean", "max", "meanmax"], ["lstm", "gru"], [True, False], [0, 6])))
def test_output_shapes_and_out_dim(grid, pool, cell, bidir, width):
    enc = encoder(grid, pool=pool, cell=cell, bidirectional=bidir, width=width)
    t = grid[0] * grid[1]
    z, (tokens,) = enc.encode(torch.randn(2, t, 5))
    token_width = width or 2 * 4 * (2 if bidir else 1)
    assert tokens.shape == (2, t, token_width) and enc.step_dim == token_width
    assert z.shape == (2, enc.out_dim) == (2, token_width * (2 if pool == "meanmax" else 1))
    assert not enc.causal and enc.kind == "sequencer2d"


def test_one_block_lets_a_token_hear_its_row_and_its_column_only():
    """Change the patch at (1, 2) of a 4 x 5 grid: after one block exactly the tokens of row 1 and column 2
    change (the RNNs mix along rows and columns; the MLP and norms act per token). With the vertical RNN's
    output removed, the column's other tokens stop hearing it: the column is reached through the vertical pass."""
    enc = encoder((4, 5))
    x = torch.randn(1, 20, 5)
    moved = x.clone()
    moved[0, 1 * 5 + 2] += 3.0

    def changed(e):
        with torch.no_grad():
            a, b = e.encode(x)[1][0], e.encode(moved)[1][0]
        return ((a - b).abs().amax(-1) > 1e-6).reshape(4, 5)

    expect = torch.zeros(4, 5, dtype=torch.bool)
    expect[1, :] = expect[:, 2] = True
    assert torch.equal(changed(enc), expect)
    fuse = enc.blocks[0].mix.fuse
    with torch.no_grad():
        fuse.weight[:, :fuse.in_features // 2] = 0  # the vertical half of the union
    expect[:, 2] = False
    expect[1, 2] = True
    assert torch.equal(changed(enc), expect)


def test_two_blocks_reach_every_token():
    enc = encoder((4, 5), blocks=2)
    x = torch.randn(1, 20, 5)
    moved = x.clone()
    moved[0, 0] += 3.0
    with torch.no_grad():
        diff = (enc.encode(x)[1][0] - enc.encode(moved)[1][0]).abs().amax(-1)
    assert bool((diff > 1e-6).all())


def test_gradient_reaches_every_parameter():
    enc = encoder((3, 3), blocks=2, pool="meanmax").train()
    enc(torch.randn(4, 9, 5)).pow(2).sum().backward()
    missing = [n for n, p in enc.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert missing == []


def test_built_from_the_config_and_refused_without_a_grid():
    cfg = EncoderConfig(kind="sequencer2d", hidden=8, layers=3, pool="mean")
    enc = build_encoder(cfg, 16, (7, 7))
    assert isinstance(enc, Sequencer2DEncoder) and len(enc.blocks) == 3 and enc.out_dim == 32
    with pytest.raises(UserError, match="--view patches"):
        build_encoder(cfg, 16, None)
    with pytest.raises(UserError, match="no last step"):
        build_encoder(EncoderConfig(kind="sequencer2d", pool="last"), 16, (2, 2))


S2D = ["--encoder", "sequencer2d", "--view", "patches", "--patch", "2"]


def s2d_config(epochs: int = 1):
    from tests.conftest import tiny_config
    cfg = tiny_config(epochs=epochs)
    cfg.encoder.kind, cfg.data.view, cfg.data.patch = "sequencer2d", "patches", 2
    return cfg


@pytest.fixture(scope="module")
def s2d_run(tmp_path_factory):
    from unsuprnn.train import train
    out = tmp_path_factory.mktemp("s2d") / "run"
    train(s2d_config(), out, quiet=True)
    return out


def test_a_run_saves_and_loads_back_from_encoder_pt_alone(s2d_run, tmp_path):
    import shutil
    from unsuprnn.runs.checkpoint import load_run_encoder
    shutil.copy(s2d_run / "encoder.pt", tmp_path / "encoder.pt")  # nothing else of the run
    enc, pipeline, cfg, _ = load_run_encoder(tmp_path / "encoder.pt")
    assert isinstance(enc, Sequencer2DEncoder) and enc.grid == (4, 4) and cfg.encoder.kind == "sequencer2d"
    x = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    again = load_run_encoder(s2d_run)[0]
    assert torch.equal(enc(pipeline.clean(x)), again(pipeline.clean(x)))


def test_killed_and_resumed_it_ends_with_the_weights_of_a_straight_run(tmp_path, monkeypatch):
    from tests.conftest import straight_and_resumed
    a, b = straight_and_resumed(s2d_config(epochs=3), tmp_path, monkeypatch, kill_after=1)
    assert a.keys() == b.keys() and any("blocks.0.mix.vertical" in k for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cluster_probe_export_and_report_take_it(runner, s2d_run, tmp_path):
    import json
    from unsuprnn.export import read_embeddings
    r = invoke(runner, "cluster", "--run", s2d_run, "--out", tmp_path / "clu", "--epochs", "1", "--selflabel-epochs",
               "1", "--device", "cpu", "--quiet")
    assert r.exit_code == 0 and "test cluster accuracy" in r.stdout, r.output
    r = invoke(runner, "probe", "--run", tmp_path / "clu", "--baselines", "raw,random", "--device", "cpu", "--json",
               tmp_path / "p.json")
    assert r.exit_code == 0, r.output
    results = json.loads((tmp_path / "p.json").read_text())["results"]
    assert {"encoder", "raw", "random"} <= set(results) and "head" in results["encoder"]
    assert results["encoder"]["knn"]["weighted_top1"] > 50  # ten digits: chance is 10
    r = invoke(runner, "export", "--run", tmp_path / "clu", "--out", tmp_path / "e.npz", "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    cols = read_embeddings(tmp_path / "e.npz")
    # tokens 2 x 16 x 2 wide, mean and max
    assert cols["embeddings"].shape == (1797, 128) and len(cols["cluster"]) == 1797
    r = invoke(runner, "report", s2d_run, tmp_path / "clu", "--out", tmp_path / "r.md", "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    assert "sequencer2d" in (tmp_path / "r.md").read_text()


def test_a_budget_plans_its_steps(runner, tmp_path):
    r = invoke(runner, "pretrain", "--out", tmp_path / "b", *TINY, *S2D, "--budget", "4s")
    assert r.exit_code == 0, r.output
    import json
    plan = json.loads((tmp_path / "b" / "meta.json").read_text())["schedule"]
    assert plan["how"] == "budget" and plan["steps"] >= 1


@pytest.mark.parametrize("args,says", [
    (["--encoder", "sequencer2d", "--view", "rows"], "--view patches"),
    (["--encoder", "sequencer2d", "--view", "patches", "--stacks", "separate"], "drop --stacks"),
    (["--encoder", "sequencer2d", "--view", "patches", "--pool", "last"], "no last step"),
    (["--encoder", "sequencer2d", "--view", "patches", "--objective", "cpc"], "use --encoder rnn"),
    (["--encoder", "sequencer2d", "--view", "patches", "--objective", "apc"], "use --encoder rnn"),
    (["--encoder", "sequencer2d", "--view", "patches", "--patch", "3"], "does not divide"),
    (["--encoder", "lstm"], "encoder.kind"),
])
def test_what_a_sequencer2d_cannot_do_is_one_error_line(runner, tmp_path, args, says):
    r = invoke(runner, "pretrain", "--out", tmp_path / "x", *TINY, "--epochs", "1", *args)
    assert r.exit_code == 2 and says in r.stderr and r.stderr.count("error:") == 1, r.output
    assert not (tmp_path / "x").exists()
