import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def runner():
    from typer.testing import CliRunner
    return CliRunner()


def invoke(runner, *args):
    """Run the CLI in-process; returns the click Result (exit_code, stdout, stderr)."""
    from unsuprnn.cli import app
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def die_after_checkpoint(monkeypatch, module, n: int) -> None:
    """Make `module.save_checkpoint` write, then raise KeyboardInterrupt on its n-th call: a run killed
    right after its n-th checkpoint."""
    real_save = module.save_checkpoint
    calls = {"n": 0}

    def save_then_die(state, path):
        real_save(state, path)
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
    monkeypatch.setattr(module, "save_checkpoint", save_then_die)
