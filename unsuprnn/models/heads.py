"""Heads that sit on the encoder: lightly's SimCLR projection head (re-exported), the recurrent sequence
decoder of the autoencoder objective, and the clustering stage's head with the clusters it assigns."""

from __future__ import annotations

import torch
from lightly.models.modules.heads import SimCLRProjectionHead
from torch import nn

from .encoders import rnn_class

__all__ = ["SimCLRProjectionHead", "SequenceDecoder", "cluster_head", "kmeans_head", "confident_clusters"]


class SequenceDecoder(nn.Module):
    """Rebuild a sequence [B, T, D] from an embedding [B, E] with a one-layer RNN.

    The embedding sets the initial state and is fed at every step. With teacher forcing the step
    input also holds the previous true step (zeros at t=0); without it, only the embedding.
    """

    def __init__(self, embed_dim: int, out_dim: int, steps: int, cell: str = "lstm", hidden: int = 256,
                 teacher_forcing: bool = True):
        super().__init__()
        self.steps, self.out_dim, self.cell, self.teacher_forcing = steps, out_dim, cell, teacher_forcing
        self.init = nn.Linear(embed_dim, hidden * (2 if cell == "lstm" else 1))
        in_dim = embed_dim + (out_dim if teacher_forcing else 0)
        self.rnn = rnn_class(cell)(in_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, z: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        b = z.shape[0]
        h0 = torch.tanh(self.init(z)).unsqueeze(0)       # [1, B, H or 2H]
        state = tuple(h0.chunk(2, dim=-1)) if self.cell == "lstm" else h0
        steps = z.unsqueeze(1).expand(b, self.steps, z.shape[1])
        if self.teacher_forcing:
            if target is None:
                raise ValueError("teacher forcing needs the target sequence")
            prev = torch.cat([target.new_zeros(b, 1, self.out_dim), target[:, :-1]], dim=1)
            steps = torch.cat([steps, prev], dim=-1)
        out, _ = self.rnn(steps, state)
        return self.out(out)


def cluster_head(embed_dim: int, clusters: int) -> nn.Sequential:
    """One clustering head: embedding [B, E] -> logits [B, K]. The features are standardized first
    (batch norm without affine): recurrent embeddings vary little between images (per-dimension
    std about 0.01 on digits), which leaves a plain linear head near uniform for hundreds of steps."""
    return nn.Sequential(nn.BatchNorm1d(embed_dim, affine=False), nn.Linear(embed_dim, clusters))


class L2Normalize(nn.Module):
    """z [B, E] -> z / |z| per row."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(z, dim=1)


def kmeans_head(centroids: torch.Tensor, temperature: float = 1.0) -> nn.Sequential:
    """k-means clusters of L2-normalized embeddings as a head: embedding [B, E] -> logits [B, K], each the
    negative squared distance of the normalized embedding to a centroid [K, E], over `temperature` (up to a
    per-image constant, which softmax ignores): its argmax is the nearest centroid."""
    k, e = centroids.shape
    linear = nn.Linear(e, k)
    with torch.no_grad():
        linear.weight.copy_(2 * centroids / temperature)
        linear.bias.copy_(-(centroids * centroids).sum(1) / temperature)
    return nn.Sequential(L2Normalize(), linear)


def confident_clusters(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [N, K] -> (cluster ids [N] int64, confidence = the largest softmax probability [N])."""
    conf, ids = logits.softmax(1).max(1)
    return ids, conf
