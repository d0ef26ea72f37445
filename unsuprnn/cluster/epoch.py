"""One epoch of the clustering stage: SCAN (every head) or self-labeling (the kept head)."""

from __future__ import annotations

import dataclasses

import torch

from ..runs.lifecycle import EpochMeter
from .scan import confidence_ce, scan_loss


@dataclasses.dataclass
class Phase:
    """A phase of the stage as its epochs see it."""
    name: str                         # scan | selflabel
    optimizer: torch.optim.Optimizer
    schedule: list[float]             # learning-rate multiplier per step of the phase
    first_epoch: int                  # the stage's epoch at which the phase starts
    best: int | None                  # the kept head (self-labeling)
    finetune: bool                    # the encoder is trained too


def cluster_one_epoch(t, phase: Phase, phase_epoch: int, bar) -> dict:
    """One epoch of `phase` on the stage `t` (a `ClusterTraining`), moving the run's progress bar; returns the
    epoch's log entry."""
    t.encoder.train(phase.finetune)
    t.heads.train()
    spe, device = len(t.loader), t.loader.device
    meter = EpochMeter(spe, device, bar)
    per_head = torch.zeros(len(t.heads.heads), device=device)
    confident = torch.zeros((), device=device)
    seen = 0
    for i, (x, _, rows) in enumerate(t.loader):
        step = phase_epoch * spe + i
        for group in phase.optimizer.param_groups:
            group["lr"] = group["base_lr"] * phase.schedule[step]
        if phase.name == "scan":
            loss, parts = scan_step(t, x, rows, phase.finetune)
            per_head += parts
        else:
            loss, mask = selflabel_step(t, x, phase.best, phase.finetune)
            confident += mask.sum()
        phase.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        phase.optimizer.step()
        seen += x.shape[0]
        meter.step(i, loss, x.shape[0], lambda i: (
            f"the {phase.name} loss became non-finite at step {phase_epoch * spe + i + 1}; lower --lr or "
            "--set cluster.encoder_lr, or check the run's embeddings for NaNs"))
    seconds = meter.close()
    entry = {"loss": meter.loss_sum.item() / spe, "lr": phase.optimizer.param_groups[0]["lr"],
             "images_per_s": seen / seconds, "seconds": seconds}
    if phase.name == "scan":
        entry["head_losses"] = (per_head / spe).tolist()
    else:
        entry["confident"] = confident.item() / max(seen, 1)
    return entry


def _encode(t, seq: torch.Tensor, finetune: bool) -> torch.Tensor:
    with torch.set_grad_enabled(finetune and torch.is_grad_enabled()):
        return t.encoder(seq)


def _rows_on_device(loader, rows: torch.Tensor) -> torch.Tensor:
    """uint8 images of dataset rows `rows`, on the loader's device (resident or gathered)."""
    if loader.resident:
        return loader.images[rows.to(loader.device)]
    return loader.images[rows].to(loader.device)


def scan_step(t, x: torch.Tensor, rows: torch.Tensor, finetune: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """SCAN on a batch: an augmented image and an augmented random one of its mined neighbours should
    fall in the same cluster, for every head. Returns (summed loss, each head's loss detached)."""
    b = x.shape[0]
    pick = torch.randint(t.neighbors.shape[1], (b,), generator=t.loader_gen)
    nbr_rows = t.train_idx[t.neighbors[t.position[rows], pick]]
    views = torch.cat([t.pipeline.augmented(x, t.aug_gen),
                       t.pipeline.augmented(_rows_on_device(t.loader, nbr_rows), t.aug_gen)])
    logits = t.heads(_encode(t, views, finetune))                   # [heads, 2B, K]
    parts = torch.stack([scan_loss(lg[:b], lg[b:], t.cfg.cluster.entropy_weight)[0] for lg in logits])
    return parts.sum(), parts.detach()


def selflabel_step(t, x: torch.Tensor, best: int, finetune: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-labeling on a batch: confident weak-view predictions of head `best` become labels for a strong
    view. Returns (loss, mask of the samples used)."""
    head = t.heads.heads[best]
    with torch.no_grad():
        weak = head(t.encoder(t.pipeline.augmented(x, t.aug_gen)))
    strong_seq = t.pipeline.sequence(t.strong(t.pipeline.unit(x), t.aug_gen))
    return confidence_ce(weak, head(_encode(t, strong_seq, finetune)), t.cfg.cluster.threshold)
