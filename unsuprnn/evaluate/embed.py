"""Frozen embedding of an image set: eval mode, no grad, batched on the device."""

from __future__ import annotations

import torch
from tqdm import tqdm

from ..data.pipeline import SequencePipeline


@torch.no_grad()
def embed_images(encoder: torch.nn.Module, pipeline: SequencePipeline, images: torch.Tensor,
                 device: torch.device | str, batch_size: int = 1024, progress: bool = False) -> torch.Tensor:
    """images: uint8 [N, C, H, W] -> float32 embeddings [N, E] on the CPU.

    The encoder is put in eval mode for the call and restored to its previous mode after.
    """
    was_training = encoder.training
    encoder.eval()
    out = []
    try:
        for start in tqdm(range(0, len(images), batch_size), desc="embedding", unit="batch",
                          disable=not progress or len(images) < 20 * batch_size, leave=False):
            x = images[start:start + batch_size].to(device, non_blocking=True)
            out.append(encoder(pipeline.clean(x)).float().cpu())
    finally:
        encoder.train(was_training)
    if not out:
        return torch.zeros(0, getattr(encoder, "out_dim", 0))
    return torch.cat(out)
