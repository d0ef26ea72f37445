"""What the tool reads is what is on disk: run files from elsewhere or damaged are refused with one line."""

import hashlib
import io
import shutil

import pytest
import torch

from tests.conftest import invoke
from tests.test_hardening import SMALL, assert_one_error_line, snapshot
from unsuprnn.checkpoint import MAGIC


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two finished one-epoch runs of the same architecture, seeds 0 and 1."""
    from typer.testing import CliRunner
    root = tmp_path_factory.mktemp("two")
    for seed in (0, 1):
        r = invoke(CliRunner(), "pretrain", "--out", root / f"s{seed}", *SMALL, "--seed", seed)
        assert r.exit_code == 0, r.output
    return root / "s0", root / "s1"


@pytest.fixture
def run_copy(two_runs, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(two_runs[0], out)
    return out


def resume(runner, out):
    return invoke(runner, "pretrain", "--out", out, "--resume", "--epochs", "2", "--quiet")


def write_checkpoint_payload(path, payload: bytes):
    path.write_bytes(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


def test_a_checkpoint_copied_from_another_run_is_not_resumed(runner, two_runs, run_copy):
    shutil.copy(two_runs[1] / "checkpoint.pt", run_copy / "checkpoint.pt")
    before = snapshot(run_copy)
    r = resume(runner, run_copy)
    assert_one_error_line(r)
    assert "was written by another run (its config differs in train.seed)" in r.stderr
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("payload,msg", [(b"not a torch file at all", "valid header but unreadable content"),
                                         (None, "lacks epoch, elapsed, model, optimizer, rng")])
def test_a_checkpoint_with_a_valid_header_and_foreign_content_is_refused(runner, run_copy, payload, msg):
    if payload is None:
        buf = io.BytesIO()
        torch.save({"config": {}, "weights": torch.zeros(3)}, buf)
        payload = buf.getvalue()
    write_checkpoint_payload(run_copy / "checkpoint.pt", payload)
    r = resume(runner, run_copy)
    assert_one_error_line(r)
    assert msg in r.stderr


def test_damaged_log_and_config_are_named(runner, run_copy, tmp_path):
    log = run_copy / "log.jsonl"
    log.write_text(log.read_text()[:-20])  # truncated mid-line
    r = resume(runner, run_copy)
    assert_one_error_line(r)
    assert "log.jsonl line 1 is damaged" in r.stderr
    r = invoke(runner, "report", "--runs", run_copy, "--out", tmp_path / "r.html", "--device", "cpu")
    assert_one_error_line(r)
    assert "log.jsonl line 1 is damaged" in r.stderr
    (run_copy / "config.yaml").write_text("train: {epochs: [\n")
    r = resume(runner, run_copy)
    assert_one_error_line(r)
    assert "config.yaml is damaged" in r.stderr
