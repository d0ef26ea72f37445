"""Bad values never reach the work, and a command that fails never destroys a finished run."""

import dataclasses
import math
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TINY, assert_one_error_line, copy_run, invoke, snapshot
from unsuprnn.bounds import field_bounds
from unsuprnn.config import SECTION_TYPES, Config, ProbeSettings
from unsuprnn.errors import RunInterrupted
from unsuprnn.runs.writer import claim_run, recover
from unsuprnn.train import train

@pytest.fixture(scope="module")
def finished(tiny_run, tmp_path_factory):
    """A complete run, with a file of the user's beside it; tests copy it."""
    out = copy_run(tiny_run(), tmp_path_factory.mktemp("finished") / "run")
    (out / "notes.txt").write_text("my notes\n")
    return out


@pytest.fixture
def run_copy(finished, tmp_path):
    return copy_run(finished, tmp_path / "runs" / "run")


@pytest.mark.parametrize("bad", [["--lr", "nan"], ["--dataset", "folder:/nonexistent"], ["--hidden", "60000"],
                                 ["--set", "train.warmup_epochs=-1"], ["--epochs", "1000000000"]])
def test_failing_force_leaves_the_finished_run_whole(runner, run_copy, bad):
    before = snapshot(run_copy)
    r = invoke(runner, "pretrain", "--out", run_copy, *TINY, "--epochs", "1", "--force", *bad)
    assert_one_error_line(r)
    assert snapshot(run_copy) == before


def test_interrupted_force_leaves_the_finished_run_whole(run_copy, monkeypatch):
    """Ctrl-C during the new run's first epoch: the old run stays, the staging directory goes."""
    from unsuprnn.objectives.contrastive import ContrastiveObjective

    def interrupt(self, *a):
        raise KeyboardInterrupt
    monkeypatch.setattr(ContrastiveObjective, "forward", interrupt)
    before = snapshot(run_copy)
    cfg = Config()
    cfg.encoder.hidden, cfg.encoder.layers, cfg.train.epochs, cfg.train.device = 16, 1, 1, "cpu"
    with pytest.raises(RunInterrupted, match="still holds the previous run, unchanged"):
        train(cfg, run_copy, force=True, quiet=True)
    assert snapshot(run_copy) == before


def test_successful_force_replaces_the_run_and_keeps_user_files(runner, run_copy):
    (run_copy / "probe.json").write_text("{}\n")  # measured on the old encoder: must go
    old_encoder = (run_copy / "encoder.pt").read_bytes()
    r = invoke(runner, "pretrain", "--out", run_copy, *TINY, "--epochs", "1", "--force", "--seed", "3")
    assert r.exit_code == 0, r.output
    assert (run_copy / "encoder.pt").read_bytes() != old_encoder
    assert (run_copy / "notes.txt").read_text() == "my notes\n" and not (run_copy / "probe.json").exists()
    assert "seed: 3" in (run_copy / "config.yaml").read_text()
    assert sorted(p.name for p in run_copy.parent.iterdir()) == ["run"]  # no staging, old run or lock left


def test_a_force_killed_mid_swap_is_completed_or_undone(run_copy):
    from unsuprnn.runs.writer import OLD, STAGE
    new, old = run_copy / STAGE, run_copy / OLD
    # killed while the old run's files moved aside (after the new run's checkpoint): the new run takes the place
    new.mkdir()
    (new / "checkpoint.pt").write_bytes(b"new")
    (new / "config.yaml").write_text("new config")
    old.mkdir()
    os.rename(run_copy / "checkpoint.pt", old / "checkpoint.pt")  # metrics.json, encoder.pt still in place
    recover(run_copy)
    assert (run_copy / "checkpoint.pt").read_bytes() == b"new" and (run_copy / "config.yaml").read_text() == "new config"
    assert not (run_copy / "metrics.json").exists() and not (run_copy / "encoder.pt").exists()  # the old run's
    assert (run_copy / "notes.txt").read_text() == "my notes\n" and not new.exists() and not old.exists()
    # killed before the new run's first checkpoint: the staged run is dropped, the run in place stays
    before = snapshot(run_copy)
    new.mkdir()
    (new / "config.yaml").write_text("x")
    recover(run_copy)
    assert snapshot(run_copy) == before


