"""No user file is ever lost or replaced, no input can exhaust memory, and every failure is one line:
the cases a hostile user found, each with the files that must stay byte-identical."""

import gzip
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.conftest import TINY, assert_one_error_line, copy_run, invoke, snapshot

CLI = [sys.executable, "-m", "unsuprnn.cli"]


def cli(*args, **kw):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=300, **kw)


def one_line(r):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    out = copy_run(tiny_run(), tmp_path / "runs" / "run")
    (out / "notes.txt").write_text("my notes\n")
    return out


@pytest.fixture
def mounted(tmp_path):
    """A tmpfs mounted at a run directory's place; skipped where this process cannot mount one."""
    d = tmp_path / "mnt"
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(d)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield d
    subprocess.run(["umount", str(d)], capture_output=True)


def test_force_onto_a_mount_point_replaces_the_run_and_keeps_user_files(runner, tiny_run, mounted):
    for f in tiny_run().iterdir():
        shutil.copy(f, mounted / f.name)
    (mounted / "notes.txt").write_text("my notes\n")
    old = (mounted / "encoder.pt").read_bytes()
    r = invoke(runner, "pretrain", "--out", mounted, *TINY, "--epochs", "1", "--seed", "4", "--force")
    assert r.exit_code == 0, r.output
    assert (mounted / "encoder.pt").read_bytes() != old and "seed: 4" in (mounted / "config.yaml").read_text()
    assert (mounted / "notes.txt").read_text() == "my notes\n"
    assert sorted(p.name for p in mounted.iterdir()) == sorted(
        ["config.yaml", "log.jsonl", "meta.json", "metrics.json", "checkpoint.pt", "encoder.pt", "notes.txt"])
    r = invoke(runner, "cluster", "--run", tiny_run(), "--out", mounted, "--force", "--device", "cpu", "--quiet",
               "--epochs", "1", "--selflabel-epochs", "0", "--neighbors", "3", "--heads", "1")
    assert r.exit_code == 0 and (mounted / "cluster_head.pt").is_file() and (mounted / "notes.txt").is_file()


def test_a_new_run_never_replaces_files_it_did_not_write(runner, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "config.yaml").write_text("# my commented recipe\ntrain:\n  epochs: 1\nencoder:\n  hidden: 16\n")
    (d / "probe.json").write_text('{"mine": true}\n')
    before = snapshot(d)
    for extra in ([], ["--force"]):
        r = invoke(runner, "pretrain", "--config", d / "config.yaml", "--out", d, *TINY, *extra)
        assert_one_error_line(r)
        assert "unsuprnn did not write" in r.stderr and snapshot(d) == before


def test_export_never_replaces_a_json_that_is_not_its_sidecar(runner, run_copy):
    before = snapshot(run_copy)
    r = invoke(runner, "export", "--run", run_copy, "--out", run_copy / "metrics.npy", "--force", "--device", "cpu")
    assert_one_error_line(r)
    assert "not the sidecar of an unsuprnn export" in r.stderr and snapshot(run_copy) == before


