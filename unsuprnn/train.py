"""The training loop, shared by every objective: `train(cfg, out)`.

AdamW with a precomputed warmup + cosine learning-rate schedule, gradient clipping, a stop on a
non-finite loss, Lightning Fabric for device/precision/DDP, a checkpoint written atomically every
epoch, and `resume` that continues bit-for-bit where the last checkpoint left off.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path

import torch
from lightly.utils.debug import std_of_l2_normalized
from lightly.utils.scheduler import cosine_schedule

from .atomic import write_text
from .checkpoint import load_run_checkpoint, restore_state, save_checkpoint, save_encoder
from .config import Config, check_config
from .data import channel_stats, load_dataset
from .data.loader import BatchLoader
from .data.pipeline import build_pipeline
from .devices import resolve_device, resolve_precision
from .errors import UserError
from .evaluate.embed import embed_images
from .evaluate.knn import knn_accuracy
from .evaluate.metrics import classification_metrics
from .models.encoder import build_encoder
from .progress import on_terminal, progress_bar
from .objectives import build_objective
from .budget import check_model_fits, check_schedule_size, warn_if_absurd
from .rundir import base_meta, check_out, check_resume_config, epoch_line, read_log, write_json, write_log
from .runwriter import claim_on_rank0, refuse_if_in_use

CHECK_EVERY = 25  # steps between host syncs for the non-finite check and the progress bar


def lr_schedule(base_lr: float, total_steps: int, warmup_steps: int) -> torch.Tensor:
    """Per-step learning rates [total_steps]: linear warmup from 0, then cosine decay to 0."""
    steps = torch.arange(total_steps, dtype=torch.float64)
    warm = base_lr * (steps + 1) / max(warmup_steps, 1)
    progress = (steps - warmup_steps) / max(total_steps - warmup_steps, 1)
    cos = base_lr * 0.5 * (1 + torch.cos(math.pi * progress.clamp(0, 1)))
    return torch.where(steps < warmup_steps, warm, cos)


def make_fabric(device: torch.device, precision: str, devices: int, num_nodes: int):
    from lightning_fabric import Fabric

    if device.type == "cuda":
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = True
        devs = [device.index] if (device.index is not None and devices == 1) else devices
    else:
        devs = devices
    strategy = "ddp" if devices * num_nodes > 1 else "auto"
    return Fabric(accelerator=device.type, devices=devs, num_nodes=num_nodes, precision=precision,
                  strategy=strategy)


def resume_ignores(cfg: Config) -> tuple[str, ...]:
    """Keys a resumed run may change: its length, its device, and the cluster section (read only by
    `unsuprnn cluster`, it never makes two pretrain runs differ)."""
    return ("train.epochs", "train.device") + tuple(f"cluster.{k}" for k in cfg.to_dict()["cluster"])


def pipeline_info(pipeline, ds) -> dict:
    return {"shape": list(pipeline.shape), "view": pipeline.view.name,
            "patch": getattr(pipeline.view, "patch", None), "mean": pipeline.mean.flatten().tolist(),
            "std": pipeline.std.flatten().tolist(), "sequence_shape": list(pipeline.seq_shape),
            "classes": ds.classes}


def train(cfg: Config, out: str | Path, resume: bool = False, force: bool = False, quiet: bool = False) -> dict:
    """Train `cfg.objective.name` on `cfg.data.dataset`, writing the run directory `out`.

    Every value, the data and (on resume) the run's own files are checked before anything is written;
    with `force`, an existing run is replaced only once the new one has its first checkpoint.
    Returns the metrics also written to metrics.json (on DDP rank 0; None on the other ranks).
    """
    out = Path(out)
    tc = cfg.train
    check_config(cfg)
    device = resolve_device(tc.device)
    precision = resolve_precision(tc.precision, device)
    resuming = check_out(out, resume, force)  # read-only, so every DDP rank may run it
    if tc.devices * tc.num_nodes == 1:  # (DDP ranks start later than the one that holds the lock)
        refuse_if_in_use(out)
    if resuming:
        check_resume_config(out, cfg, ignore=resume_ignores(cfg))

    fabric = make_fabric(device, precision, tc.devices, tc.num_nodes)
    fabric.launch()  # with DDP, every process runs from here on; only rank 0 writes the run directory
    rank, world = fabric.global_rank, fabric.world_size
    torch.manual_seed(tc.seed)

    ds = load_dataset(cfg.data, tc.seed)
    train_idx = ds.splits["train"]
    train_y = ds.labels[train_idx]
    if cfg.objective.name == "supervised" and not (train_y >= 0).any():
        raise UserError(f"{ds.spec} has no labels; the supervised objective needs a labelled dataset")
    mean, std = channel_stats(ds.images, train_idx, tc.seed)
    pipeline = build_pipeline(cfg.data, cfg.augment, ds.shape, mean, std)

    def build():
        return build_objective(cfg.objective.name, build_encoder(cfg.encoder, pipeline.seq_shape[1]), pipeline,
                               cfg.objective, len(ds.classes), binarized=cfg.data.binarize is not None,
                               gather_distributed=world > 1)
    check_model_fits(build, device)
    objective = build()
    encoder = objective.encoder
    optimizer = torch.optim.AdamW(objective.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)

    loader_gen = torch.Generator().manual_seed(tc.seed)
    loader = BatchLoader(ds.images, ds.labels, tc.batch_size, fabric.device, shuffle=True, drop_last=True,
                         generator=loader_gen, rank=rank, world_size=world, indices=train_idx,
                         max_batches=tc.max_steps_per_epoch)
    steps_per_epoch = len(loader)
    check_schedule_size(tc.epochs, steps_per_epoch)
    schedule = lr_schedule(tc.lr, tc.epochs * steps_per_epoch, int(tc.warmup_epochs * steps_per_epoch)).tolist()
    teacher = getattr(objective, "update_teacher", None)  # byol, moco: a cosine momentum schedule to 1
    momentum = momentum_schedule(cfg.objective.momentum, tc.epochs * steps_per_epoch) if teacher else None
    aug_gen = torch.Generator(device=fabric.device).manual_seed(tc.seed * 1000 + rank + 1)

    start_epoch, elapsed, log = 0, 0.0, []
    ckpt = None
    if resuming:
        ckpt = load_run_checkpoint(out, cfg, ignore=resume_ignores(cfg))
        restore_state(objective, ckpt["model"], out / "checkpoint.pt")
        start_epoch, elapsed = ckpt["epoch"], ckpt["elapsed"]
        restore_rng_states(ckpt["rng"], rank, world, loader_gen, aug_gen, fabric.device)
        log = [e for e in read_log(out / "log.jsonl") if e["epoch"] <= start_epoch]
    if not resuming:  # the init above is the same on every rank; dropout draws differ per rank
        torch.manual_seed(tc.seed * 7919 + rank)
    model, optimizer = fabric.setup(objective, optimizer)
    if ckpt is not None:
        restore_state(optimizer, ckpt["optimizer"], out / "checkpoint.pt")
    if rank == 0:
        warn_if_absurd(cfg, encoder, pipeline.seq_shape, (tc.epochs - start_epoch) * steps_per_epoch, device)

    # everything is checked: from here on rank 0 writes the run (locked; beside an old one under --force)
    writer = claim_on_rank0(fabric, out, resume, force)
    fabric.barrier()
    with writer or contextlib.nullcontext():
        info = pipeline_info(pipeline, ds)
        if rank == 0:
            if not resuming:
                write_text(writer.work / "config.yaml", cfg.to_yaml())
            meta = base_meta(tc.seed) | {
                "objective": cfg.objective.name, "device": str(fabric.device), "precision": precision,
                "world_size": world, "dataset": ds.spec, "split": ds.split_info, "image_shape": list(ds.shape),
                "sequence_shape": list(pipeline.seq_shape), "embedding_dim": encoder.out_dim,
                "num_classes": len(ds.classes), "classes": ds.classes, "mean": mean, "std": std,
                "parameters": sum(p.numel() for p in encoder.parameters()), "resumed_at_epoch": start_epoch or None}
            write_json(writer.work / "meta.json", meta)

        test_idx = ds.splits.get("test")
        monitor = knn_monitor_indices(ds.labels, train_idx, test_idx, tc.seed) if tc.knn_every > 0 else None
        collapse_idx = train_idx[torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(tc.seed))
                                 [:COLLAPSE_SAMPLE].sort().values]
        quiet = quiet or not on_terminal()  # off a terminal: one line per epoch, no bar frames
        show_bar = not quiet and rank == 0
        for epoch in range(start_epoch, tc.epochs):
            model.train()
            t0 = time.perf_counter()
            loss_sum = torch.zeros((), device=fabric.device)
            bad = torch.zeros((), dtype=torch.bool, device=fabric.device)
            bar = progress_bar(show_bar, total=steps_per_epoch * loader.batch_size * world, unit="img",
                               unit_scale=True, desc=f"epoch {epoch + 1}/{tc.epochs}")
            for i, (x, y, _) in enumerate(loader):
                step = epoch * steps_per_epoch + i
                for group in optimizer.param_groups:
                    group["lr"] = schedule[step]
                loss, _stats = model(x, y, aug_gen)
                bad |= ~torch.isfinite(loss.detach())
                optimizer.zero_grad(set_to_none=True)
                fabric.backward(loss)
                if tc.grad_clip > 0:
                    fabric.clip_gradients(model, optimizer, max_norm=tc.grad_clip, error_if_nonfinite=False)
                optimizer.step()
                if teacher is not None:
                    teacher(momentum[step])
                loss_sum += loss.detach()
                if (i + 1) % CHECK_EVERY == 0 or i + 1 == steps_per_epoch:
                    if bad.item():
                        raise UserError(
                            f"loss became non-finite at epoch {epoch + 1}, within steps {max(step - CHECK_EVERY, 0) + 1}-"
                            f"{step + 1} (lr {schedule[step]:.2e}); lower --lr, raise train.warmup_epochs or set "
                            "train.grad_clip, and check the data for NaNs")
                    bar.set_postfix(loss=f"{loss_sum.item() / (i + 1):.4f}", lr=f"{schedule[step]:.2e}")
                bar.update(x.shape[0] * world)
            bar.close()
            if device.type == "cuda":
                torch.cuda.synchronize(fabric.device)
            seconds = time.perf_counter() - t0
            elapsed += seconds
            epoch_loss = float(fabric.all_reduce(loss_sum / steps_per_epoch, reduce_op="mean"))
            entry = {"epoch": epoch + 1, "step": (epoch + 1) * steps_per_epoch, "loss": epoch_loss,
                     "lr": schedule[(epoch + 1) * steps_per_epoch - 1],
                     "images_per_s": steps_per_epoch * loader.batch_size * world / seconds,
                     "seconds": seconds, "elapsed": elapsed}
            if monitor and rank == 0 and ((epoch + 1) % tc.knn_every == 0 or epoch + 1 == tc.epochs):
                bank_idx, query_idx = monitor
                bank = embed_images(encoder, pipeline, ds.images, fabric.device, indices=bank_idx)
                query = embed_images(encoder, pipeline, ds.images, fabric.device, indices=query_idx)
                entry["knn_top1"] = knn_accuracy(query, ds.labels[query_idx], bank, ds.labels[bank_idx],
                                                 len(ds.classes), k=min(20, len(bank_idx)))["weighted_top1"]
            if rank == 0:  # the collapse monitor: about 1/sqrt(dim) is healthy, 0 is one point for every image
                entry["embedding_std"] = float(std_of_l2_normalized(
                    embed_images(encoder, pipeline, ds.images, fabric.device, indices=collapse_idx)))
            log.append(entry)
            rng = rank_rng_states(fabric, loader_gen, aug_gen)  # every rank takes part in the gather
            if rank == 0:
                if quiet:
                    knn = f" knn {entry['knn_top1']:.2f}%" if "knn_top1" in entry else ""
                    print(epoch_line("epoch", epoch + 1, tc.epochs, entry, knn), file=sys.stderr)
                write_log(writer.work / "log.jsonl", log)
                save_encoder(writer.work / "encoder.pt", encoder, cfg, info)
                save_checkpoint({"epoch": epoch + 1, "elapsed": elapsed, "model": objective.state_dict(),
                                 "optimizer": optimizer.state_dict(), "rng": rng, "config": cfg.to_dict()},
                                writer.work / "checkpoint.pt")
                writer.checkpointed()
            fabric.barrier()

        metrics = {"objective": cfg.objective.name, "epochs": tc.epochs,
                   "final_loss": log[-1]["loss"] if log else None, "train_seconds": elapsed,
                   "knn_top1": next((e["knn_top1"] for e in reversed(log) if "knn_top1" in e), None)}
        if rank == 0 and log:
            metrics |= collapse_verdict(log[-1]["embedding_std"], encoder.out_dim)
        if cfg.objective.name == "supervised" and test_idx is not None and (ds.labels[test_idx] >= 0).any():
            metrics["test"] = supervised_test_metrics(objective, pipeline, ds.images, ds.labels, test_idx,
                                                      len(ds.classes), fabric.device)
        if rank != 0:
            return None
        write_json(writer.work / "metrics.json", metrics)
    return metrics


def momentum_schedule(start: float, total_steps: int) -> list[float]:
    """Teacher momentum per step: lightly's cosine schedule from `start` to 1 (BYOL, MoCo)."""
    return [cosine_schedule(step, total_steps, start, 1.0) for step in range(total_steps)]


