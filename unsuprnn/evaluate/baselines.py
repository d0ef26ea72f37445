"""The feature sets a probe compares on the very same images: the run's frozen encoder, and the
baselines raw pixels, PCA of raw pixels, a randomly initialised encoder of the same architecture and a
supervised run's encoder."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..progress import stage
from ..names.objectives import spec_of
from ..runs.checkpoint import load_run_encoder
from ..runs.files import check_run
from .methods import BASELINES
from .reduce import check_umap, umap_features



def state_digest(module: torch.nn.Module) -> str:
    return tensors_digest(module.state_dict())


def tensors_digest(state: dict) -> str:
    """SHA-256 of a state dict's tensors, by name (a module's weights, or an encoder.pt's)."""
    h = hashlib.sha256()
    for k, v in sorted(state.items()):
        if not isinstance(v, torch.Tensor):  # extra state (e.g. a memory bank's pointer)
            continue
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def encoder_digest(encoder: torch.nn.Module, head: torch.nn.Module | None = None) -> str:
    """What a probe result depends on in a run: its encoder's weights (and a cluster run's head)."""
    return state_digest(encoder) + ("" if head is None else "+" + state_digest(head)[:16])


def raw_features(pipeline, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Normalized pixels of rows `indices`, flattened: [n, C*H*W] (read in chunks; n may be 0)."""
    out = [torch.zeros(0, int(np.prod(images.shape[1:])))]
    for start in range(0, len(indices), 4096):
        x = pipeline.unit(images[indices[start:start + 4096]].to(pipeline.mean.device))
        out.append(((x - pipeline.mean) / pipeline.std).flatten(1).cpu())
    return torch.cat(out)


PCA_VARIANCE = 0.95   # the PCA baseline keeps the components that explain this share of the pixels' variance
PCA_FIT_ROWS = 20000  # fitted on at most this many bank images (a seeded sample)


def pca_features(pipeline, data, embedding_dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The PCA baseline: raw pixels of the bank and queries projected on the fewest components that
    explain PCA_VARIANCE of the bank's variance, at most the embedding's size and below the bank's rank
    (components past the data's rank carry no variance, and standardizing them blows noise up).
    Returns (bank [N, d], queries [Q, d], d)."""
    from sklearn.decomposition import PCA
    rb = raw_features(pipeline, data.bank_images, data.bank_idx).numpy()
    rq = raw_features(pipeline, data.query_images, data.query_idx).numpy()
    fit = rb if len(rb) <= PCA_FIT_ROWS else rb[np.random.default_rng(seed).choice(len(rb), PCA_FIT_ROWS, replace=False)]
    with stage(f"PCA of {len(fit)} images x {fit.shape[1]} pixels"):
        pca = PCA(n_components=min(fit.shape) - 1 if min(fit.shape) > 1 else 1, random_state=seed).fit(fit)
    ratio = pca.explained_variance_ratio_
    rank = int((ratio > 1e-6 * ratio[0]).sum()) if len(ratio) and ratio[0] > 0 else 1
    dim = max(1, min(int(np.searchsorted(np.cumsum(ratio), PCA_VARIANCE)) + 1, embedding_dim, rank))
    w = pca.components_[:dim]
    return (torch.from_numpy((rb - pca.mean_) @ w.T).float(), torch.from_numpy((rq - pca.mean_) @ w.T).float(), dim)


def umap_baseline(pipeline, data, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The umap baseline: raw pixels of the bank and the queries laid out together by UMAP (no labels, no
    network), then split back: (bank [N, 10], queries [Q, 10])."""
    rb = raw_features(pipeline, data.bank_images, data.bank_idx)
    rq = raw_features(pipeline, data.query_images, data.query_idx)
    both = torch.from_numpy(umap_features(torch.cat([rb, rq]).numpy(), seed=seed))
    return both[:len(rb)], both[len(rb):]


def check_baselines(baselines: list[str], info: dict) -> None:
    """The baselines named, before any work: known names, and a supervised run trained on these images."""
    for b in baselines:
        name, _, arg = b.partition("=")
        if name not in ("raw", "pca", "umap", "random", "supervised") or (name != "supervised" and arg):
            raise UserError(f"unknown baseline '{b}'; use {', '.join(BASELINES)}")
        if name == "umap":
            check_umap()
        if name == "supervised":
            if not arg:
                raise UserError("baseline 'supervised' needs a run: --baselines supervised=RUN_DIR")
            from ..runs.checkpoint import load_encoder_file
            _, sup_cfg, sup_info = load_encoder_file(check_run(arg, "--baselines supervised=") / "encoder.pt")
            if not spec_of(sup_cfg.objective.name).uses_labels:
                raise UserError(f"--baselines supervised={arg} is a {sup_cfg.objective.name} run, not a supervised "
                                "one; train the reference with unsuprnn supervised")
            if list(sup_info["shape"]) != list(info["shape"]):
                raise UserError(f"supervised run {arg} was trained on images {sup_info['shape']}, "
                                f"this run on {info['shape']}; compare runs on the same data")


def feature_sets(loaded: tuple, data, baselines: list[str], device: torch.device, progress: bool = False,
                 dims: dict | None = None, say=lambda line: None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name -> (bank features, query features) for the run's encoder and each baseline; `dims` receives
    the PCA baseline's dimension.

    loaded: (encoder, pipeline, config, info) from `load_run_encoder` on `device`; data: a `ProbeData`.
    baselines: raw | pca | umap | random | supervised=RUN. The run's encoder is checked to be unchanged.
    """
    from ..models.encoders import build_encoder

    encoder, pipeline, cfg, info = loaded
    dims = {} if dims is None else dims
    before = state_digest(encoder)
    t0 = time.perf_counter()
    sets = {"encoder": data.embed(encoder, pipeline, device, progress)}
    say(f"probe: embedded the images with the encoder ({time.perf_counter() - t0:.1f} s)")
    for b in baselines:
        name, _, arg = b.partition("=")
        t0 = time.perf_counter()
        if name == "raw":
            sets["raw"] = (raw_features(pipeline, data.bank_images, data.bank_idx),
                           raw_features(pipeline, data.query_images, data.query_idx))
        elif name == "pca":
            bank, query, dims["pca"] = pca_features(pipeline, data, encoder.out_dim, cfg.train.seed)
            sets["pca"] = (bank, query)
        elif name == "umap":
            sets["umap"] = umap_baseline(pipeline, data, cfg.train.seed)
        elif name == "random":
            torch.manual_seed(cfg.train.seed)
            rnd = build_encoder(cfg.encoder, pipeline.seq_shape[1], pipeline.grid).to(device)
            sets["random"] = data.embed(rnd, pipeline, device)
        elif name == "supervised":
            sets["supervised"] = supervised_features(arg, data, device)
        else:
            raise UserError(f"unknown baseline '{b}'; use {', '.join(BASELINES)}")
        say(f"probe: baseline {name} ({time.perf_counter() - t0:.1f} s)")
    if state_digest(encoder) != before:  # moco-v3 style guard: probing must never train the encoder
        raise RuntimeError("the frozen encoder's weights changed during probing")
    return sets


def supervised_features(run: str, data, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The supervised reference run's encoder on the same bank and queries (checked by `check_baselines`)."""
    sup, sup_pipe, _, _ = load_run_encoder(Path(run), device)
    return data.embed(sup, sup_pipe, device)
