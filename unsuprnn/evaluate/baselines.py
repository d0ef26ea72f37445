"""The feature sets a probe compares on the very same images: the run's frozen encoder, and the
baselines raw pixels, PCA of raw pixels, a randomly initialised encoder of the same architecture and a
supervised run's encoder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..errors import UserError
from ..runs.checkpoint import load_run_encoder
from .methods import BASELINES



def state_digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        if not isinstance(v, torch.Tensor):  # extra state (e.g. a memory bank's pointer)
            continue
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def encoder_digest(encoder: torch.nn.Module, head: torch.nn.Module | None = None) -> str:
    """What a probe result depends on in a run: its encoder's weights (and a cluster run's head)."""
    return state_digest(encoder) + ("" if head is None else "+" + state_digest(head)[:16])


def raw_features(pipeline, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Normalized pixels of rows `indices`, flattened: [n, C*H*W] (read in chunks)."""
    out = []
    for start in range(0, len(indices), 4096):
        x = pipeline.unit(images[indices[start:start + 4096]].to(pipeline.mean.device))
        out.append(((x - pipeline.mean) / pipeline.std).flatten(1).cpu())
    return torch.cat(out)


def pca_dim(embedding_dim: int, pixels: int, bank: int) -> int:
    """Dimensions of the PCA baseline (feature set `pca{dim}`): the embedding's, at most the pixel
    count and the bank size."""
    return min(embedding_dim, pixels, bank)


def pca_features(pipeline, data, embedding_dim: int, seed: int) -> tuple[str, tuple[torch.Tensor, torch.Tensor]]:
    """(name, (bank, query)) of the PCA baseline, fitted on the bank's raw pixels."""
    from sklearn.decomposition import PCA
    rb = raw_features(pipeline, data.bank_images, data.bank_idx)
    rq = raw_features(pipeline, data.query_images, data.query_idx)
    dim = pca_dim(embedding_dim, rb.shape[1], len(rb))
    pca = PCA(n_components=dim, random_state=seed).fit(rb.numpy())
    return f"pca{dim}", (torch.from_numpy(pca.transform(rb.numpy())).float(),
                         torch.from_numpy(pca.transform(rq.numpy())).float())


def feature_sets(loaded: tuple, data, baselines: list[str], device: torch.device,
                 progress: bool = False) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name -> (bank features, query features) for the run's encoder and each baseline.

    loaded: (encoder, pipeline, config, info) from `load_run_encoder` on `device`; data: a `ProbeData`.
    baselines: raw | pca | random | supervised=RUN. The run's encoder is checked to be unchanged.
    """
    from ..models.encoder import build_encoder

    encoder, pipeline, cfg, info = loaded
    before = state_digest(encoder)
    sets = {"encoder": data.embed(encoder, pipeline, device, progress)}
    for b in baselines:
        name, _, arg = b.partition("=")
        if name == "raw":
            sets["raw"] = (raw_features(pipeline, data.bank_images, data.bank_idx),
                           raw_features(pipeline, data.query_images, data.query_idx))
        elif name == "pca":
            key, value = pca_features(pipeline, data, encoder.out_dim, cfg.train.seed)
            sets[key] = value
        elif name == "random":
            torch.manual_seed(cfg.train.seed)
            rnd = build_encoder(cfg.encoder, pipeline.seq_shape[1]).to(device)
            sets["random"] = data.embed(rnd, pipeline, device)
        elif name == "supervised":
            sets["supervised"] = supervised_features(arg, info, data, device)
        else:
            raise UserError(f"unknown baseline '{b}'; use {', '.join(BASELINES)}")
    if state_digest(encoder) != before:  # moco-v3 style guard: probing must never train the encoder
        raise RuntimeError("the frozen encoder's weights changed during probing")
    return sets


def supervised_features(run: str, info: dict, data, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The supervised reference run's encoder on the same bank and queries."""
    if not run:
        raise UserError("baseline 'supervised' needs a run: --baselines supervised=RUN_DIR")
    sup, sup_pipe, _, sup_info = load_run_encoder(Path(run), device)
    if list(sup_info["shape"]) != list(info["shape"]):
        raise UserError(f"supervised run {run} was trained on images {sup_info['shape']}, "
                        f"this run on {info['shape']}; compare runs on the same data")
    return data.embed(sup, sup_pipe, device)
