"""Timing a few training steps before a `--budget` run, on a copy of the model, so that the run can be
given the epochs that fit: seconds per optimizer step, per checkpoint and per monitor pass."""

from __future__ import annotations

import copy
import io
import time

import torch

# Few: a --budget run re-plans after every epoch from the epochs' own times (pacing.py); these only start the plan.
WARMUP_STEPS, TIMED_STEPS = 1, 4
MONITOR_SAMPLE = 256  # images per part of the monitor pass that is timed (its time scales with the images embedded)


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
    sample, full = monitor_sample(t.monitors)
    t0 = time.perf_counter()
    sample.measure(objective.encoder, t.pipeline, device, sample.epochs)
    monitors = (time.perf_counter() - t0) * full / max(images_embedded(sample), 1)
    torch.set_rng_state(state)
    return {"step": step, "checkpoint": checkpoint, "monitors": monitors}


def images_embedded(monitors) -> int:
    """Images one monitor pass embeds: the kNN bank and queries, and the collapse sample."""
    return sum(len(i) for i in (monitors.knn_idx or ())) + len(monitors.collapse_idx)


def monitor_sample(monitors):
    """(a copy of `monitors` that embeds at most MONITOR_SAMPLE images of each part, the images the full pass
    embeds)."""
    sample = copy.copy(monitors)
    if monitors.knn_idx:
        sample.knn_idx = tuple(i[:MONITOR_SAMPLE] for i in monitors.knn_idx)
    sample.collapse_idx = monitors.collapse_idx[:MONITOR_SAMPLE]
    return sample, images_embedded(monitors)
