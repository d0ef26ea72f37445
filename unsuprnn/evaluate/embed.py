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


CENTRE_CHUNK = 8192  # images embedded at a time while the centre is summed (a large set is never held whole)


@torch.no_grad()
def measure_centre(encoder: torch.nn.Module, pipeline: SequencePipeline, images: torch.Tensor,
                   device: torch.device | str, indices: torch.Tensor | None = None) -> None:
    """Set `encoder.centre` (an encoder built with encoder.centre: true) to the mean embedding of images uint8
    [N, C, H, W] (rows `indices`: the train split), clean views; an encoder without one is left as it is."""
    centre = getattr(encoder, "centre", None)
    if centre is None:
        return
    centre.zero_()
    indices = torch.arange(len(images)) if indices is None else indices
    if not len(indices):
        return
    total = torch.zeros(centre.shape, dtype=torch.float64)
    for start in range(0, len(indices), CENTRE_CHUNK):
        chunk = indices[start:start + CENTRE_CHUNK]
        total += embed_images(encoder, pipeline, images, device, indices=chunk).double().sum(0)
    centre.copy_((total / len(indices)).to(centre))
