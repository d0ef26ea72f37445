"""The files that hold weights: `checkpoint.pt`, `encoder.pt` and a cluster run's `cluster_head.pt`.

`checkpoint.pt` (full training state) starts with a format line and the SHA-256 of the torch
payload, so a truncated or foreign file is refused with a clear message. `encoder.pt` is a plain
`torch.load`-able dict: the encoder weights plus what is needed to rebuild the encoder and its
input pipeline (config, image shape, normalization), nothing else. `cluster_head.pt` holds a cluster
run's head (its format line, its sizes and its weights).
"""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path
from typing import Any

import torch

from ..config import Config, config_from_saved
from ..errors import UserError
from ..atomic import write_bytes
from .files import check_run, config_difference
from .writer import holder, settle

MAGIC = b"UNSUPRNN-CHECKPOINT v1\n"
ENCODER_FORMAT = "unsuprnn-encoder"
ENCODER_VERSION = 1


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(state: dict, path: str | Path) -> None:
    """Write `state` (tensors, dicts, numbers, strings) atomically with a format line and checksum."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode()
    write_bytes(path, MAGIC + digest + b"\n" + payload)


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}; train first or pass the right run directory")
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise UserError(f"{path} is not an unsuprnn checkpoint (unknown format); "
                        "point at a checkpoint.pt written by unsuprnn")
    body = raw[len(MAGIC):]
    digest, _, payload = body.partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise UserError(f"{path} is corrupt or truncated (checksum mismatch); "
                        "delete it and train again, or restore it from a copy")
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as exc:  # a valid header over a payload torch cannot read
        raise UserError(f"{path} has a valid header but unreadable content ({type(exc).__name__}); "
                        "delete it and train again, or restore it from a copy") from None
    if not isinstance(state, dict):
        raise UserError(f"{path} holds no training state; delete it and train again")
    return state


RUN_KEYS = ("epoch", "elapsed", "model", "optimizer", "rng", "config")


def load_run_checkpoint(out: Path, cfg: Config, ignore: tuple[str, ...] = (), keys: tuple[str, ...] = RUN_KEYS,
                        map_location: Any = "cpu") -> dict:
    """The checkpoint of the run in `out`, refused unless it holds every key in `keys` and was written
    with the run's own config `cfg` (keys in `ignore` aside): a checkpoint copied from another run,
    even of the same architecture, must not be resumed silently."""
    path = Path(out) / "checkpoint.pt"
    state = load_checkpoint(path, map_location)
    missing = [k for k in keys if k not in state]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}: it is not a checkpoint of this kind of run; "
                        "restore the run's own checkpoint.pt or start over with --force")
    try:
        stage = "cluster" if "phase" in state else "pretrain"  # (a clustering stage's checkpoint has phases)
        diffs = config_difference(config_from_saved(state["config"], stage), cfg, ignore=ignore)
    except UserError:
        diffs = ["an unreadable config"]
    if diffs:
        raise UserError(f"{path} was written by another run (its config differs in {', '.join(diffs[:5])}); "
                        "restore the run's own checkpoint.pt or start over with --force")
    return state


def restore_state(target: Any, state: dict, path: Path) -> None:
    """`target.load_state_dict(state)` (a module or an optimizer), a mismatch naming the file."""
    try:
        target.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} does not fit this run's model ({str(exc).splitlines()[0][:160]}); "
                        "restore the run's own checkpoint.pt or start over with --force") from None


def save_encoder(path: str | Path, encoder: torch.nn.Module, cfg: Config, pipeline_info: dict) -> None:
    """encoder.pt: weights, the resolved config and the pipeline info (shape, view, mean, std)."""
    state = {"format": ENCODER_FORMAT, "version": ENCODER_VERSION, "config": cfg.saved(),
             "pipeline": pipeline_info, "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}}
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes(path, buf.getvalue())


def load_encoder_file(path: str | Path) -> tuple[dict, Config, dict]:
    """Read encoder.pt -> (state_dict, config, pipeline info), refusing foreign or damaged files."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found; pass --run DIR of a finished pretrain or supervised run")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{path} is corrupt or not a torch file ({type(exc).__name__}); "
                        "train the run again or restore encoder.pt") from None
    if not isinstance(state, dict) or state.get("format") != ENCODER_FORMAT:
        raise UserError(f"{path} is not an unsuprnn encoder file; point --run at an unsuprnn run directory")
    if state.get("version") != ENCODER_VERSION:
        raise UserError(f"{path} has encoder format version {state.get('version')}, this unsuprnn reads "
                        f"{ENCODER_VERSION}; use the unsuprnn version that wrote it")
    stage = "cluster" if (path.parent / HEAD_FILE).is_file() else "pretrain"  # (a clustering stage's encoder.pt)
    try:
        cfg = config_from_saved(state.get("config"), stage, where=f"the config in {path}")
    except UserError as exc:
        raise UserError(f"{exc}; train the run again or restore encoder.pt") from None
    return state["state_dict"], cfg, state["pipeline"]