def test_a_planted_symlink_is_never_followed(runner, run_copy, tmp_path):
    """A symlink where unsuprnn keeps its lock file or its staging folder is refused, not followed."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "important.txt").write_text("keep me too\n")
    lock = run_copy.parent / f".{run_copy.name}.lock"
    lock.symlink_to(victim)
    r = invoke(runner, "pretrain", "--out", run_copy, *TINY, "--epochs", "1", "--force")
    assert_one_error_line(r)
    assert "lock file" in r.stderr and victim.read_text() == "keep me\n"
    lock.unlink()
    (run_copy / ".unsuprnn-old").symlink_to(elsewhere)
    r = invoke(runner, "pretrain", "--out", run_copy, "--resume", "--epochs", "2", "--quiet")
    assert_one_error_line(r)
    assert "not unsuprnn's staging folder" in r.stderr and (elsewhere / "important.txt").is_file()


def test_a_second_command_on_a_run_in_use_is_refused(runner, run_copy):
    before = snapshot(run_copy)
    with claim_run(run_copy, resume=True, force=False):
        r = invoke(runner, "pretrain", "--out", run_copy, "--resume", "--epochs", "2", "--quiet")
        assert_one_error_line(r)
        assert "in use by another unsuprnn command (pid" in r.stderr
    assert snapshot(run_copy) == before


def test_two_concurrent_pretrains_on_one_out(tmp_path):
    """Two processes started together: one runs, the other exits 2 at once; the survivor's files agree."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "unsuprnn.cli", "pretrain", "--out", str(out), *TINY, "--epochs", "1"]
    procs = [subprocess.Popen(cmd + ["--hidden", h], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for h in ("16", "24")]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 2], results
    err = next(e for rc, e in results if rc == 2)
    assert "in use by another unsuprnn command" in err or "already holds a run" in err, err
    from unsuprnn.runs.checkpoint import load_run_encoder
    encoder, _, cfg, _ = load_run_encoder(out, "cpu")
    assert encoder.hidden == cfg.encoder.hidden


def test_interrupted_before_the_first_checkpoint_can_be_rerun(runner, tmp_path, monkeypatch):
    from unsuprnn.objectives.contrastive import ContrastiveObjective
    forward = ContrastiveObjective.forward

    def interrupt(self, *a):
        raise KeyboardInterrupt
    monkeypatch.setattr(ContrastiveObjective, "forward", interrupt)
    r = invoke(runner, "pretrain", "--out", tmp_path / "run", *TINY, "--epochs", "1")
    assert r.exit_code == 130 and "nothing to resume; rerun the same command" in r.stderr
    monkeypatch.setattr(ContrastiveObjective, "forward", forward)
    r = invoke(runner, "pretrain", "--out", tmp_path / "run", *TINY, "--epochs", "1")
    assert r.exit_code == 0, r.output


