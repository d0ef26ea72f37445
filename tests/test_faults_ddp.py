"""Process-level behaviour: DDP with two CPU processes, and SIGKILL at a random moment then --resume."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import TINY
from unsuprnn.runs.checkpoint import load_checkpoint, load_run_encoder

SMALL = [*TINY, "--seed", "3"]
CLI = [sys.executable, "-m", "unsuprnn.cli"]


def run_cli(*args, **kw):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=300, **kw)


def test_ddp_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    r = run_cli("pretrain", "--out", out, "--devices", "2", "--epochs", "3", *SMALL)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "GLOBAL_RANK: 1" in r.stderr and r.stdout.count("done:") == 1  # rank 1 ran; rank 0 reports
    meta = json.loads((out / "meta.json").read_text())
    assert meta["world_size"] == 2
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    # 1438 train images, 256 per batch per process, two processes: 2 steps per epoch, not 5
    assert [e["step"] for e in log] == [2, 4, 6]
    assert log[-1]["loss"] < log[0]["loss"]
    assert load_checkpoint(out / "checkpoint.pt")["rng"]["aug"].shape[0] == 2  # one state per rank
    r = run_cli("pretrain", "--out", out, "--resume", "--epochs", "4", "--quiet")  # DDP resume, both ranks
    assert r.returncode == 0, r.stderr[-2000:]
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == [2, 4, 6, 8]
    r = run_cli("pretrain", "--out", out, "--resume", "--devices", "1", "--epochs", "5", "--quiet")
    assert r.returncode == 2 and "train.devices" in r.stderr
    enc, pipe, cfg, _ = load_run_encoder(out)  # loads in a single process
    assert enc(torch.randn(2, 8, 8)).shape == (2, enc.out_dim)
    assert "module." not in "".join(load_checkpoint(out / "checkpoint.pt")["model"])


@pytest.mark.parametrize("encoder", [["--objective", "autoencoder"],
                                     ["--encoder", "sequencer2d", "--view", "patches", "--patch", "2"]])
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, encoder):
    args = [*encoder, "--epochs", "6", *SMALL]
    assert run_cli("pretrain", "--out", tmp_path / "straight", *args).returncode == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen(CLI + ["pretrain", "--out", str(out)] + args, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(random.Random(os.getpid()).uniform(0.0, 1.0))  # somewhere in a later epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] >= 1  # the last complete checkpoint reads
    r = run_cli("pretrain", "--out", out, "--resume", *args)
    assert r.returncode == 0, r.stderr[-2000:]
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["model"]
    b = load_checkpoint(out / "checkpoint.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temp file left behind


def test_ddp_cpc_trains_in_two_processes(tmp_path):
    """cpc under DDP (its codes gathered from both processes: test_sequence_objectives checks the gathering)."""
    out = tmp_path / "cpc"
    r = run_cli("pretrain", "--out", out, "--devices", "2", "--epochs", "2", "--objective", "cpc", "--stacks",
                "separate", "--layers", "2", *SMALL)
    assert r.returncode == 0, r.stderr[-2000:]
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [2, 4] and all(e["loss"] == e["loss"] for e in log)
