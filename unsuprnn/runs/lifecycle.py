"""The lifecycle every training stage shares (`pretrain`, `supervised`, `cluster`):

    resuming = check_target(out, cfg, resume, force, ignore)     # checks only: nothing written yet
    ...build data and model; on --resume: point = resume_point(out, cfg, ignore) and restore it...
    with claim_run(out, resume, force) as writer:                 # the first write (lock, --force staging)
        run = RunRecorder(writer, point.log, quiet)
        run.begin(cfg, meta, resuming)                            # config.yaml, meta.json
        for epoch in ...:
            meter = EpochMeter(steps, images, device, desc)       # progress bar, non-finite stop
            ...one step: meter.step(i, loss, images)...
            run.end_epoch(entry, line, save_weights, checkpoint)  # log.jsonl, weights, checkpoint, swap
        run.finish(metrics)                                       # metrics.json

With `train.logger` set, each epoch's numbers also go to TensorBoard or a CSV file (runs/loggers.py).

A checkpoint carries every random-number state (`rng_states`), so a resumed run ends with the weights an
uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from ..config import Config, check_config
from ..errors import UserError
from ..progress import progress_bar
from ..atomic import together, write_text
from .checkpoint import RUN_KEYS, load_run_checkpoint, save_checkpoint
from .loggers import check_logger_folder, log_epochs, open_logger
from .files import CONFIG_HEADER, check_out, check_resume_config, read_log, write_json, write_log
from .writer import RunWriter, refuse_if_in_use, settle

CHECK_EVERY = 25  # steps between host syncs for the non-finite check and the progress bar


def check_target(out: Path, cfg: Config, resume: bool, force: bool, ignore: tuple[str, ...] = (),
                 single_process: bool = True) -> bool:
    """Check the config and `out` against --resume/--force without writing anything (safe on every DDP
    rank). Returns True when an existing run is to be resumed."""
    check_config(cfg)
    if single_process:
        settle(out)  # a --force killed mid-swap is completed before anything is read
    if single_process:  # (DDP ranks start later than the one that holds the lock)
        refuse_if_in_use(out)
    resuming = check_out(out, resume, force)
    check_logger_folder(out, cfg.train.logger)
    if resuming:
        check_resume_config(out, cfg, ignore=ignore)
    return resuming


@dataclasses.dataclass
class ResumePoint:
    """Where a run starts: its checkpoint (None for a fresh run) and the file it came from, its epoch,
    training seconds and log."""
    checkpoint: dict | None = None
    path: Path | None = None
    epoch: int = 0
    elapsed: float = 0.0
    log: list = dataclasses.field(default_factory=list)


def resume_point(out: Path, cfg: Config, ignore: tuple[str, ...] = (), keys: tuple[str, ...] = RUN_KEYS) -> ResumePoint:
    """The checkpoint of the run in `out` (refused unless written with this config) and its log up to it."""
    ckpt = load_run_checkpoint(out, cfg, ignore=ignore, keys=keys)
    epoch = ckpt["epoch"]
    log = [e for e in read_log(out / "log.jsonl") if e["epoch"] <= epoch]
    return ResumePoint(ckpt, out / "checkpoint.pt", epoch, ckpt["elapsed"], log)


def rng_states(loader_gen: torch.Generator, aug_gen: torch.Generator, device: torch.device,
               gather: Callable[[torch.Tensor], torch.Tensor] = lambda s: s[None]) -> dict:
    """The random-number states a checkpoint needs: the loader's (shared by every process) and, stacked
    one row per process by `gather`, the augmentation, torch and CUDA ones."""
    out = {"loader": loader_gen.get_state(), "aug": gather(aug_gen.get_state()), "torch": gather(torch.get_rng_state())}
    if device.type == "cuda":
        out["cuda"] = gather(torch.cuda.get_rng_state(device))
    return out


def restore_rng_states(rng: dict, rank: int, world: int, loader_gen: torch.Generator, aug_gen: torch.Generator,
                       device: torch.device) -> None:
    if not all(isinstance(rng.get(k), torch.Tensor) for k in ("loader", "aug", "torch")):
        raise UserError("the checkpoint's random-number states are damaged; restore checkpoint.pt or start over "
                        "with --force")
    rows = {k: v[None] if v.dim() == 1 else v for k, v in rng.items() if k != "loader"}  # single-process format
    if rows["aug"].shape[0] != world:
        raise UserError(f"the checkpoint was written by {rows['aug'].shape[0]} process(es), this run has {world}; "
                        "resume with the same --devices and --num-nodes")
    # .clone(): a row of the stacked states has a storage offset, which set_state does not honour
    loader_gen.set_state(rng["loader"].clone())
    aug_gen.set_state(rows["aug"][rank].clone())
    torch.set_rng_state(rows["torch"][rank].clone())
    if device.type == "cuda" and "cuda" in rows:
        torch.cuda.set_rng_state(rows["cuda"][rank].clone(), device)


class EpochMeter:
    """One epoch's running loss and its stop on a non-finite loss; it moves the run's progress bar. The host
    syncs with the device every CHECK_EVERY steps, not every step."""

    def __init__(self, steps: int, device: torch.device, bar):
        self.steps, self.device, self.bar, self.t0 = steps, device, bar, time.perf_counter()
        self.loss_sum = torch.zeros((), device=device)
        self.bad = torch.zeros((), dtype=torch.bool, device=device)

    def step(self, i: int, loss: torch.Tensor, images: int, complaint: Callable[[int], str], **postfix) -> None:
        """Count step `i`'s loss; every CHECK_EVERY steps stop with `complaint(i)` if a loss was not finite."""
        self.bad |= ~torch.isfinite(loss.detach())
        self.loss_sum += loss.detach()
        if (i + 1) % CHECK_EVERY == 0 or i + 1 == self.steps:
            if self.bad.item():
                raise UserError(complaint(i))
            self.bar.set_postfix(loss=f"{self.loss_sum.item() / (i + 1):.4f}", **postfix, refresh=False)
        self.bar.update(images)

    def close(self) -> float:
        """End the epoch; returns its seconds (after the device has finished its work)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - self.t0


def epoch_line(what: str, epoch: int, epochs: int, entry: dict, extra: str = "") -> str:
    """The one line per epoch printed instead of a progress bar (--quiet, or stderr not a terminal)."""
    return (f"{what} {epoch}/{epochs} loss {entry['loss']:.4f} {entry['images_per_s']:.0f} img/s "
            f"{entry['seconds']:.1f}s{extra}")


class RunRecorder:
    """What a training stage writes into its run directory once it holds it, and what it shows: one
    progress bar for the whole run (rate and the run's ETA) on a terminal, and one line per epoch (above
    the bar on a terminal, so the history stays). `writer` None: a DDP rank other than 0, which keeps the
    log and writes and shows nothing. Use as a context manager (it closes the bar)."""

    def __init__(self, writer: RunWriter | None, log: list[dict], quiet: bool, total: int = 0, done: int = 0,
                 desc: str = "training"):
        self.writer, self.log, self.quiet, self.meta, self.logger, self.logger_kind = writer, log, quiet, {}, None, "none"
        self.bar = progress_bar(writer is not None and not quiet, total=total, initial=done, unit="img",
                                unit_scale=True, desc=desc, leave=True)

    def __enter__(self) -> "RunRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
        if self.logger is not None:
            self.logger.finalize("success" if exc[0] is None else "failed")

    def begin(self, cfg: Config, meta: dict, resuming: bool) -> None:
        """config.yaml and meta.json of a new run; a resumed run keeps its config.yaml, and its meta.json is
        replaced with its next checkpoint (so that a resume that fails leaves every file as it was)."""
        self.meta, self.meta_due, self.logger_kind = meta, resuming, cfg.train.logger
        if self.writer is None:
            return
        if resuming:
            return
        write_text(self.writer.work / "config.yaml", CONFIG_HEADER + cfg.saved_yaml())
        write_json(self.writer.work / "meta.json", meta)

    def end_epoch(self, entry: dict, line: str, save_weights: Callable[[Path], None], checkpoint: dict) -> None:
        """Log the epoch, then write log.jsonl, the weights (`save_weights(folder)`) and the checkpoint, all
        of them or none; a --force run then takes the old run's place (at its first checkpoint)."""
        self.log.append(entry)
        if self.writer is None:
            return
        if self.bar.disable:
            print(line, file=sys.stderr)
        else:
            self.bar.write(line, file=sys.stderr)
        work = self.writer.work
        with together():
            write_log(work / "log.jsonl", self.log)
            save_weights(work)
            save_checkpoint(checkpoint, work / "checkpoint.pt")
            if self.meta_due:
                write_json(work / "meta.json", self.meta)
                self.meta_due = False
        self.writer.checkpointed()
        if self.logger is None and self.logger_kind != "none":
            # opened once the run's folder is final (a --force run is staged until its first checkpoint); a
            # resumed run's new version starts with the epochs it keeps
            self.logger = open_logger(self.logger_kind, self.writer.work)
            log_epochs(self.logger, self.log)
        else:
            log_epochs(self.logger, [entry])

    def finish(self, metrics: dict, meta: dict | None = None, cfg: Config | None = None) -> dict | None:
        """metrics.json (and meta.json again with `meta` added: what the run ended with; and config.yaml again
        with `cfg`, where the run ended with other resolved settings than it began with: a --budget run's
        re-planned epochs, a resumed run's new length), together; returns the metrics (None on a DDP rank other
        than 0)."""
        if self.writer is None:
            return None
        with together():
            if meta or self.meta_due:
                write_json(self.writer.work / "meta.json", self.meta | (meta or {}))
            if cfg is not None:
                write_text(self.writer.work / "config.yaml", CONFIG_HEADER + cfg.saved_yaml())
            write_json(self.writer.work / "metrics.json", metrics)
        return metrics
