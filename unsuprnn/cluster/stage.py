"""`unsuprnn cluster`: a SCAN clustering stage on top of any pretrained run.

1. Mine the nearest neighbours of every training image with the run's frozen encoder.
2. SCAN: train several clustering heads (batch norm + linear; and, if `cluster.encoder_lr` > 0,
   fine-tune the encoder) so that an augmented image and an augmented neighbour fall in the same cluster, with an
   entropy term that spreads images over all clusters; keep the head with the lowest loss.
3. Self-labeling: train that head (and, if `cluster.selflabel_encoder_lr` > 0, the encoder) on the
   images it is already confident about (weak view), through a strongly augmented view, with
   class-balanced cross entropy.
4. The guard (`cluster.guard`, cluster/guard.py): the head is held against k-means of the same embeddings and
   UMAP's grouping by the modularity of their partitions on the kNN graph (no labels); the head is kept unless
   one of them splits the graph clearly better, which is then handed back as a head.
Before SCAN, every head is fitted to k-means of the embeddings' UMAP layout (`cluster.init umap`;
cluster/guard.py), a grouping that follows the neighbourhood graph; SCAN and self-labeling refine it.

Labels are never used for training; where the dataset has them they only score (log, metrics).
The output is a run directory like pretrain's, written through the same lifecycle (`runs.lifecycle`),
plus cluster_head.pt; `probe`, `export` and `report` read it.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import torch
from torch import nn

from ..budget import check_activations, check_schedule_size
from ..config import ClusterConfig, Config
from ..data.dataset import load_dataset_matching
from ..data.augment import BatchAugment
from ..data.images import Images
from ..data.loader import BatchLoader
from ..data.notes import data_notes
from ..data.pipeline import SequencePipeline
from ..devices import resolve_device
from ..errors import UserError
from ..evaluate.kmeans import chosen_k
from ..evaluate.embed import embed_images
from ..evaluate.metrics import clustering_metrics
from ..names.clusters import AUTO, parse_k_range, resolve_k
from ..progress import on_terminal
from ..runs.checkpoint import (HEAD_FILE, file_sha256, load_cluster_head, load_encoder_file, load_run_encoder,
                               restore_state, save_cluster_head, save_encoder)
from ..runs.files import base_meta, check_run, read_json
from ..runs.lifecycle import (ResumePoint, RunRecorder, check_target, epoch_line, restore_rng_states, resume_point,
                              rng_states)
from ..runs.writer import claim_run
from ..plan import auto_neighbors
from .. import pacing
from ..plan import parse_duration
from ..schedules import lr_schedule, stretched
from ..models.heads import confident_clusters
from .epoch import Phase, cluster_one_epoch
from .guard import fit_head, guard, umap_kmeans
from .scan import ClusterHeads, assign_clusters, head_losses, mine_neighbors, strong_augment

CHECKPOINT_KEYS = ("epoch", "elapsed", "phase", "best_head", "model", "optimizer", "rng", "neighbors",
                   "source_encoder", "config")
RESUME_IGNORES = ("train.device", "train.logger")


def source_config(run: Path) -> Config:
    """The config a new clustering stage on `run` starts from: the one the run's encoder was trained with (read
    from its encoder.pt), and the stage's own settings at their defaults (a cluster run clustered again starts
    afresh too)."""
    run = check_run(run)
    cfg = load_encoder_file(run / "encoder.pt" if run.is_dir() else run)[1]
    cfg.cluster = ClusterConfig()
    cfg.train.devices = cfg.train.num_nodes = 1  # the stage runs in one process, whatever trained the encoder
    return cfg


@dataclasses.dataclass
class ClusterTraining:
    """What every epoch of the clustering stage uses, built once by `setup`."""
    cfg: Config
    device: torch.device
    ds: Images
    encoder: nn.Module
    heads: ClusterHeads
    model: nn.ModuleDict                 # encoder and heads: what the checkpoint holds
    pipeline: SequencePipeline
    info: dict                           # the source encoder's pipeline info (for encoder.pt)
    strong: BatchAugment                 # the self-labeling phase's strong view
    loader: BatchLoader
    loader_gen: torch.Generator
    aug_gen: torch.Generator
    neighbors: torch.Tensor              # [n, neighbors]: positions in the train split
    position: torch.Tensor               # [N]: each image's position in the train split (-1 = not in it)
    clusters: int
    source: tuple[Path, str]             # the source run and its encoder.pt's sha256
    k_choice: dict = dataclasses.field(default_factory=dict)  # --clusters auto: the K chosen and its curve
    guard_record: dict | None = None     # what the guard compared and kept (cluster/guard.py), once it has run
    seed_ids: torch.Tensor | None = None  # [n]: UMAP's grouping of the train split (cluster.init umap)
    embed_seconds: float = 0.0           # what embedding the train split took (a --budget stage's end is ~3 of it)

    @property
    def train_idx(self) -> torch.Tensor:
        return self.ds.splits["train"]


def train_clusters(cfg: Config, run: str | Path | None, out: str | Path, resume: bool = False,
                   force: bool = False, quiet: bool = False, started: float | None = None) -> dict:
    """Train the clustering stage of `cfg.cluster` on the encoder of `run`, writing the run directory `out`.

    run: the pretrained run (or a resumed cluster run's source, read from its meta.json when None).
    started: the clock reading a --budget counts from (the command's start; default: now).
    Returns the metrics also written to metrics.json.
    """
    started = pacing.now() if started is None else started
    out, cfg = Path(out), copy.deepcopy(cfg)  # `auto` settings are resolved in this copy
    cc = cfg.cluster
    if cfg.train.devices * cfg.train.num_nodes != 1:
        raise UserError(f"the clustering stage runs in one process, not on {cfg.train.devices} devices x "
                        f"{cfg.train.num_nodes} nodes; drop train.devices and train.num_nodes")
    device = resolve_device(cfg.train.device)
    ignores = RESUME_IGNORES + (("cluster.epochs", "cluster.selflabel_epochs") if cc.budget else ())  # (re-planned)
    resuming = check_target(out, cfg, resume, force, ignores)
    if resuming:
        run = run or read_json(out / "meta.json").get("source_run")
    if run is None:
        raise UserError("pass --run DIR: the pretrained run whose encoder is to be clustered")
    t, point = setup(cfg, Path(run), out, device, resuming, quiet, ignores)
    pacer = StagePacer(t, started, point) if cc.budget else None
    total, per_epoch = cc.epochs + cc.selflabel_epochs, len(t.loader) * t.loader.batch_size
    with claim_run(out, resume, force) as writer, RunRecorder(  # everything is checked: the first write happens here
            writer, point.log, quiet or not on_terminal(), total * per_epoch, point.epoch * per_epoch, "clustering") as rec:
        rec.begin(cfg, run_meta(t, point.epoch), resuming)
        phase, head = None, None
        best = point.checkpoint["best_head"] if point.checkpoint else None
        elapsed, epoch = point.elapsed, point.epoch
        while epoch < cc.epochs + cc.selflabel_epochs:  # (a --budget stage re-plans its epochs after each one)
            phase = next_phase(t, phase, epoch, best, point)
            entry = cluster_one_epoch(t, phase, epoch - phase.first_epoch, rec.bar)
            elapsed += entry["seconds"]
            entry = {"epoch": epoch + 1, "phase": phase.name} | entry | {"elapsed": elapsed}
            if pacer is not None:
                pacer.replan(epoch + 1, phase, entry)
                rec.bar.total = (cc.epochs + cc.selflabel_epochs) * per_epoch
            total = cc.epochs + cc.selflabel_epochs
            if phase.name == "scan" and epoch + 1 == cc.epochs:
                best = select_head(t, entry)
            current = best if best is not None else int(torch.tensor(entry["head_losses"]).argmin())
            head, kind = t.heads.heads[current], "scan"
            if epoch + 1 == total and cc.guard:
                head, kind = guarded_head(t, head)
            entry |= test_scores(t, head)
            acc = f" cluster acc {entry['test_cluster_acc']:.2f}%" if "test_cluster_acc" in entry else ""
            checkpoint = {"epoch": epoch + 1, "elapsed": elapsed, "phase": phase.name, "best_head": best,
                          "model": t.model.state_dict(), "optimizer": phase.optimizer.state_dict(),
                          "rng": rng_states(t.loader_gen, t.aug_gen, t.device), "neighbors": t.neighbors,
                          "source_encoder": t.source[1], "config": cfg.saved(), "k_choice": t.k_choice,
                          "guard": t.guard_record, "seed_ids": t.seed_ids, "schedule": phase.schedule,
                          "plan": pacer.plan if pacer else None}
            rec.end_epoch(entry, epoch_line(f"{phase.name} epoch", epoch + 1, total, entry, acc),
                          lambda work: save_weights(t, work, head, kind), checkpoint)
            if pacer is not None:
                pacer.ended_epoch()
            epoch += 1
        if head is None:  # a finished run resumed: its last head, as its last epoch wrote it
            head = load_cluster_head(out).to(t.device)
        meta = {"wall_seconds": pacing.now() - started} | ({"schedule": pacer.plan} if pacer else {})
        return rec.finish(final_metrics(t, rec.log, best, elapsed, head), meta, cfg)


class StagePacer:
    """A --budget clustering stage's clock (as pacing.py paces pretraining): after every epoch, the SCAN and
    self-labeling epochs left are fitted to what is left of the budget, in the ratio the stage was given, less
    what its end takes (the guard and the final assignments: about three passes over the embeddings); the
    phase's learning-rate cosine continues from where it stood. A resumed stage goes on from what it had spent."""

    def __init__(self, t: ClusterTraining, started: float, point: ResumePoint):
        cc, saved = t.cfg.cluster, (point.checkpoint or {}).get("plan") or {}
        self.t, self.budget = t, parse_duration(cc.budget)
        self.ratio = saved.get("ratio", cc.epochs / max(cc.epochs + cc.selflabel_epochs, 1))
        self.plan = {"how": "budget", "budget": cc.budget, "ratio": self.ratio, "replans": saved.get("replans", []),
                     "spent": saved.get("spent", 0.0)}
        self.started = pacing.now() - self.plan["spent"] if saved else started
        self.overhead, self.ended = 0.0, None
        if saved:  # the epochs the stage had planned when it stopped
            cc.epochs, cc.selflabel_epochs = saved["epochs"]

    def ended_epoch(self) -> None:
        self.ended = pacing.now()

    def replan(self, done: int, phase: Phase, entry: dict) -> None:
        t, cc, now = self.t, self.t.cfg.cluster, pacing.now()
        if self.ended is not None:
            self.overhead = max(0.0, now - self.ended - entry["seconds"])
        epoch_seconds = entry["seconds"] + self.overhead
        left = self.budget - (now - self.started) - 3 * t.embed_seconds
        total = done + max(0, int(left / max(epoch_seconds, 1e-9)))
        scan = max(done, round(total * self.ratio)) if done < cc.epochs else cc.epochs
        scan, selflabel = max(scan, 1), max(0, total - max(scan, 1))
        spe = len(t.loader)
        if phase.name == "scan" and scan != cc.epochs:
            phase.schedule = stretched(phase.schedule, done * spe, scan * spe, 1.0, 0.0, last_at_end=False)
        elif phase.name == "selflabel" and selflabel != cc.selflabel_epochs:
            into = (done - cc.epochs) * spe
            phase.schedule = stretched(phase.schedule, into, max(selflabel, done - cc.epochs) * spe, 1.0, 0.0,
                                       last_at_end=False)
        if (scan, selflabel) != (cc.epochs, cc.selflabel_epochs):
            cc.epochs, cc.selflabel_epochs = scan, selflabel
            self.plan["replans"].append([done, scan, selflabel])
            entry["planned_epochs"] = [scan, selflabel]
        self.plan |= {"epochs": [cc.epochs, cc.selflabel_epochs], "spent": pacing.now() - self.started}


def setup(cfg: Config, run: Path, out: Path, device: torch.device, resuming: bool,
          quiet: bool, ignores: tuple[str, ...] = RESUME_IGNORES) -> tuple[ClusterTraining, ResumePoint]:
    """The source encoder and data, the mined neighbours, heads, loader and (on resume) the checkpoint,
    each checked before any write."""
    cc, seed = cfg.cluster, cfg.train.seed
    if run.resolve() == out.resolve():
        raise UserError("--out must be a new directory, not the --run being clustered")
    encoder, pipeline, encoder_cfg, info = load_run_encoder(run, device)
    digest = file_sha256(run / "encoder.pt" if run.is_dir() else run)
    ds = load_dataset_matching(cfg.data, seed, info["shape"])
    if cc.neighbors == AUTO:
        cc.neighbors = auto_neighbors(len(ds.splits["train"]))
    check_sizes(ds, cc)
    point = resume_point(out, cfg, ignores, CHECKPOINT_KEYS) if resuming else ResumePoint()
    if point.checkpoint is not None and point.checkpoint.get("source_encoder") != digest:
        raise UserError(f"{run} is not the encoder {out} was clustered from (its encoder.pt changed); "
                        "resume with the original --run, or start over with --force")
    train_idx = ds.splits["train"]
    embed_seconds = 0.0
    k_choice, guard_record, feats, seed_ids = {}, None, None, None
    if point.checkpoint is None:
        t0 = pacing.now()
        feats = embed_images(encoder, pipeline, ds.images, device, progress=not quiet, indices=train_idx)
        embed_seconds = pacing.now() - t0
        neighbors = mine_neighbors(feats, cc.neighbors)
        if cc.clusters == AUTO:  # K from the frozen features of the training images (evaluate/kmeans.py)
            k_choice = chosen_k(feats, cc.k_range, seed)
    else:
        neighbors = point.checkpoint["neighbors"]
        k_choice = point.checkpoint.get("k_choice") or {}
        guard_record, seed_ids = point.checkpoint.get("guard"), point.checkpoint.get("seed_ids")
    if k_choice:
        cc.clusters = k_choice["k_auto"]  # the resolved config (config.yaml, the checkpoint) holds the K chosen
    k = resolve_k(cc.clusters, len(ds.classes))
    if feats is not None and cc.init == "umap":
        seed_ids = torch.from_numpy(umap_kmeans(feats, k, seed))
    torch.manual_seed(seed)
    heads = ClusterHeads(encoder.out_dim, k, cc.heads)
    if feats is not None and seed_ids is not None:  # every head starts from UMAP's grouping; SCAN refines it
        for head in heads.heads:
            fit_head(head.to(device), feats.to(device), seed_ids.numpy())
    model = nn.ModuleDict({"encoder": encoder, "heads": heads}).to(device)
    loader_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed * 1000 + 17)
    loader = BatchLoader(ds.images, ds.labels, cc.batch_size, device, shuffle=True, drop_last=True,
                         generator=loader_gen, indices=train_idx)
    check_schedule_size(cc.epochs + cc.selflabel_epochs, len(loader))
    check_activations(2 * loader.batch_size, encoder_cfg.encoder, pipeline.seq_shape, device)
    position = torch.full((len(ds.images),), -1, dtype=torch.long)
    position[train_idx] = torch.arange(len(train_idx))
    strong = BatchAugment(strong_augment(cfg.augment, cc.strong_augment))
    t = ClusterTraining(cfg, device, ds, encoder, heads, model, pipeline, info, strong, loader, loader_gen, aug_gen,
                        neighbors, position, k, (run, digest), k_choice, guard_record, seed_ids, embed_seconds)
    if point.checkpoint is not None:
        restore_state(model, point.checkpoint["model"], point.path)
        restore_rng_states(point.checkpoint["rng"], 0, 1, loader_gen, aug_gen, device)
    return t, point


def check_sizes(ds: Images, cc: ClusterConfig) -> None:
    """The number of clusters K (or the range `auto` chooses it from) and the neighbours, checked against
    the size of the train split."""
    n = len(ds.splits["train"])
    if cc.clusters == AUTO:
        lo, hi = parse_k_range(cc.k_range)
        if 2 * lo > n:
            raise UserError(f"--clusters auto needs at least {2 * lo} training images to choose from --k-range "
                            f"{cc.k_range}; the dataset has {n}: pass --clusters K")
        k = lo
    else:
        k = resolve_k(cc.clusters, len(ds.classes))
    if k < 2:
        raise UserError(f"{ds.spec} has no classes to count; pass --clusters K (K >= 2)")
    if k > n:
        raise UserError(f"--clusters {k} is more than the {n} training images; pass --clusters at most {n}")
    if cc.neighbors >= n:
        raise UserError(f"--neighbors {cc.neighbors} needs more than {cc.neighbors} training images, "
                        f"the dataset has {n}; pass --neighbors at most {n - 1}")


def next_phase(t: ClusterTraining, phase: Phase | None, epoch: int, best: int | None, point: ResumePoint) -> Phase:
    """The phase of `epoch`: the current one, or a new one with a fresh Adam (a resumed phase gets its
    saved optimizer state back)."""
    cc = t.cfg.cluster
    name = "scan" if epoch < cc.epochs else "selflabel"
    if phase is not None and phase.name == name:
        return phase
    scan = name == "scan"
    params = t.heads.parameters() if scan else t.heads.heads[best].parameters()
    groups = [{"params": list(params), "base_lr": cc.lr if scan else cc.selflabel_lr}]
    encoder_lr = cc.encoder_lr if scan else cc.selflabel_encoder_lr
    t.encoder.requires_grad_(encoder_lr > 0)
    if encoder_lr > 0:
        groups.append({"params": list(t.encoder.parameters()), "base_lr": encoder_lr})
    optimizer = torch.optim.Adam(groups, lr=cc.lr, weight_decay=cc.weight_decay)
    ckpt = point.checkpoint
    spe, epochs = len(t.loader), cc.epochs if scan else max(cc.selflabel_epochs, 1)
    # base_lr 1: the schedule is a multiplier of each group's own rate (heads, encoder)
    schedule = lr_schedule(1.0, epochs * spe, spe).tolist()
    if ckpt is not None and epoch == point.epoch and ckpt["phase"] == name:
        restore_state(optimizer, ckpt["optimizer"], point.path)
        schedule = ckpt.get("schedule") or schedule  # (a --budget stage's re-planned schedule)
    return Phase(name, optimizer, schedule, 0 if scan else cc.epochs, best, encoder_lr > 0)


def select_head(t: ClusterTraining, entry: dict) -> int:
    """At the end of SCAN: each head's loss on the clean training images; the lowest is kept (as SCAN does)."""
    z = embed_images(t.encoder, t.pipeline, t.ds.images, t.device, indices=t.train_idx).to(t.device)
    losses = head_losses(t.heads, z, t.neighbors.to(t.device), t.cfg.cluster.entropy_weight)
    entry["head_eval_losses"], entry["selected_head"] = losses.tolist(), int(losses.argmin())
    return int(losses.argmin())


def guarded_head(t: ClusterTraining, head: nn.Module) -> tuple[nn.Module, str]:
    """The stage's last step (cluster/guard.py): the head, or the grouping of k-means or UMAP, as a head, where
    it splits the training embeddings' kNN graph better (no labels used). The record goes to t.guard_record."""
    z = embed_images(t.encoder, t.pipeline, t.ds.images, t.device, indices=t.train_idx)
    ids, _ = confident_clusters(head.eval()(z.to(t.device)).cpu())
    candidates = {"head": ids.numpy()} | ({} if t.seed_ids is None else {"umap": t.seed_ids.numpy()})
    t.guard_record, kept = guard(z, candidates, t.clusters, t.cfg.train.seed,
                                 labels=t.ds.labels[t.train_idx].numpy())  # (labels score the record only)
    if kept is None:
        return head, "scan"
    return kept.to(t.device), "kmeans" if t.guard_record["kept"] == "kmeans" else "scan"


def test_scores(t: ClusterTraining, head: nn.Module) -> dict:
    """Cluster accuracy of `head` on the labelled test images (scoring only), or nothing."""
    test_idx = t.ds.splits.get("test")
    score_idx = test_idx[t.ds.labels[test_idx] >= 0] if test_idx is not None else None
    if score_idx is None or not len(score_idx):
        return {}
    ids, _ = assign_clusters(t.encoder, head, t.pipeline, t.ds.images, t.device, indices=score_idx)
    return {"test_cluster_acc": clustering_metrics(t.ds.labels[score_idx].numpy(), ids.numpy())["accuracy"]}


def save_weights(t: ClusterTraining, work: Path, head: nn.Module, kind: str) -> None:
    save_encoder(work / "encoder.pt", t.encoder, t.cfg, t.info)
    save_cluster_head(work / HEAD_FILE, head, kind)


def neighbor_accuracy(t: ClusterTraining) -> float | None:
    """How often a mined neighbour has the image's own label, where labels exist (scoring only)."""
    y = t.ds.labels[t.train_idx]
    known = y >= 0
    return 100.0 * (y[t.neighbors] == y[:, None])[known].float().mean().item() if known.any() else None


def run_meta(t: ClusterTraining, start_epoch: int) -> dict:
    cfg, ds = t.cfg, t.ds
    return base_meta(cfg.train.seed) | {
        "stage": "cluster", "source_run": str(t.source[0].resolve()), "source_encoder_sha256": t.source[1],
        "objective": cfg.objective.name, "device": str(t.device), "dataset": ds.spec, "split": ds.split_info,
        "clusters": t.clusters, "neighbors": cfg.cluster.neighbors, "neighbor_accuracy": neighbor_accuracy(t),
        "embedding_dim": t.encoder.out_dim, "classes": ds.classes, "resumed_at_epoch": start_epoch or None,
        "data_notes": data_notes(ds)} | t.k_choice


def final_metrics(t: ClusterTraining, log: list[dict], best: int, elapsed: float, head: nn.Module) -> dict:
    """Cluster sizes on each split, and scores where labels exist (scoring only)."""
    k, ds = t.clusters, t.ds
    out = {"stage": "cluster", "clusters": k, "selected_head": best, "neighbor_accuracy": neighbor_accuracy(t),
           "train_seconds": elapsed, "final_loss": log[-1]["loss"] if log else None, "guard": t.guard_record} | t.k_choice
    for split, idx in ds.splits.items():
        ids, conf = assign_clusters(t.encoder, head, t.pipeline, ds.images, t.device, indices=idx)
        res = {"size": len(idx), "cluster_sizes": torch.bincount(ids, minlength=k).tolist(),
               "mean_confidence": float(conf.mean()) if len(conf) else None}
        known = (ds.labels[idx] >= 0).numpy()
        if known.any():
            res |= clustering_metrics(ds.labels[idx].numpy()[known], ids.numpy()[known])
        out[split] = res
    return out
