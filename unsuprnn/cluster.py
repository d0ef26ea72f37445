"""`unsuprnn cluster`: a SCAN clustering stage on top of any pretrained run.

1. Mine the nearest neighbours of every training image with the run's frozen encoder.
2. SCAN: train several clustering heads (batch norm + linear; and, if `cluster.encoder_lr` > 0,
   fine-tune the encoder) so that an augmented image and an augmented neighbour fall in the same cluster, with an
   entropy term that spreads images over all clusters; keep the head with the lowest loss.
3. Self-labeling: train that head (and, if `cluster.selflabel_encoder_lr` > 0, the encoder) on the
   images it is already confident about (weak view), through a strongly augmented view, with
   class-balanced cross entropy.

Labels are never used for training; where the dataset has them they only score (log, metrics).
The output is a run directory like pretrain's (config.yaml, log.jsonl, meta.json, metrics.json,
checkpoint.pt, encoder.pt) plus cluster_head.pt; `probe`, `export` and `report` read it.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import torch
from torch import nn

from .atomic import write_bytes, write_text
from .budget import check_schedule_size
from .checkpoint import (file_sha256, load_encoder_file, load_run_checkpoint, load_run_encoder, restore_state,
                         save_checkpoint, save_encoder)
from .config import ClusterConfig, Config, check_config
from .data import load_dataset_matching
from .data.augment import BatchAugment
from .data.loader import BatchLoader
from .devices import resolve_device
from .errors import UserError
from .evaluate.embed import embed_images
from .evaluate.metrics import clustering_metrics
from .progress import on_terminal, progress_bar
from .rundir import base_meta, check_out, check_resume_config, epoch_line, read_json, read_log, write_json, write_log
from .runwriter import claim_run, refuse_if_in_use
from .scan import (ClusterHeads, cluster_head, confidence_ce, confident_clusters, mine_neighbors, scan_loss,
                   strong_augment)
from .train import CHECK_EVERY, lr_schedule

HEAD_FILE = "cluster_head.pt"
HEAD_FORMAT = "unsuprnn-cluster-head"
CHECKPOINT_KEYS = ("epoch", "elapsed", "phase", "best_head", "model", "optimizer", "rng", "neighbors",
                   "source_encoder", "config")


def source_config(run: Path) -> Config:
    """The config the run's encoder was trained with (read from its encoder.pt), with the cluster
    section at today's defaults: a run records the cluster defaults of the day it was trained, which
    must not silently decide a later clustering stage's settings."""
    path = run / "encoder.pt" if run.is_dir() else run
    if run.is_dir() and not path.is_file():
        raise UserError(f"{run} has no encoder.pt; pretrain into it first (unsuprnn pretrain --out {run})")
    cfg = load_encoder_file(path)[1]
    cfg.cluster = ClusterConfig()
    return cfg


def load_cluster_head(run: str | Path) -> nn.Module | None:
    """The clustering head of a cluster run (embedding [B, E] -> logits [B, K]), or None for other runs."""
    path = Path(run) / HEAD_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        head = cluster_head(state["embed_dim"], state["clusters"])
        head.load_state_dict(state["state_dict"])
    except Exception as exc:
        raise UserError(f"{path} is damaged ({type(exc).__name__}); run `unsuprnn cluster` again") from None
    if state.get("format") != HEAD_FORMAT:
        raise UserError(f"{path} is not an unsuprnn clustering head; run `unsuprnn cluster` again")
    return head.eval()


def save_cluster_head(path: Path, head: nn.Sequential) -> None:
    buf = io.BytesIO()
    linear = head[-1]
    torch.save({"format": HEAD_FORMAT, "version": 1, "embed_dim": linear.in_features, "clusters": linear.out_features,
                "state_dict": {k: v.detach().cpu() for k, v in head.state_dict().items()}}, buf)
    write_bytes(path, buf.getvalue())


