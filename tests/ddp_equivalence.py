"""One optimizer step of each objective in WORLD CPU processes (gloo), recorded for tests/test_ddp_equivalence.py.

    python -m tests.ddp_equivalence OUT.pt WORLD BATCH

Every process builds the run as `unsuprnn.train` does (data, split, objective, loader shard, generators), takes
its first batch of BATCH / WORLD images and makes one step from the same initial weights. Augmentation is off, so
that the views are the same in any number of processes; the gradients (after DDP's reduction), the weights after
the step, the loss over the whole batch, the batch's image indices, the split and each process's first
augmentation draws are saved by rank 0.

The step is plain SGD: AdamW's first step is lr * sign(g), which hides a gradient's scale (a factor of the world
size would pass unseen) and turns float noise on a gradient that is exactly zero (a bias before a batch norm) into
a full step either way. Training uses AdamW on these same reduced gradients.
"""

from __future__ import annotations

import sys
import time

import torch

CASES = {  # case -> (objective, extra settings)
    "contrastive": ("contrastive", []),
    "byol": ("byol", []),
    "cpc": ("cpc", ["encoder.stacks=separate", "encoder.layers=2"]),
    "sequencer2d": ("contrastive", ["encoder.kind=sequencer2d", "data.view=patches", "data.patch=2"]),
}
SGD_LR = 0.5  # large, so that the step shows in the weights
NO_AUGMENT = ["augment.crop_scale=1", "augment.rotate=0", "augment.translate=0", "augment.shear=0", "augment.noise=0",
              "augment.erase_prob=0", "augment.brightness=0", "augment.contrast=0"]


def one_step(objective: str, extra: list[str], fabric, world: int, batch: int) -> dict:
    from unsuprnn.config import load_config
    from unsuprnn.train import fresh_start, setup

    cfg = load_config(None, {"objective.name": objective, "train.device": "cpu", "train.devices": world,
                             "train.batch_size": batch // world, "train.epochs": 1},
                      ["data.dataset=digits", "encoder.hidden=16", "encoder.layers=1", "train.seed=5", *NO_AUGMENT,
                       *extra])
    t = setup(cfg, fabric, torch.device("cpu"), False, time.monotonic())
    fresh_start(t)
    before = {k: v.detach().clone() for k, v in t.objective.state_dict().items()}
    draws = torch.rand(8, generator=torch.Generator().set_state(t.aug_gen.get_state()))
    x, y, idx = next(iter(t.loader))
    t.model.train()
    sgd = torch.optim.SGD(t.objective.parameters(), lr=SGD_LR)
    loss, _ = t.model(x, y, t.aug_gen)
    sgd.zero_grad(set_to_none=True)
    fabric.backward(loss)
    grads = {n: p.grad.detach().clone() for n, p in t.objective.named_parameters() if p.grad is not None}
    sgd.step()
    if t.momentum is not None:
        t.objective.update_teacher(t.momentum[0])
    gather = (lambda v: v[None]) if world == 1 else fabric.all_gather
    return {"loss": float(fabric.all_reduce(loss.detach(), reduce_op="mean")), "grads": grads, "before": before,
            "after": {k: v.detach().clone() for k, v in t.objective.state_dict().items()},
            "indices": gather(idx).reshape(-1).sort().values, "draws": gather(draws),
            "split": gather(t.ds.splits["train"][None])}


def main() -> None:
    out, world, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    from unsuprnn.devices import make_fabric
    fabric = make_fabric(torch.device("cpu"), "32-true", world, 1)
    fabric.launch()
    torch.set_num_threads(1)
    results = {case: one_step(objective, extra, fabric, world, batch) for case, (objective, extra) in CASES.items()}
    if fabric.global_rank == 0:
        torch.save(results, out)


if __name__ == "__main__":
    main()