def check_encoder_config(cfg: Config, input_dim: int, grid: tuple[int, int] | None, path: Path) -> None:
    """The encoder an encoder.pt describes, within its settings' bounds and the machine's memory, before it
    is built (a crafted file could ask for 10**7 layers)."""
    from ..bounds import check_fields
    from ..budget import check_model_fits
    from ..models.encoders import build_encoder
    check_fields(cfg.encoder, lambda name, value, b: f"{path} describes an encoder with {name} = {value!r}, "
                                                     f"outside {b.describe()}; the file is damaged or was edited")
    check_model_fits(lambda: build_encoder(cfg.encoder, input_dim, grid), torch.device("cpu"))


def load_run_encoder(run: str | Path, device: torch.device | str = "cpu"):
    """Rebuild the frozen encoder and its input pipeline from a run directory (or an encoder.pt).

    Returns (encoder in eval mode on `device`, pipeline on `device`, config, pipeline info).
    """
    from ..data.pipeline import SequencePipeline
    from ..models.encoders import build_encoder

    run = check_run(run)
    settle(run)  # a --force killed mid-swap: completed before the run is read
    path = run / "encoder.pt" if run.is_dir() else run
    who = holder(run) if run.is_dir() else None
    if who:
        print(f"warning: {run} is still being written ({who}); reading the encoder of its latest epoch",
              file=sys.stderr)
    state_dict, cfg, info = load_encoder_file(path)
    try:
        pipeline = SequencePipeline(tuple(info["shape"]), info["view"], info["patch"] or cfg.data.patch,
                                    info["mean"], info["std"], cfg.augment, cfg.data.intensity)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path} holds a damaged pipeline description ({type(exc).__name__}); train the run again "
                        "or restore encoder.pt") from None
    check_encoder_config(cfg, pipeline.seq_shape[1], pipeline.grid, path)
    encoder = build_encoder(cfg.encoder, pipeline.seq_shape[1], pipeline.grid)
    try:
        encoder.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise UserError(f"{path} does not match the encoder its config describes ({str(exc).splitlines()[0]}); "
                        "the file is damaged or was edited") from None
    return encoder.to(device).eval(), pipeline.to(device), cfg, info


HEAD_FILE = "cluster_head.pt"
HEAD_FORMAT = "unsuprnn-cluster-head"


def save_cluster_head(path: str | Path, head: torch.nn.Sequential, kind: str = "scan") -> None:
    """cluster_head.pt: a clustering head, embedding [B, E] -> logits [B, K]: SCAN's (batch norm + linear) or,
    where the stage's guard kept k-means, k-means' (L2 normalization + linear; `models.heads.kmeans_head`)."""
    linear = head[-1]
    buf = io.BytesIO()
    torch.save({"format": HEAD_FORMAT, "version": 1, "kind": kind, "embed_dim": linear.in_features,
                "clusters": linear.out_features,
                "state_dict": {k: v.detach().cpu() for k, v in head.state_dict().items()}}, buf)
    write_bytes(path, buf.getvalue())


def load_cluster_head(run: str | Path) -> torch.nn.Module | None:
    """The clustering head of a cluster run (embedding [B, E] -> logits [B, K]) in eval mode, or None for
    other runs."""
    from ..models.heads import cluster_head, kmeans_head

    path = Path(run) / HEAD_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("format") != HEAD_FORMAT:
            raise UserError(f"{path} is not an unsuprnn clustering head; run `unsuprnn cluster` again")
        kind = state.get("kind", "scan")  # (heads written before the guard are SCAN's)
        build = {"scan": lambda: cluster_head(state["embed_dim"], state["clusters"]),
                 "kmeans": lambda: kmeans_head(torch.zeros(state["clusters"], state["embed_dim"]))}[kind]
        head = build()
        head.load_state_dict(state["state_dict"])
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{path} is damaged ({type(exc).__name__}); run `unsuprnn cluster` again") from None
    return head.eval()
