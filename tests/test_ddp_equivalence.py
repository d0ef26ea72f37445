"""Distributed training equals one process (gloo, two CPU processes): one step of batch B/2 in each of two
processes and one step of batch B in one process, from the same weights, give the same loss, gradients
and weights, for SimCLR (NT-Xent gathered over processes), BYOL (a momentum teacher, batch-normed heads)
CPC (codes gathered over processes) and SimCLR on a Sequencer2D encoder; each process draws its own augmentations from the same split."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

BATCH = 32
# float32 sums in another order: the measured differences are about 1e-7 relative (RESULTS.md, "DDP")
RTOL, ATOL = 1e-4, 1e-6


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    out = {}
    for world in (1, 2):
        path = tmp_path_factory.mktemp("ddp") / f"world{world}.pt"
        r = subprocess.run([sys.executable, "-m", "tests.ddp_equivalence", str(path), str(world), str(BATCH)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        out[world] = torch.load(path, weights_only=False)
    return out


def relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@pytest.mark.parametrize("case", ["contrastive", "byol", "cpc", "sequencer2d"])
def test_two_processes_make_the_step_one_process_makes(steps, case):
    one, two = steps[1][case], steps[2][case]
    assert torch.equal(one["indices"], two["indices"])  # the two half-batches are the one batch
    assert all(torch.equal(one["before"][k], two["before"][k]) for k in one["before"])  # the same start
    assert two["loss"] == pytest.approx(one["loss"], rel=RTOL)
    assert one["grads"].keys() == two["grads"].keys() and len(one["grads"]) > 0
    for name, g in one["grads"].items():  # gradients: a factor of the world size would show here
        assert torch.allclose(two["grads"][name], g, rtol=RTOL, atol=ATOL), (name, relative_gap(two["grads"][name], g))
    for name, w in one["after"].items():  # weights, batch-norm statistics and the teacher after an SGD step
        if w.is_floating_point():
            assert torch.allclose(two["after"][name], w, rtol=RTOL, atol=ATOL), name
        else:
            assert torch.equal(two["after"][name], w), name


def test_each_process_draws_its_own_augmentations_from_the_same_split(steps):
    for res in steps[2].values():
        split, draws = res["split"], res["draws"]
        assert split.shape[0] == 2 and torch.equal(split[0], split[1])
        assert draws.shape[0] == 2 and not torch.equal(draws[0], draws[1])