def test_an_interrupted_npy_export_is_redone_without_force(runner, run_copy, tmp_path):
    from unsuprnn.export import read_embeddings
    from unsuprnn.errors import UserError
    out = tmp_path / "e.npy"
    assert invoke(runner, "export", "--run", run_copy, "--out", out, "--split", "test", "--device", "cpu").exit_code == 0
    side = json.loads(out.with_suffix(".json").read_text())
    side["npy_sha256"] = "0" * 64  # as a kill between the two renames leaves it: the sidecar of another export
    out.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(UserError, match="interrupted between its two files"):
        read_embeddings(out)
    r = invoke(runner, "export", "--run", run_copy, "--out", out, "--split", "test", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert len(read_embeddings(out)["embeddings"]) == 359


def test_a_report_removes_only_its_own_old_figures(runner, run_copy, tmp_path):
    files = tmp_path / "rep_files"
    files.mkdir()
    for name in ("figure1.png", "fig-0123456789abcdef.png", "photo.png"):
        (files / name).write_bytes(b"mine")
    r = invoke(runner, "report", run_copy, "--out", tmp_path / "rep.md", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert all((files / n).read_bytes() == b"mine" for n in ("figure1.png", "fig-0123456789abcdef.png", "photo.png"))


def test_two_probes_at_once_both_keep_their_figures(tiny_run, tmp_path):
    run = copy_run(tiny_run(), tmp_path / "run")
    procs = [subprocess.Popen(CLI + ["probe", "--run", str(run), "--method", m, "--device", "cpu", "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for m in ("knn", "linear")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    methods = {e["method"] for e in json.loads((run / "probe.json").read_text())["measurements"]}
    assert methods == {"knn", "linear"}


def test_a_failing_resume_leaves_every_file_as_it_was(runner, run_copy, monkeypatch):
    import unsuprnn.runs.lifecycle as lifecycle
    real = lifecycle.save_checkpoint

    def full_disk(state, path):
        real(state, path)
        raise OSError(28, "No space left on device", str(path))
    before = snapshot(run_copy)
    monkeypatch.setattr(lifecycle, "save_checkpoint", full_disk)
    r = invoke(runner, "pretrain", "--out", run_copy, "--resume", "--epochs", "2", "--quiet")
    assert_one_error_line(r)
    assert "no space left" in r.stderr.lower() and snapshot(run_copy) == before


@pytest.mark.parametrize("bad,why", [(["--blur", "1e-300"], "data.blur"), (["--blur", "100"], "kernel"),
                                     (["--batch-size", "1"], "at least 2 images a batch")])
def test_silent_wrong_results_are_refused(runner, tmp_path, bad, why):
    r = invoke(runner, "pretrain", "--out", tmp_path / "run", *TINY, *bad)
    assert_one_error_line(r)
    assert why in r.stderr and not (tmp_path / "run").exists()


def test_a_supervised_baseline_must_be_supervised(runner, run_copy, tiny_run):
    r = invoke(runner, "probe", "--run", run_copy, "--baselines", f"supervised={tiny_run()}", "--device", "cpu")
    assert_one_error_line(r)
    assert "is a contrastive run, not a supervised one" in r.stderr


def test_compressed_and_gzip_bombs_are_refused_from_their_headers(tmp_path):
    npz = tmp_path / "zeros.npz"
    with zipfile.ZipFile(npz, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("images.npy", "w",
                                                                                    force_zip64=True) as fh:
        shape = (6000, 256, 256)  # 393 MB of zeros in about 400 KB (on a machine capped at 100 MB)
        np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": shape})
        block = bytes(1 << 24)
        for _ in range(6000 * 256 * 256 // len(block)):
            fh.write(block)
    assert npz.stat().st_size < 1_000_000
    r = cli("data", "--dataset", f"npz:{npz}", env=os.environ | {"UNSUPRNN_MEMORY": str(100 << 20)})
    assert "would take" in one_line(r) and "GiB" in r.stderr
    idx = tmp_path / "idx"
    idx.mkdir()
    with gzip.open(idx / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(bytes([0, 0, 8, 3]) + np.array([1_000_000, 256, 256], ">u4").tobytes() + bytes(1 << 20))
    r = cli("data", "--dataset", f"idx:{idx}", env=os.environ | {"UNSUPRNN_MEMORY": str(2 << 30)})
    assert "would take" in one_line(r)


def test_yaml_bombs_and_oversize_values_are_one_line(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text('a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdefgh", "bcdefghi")))
    assert "alias" in one_line(cli("pretrain", "--config", bomb, "--out", tmp_path / "x"))
    assert "cannot hold" in one_line(cli("pretrain", "--out", tmp_path / "x", "--set", "train.epochs=" + "9" * 5000))
    assert not (tmp_path / "x").exists()


def test_a_crafted_encoder_config_is_refused_before_it_is_built(run_copy):
    import torch

    from unsuprnn.errors import UserError
    from unsuprnn.runs.checkpoint import load_run_encoder
    state = torch.load(run_copy / "encoder.pt", weights_only=True)
    state["config"]["encoder"]["layers"] = 10 ** 7
    torch.save(state, run_copy / "encoder.pt")
    with pytest.raises(UserError, match="layers = 10000000"):
        load_run_encoder(run_copy)


@pytest.mark.parametrize("name,content", [("meta.json", '"a string"'), ("metrics.json", "[1, 2]"),
                                          ("meta.json", "[" * 100000 + "]" * 100000)])
def test_damaged_json_in_a_run_is_one_line(runner, run_copy, tmp_path, name, content):
    (run_copy / name).write_text(content)
    r = invoke(runner, "report", run_copy, "--out", tmp_path / "r.html", "--device", "cpu")
    assert_one_error_line(r)
    assert name in r.stderr


def test_paths_the_system_refuses_are_one_line(tmp_path):
    assert "cannot use" in one_line(cli("pretrain", *TINY, "--epochs", "1", "--out", "/proc/unsuprnn-run"))
    assert "cannot use" in one_line(cli("pretrain", *TINY, "--epochs", "1", "--out", tmp_path / ("a" * 300)))
    lock = tmp_path / ".run.lock"
    lock.mkdir()
    assert "lock file" in one_line(cli("pretrain", *TINY, "--epochs", "1", "--out", tmp_path / "run"))


def test_usage_errors_and_newlines_are_one_line(tmp_path):
    assert "No such option" in one_line(cli("pretrain", "--epochz", "3"))
    assert "Missing option" in one_line(cli("probe"))
    assert "unknown dataset" in one_line(cli("pretrain", "--dataset", "two\nlines", "--out", tmp_path / "x"))


def test_ctrl_c_says_what_each_command_left(runner, run_copy, tmp_path, monkeypatch):
    import unsuprnn.export as export

    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(export, "gather_embeddings", interrupt)
    r = invoke(runner, "export", "--run", run_copy, "--out", tmp_path / "e.npz", "--device", "cpu")
    assert r.exit_code == 130 and "nothing was written" in r.stderr and "--resume" not in r.stderr


def test_a_nan_from_the_augmentation_is_not_blamed_on_the_learning_rate(runner, tmp_path, monkeypatch):
    from unsuprnn.data.pipeline import SequencePipeline
    augmented = SequencePipeline.augmented
    monkeypatch.setattr(SequencePipeline, "augmented", lambda self, x, g=None: augmented(self, x, g) * float("nan"))
    r = invoke(runner, "pretrain", "--out", tmp_path / "run", *TINY, "--epochs", "1")
    assert_one_error_line(r)
    assert "augmented images themselves are not finite" in r.stderr and "lower --lr" not in r.stderr