COLLAPSE_SAMPLE = 2048   # training images embedded each epoch for the collapse monitor
# x 1/sqrt(dim): the std of L2-normalized embeddings under which a run has collapsed. Encoder features are
# not centred, so healthy runs sit below 1/sqrt(dim): 0.15-0.66 of it for every objective on digits
# (RESULTS.md); a collapse drives it to 0.
COLLAPSED_BELOW = 0.05


def collapse_verdict(std: float, dim: int) -> dict:
    """metrics.json's collapse fields: the last std of L2-normalized embeddings, against 1/sqrt(dim)."""
    healthy = dim ** -0.5
    return {"embedding_std": std, "embedding_std_healthy": healthy, "collapsed": std < COLLAPSED_BELOW * healthy}


def rank_rng_states(fabric, loader_gen: torch.Generator, aug_gen: torch.Generator) -> dict:
    """Every rank's RNG states (augmentation, torch, CUDA) gathered for rank 0's checkpoint.
    The loader generator is shared: each rank slices the same permutation."""
    def gather(state: torch.Tensor) -> torch.Tensor:  # [world, n] uint8
        if fabric.world_size == 1:
            return state[None]
        return fabric.all_gather(state.to(fabric.device)).cpu()
    out = {"loader": loader_gen.get_state(), "aug": gather(aug_gen.get_state()),
           "torch": gather(torch.get_rng_state())}
    if fabric.device.type == "cuda":
        out["cuda"] = gather(torch.cuda.get_rng_state(fabric.device))
    return out