@torch.no_grad()
def assign_clusters(encoder: nn.Module, head: nn.Module, pipeline, images: torch.Tensor, device,
                    indices: torch.Tensor | None = None, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean images -> (cluster ids [n] int64, confidence = the largest softmax probability [n])."""
    return confident_clusters(embed_images(nn.Sequential(encoder, head.to(device)), pipeline, images, device,
                                           indices=indices, progress=progress))


@torch.no_grad()
def head_losses(heads: ClusterHeads, z: torch.Tensor, neighbors: torch.Tensor, entropy_weight: float) -> torch.Tensor:
    """Each head's SCAN loss on clean embeddings z [N, E] with all mined neighbours [N, n] -> [heads]:
    every (image, neighbour) pair once. The head with the lowest one is kept (as SCAN does)."""
    heads.eval()  # batch norm on its running statistics, and left unchanged by this pass
    n = neighbors.shape[1]
    return torch.stack([scan_loss(lg.repeat_interleave(n, 0), lg[neighbors.reshape(-1)], entropy_weight)[0]
                        for lg in heads(z)]).cpu()


def _rows_on_device(loader: BatchLoader, rows: torch.Tensor) -> torch.Tensor:
    """uint8 images of dataset rows `rows`, on the loader's device (resident or gathered)."""
    if loader.resident:
        return loader.images[rows.to(loader.device)]
    return loader.images[rows].to(loader.device)


def train_clusters(cfg: Config, run: str | Path | None, out: str | Path, resume: bool = False,
                   force: bool = False, quiet: bool = False) -> dict:
    """Train the clustering stage of `cfg.cluster` on the encoder of `run`, writing the run directory `out`.

    run: the pretrained run (or a resumed cluster run's source, read from its meta.json when None).
    Returns the metrics also written to metrics.json.
    """
    out, cc, seed = Path(out), cfg.cluster, cfg.train.seed
    check_config(cfg)
    device = resolve_device(cfg.train.device)
    resuming = check_out(out, resume, force)
    refuse_if_in_use(out)
    if resuming:
        check_resume_config(out, cfg, ignore=("train.device",))
        run = run or read_json(out / "meta.json").get("source_run")
    if run is None:
        raise UserError("pass --run DIR: the pretrained run whose encoder is to be clustered")
    run = Path(run)
    if run.resolve() == out.resolve():
        raise UserError("--out must be a new directory, not the --run being clustered")
    encoder, pipeline, _, info = load_run_encoder(run, device)
    source_digest = file_sha256(run / "encoder.pt" if run.is_dir() else run)
    ds = load_dataset_matching(cfg.data, seed, info["shape"])
    train_idx = ds.splits["train"]
    n = len(train_idx)
    k = cc.clusters or len(ds.classes)
    if k < 2:
        raise UserError(f"{ds.spec} has no classes to count; pass --clusters K (K >= 2)")
    if k > n:
        raise UserError(f"--clusters {k} is more than the {n} training images; pass --clusters at most {n}")
    if cc.neighbors >= n:
        raise UserError(f"--neighbors {cc.neighbors} needs more than {cc.neighbors} training images, "
                        f"the dataset has {n}; pass --neighbors at most {n - 1}")
    ckpt = load_run_checkpoint(out, cfg, ignore=("train.device",), keys=CHECKPOINT_KEYS) if resuming else None
    if ckpt is not None and ckpt.get("source_encoder") != source_digest:
        raise UserError(f"{run} is not the encoder {out} was clustered from (its encoder.pt changed); "
                        "resume with the original --run, or start over with --force")

    y_train = ds.labels[train_idx]
    if ckpt is None:
        feats = embed_images(encoder, pipeline, ds.images, device, progress=not quiet, indices=train_idx)
        neighbors = mine_neighbors(feats, cc.neighbors)
    else:
        neighbors = ckpt["neighbors"]
    known = y_train >= 0
    nbr_acc = (100.0 * (y_train[neighbors] == y_train[:, None])[known].float().mean().item()
               if known.any() else None)

    torch.manual_seed(seed)
    heads = ClusterHeads(encoder.out_dim, k, cc.heads)
    model = nn.ModuleDict({"encoder": encoder, "heads": heads}).to(device)
    loader_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed * 1000 + 17)
    loader = BatchLoader(ds.images, ds.labels, cc.batch_size, device, shuffle=True, drop_last=True,
                         generator=loader_gen, indices=train_idx)
    spe = len(loader)
    check_schedule_size(cc.epochs + cc.selflabel_epochs, spe)
    position = torch.full((len(ds.images),), -1, dtype=torch.long)
    position[train_idx] = torch.arange(n)
    strong = BatchAugment(strong_augment(cfg.augment, cc.strong_augment))
    schedules = {"scan": lr_schedule(1.0, cc.epochs * spe, spe).tolist(),
                 "selflabel": lr_schedule(1.0, max(cc.selflabel_epochs, 1) * spe, spe).tolist()}

    start_epoch, elapsed, log, best = 0, 0.0, [], None
    if ckpt is not None:
        restore_state(model, ckpt["model"], out / "checkpoint.pt")
        start_epoch, elapsed, best = ckpt["epoch"], ckpt["elapsed"], ckpt["best_head"]
        loader_gen.set_state(ckpt["rng"]["loader"])
        aug_gen.set_state(ckpt["rng"]["aug"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if device.type == "cuda" and "cuda" in ckpt["rng"]:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
        log = [e for e in read_log(out / "log.jsonl") if e["epoch"] <= start_epoch]

    with claim_run(out, resume, force) as writer:  # everything is checked: the first write happens here
        meta = base_meta(seed) | {
            "stage": "cluster", "source_run": str(run.resolve()), "source_encoder_sha256": source_digest,
            "objective": cfg.objective.name, "device": str(device), "dataset": ds.spec, "split": ds.split_info,
            "clusters": k, "neighbors": cc.neighbors, "neighbor_accuracy": nbr_acc, "embedding_dim": encoder.out_dim,
            "classes": ds.classes, "resumed_at_epoch": start_epoch or None}
        if not resuming:
            write_text(writer.work / "config.yaml", cfg.to_yaml())
        write_json(writer.work / "meta.json", meta)

        test_idx = ds.splits.get("test")
        score_idx = test_idx[ds.labels[test_idx] >= 0] if test_idx is not None else None
        total_epochs = cc.epochs + cc.selflabel_epochs
        quiet = quiet or not on_terminal()  # off a terminal: one line per epoch, no bar frames
        phase, optimizer = None, None
        for epoch in range(start_epoch, total_epochs):
            want = "scan" if epoch < cc.epochs else "selflabel"
            if want != phase:  # a fresh Adam per phase; a resumed phase gets its saved state back
                phase = want
                params = heads.parameters() if phase == "scan" else heads.heads[best].parameters()
                groups = [{"params": list(params), "base_lr": cc.lr if phase == "scan" else cc.selflabel_lr}]
                encoder_lr = cc.encoder_lr if phase == "scan" else cc.selflabel_encoder_lr
                finetune = encoder_lr > 0
                encoder.requires_grad_(finetune)
                if finetune:
                    groups.append({"params": list(encoder.parameters()), "base_lr": encoder_lr})
                optimizer = torch.optim.Adam(groups, lr=cc.lr, weight_decay=cc.weight_decay)
                if ckpt is not None and epoch == start_epoch and ckpt["phase"] == phase:
                    restore_state(optimizer, ckpt["optimizer"], out / "checkpoint.pt")
            phase_epoch = epoch if phase == "scan" else epoch - cc.epochs
            entry = run_epoch(phase, model, optimizer, loader, position, neighbors, train_idx, pipeline, strong,
                              schedules[phase], phase_epoch, spe, cc, best, loader_gen, aug_gen, finetune,
                              desc=f"{phase} {epoch + 1}/{total_epochs}", show_bar=not quiet)
            elapsed += entry["seconds"]
            entry = {"epoch": epoch + 1, "phase": phase} | entry | {"elapsed": elapsed}
            if phase == "scan" and epoch + 1 == cc.epochs:
                z = embed_images(encoder, pipeline, ds.images, device, indices=train_idx).to(device)
                losses = head_losses(heads, z, neighbors.to(device), cc.entropy_weight)
                best = int(losses.argmin())
                entry["head_eval_losses"], entry["selected_head"] = losses.tolist(), best
            current = best if best is not None else int(torch.tensor(entry["head_losses"]).argmin())
            if score_idx is not None and len(score_idx):
                ids, _ = assign_clusters(encoder, heads.heads[current], pipeline, ds.images, device, indices=score_idx)
                entry["test_cluster_acc"] = clustering_metrics(ds.labels[score_idx].numpy(), ids.numpy())["accuracy"]
            log.append(entry)
            if quiet:
                acc = f" cluster acc {entry['test_cluster_acc']:.2f}%" if "test_cluster_acc" in entry else ""
                print(epoch_line(f"{phase} epoch", epoch + 1, total_epochs, entry, acc), file=sys.stderr)
            write_log(writer.work / "log.jsonl", log)
            save_encoder(writer.work / "encoder.pt", encoder, cfg, info)
            save_cluster_head(writer.work / HEAD_FILE, heads.heads[current])
            rng = {"loader": loader_gen.get_state(), "aug": aug_gen.get_state(), "torch": torch.get_rng_state()}
            if device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state(device)
            save_checkpoint({"epoch": epoch + 1, "elapsed": elapsed, "phase": phase, "best_head": best,
                             "model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": rng,
                             "neighbors": neighbors, "source_encoder": source_digest, "config": cfg.to_dict()},
                            writer.work / "checkpoint.pt")
            writer.checkpointed()

        metrics = final_metrics(encoder, heads.heads[best], pipeline, ds, device, log, k, best, nbr_acc, elapsed)
        write_json(writer.work / "metrics.json", metrics)
        return metrics


def run_epoch(phase: str, model, optimizer, loader, position, neighbors, train_idx, pipeline, strong,
              schedule, phase_epoch: int, spe: int, cc, best, loader_gen, aug_gen, finetune: bool,
              desc: str, show_bar: bool) -> dict:
    """One epoch of SCAN (all heads) or self-labeling (head `best`); returns the epoch's log entry."""
    encoder, heads = model["encoder"], model["heads"]
    encoder.train(finetune)
    heads.train()
    t0 = time.perf_counter()
    device = loader.device
    loss_sum = torch.zeros((), device=device)
    per_head = torch.zeros(len(heads.heads), device=device)
    confident = torch.zeros((), device=device)
    seen = 0

    def encode(seq: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(finetune and torch.is_grad_enabled()):
            return encoder(seq)

    bar = progress_bar(show_bar, total=spe * loader.batch_size, unit="img", unit_scale=True, desc=desc)
    for i, (x, _, rows) in enumerate(loader):
        step = phase_epoch * spe + i
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * schedule[step]
        b = x.shape[0]
        if phase == "scan":
            pick = torch.randint(neighbors.shape[1], (b,), generator=loader_gen)
            nbr_rows = train_idx[neighbors[position[rows], pick]]
            views = torch.cat([pipeline.augmented(x, aug_gen), pipeline.augmented(_rows_on_device(loader, nbr_rows), aug_gen)])
            logits = heads(encode(views))                       # [heads, 2B, K]
            parts = [scan_loss(lg[:b], lg[b:], cc.entropy_weight)[0] for lg in logits]
            loss = torch.stack(parts).sum()
            per_head += torch.stack(parts).detach()
        else:
            head = heads.heads[best]
            with torch.no_grad():
                weak = head(encoder(pipeline.augmented(x, aug_gen)))
            strong_seq = pipeline.sequence(strong(pipeline.unit(x), aug_gen))
            loss, mask = confidence_ce(weak, head(encode(strong_seq)), cc.threshold)
            confident += mask.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
        seen += b
        if (i + 1) % CHECK_EVERY == 0 or i + 1 == spe:
            if not torch.isfinite(loss_sum):
                raise UserError(f"the {phase} loss became non-finite at step {step + 1}; lower --lr or "
                                "--set cluster.encoder_lr, or check the run's embeddings for NaNs")
            bar.set_postfix(loss=f"{loss_sum.item() / (i + 1):.4f}")
        bar.update(b)
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    entry = {"loss": loss_sum.item() / spe, "lr": optimizer.param_groups[0]["lr"],
             "images_per_s": seen / seconds, "seconds": seconds}
    if phase == "scan":
        entry["head_losses"] = (per_head / spe).tolist()
    else:
        entry["confident"] = confident.item() / max(seen, 1)
    return entry


def final_metrics(encoder, head, pipeline, ds, device, log, k, best, nbr_acc, elapsed) -> dict:
    """Cluster sizes on the training split, and scores where labels exist (scoring only)."""
    out = {"stage": "cluster", "clusters": k, "selected_head": best, "neighbor_accuracy": nbr_acc,
           "train_seconds": elapsed, "final_loss": log[-1]["loss"] if log else None}
    for split, idx in ds.splits.items():
        ids, conf = assign_clusters(encoder, head, pipeline, ds.images, device, indices=idx)
        res = {"size": len(idx), "cluster_sizes": torch.bincount(ids, minlength=k).tolist(),
               "mean_confidence": float(conf.mean()) if len(conf) else None}
        known = (ds.labels[idx] >= 0).numpy()
        if known.any():
            res |= clustering_metrics(ds.labels[idx].numpy()[known], ids.numpy()[known])
        out[split] = res
    return out
