"""Timing a few training steps before a `--budget` run, on a copy of the model, so that the run can be
given the epochs that fit: seconds per optimizer step, per checkpoint and per monitor pass."""

from __future__ import annotations

import copy
import io
import time

import torch

WARMUP_STEPS, TIMED_STEPS = 2, 8


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training(t, steps: int = TIMED_STEPS) -> dict:
    """{step, checkpoint, monitors}: seconds per optimizer step (after WARMUP_STEPS untimed ones), per
    checkpoint write and per pass of the monitors, measured on copies of `t`'s objective and optimizer
    (a `train.Training`) with their own random generators: the run itself is left as it was."""
    device = t.fabric.device
    objective = copy.deepcopy(t.objective).to(device).train()
    optimizer = torch.optim.AdamW(objective.parameters(), lr=t.cfg.train.lr, weight_decay=t.cfg.train.weight_decay)
    rows = t.ds.splits["train"]
    gen = torch.Generator().manual_seed(1)
    aug_gen = torch.Generator(device=device).manual_seed(2)
    batch = min(t.loader.batch_size, len(rows))
    state = torch.get_rng_state()  # dropout draws here must not move the run's own
    for i in range(WARMUP_STEPS + steps):
        if i == WARMUP_STEPS:
            _sync(device)
            t0 = time.perf_counter()
        pick = rows[torch.randperm(len(rows), generator=gen)[:batch]]
        x, y = t.ds.images[pick].to(device), t.ds.labels[pick].to(device)
        loss, _ = objective(x, y, aug_gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if t.cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(objective.parameters(), t.cfg.train.grad_clip)
        optimizer.step()
        if hasattr(objective, "update_teacher"):
            objective.update_teacher(0.99)
    _sync(device)
    step = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    torch.save({"model": objective.state_dict(), "optimizer": optimizer.state_dict()}, io.BytesIO())
    checkpoint = time.perf_counter() - t0
    t0 = time.perf_counter()
    t.monitors.measure(objective.encoder, t.pipeline, device, t.monitors.epochs)
    monitors = time.perf_counter() - t0
    torch.set_rng_state(state)
    return {"step": step, "checkpoint": checkpoint, "monitors": monitors}