def test_config_files_that_are_not_yaml_text(runner, tmp_path):
    files = {"binary.yaml": bytes(range(256)), "latin1.yaml": "train: {seed: 1}\n# caf\xe9\n".encode("latin-1"),
             "nul.yaml": b"train: {seed: 1}\x00\n", "elf.yaml": Path(sys.executable).read_bytes()[:4096],
             "dup.yaml": b"train:\n  epochs: 1\n  epochs: 2\n", "negseed.yaml": b"train: {seed: -1}\n"}
    expect = {"binary.yaml": "not a UTF-8 text file", "latin1.yaml": "not a UTF-8 text file",
              "nul.yaml": "binary file", "elf.yaml": "not a UTF-8 text file",
              "dup.yaml": "'epochs' is written twice", "negseed.yaml": "train.seed = -1 is out of range"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        r = invoke(runner, "pretrain", "--out", tmp_path / "a", "--config", tmp_path / name)
        assert_one_error_line(r)
        assert expect[name] in r.stderr, (name, r.stderr)
        assert not (tmp_path / "a").exists()


def test_export_refuses_bad_targets_and_cluster_counts(runner, finished, tmp_path):
    (tmp_path / "d.npz").mkdir()
    for args, msg in [(["--out", tmp_path / "d.npz"], "is a folder"),
                      (["--out", tmp_path / "e.npz", "--cluster", "0"], "--cluster 0 is out of range"),
                      (["--out", tmp_path / "e.npz", "--cluster", "1"], "--cluster 1 is out of range"),
                      (["--out", tmp_path / "e.npz", "--cluster", "two"], "--cluster 'two' is not a number"),
                      (["--out", tmp_path / "e.npz", "--cluster", "5000"], "more than the 1797 rows"),
                      (["--out", tmp_path / "e.npz", "--cluster", "auto", "--k-range", "9:3"], "--k-range"),
                      (["--out", tmp_path / "e.npz", "--duplicate-threshold", "1.5"], "--duplicate-threshold"),
                      (["--out", tmp_path / "e.npz", "--format", "xlsx"], "unknown --format"),
                      (["--out", tmp_path / "e.txt", "--format", "lightly"], "does not end with .csv")]:
        r = invoke(runner, "export", "--run", finished, *args, "--device", "cpu", "--quiet")
        assert_one_error_line(r)
        assert msg in r.stderr
    assert not (tmp_path / "e.npz").exists()


def test_absurd_run_time_is_warned_before_training(capsys):
    import torch

    from unsuprnn.budget import warn_if_absurd
    cfg = Config()
    cfg.train.batch_size = 256
    enc = torch.nn.Linear(1000, 1000)  # a million parameters
    warn_if_absurd(cfg, enc, (28, 28), 10**9, torch.device("cpu"))
    assert "warning: at a typical rate on cpu this run would take about" in capsys.readouterr().err
    warn_if_absurd(cfg, enc, (28, 28), 100, torch.device("cpu"))
    assert capsys.readouterr().err == ""


# ---- property: every numeric option, out of range, through the CLI ----

def numeric_keys() -> list[tuple[str, object]]:
    out = []
    for name, section in SECTION_TYPES.items():
        for f in dataclasses.fields(section):
            b = f.metadata.get("bounds")
            if b is not None and not b.choices:
                out.append((f"{name}.{f.name}", b))
    return out


def bad_values(bounds, integer: bool):
    """Values outside `bounds`: below, above, and (for floats) NaN and infinities."""
    options = []
    if bounds.lo > -math.inf:
        lo = bounds.lo if not integer else math.ceil(bounds.lo)
        below = st.integers(max_value=lo - (0 if bounds.lo_open else 1), min_value=-10**12) if integer else \
            st.floats(max_value=bounds.lo, exclude_max=not bounds.lo_open, allow_nan=False, min_value=-1e12)
        options.append(below.filter(lambda v: v not in bounds.also))
    if bounds.hi < math.inf:
        above = st.integers(min_value=int(bounds.hi) + 1, max_value=10**15) if integer else \
            st.floats(min_value=bounds.hi, exclude_min=not bounds.hi_open, allow_nan=False, max_value=1e15)
        options.append(above)
    if not integer:
        options.append(st.sampled_from([math.nan, math.inf, -math.inf]))
    return st.one_of(options)


KEYS = numeric_keys()


def key_and_value():
    def draw(item):
        key, bounds = item
        sec, name = key.split(".")
        section = SECTION_TYPES[sec]
        hint = typing.get_type_hints(section)[name]
        spelling = next(f for f in dataclasses.fields(section) if f.name == name).metadata.get("spelling")
        # a value the field reads as another spelling of an allowed one (cluster.clusters '4': 4) is valid
        return bad_values(bounds, int in (hint, *typing.get_args(hint))).filter(
            lambda v: spelling is None or not bounds.allows(spelling(v))).map(lambda v: (key, v))
    return st.sampled_from(KEYS).flatmap(draw)


# the probe and export options that take a number, with the ProbeSettings field each sets
NUMBER_OPTIONS = {"--k": "k", "--temperature": "temperature", "--clusters": "clusters", "--cluster": "clusters",
                  "--nlist": "nlist", "--nprobe": "nprobe"}


def option_and_value():
    bounds = field_bounds(ProbeSettings)

    def draw(flag):
        return bad_values(bounds[NUMBER_OPTIONS[flag]], flag != "--temperature").map(lambda v: (flag, v))
    return st.sampled_from(sorted(NUMBER_OPTIONS)).flatmap(draw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key_and_value())
def test_any_out_of_range_config_value_is_one_error_line(runner, finished, item):
    key, value = item
    before = snapshot(finished)
    command = "cluster" if key.startswith("cluster.") else "pretrain"
    args = ["--run", finished] if command == "cluster" else ["--dataset", "digits"]
    r = invoke(runner, command, "--out", finished, *args, "--force", "--device", "cpu", "--quiet",
               "--set", f"{key}={value!r}" if isinstance(value, float) else f"{key}={value}")
    assert_one_error_line(r)
    assert key in r.stderr and "out of range" in r.stderr
    assert snapshot(finished) == before


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option_and_value())
def test_any_out_of_range_probe_or_export_option_is_one_error_line(runner, finished, tmp_path, item):
    flag, value = item
    before = snapshot(finished)
    if flag == "--cluster":
        r = invoke(runner, "export", "--run", finished, "--out", tmp_path / "e.npz", flag, value, "--device", "cpu")
    else:
        r = invoke(runner, "probe", "--run", finished, "--method", "kmeans" if flag == "--clusters" else "knn",
                   flag, value, "--device", "cpu", "--quiet")
    assert_one_error_line(r)
    assert flag in r.stderr
    assert snapshot(finished) == before
