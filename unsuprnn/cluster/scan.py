"""SCAN's pieces (Van Gansbeke et al., ECCV 2020), as pure functions and one small module:
neighbour mining, the neighbour-consistency loss with an entropy term, the confidence-based
self-labeling loss, several clustering heads side by side (one head is `models.heads.cluster_head`), and
a head's clusters of a set of images. The stage that trains them is `unsuprnn.cluster.stage`.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ..config import AugmentConfig
from ..evaluate.embed import embed_images
from ..evaluate.knn import knn_search
from ..models.heads import cluster_head, confident_clusters

EPS = 1e-8  # as in SCAN: keeps log(0) out of the entropy


def mine_neighbors(features: torch.Tensor, n: int, backend: str = "auto") -> torch.Tensor:
    """The `n` nearest neighbours (cosine) of every row of features [N, E], itself excluded:
    row indices [N, n], nearest first. Searched through the probe's kNN (FAISS or torch).

    A row with exact duplicates may not find itself first; it is then dropped wherever it
    appears, and the (n+1)-th neighbour fills its place.
    """
    if not 1 <= n < len(features):
        raise ValueError(f"need 1 <= n < {len(features)} rows, got n={n}")
    _, idx = knn_search(features, features, n + 1, backend=backend)
    not_self = idx != torch.arange(len(features)).unsqueeze(1)
    # rows that did not find themselves among n+1 (ties with duplicates) drop their farthest one
    not_self[not_self.all(1), -1] = False
    return idx[not_self].view(len(features), n)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy of a distribution p [C] (or of each row of p [B, C], averaged), natural log."""
    p = p.clamp_min(EPS)
    h = -(p * p.log()).sum(-1)
    return h.mean() if h.dim() else h


def scan_loss(anchor_logits: torch.Tensor, neighbor_logits: torch.Tensor,
              entropy_weight: float = 5.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SCAN loss for anchor_logits, neighbor_logits [B, K] -> (total, consistency, entropy).

    consistency = -mean_b log <softmax(anchor_b), softmax(neighbor_b)>: an image and its neighbour
    should land in the same cluster, confidently. entropy = H(mean_b softmax(anchor_b)): spread
    over all K clusters. total = consistency - entropy_weight * entropy.
    """
    pa, pn = anchor_logits.softmax(1), neighbor_logits.softmax(1)
    similarity = (pa * pn).sum(1)
    consistency = -similarity.clamp_min(EPS).log().mean()
    ent = entropy(pa.mean(0))
    return consistency - entropy_weight * ent, consistency, ent


def confidence_ce(weak_logits: torch.Tensor, strong_logits: torch.Tensor, threshold: float = 0.99,
                  balanced: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-labeling loss: weak_logits, strong_logits [B, K] -> (loss, mask [B] of samples used).

    Samples whose weak-view confidence max softmax exceeds `threshold` are labelled with their argmax;
    the strong view is trained towards that label by cross entropy, each class weighted by the
    inverse of its share among the confident samples (`balanced`), so that large clusters do not
    swallow small ones. No sample above the threshold: a zero loss that still backpropagates.
    """
    with torch.no_grad():
        conf, target = weak_logits.softmax(1).max(1)
        mask = conf > threshold
    if not mask.any():
        return strong_logits.sum() * 0.0, mask
    t = target[mask]
    weight = None
    if balanced:
        counts = torch.bincount(t, minlength=strong_logits.shape[1]).float()
        weight = torch.where(counts > 0, len(t) / counts.clamp_min(1), torch.ones_like(counts))
    return F.cross_entropy(strong_logits[mask], t, weight=weight), mask


class ClusterHeads(nn.Module):
    """`heads` clustering heads side by side: embedding [B, E] -> logits [heads, B, K]."""

    def __init__(self, embed_dim: int, clusters: int, heads: int = 1):
        super().__init__()
        if clusters < 2 or heads < 1:
            raise ValueError(f"need clusters >= 2 and heads >= 1, got {clusters} and {heads}")
        self.heads = nn.ModuleList(cluster_head(embed_dim, clusters) for _ in range(heads))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.stack([h(z) for h in self.heads])


def strong_augment(cfg: AugmentConfig, factor: float) -> AugmentConfig:
    """The run's augmentation made `factor` times stronger (geometry, jitter, noise, erasing), within
    each setting's valid range: the strong view of self-labeling."""
    return dataclasses.replace(
        cfg, crop_scale=cfg.crop_scale ** factor, rotate=cfg.rotate * factor, translate=cfg.translate * factor,
        shear=min(cfg.shear * factor, 60.0), noise=cfg.noise * factor, erase_prob=min(cfg.erase_prob * factor, 1.0),
        erase_max=min(cfg.erase_max * factor, 0.6), brightness=min(cfg.brightness * factor, 0.9),
        contrast=min(cfg.contrast * factor, 0.9), saturation=min(cfg.saturation * factor, 1.0),
        hue=min(cfg.hue * factor, 0.5), grayscale=min(cfg.grayscale * factor, 1.0))


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
