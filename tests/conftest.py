"""What the tests share: the tiny digits run (one spelling, as a Config and as CLI flags), a session-wide
cache of finished tiny runs, the in-process CLI, and a few checks."""

import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest

# The suite's thread count, set before torch loads: the commands the tests run in-process keep it (a user's
# OMP_NUM_THREADS is kept by threads.choose), so a run trained by the CLI and one trained by train() match.
os.environ["OMP_NUM_THREADS"] = str(min(2, len(os.sched_getaffinity(0))))
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_WAIT_POLICY")


@pytest.fixture(autouse=True)
def seeded_torch():
    """Every test starts from the same global torch seed, so that a test drawing unseeded tensors gives the
    same answer on every run rather than failing once in many; and ends with the suite's threads (a command run
    with --threads changes them for its process)."""
    torch.manual_seed(0)
    env = {k: os.environ.get(k) for k in THREAD_ENV}
    yield
    torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# The tiny run: digits, a one-layer BiLSTM of 16 units, small heads, CPU. `tiny_config` is the same run.
TINY = ["--dataset", "digits", "--hidden", "16", "--layers", "1", "--batch-size", "256", "--device", "cpu", "--quiet",
        "--set", "objective.proj_hidden=32", "--set", "objective.decoder_hidden=16"]


def tiny_config(objective: str = "contrastive", epochs: int = 2, seed: int = 0):
    """The Config of a tiny run (what TINY + `--epochs epochs --seed seed` resolves to)."""
    from unsuprnn.config import Config
    cfg = Config()
    cfg.objective.name = objective
    cfg.encoder.hidden, cfg.encoder.layers = 16, 1
    cfg.objective.proj_hidden, cfg.objective.decoder_hidden = 32, 16
    cfg.train.epochs, cfg.train.batch_size, cfg.train.device, cfg.train.seed = epochs, 256, "cpu", seed
    return cfg


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """tiny_run(objective, epochs, seed) -> the directory of a finished tiny run, trained once per session.
    Shared: a test that changes a run must copy it first (`copy_run`)."""
    from unsuprnn.train import train
    root = tmp_path_factory.mktemp("tiny_runs")
    done = {}

    def get(objective: str = "contrastive", epochs: int = 1, seed: int = 0) -> Path:
        key = (objective, epochs, seed)
        if key not in done:
            out = root / f"{objective}-e{epochs}-s{seed}"
            train(tiny_config(objective, epochs, seed), out, quiet=True)
            done[key] = out
        return done[key]
    return get


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


@pytest.fixture
def runner():
    from typer.testing import CliRunner
    return CliRunner()


def invoke(runner, *args):
    """Run the CLI in-process; returns the click Result (exit_code, stdout, stderr)."""
    from unsuprnn.cli import app
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def die_after_checkpoint(monkeypatch, n: int) -> None:
    """Make the run lifecycle raise KeyboardInterrupt right after its n-th epoch's files (checkpoint included)
    were written: a run killed right after its n-th checkpoint."""
    import unsuprnn.runs.lifecycle as lifecycle
    real_end = lifecycle.RunRecorder.end_epoch
    calls = {"n": 0}

    def end_then_die(self, *args, **kwargs):
        real_end(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
    monkeypatch.setattr(lifecycle.RunRecorder, "end_epoch", end_then_die)


def straight_and_resumed(cfg, tmp_path: Path, monkeypatch, kill_after: int) -> tuple[dict, dict]:
    """Train `cfg` once straight through and once killed right after its `kill_after`-th checkpoint, then
    resumed: (straight model state, resumed model state), from their last checkpoints."""
    from unsuprnn.runs.checkpoint import load_checkpoint
    from unsuprnn.train import train
    train(cfg, tmp_path / "straight", quiet=True)
    die_after_checkpoint(monkeypatch, kill_after)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "resumed", quiet=True)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["epoch"] == kill_after
    train(cfg, tmp_path / "resumed", resume=True, quiet=True)
    return (load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["model"],
            load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["model"])


def straight_and_resumed_on(images, classes: int, batch_size: int, tmp_path: Path, monkeypatch) -> tuple[dict, dict]:
    """`straight_and_resumed` for a tiny 2-epoch run on images uint8 [N, C, H, W] (labels i % classes), given as an
    npz file, killed after its first checkpoint."""
    import numpy as np
    np.savez(tmp_path / "images.npz", images=images.numpy(), labels=np.arange(len(images)) % classes)
    cfg = tiny_config(epochs=2)
    cfg.data.dataset, cfg.train.batch_size = f"npz:{tmp_path / 'images.npz'}", batch_size
    return straight_and_resumed(cfg, tmp_path, monkeypatch, kill_after=1)


def snapshot(out: Path) -> dict:
    """Every file under `out` and beside it (staging, lock) -> its sha256."""
    files = [p for p in out.parent.rglob("*") if p.is_file()]
    return {str(p.relative_to(out.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def assert_one_error_line(r):
    """Exit 2 and one `error:` line, the last (progress lines of work done before the failure may precede it)."""
    lines = r.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert r.exit_code == 2 and len(errors) == 1 and lines[-1] == errors[0], r.output
    assert "Traceback" not in r.output


def tree(root: Path) -> dict:
    """Everything under root as it is, links not followed (to check that nothing changed): path -> (kind,
    content digest or link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            mode = os.lstat(p).st_mode
            if stat.S_ISLNK(mode):
                out[str(p)] = ("link", os.readlink(p))
            elif stat.S_ISREG(mode):
                out[str(p)] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
            else:
                out[str(p)] = (stat.S_IFMT(mode), None)
    return out


# The fast tier (`python -m pytest tests -m fast`, under 2 minutes): the contracts of every registered kind and
# the modules whose tests train at most a tiny run; the whole suite stays the README's test command.
FAST_MODULES = {"test_contracts.py", "test_config.py", "test_layout.py", "test_cli_help.py", "test_saved_runs.py",
                "test_scan.py", "test_guard.py", "test_sources.py", "test_views.py", "test_augment.py",
                "test_intensity.py", "test_folder_integrity.py", "test_data_cli.py", "test_knn.py", "test_nuisance.py",
                "test_cluster_analysis.py", "test_clustering_linear.py", "test_registry.py", "test_objectives.py",
                "test_sequence_objectives.py", "test_encoder.py", "test_methods.py", "test_train.py", "test_train_cli.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in FAST_MODULES and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.fast)
