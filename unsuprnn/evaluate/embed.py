"""Frozen embedding of an image set: eval mode, no grad, batched on the device."""

from __future__ import annotations

import torch

from ..data.pipeline import SequencePipeline
from ..progress import tracked


@torch.no_grad()
def embed_images(encoder: torch.nn.Module, pipeline: SequencePipeline, images: torch.Tensor,
                 device: torch.device | str, batch_size: int = 1024, progress: bool = False,
                 indices: torch.Tensor | None = None) -> torch.Tensor:
    """images: uint8 [N, C, H, W] (rows `indices` of it, if given) -> float32 embeddings [n, E] on the CPU.

    Reads one batch of images at a time, so a memory-mapped image set is never loaded whole.

    The encoder is put in eval mode for the call and restored to its previous mode after.
    """
    was_training = encoder.training
    encoder.eval()
    out = []
    n = len(images) if indices is None else len(indices)
    try:
        batches = range(0, n, batch_size)
        for start in tracked(batches, desc=f"embedding {n} images", unit="batches") if progress else batches:
            rows = slice(start, start + batch_size) if indices is None else indices[start:start + batch_size]
            x = images[rows].to(device, non_blocking=True)
            out.append(encoder(pipeline.clean(x)).float().cpu())
    finally:
        encoder.train(was_training)
    if not out:
        return torch.zeros(0, getattr(encoder, "out_dim", 0))
    return torch.cat(out)
