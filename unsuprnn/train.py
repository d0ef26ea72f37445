"""`train(cfg, out)`: pretrain an encoder with any objective, or train the supervised reference.

Shaped like dino's `main`: set-up (checks, Fabric, data, model, schedules, resume), then per epoch
`train_one_epoch` and the monitors, each epoch written through the run lifecycle (`runs.lifecycle`).
AdamW with a precomputed warmup + cosine learning-rate schedule, gradient clipping, a stop on a
non-finite loss, Lightning Fabric for device/precision/DDP; `resume` continues bit for bit.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import sys
import time
from pathlib import Path

import torch

from .budget import check_activations, check_model_fits, check_schedule_size, warn_if_absurd
from .calibrate import time_training
from .config import Config, check_config
from .data.dataset import load_dataset
from .data.preprocess import channel_stats, check_not_blank
from .data.images import Images
from .data.loader import BatchLoader
from .data.notes import data_notes
from .data.invariance import resolve_from_data
from .data.views import resolve_view
from .names.encoders import specs as encoder_specs
from .data.pipeline import SequencePipeline, build_pipeline
from .devices import make_fabric, resolve_device, resolve_precision
from .errors import UserError
from .models.batchnorm import global_batchnorm
from .models.encoders import build_encoder, resolve_input_proj
from .monitors import MONITOR_POINTS, MONITOR_SHARE, EpochMonitors, collapse_verdict, supervised_test_metrics
from .names.objectives import spec_of
from .objectives import build_objective
from . import pacing
from .pacing import Pacer, apply_replan, restore_replans
from .plan import (AUTO, CHOSEN_FROM_IMAGES, auto_batch_size, auto_epochs, auto_every, budget_epochs, parse_duration,
                   short_of_plan, still_improving)
from .progress import on_terminal
from .runs.checkpoint import restore_state, save_encoder
from .runs.files import base_meta, saved_config
from .runs.lifecycle import (CHECK_EVERY, EpochMeter, ResumePoint, RunRecorder, check_target, epoch_line, restore_rng_states,
                             resume_point, rng_states)
from .runs.writer import claim_on_rank0
from .schedules import lr_schedule, momentum_schedule, warmup_steps


RESUME_IGNORES = ("train.epochs", "train.device", "train.logger")  # what a resumed run may change: length, device, logger


@dataclasses.dataclass
class Training:
    """What every epoch of one training run uses, built once by `setup`."""
    cfg: Config
    fabric: object
    ds: Images
    pipeline: SequencePipeline
    objective: torch.nn.Module
    model: torch.nn.Module            # the objective as Fabric set it up
    optimizer: torch.optim.Optimizer
    loader: BatchLoader
    loader_gen: torch.Generator
    aug_gen: torch.Generator
    stats: tuple[list, list]          # the train split's per-channel mean and std (meta.json)
    monitors: EpochMonitors
    schedule: list[float] = dataclasses.field(default_factory=list)   # learning rate per step
    momentum: list[float] | None = None                                # teacher momentum per step (byol, moco)
    plan: dict = dataclasses.field(default_factory=dict)               # how the schedule was chosen (meta.json)
    spe: int = 0                      # optimizer steps of a whole epoch
    last_steps: int = 0               # steps of the last epoch (a --budget run's may be part of one)
    warmup: int = 0                   # warm-up steps of the learning rate
    pacer: Pacer | None = None        # a --budget run's clock (pacing.py)
    said: list[str] = dataclasses.field(default_factory=list)  # notes on the data and what auto chose

    @property
    def steps_per_epoch(self) -> int:
        return self.spe


def train(cfg: Config, out: str | Path, resume: bool = False, force: bool = False, quiet: bool = False,
          started: float | None = None) -> dict | None:
    """Train `cfg.objective.name` on `cfg.data.dataset`, writing the run directory `out`.

    Every value, the data and (on resume) the run's own files are checked before anything is written;
    with `force`, an existing run is replaced only once the new one has its first checkpoint. `auto`
    settings and a --budget are resolved (see `plan.py`) into the config the run records.
    started: the `time.monotonic()` a --budget counts from (the command's start; default: now).
    Returns the metrics also written to metrics.json (on DDP rank 0; None on the other ranks).
    """
    started = pacing.now() if started is None else started
    out, cfg = Path(out), copy.deepcopy(cfg)  # auto settings are resolved in this copy
    tc = cfg.train
    device = resolve_device(tc.device)
    precision = resolve_precision(tc.precision, device)
    resuming = check_target(out, cfg, resume, force, RESUME_IGNORES, tc.devices * tc.num_nodes == 1)
    if resuming:
        keep_plan(cfg, saved_config(out))
    fabric = make_fabric(device, precision, tc.devices, tc.num_nodes)
    fabric.launch()  # with DDP, every process runs from here on; only rank 0 writes the run directory
    t = setup(cfg, fabric, device, resuming, started)
    point = restore(t, out) if resuming else fresh_start(t)
    if tc.budget and not resuming:
        t.pacer = Pacer(t, started)
    elif resuming and t.plan.get("pacer"):  # a --budget run resumed as it was: it goes on with what was left
        t.pacer = Pacer(t, started, state=t.plan["pacer"])
    if fabric.global_rank == 0:
        warn_if_absurd(cfg, t.objective.encoder, t.pipeline.seq_shape,
                       (tc.epochs - point.epoch) * t.steps_per_epoch, device)

    writer = claim_on_rank0(fabric, out, resume, force)  # everything is checked: the first write
    if writer is not None:  # (said once everything is checked: a refused run says one line, its error)
        for line in t.said:
            print(line, file=sys.stderr)
        print(f"plan: {describe_plan(t.plan)}", file=sys.stderr)
    fabric.barrier()
    per_epoch = t.steps_per_epoch * t.loader.batch_size * fabric.world_size
    with writer or contextlib.nullcontext(), RunRecorder(writer, point.log, quiet or not on_terminal(),
                                                         tc.epochs * per_epoch, point.epoch * per_epoch) as run:
        run.begin(cfg, run_meta(t, precision, point.epoch), resuming)
        elapsed, epoch = point.elapsed, point.epoch
        while epoch < tc.epochs:  # (a --budget run re-plans its epochs after each one)
            entry = train_one_epoch(t, epoch, run.bar)
            elapsed += entry["seconds"]
            entry["elapsed"] = elapsed
            monitor_start = pacing.now()
            if fabric.global_rank == 0:
                entry |= t.monitors.measure(t.objective.encoder, t.pipeline, fabric.device, epoch + 1)
            if t.pacer is not None and epoch + 1 < tc.epochs:  # (the planned last epoch ends the run)
                pace(t, epoch + 1, entry, pacing.now() - monitor_start if "embedding_std" in entry else None)
                if fabric.global_rank == 0 and epoch + 1 == tc.epochs and "embedding_std" not in entry:
                    # no time for more: this epoch became the last, and a run's last epoch is always measured
                    entry |= t.monitors.measure(t.objective.encoder, t.pipeline, fabric.device, epoch + 1)
                run.bar.total = t.plan["steps"] * t.loader.batch_size * fabric.world_size
            checkpoint = {"epoch": epoch + 1, "elapsed": elapsed, "model": t.objective.state_dict(),
                          "optimizer": t.optimizer.state_dict(), "rng": gathered_rng_states(t), "config": cfg.saved(),
                          "plan": t.plan}
            knn = f" knn {entry['knn_top1']:.2f}%" if "knn_top1" in entry else ""
            run.end_epoch(entry, epoch_line("epoch", epoch + 1, tc.epochs, entry, knn),
                          lambda work: save_encoder(work / "encoder.pt", t.objective.encoder, cfg, pipeline_info(t)),
                          checkpoint)
            if t.pacer is not None:
                t.pacer.ended_epoch()
            fabric.barrier()
            epoch += 1
        return run.finish(final_metrics(t, run.log, elapsed), {"wall_seconds": pacing.now() - started,
                                                               "schedule": t.plan}, cfg)


def pace(t: Training, done_epochs: int, entry: dict, monitor_seconds: float | None) -> None:
    """A --budget run after an epoch: its times measured, the rest re-planned (rank 0's plan on every rank)."""
    t.pacer.measured(entry, entry["step"] - (done_epochs - 1) * t.spe, monitor_seconds)
    total, last = t.fabric.broadcast(t.pacer.replan(done_epochs), src=0)
    if total != t.plan["steps"] or last != t.last_steps:
        apply_replan(t, done_epochs, total, last)
        entry["planned_epochs"] = t.cfg.train.epochs
    t.plan["pacer"] = t.pacer.state()


def setup(cfg: Config, fabric, device: torch.device, resuming: bool, started: float) -> Training:
    """Data, pipeline, objective, optimizer, loader and the planned schedules, each checked before any write."""
    tc, world = cfg.train, fabric.world_size
    torch.manual_seed(tc.seed)
    ds = load_dataset(cfg.data, tc.seed)
    train_idx = ds.splits["train"]
    if spec_of(cfg.objective.name).uses_labels and not (ds.labels[train_idx] >= 0).any():
        raise UserError(f"{ds.spec} has no labels; the {cfg.objective.name} objective needs a labelled dataset")
    check_not_blank(ds.images, train_idx, ds.spec)
    view = "; ".join(filter(None, [resolve_view(cfg.data, ds.shape, encoder_specs()[cfg.encoder.kind].views),
                                   resolve_input_proj(cfg.encoder, cfg.data.view)]))
    chose = resolve_from_data(cfg.data, cfg.augment, ds.images, tc.seed, train_idx)  # hflip, colour jitter, intensity
    check_config(cfg)  # (the view resolved: what the encoder kind reads)
    said = [] if resuming else [f"note: {note}" for note in data_notes(ds)]  # what loading changed in the images
    if not resuming:  # (a reader of a large-image run should know how it is read; of any, what auto chose)
        said += ([view] if view and cfg.data.view != "rows" else []) + list(chose.values())
    mean, std = channel_stats(ds.images, train_idx, tc.seed)
    pipeline = build_pipeline(cfg.data, cfg.augment, ds.shape, mean, std)

    def build():
        return build_objective(cfg.objective.name, build_encoder(cfg.encoder, pipeline.seq_shape[1], pipeline.grid), pipeline,
                               cfg.objective, len(ds.classes), binarized=cfg.data.binarize is not None,
                               gather_distributed=world > 1)
    check_model_fits(build, device)
    objective = build()
    if world > 1:  # batch statistics over every process's images, as one process with the whole batch has them
        global_batchnorm(objective)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    if tc.batch_size == AUTO:
        tc.batch_size = auto_batch_size(len(train_idx) // world)
    loader_gen = torch.Generator().manual_seed(tc.seed)
    loader = BatchLoader(ds.images, ds.labels, tc.batch_size, fabric.device, shuffle=True, drop_last=True,
                         generator=loader_gen, rank=fabric.global_rank, world_size=world, indices=train_idx,
                         max_batches=tc.max_steps_per_epoch)
    check_batch(cfg.objective.name, loader.batch_size, len(train_idx))
    check_activations(loader.batch_size, cfg.encoder, pipeline.seq_shape, device)
    aug_gen = torch.Generator(device=fabric.device).manual_seed(tc.seed * 1000 + fabric.global_rank + 1)
    monitors = EpochMonitors(ds.images, ds.labels, len(ds.classes), train_idx, ds.splits.get("test"), tc.seed,
                             knn=tc.knn_every != 0)
    t = Training(cfg, fabric, ds, pipeline, objective, objective, optimizer, loader, loader_gen, aug_gen,
                 (mean, std), monitors)
    plan_schedule(t, resuming, started)
    if view and cfg.data.view != "rows":
        t.plan["view"] = view  # (what `auto` chose for the view of large images, recorded in meta.json)
    t.plan |= chose  # (what `auto` chose for mirroring and intensities, and why: recorded in meta.json)
    t.said = said if fabric.global_rank == 0 else []
    return t


def plan_schedule(t: Training, resuming: bool, started: float) -> None:
    """Resolve the epochs (auto: train.steps steps; --budget: what fits, timed on a copy of the model) and
    the monitors' frequency, then precompute the learning-rate and momentum schedules."""
    tc, spe = t.cfg.train, len(t.loader)
    t.plan, points = {"batch_size": tc.batch_size, "steps_per_epoch": spe}, MONITOR_POINTS
    if tc.budget and not resuming:
        timing = time_training(t)
        left = parse_duration(tc.budget) - (pacing.now() - started)
        every = None if tc.knn_every in (AUTO, 0) else tc.knn_every  # None: about MONITOR_POINTS passes
        # (and the monitors take at most MONITOR_SHARE of the budget: a short run's passes were a third of its time)
        points = max(1, min(MONITOR_POINTS, int(MONITOR_SHARE * left / max(timing["monitors"], 1e-9))))
        epochs, steps = budget_epochs(left, timing["step"], spe, timing["checkpoint"], timing["monitors"], every,
                                      points)
        epochs, steps = t.fabric.broadcast((epochs, steps), src=0)  # every rank follows rank 0's timing
        tc.epochs, tc.max_steps_per_epoch = epochs, (steps if steps < spe else tc.max_steps_per_epoch)
        t.loader.max_batches = tc.max_steps_per_epoch
        t.plan |= {"how": "budget", "budget": tc.budget, "first_epochs": epochs, "seconds_per_step": timing["step"],
                   "seconds_per_checkpoint": timing["checkpoint"], "seconds_per_monitor": timing["monitors"]}
    elif tc.epochs == AUTO:
        tc.epochs, t.plan["how"] = auto_epochs(tc.steps, spe), "auto"
    else:
        t.plan["how"] = "configured"
    if tc.knn_every == AUTO:
        tc.knn_every = auto_every(tc.epochs, points)
    spe = t.spe = t.last_steps = len(t.loader)
    check_schedule_size(tc.epochs, spe)
    total = tc.epochs * spe
    t.plan |= {"epochs": tc.epochs, "steps_per_epoch": spe, "steps": total}
    if "seconds_per_step" in t.plan:
        t.plan["planned_seconds"] = total * t.plan["seconds_per_step"] + tc.epochs * t.plan["seconds_per_checkpoint"]
    t.warmup = warmup_steps(tc.warmup_epochs, spe, total)
    t.schedule = lr_schedule(tc.lr, total, t.warmup).tolist()
    t.momentum = momentum_schedule(t.cfg.objective.momentum, total) if hasattr(t.objective, "update_teacher") else None
    t.monitors.schedule(tc.knn_every or auto_every(tc.epochs, MONITOR_POINTS), tc.epochs)


def keep_plan(cfg: Config, saved: Config) -> None:
    """A resumed run keeps what its `auto` settings and its --budget resolved to when it started."""
    for key in ("epochs", "batch_size", "knn_every", "max_steps_per_epoch"):
        if getattr(cfg.train, key) == AUTO or (cfg.train.budget and key == "max_steps_per_epoch"):
            setattr(cfg.train, key, getattr(saved.train, key))
    if cfg.augment.hflip == AUTO:  # (read from the images when the run started)
        cfg.augment.hflip = saved.augment.hflip
    if cfg.augment.colour_jitter == AUTO:
        cfg.augment.colour_jitter = saved.augment.colour_jitter
    if cfg.data.intensity == AUTO:
        cfg.data.intensity = saved.data.intensity


def describe_plan(plan: dict) -> str:
    """One line: what the run will do and why."""
    line = f"{plan['epochs']} epochs x {plan['steps_per_epoch']} steps of {plan['batch_size']} images = {plan['steps']:,} steps"
    if plan["how"] == "budget":
        return (f"--budget {plan['budget']}: {line} (timed: {plan['seconds_per_step']:.3f} s a step); about "
                f"{plan['planned_seconds'] / 60:.1f} min of training")
    return line + (" (train.steps; epochs auto)" if plan["how"] == "auto" else "")


def check_batch(objective: str, batch: int, n_train: int) -> None:
    """A batch the objective can learn from: a contrastive loss with one image has no negatives (its loss
    is 0), a batch norm needs two."""
    need = spec_of(objective).min_batch
    if batch < need:
        raise UserError(f"--batch-size {batch}: the {objective} objective needs at least {need} images a batch (negatives, batch "
                        f"statistics); pass --batch-size {need} or more" + (f" (the training split has {n_train} "
                                                                             "images)" if n_train < need else ""))


def fresh_start(t: Training) -> ResumePoint:
    """Set the model up on Fabric for a new run (the init is the same on every rank; dropout draws differ)."""
    torch.manual_seed(t.cfg.train.seed * 7919 + t.fabric.global_rank)
    t.model, t.optimizer = t.fabric.setup(t.objective, t.optimizer)
    return ResumePoint()


def restore(t: Training, out: Path) -> ResumePoint:
    """Load the run's checkpoint into the model, optimizer and random-number states."""
    point = resume_point(out, t.cfg, ignore=RESUME_IGNORES)
    saved_plan = point.checkpoint.get("plan") or {}
    if saved_plan.get("replans") and t.cfg.train.epochs == saved_plan.get("first_epochs"):
        t.plan = dict(saved_plan)  # a --budget run resumed as it was: the schedule it stopped in
        restore_replans(t, saved_plan)
    for key in ("view", *CHOSEN_FROM_IMAGES):  # what `auto` chose when the run started, and why
        if key in saved_plan:
            t.plan.setdefault(key, saved_plan[key])
    restore_state(t.objective, point.checkpoint["model"], point.path)
    restore_rng_states(point.checkpoint["rng"], t.fabric.global_rank, t.fabric.world_size, t.loader_gen, t.aug_gen,
                       t.fabric.device)
    t.model, t.optimizer = t.fabric.setup(t.objective, t.optimizer)
    restore_state(t.optimizer, point.checkpoint["optimizer"], point.path)
    return point


def train_one_epoch(t: Training, epoch: int, bar) -> dict:
    """One pass over the training split (moving the run's progress bar); returns the epoch's log entry
    (without the monitors)."""
    fabric, spe = t.fabric, t.spe
    world, batch = fabric.world_size, t.loader.batch_size
    # the last epoch of a --budget run may be part of one
    t.loader.max_batches = t.last_steps if epoch == t.cfg.train.epochs - 1 and t.last_steps < spe else \
        t.cfg.train.max_steps_per_epoch
    steps = len(t.loader)
    t.model.train()
    meter = EpochMeter(steps, fabric.device, bar)

    def complaint(i: int) -> str:
        step = epoch * spe + i
        where = f"at epoch {epoch + 1}, within steps {max(step - CHECK_EVERY, 0) + 1}-{step + 1}"
        if not inputs_finite(t):
            return (f"loss became non-finite {where}: the augmented images themselves are not finite; check the "
                    "augmentation settings (--set augment.KEY) and the data")
        return (f"loss became non-finite {where} (lr {t.schedule[step]:.2e}); lower --lr, raise "
                "train.warmup_epochs or set train.grad_clip, and check the data for NaNs")
    for i, (x, y, _) in enumerate(t.loader):
        step = epoch * spe + i
        for group in t.optimizer.param_groups:
            group["lr"] = t.schedule[step]
        loss, _stats = t.model(x, y, t.aug_gen)
        t.optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        if t.cfg.train.grad_clip > 0:
            fabric.clip_gradients(t.model, t.optimizer, max_norm=t.cfg.train.grad_clip, error_if_nonfinite=False)
        t.optimizer.step()
        if t.momentum is not None:
            t.objective.update_teacher(t.momentum[step])
        meter.step(i, loss, x.shape[0] * world, complaint, lr=f"{t.schedule[step]:.2e}")
    seconds = meter.close()
    loss = float(fabric.all_reduce(meter.loss_sum / steps, reduce_op="mean"))
    return {"epoch": epoch + 1, "step": epoch * spe + steps, "loss": loss, "lr": t.schedule[epoch * spe + steps - 1],
            "images_per_s": steps * batch * world / seconds, "seconds": seconds}


@torch.no_grad()
def inputs_finite(t: Training, rows: int = 256) -> bool:
    """Whether clean and augmented views of some training images are finite (where a non-finite loss comes
    from: the data and augmentation, or the training itself)."""
    idx = t.ds.splits["train"][:rows]
    x = t.ds.images[idx].to(t.fabric.device)
    gen = torch.Generator(device=t.fabric.device).manual_seed(0)
    return bool(torch.isfinite(t.pipeline.clean(x)).all() and torch.isfinite(t.pipeline.augmented(x, gen)).all())


def gathered_rng_states(t: Training) -> dict:
    """Every rank's random-number states, gathered for rank 0's checkpoint (every rank takes part)."""
    fabric = t.fabric
    gather = (lambda s: s[None]) if fabric.world_size == 1 else (lambda s: fabric.all_gather(s.to(fabric.device)).cpu())
    return rng_states(t.loader_gen, t.aug_gen, fabric.device, gather)


def pipeline_info(t: Training) -> dict:
    """What encoder.pt needs besides the weights to rebuild the input pipeline."""
    p = t.pipeline
    return {"shape": list(p.shape), "view": p.view.name, "patch": getattr(p.view, "patch", None),
            "mean": p.mean.flatten().tolist(), "std": p.std.flatten().tolist(), "sequence_shape": list(p.seq_shape),
            "classes": t.ds.classes}


def run_meta(t: Training, precision: str, start_epoch: int) -> dict:
    ds, encoder, tc = t.ds, t.objective.encoder, t.cfg.train
    return base_meta(tc.seed) | {
        "objective": t.cfg.objective.name, "device": str(t.fabric.device), "precision": precision,
        "world_size": t.fabric.world_size, "dataset": ds.spec, "split": ds.split_info, "image_shape": list(ds.shape),
        "sequence_shape": list(t.pipeline.seq_shape), "embedding_dim": encoder.out_dim,
        "num_classes": len(ds.classes), "classes": ds.classes, "mean": t.stats[0], "std": t.stats[1],
        "parameters": sum(p.numel() for p in encoder.parameters()),
        "resumed_at_epoch": start_epoch or None, "schedule": t.plan, "data_notes": data_notes(ds)}


def final_metrics(t: Training, log: list[dict], elapsed: float) -> dict:
    cfg, ds = t.cfg, t.ds
    metrics = {"objective": cfg.objective.name, "epochs": cfg.train.epochs,
               "final_loss": log[-1]["loss"] if log else None, "train_seconds": elapsed,
               "knn_top1": next((e["knn_top1"] for e in reversed(log) if "knn_top1" in e), None)}
    if t.fabric.global_rank == 0 and log:
        metrics |= collapse_verdict(log[-1]["embedding_std"], t.objective.encoder.out_dim)
    short = short_of_plan(t.plan["steps"], cfg.train.steps) if t.plan.get("how") != "auto" else None
    why = short or still_improving(log, t.monitors.queries)
    metrics["undertrained"] = {"why": why, "try": longer_run(t, to_plan=bool(short))} if why else None
    test_idx = ds.splits.get("test")
    if spec_of(cfg.objective.name).uses_labels and test_idx is not None and (ds.labels[test_idx] >= 0).any():
        metrics["test"] = supervised_test_metrics(t.objective, t.pipeline, ds.images, ds.labels, test_idx,
                                                  len(ds.classes), t.fabric.device)
    return metrics


def longer_run(t: Training, to_plan: bool = False) -> str:
    """The flag that trains about twice as long, as this run's schedule was chosen (`to_plan`: the flag that
    gives the default plan's steps)."""
    tc = t.cfg.train
    if to_plan:
        if t.plan.get("how") == "budget":
            return f"--budget {tc.steps * t.plan['seconds_per_step']:.0f}s (about the default plan), or no --budget"
        return f"--epochs {auto_epochs(tc.steps, t.plan['steps_per_epoch'])} (the default plan), or no --epochs"
    if t.plan.get("how") == "budget":
        return f"--budget {2 * parse_duration(tc.budget):.0f}s"
    if t.plan.get("how") == "auto":
        return f"--set train.steps={2 * tc.steps}"
    return f"--epochs {2 * tc.epochs}"
