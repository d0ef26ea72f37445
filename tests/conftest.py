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