def restore_rng_states(rng: dict, rank: int, world: int, loader_gen, aug_gen, device) -> None:
    if not all(isinstance(rng.get(k), torch.Tensor) for k in ("loader", "aug", "torch")):
        raise UserError("the checkpoint's random-number states are damaged; restore checkpoint.pt or start over "
                        "with --force")
    if rng["aug"].shape[0] != world:
        raise UserError(f"the checkpoint was written by {rng['aug'].shape[0]} process(es), this run has {world}; "
                        "resume with the same --devices and --num-nodes")
    # .clone(): a row of the stacked states has a storage offset, which set_state does not honour
    loader_gen.set_state(rng["loader"].clone())
    aug_gen.set_state(rng["aug"][rank].clone())
    torch.set_rng_state(rng["torch"][rank].clone())
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"][rank].clone(), device)


def supervised_test_metrics(objective, pipeline, images, labels, indices, num_classes: int, device) -> dict:
    """Accuracy and macro precision/recall/F1 of the trained classifier on clean test images."""
    idx = indices[labels[indices] >= 0]
    classifier = torch.nn.Sequential(objective.encoder, objective.classifier)  # = objective.logits
    preds = embed_images(classifier, pipeline, images, device, indices=idx).argmax(1)
    return classification_metrics(labels[idx].numpy(), preds.numpy(), num_classes)


MONITOR_SIZE = 10000  # bank and query images for the per-epoch kNN monitor (the probe uses all)


def knn_monitor_indices(labels, train_idx, test_idx, seed: int):
    """Seeded subsets (labelled rows only) of the train and test splits for the per-epoch kNN, or None."""
    if test_idx is None:
        return None
    g = torch.Generator().manual_seed(seed)
    out = []
    for idx in (train_idx, test_idx):
        idx = idx[labels[idx] >= 0]
        if len(idx) == 0:
            return None
        if len(idx) > MONITOR_SIZE:
            idx = idx[torch.randperm(len(idx), generator=g)[:MONITOR_SIZE].sort().values]
        out.append(idx)
    return tuple(out)
