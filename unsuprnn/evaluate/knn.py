"""Cosine kNN classification with temperature-weighted or majority votes.

Neighbour search goes through FAISS (a GPU index where faiss has GPU support and the data is on
CUDA; faiss-cpu otherwise), or an exact chunked matmul + top-k in torch (used on CUDA when faiss
has no GPU support, and as a reference). Memory stays bounded: queries are searched in chunks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError

BACKENDS = ("auto", "faiss", "torch")


def faiss_has_gpu() -> bool:
    try:
        import faiss
        return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    except ImportError:
        return False


def _torch_search(query: torch.Tensor, bank: torch.Tensor, k: int, chunk: int):
    sims, idx = [], []
    for start in range(0, len(query), chunk):
        s = query[start:start + chunk] @ bank.T              # [chunk, N]
        top = s.topk(k, dim=1)
        sims.append(top.values)
        idx.append(top.indices)
    return torch.cat(sims), torch.cat(idx)


def _faiss_search(query: torch.Tensor, bank: torch.Tensor, k: int, chunk: int, use_gpu: bool):
    import faiss

    d = bank.shape[1]
    index = faiss.IndexFlatIP(d)
    if use_gpu:
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(np.ascontiguousarray(bank.detach().float().cpu().numpy()))
    q = np.ascontiguousarray(query.detach().float().cpu().numpy())
    sims, idx = [], []
    for start in range(0, len(q), chunk):
        s, i = index.search(q[start:start + chunk], k)
        sims.append(s)
        idx.append(i)
    return torch.from_numpy(np.concatenate(sims)), torch.from_numpy(np.concatenate(idx)).long()


def knn_search(query: torch.Tensor, bank: torch.Tensor, k: int, backend: str = "auto",
               chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities [Q, k] and bank indices [Q, k] of the k nearest bank rows, best first.

    query: [Q, E], bank: [N, E]; both are L2-normalized here.
    """
    if backend not in BACKENDS:
        raise UserError(f"unknown kNN backend '{backend}'; use one of: {', '.join(BACKENDS)}")
    if k < 1 or k > len(bank):
        raise UserError(f"k={k} is larger than the bank of {len(bank)} vectors; pass --k at most {len(bank)}")
    query, bank = F.normalize(query.float(), dim=1), F.normalize(bank.float(), dim=1)
    on_cuda = query.is_cuda or bank.is_cuda
    if backend == "auto":
        backend = "faiss" if (not on_cuda or faiss_has_gpu()) else "torch"
    if backend == "torch":
        dev = query.device if query.is_cuda else bank.device
        s, i = _torch_search(query.to(dev), bank.to(dev), k, chunk)
        return s.cpu(), i.cpu()
    return _faiss_search(query, bank, k, chunk, use_gpu=on_cuda and faiss_has_gpu())


def knn_vote(sims: torch.Tensor, neighbor_labels: torch.Tensor, num_classes: int,
             temperature: float = 0.07, weighted: bool = True) -> torch.Tensor:
    """Class scores [Q, C] from neighbours: sims [Q, k], neighbor_labels [Q, k] (int64).

    weighted: each neighbour votes exp(sim / T) (as in InstDisc / DINO); else one vote each.
    Weighted scores are scaled per query by exp(-max sim / T), which keeps them finite for small T
    and changes no ranking.
    """
    if temperature <= 0:
        raise UserError(f"kNN temperature must be > 0, got {temperature}")
    if weighted:
        votes = ((sims - sims.amax(1, keepdim=True)) / temperature).exp()
    else:
        votes = torch.ones_like(sims)
    scores = torch.zeros(sims.shape[0], num_classes, dtype=votes.dtype)
    return scores.scatter_add_(1, neighbor_labels, votes)


def knn_accuracy(query: torch.Tensor, query_labels: torch.Tensor, bank: torch.Tensor,
                 bank_labels: torch.Tensor, num_classes: int, k: int = 20, temperature: float = 0.07,
                 backend: str = "auto") -> dict:
    """Top-1/top-5 accuracy (in %) of weighted and majority kNN votes."""
    sims, idx = knn_search(query, bank, k, backend)
    nl = bank_labels.cpu()[idx]
    y = query_labels.cpu()
    out = {}
    for name, weighted in (("weighted", True), ("majority", False)):
        scores = knn_vote(sims, nl, num_classes, temperature, weighted)
        top = scores.topk(min(5, num_classes), dim=1).indices
        out[f"{name}_top1"] = 100.0 * (top[:, 0] == y).float().mean().item()
        out[f"{name}_top5"] = 100.0 * (top == y[:, None]).any(1).float().mean().item()
    return out
