"""Cosine kNN classification with temperature-weighted or majority votes.

Neighbour search goes through FAISS (a GPU index where faiss has GPU support and the data is on
CUDA; faiss-cpu otherwise), or an exact chunked matmul + top-k in torch (used on CUDA when faiss
has no GPU support, and as a reference). Memory stays bounded: queries are searched in chunks.
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError

BACKENDS = ("auto", "faiss", "torch")


@functools.cache
def faiss_has_gpu() -> bool:
    """Whether the imported faiss can use a GPU. Asked only for CUDA data; says once when the CPU build
    shadows an installed faiss-gpu (both provide the `faiss` module)."""
    try:
        import faiss
    except ImportError:
        return False
    if hasattr(faiss, "StandardGpuResources"):
        return faiss.get_num_gpus() > 0
    try:
        from importlib.metadata import version
        gpu_build = version("faiss-gpu")
    except Exception:
        return False
    print(f"warning: faiss-gpu {gpu_build} is installed but the faiss module imported is the CPU build "
          "(faiss-cpu shadows it); searching with torch on the GPU instead. To use faiss on the GPU: "
          "pip uninstall -y faiss-cpu && pip install --force-reinstall --no-deps faiss-gpu", file=sys.stderr)
    return False


def _torch_search(query: torch.Tensor, bank: torch.Tensor, k: int, chunk: int):
    sims, idx = [], []
    for start in range(0, len(query), chunk):
        s = query[start:start + chunk] @ bank.T              # [chunk, N]
        top = s.topk(k, dim=1)
        sims.append(top.values)
        idx.append(top.indices)
    return torch.cat(sims), torch.cat(idx)


INDEXES = ("flat", "ivf")  # = ProbeSettings.index's choices


def build_index(bank: np.ndarray, index: str = "flat", nlist: int | None = None, nprobe: int | None = None,
                use_gpu: bool = False, seed: int = 0):
    """A FAISS inner-product index over bank [N, E] (float32, L2-normalized): exact `flat`, or `ivf`
    (inverted lists: `nlist` k-means cells trained on a sample, `nprobe` cells searched per query; both
    needed for ivf)."""
    import faiss

    d = bank.shape[1]
    if index == "flat":
        idx = faiss.IndexFlatIP(d)
    elif index == "ivf":
        if nlist is None or nprobe is None:
            raise ValueError("an ivf index needs nlist and nprobe")
        if not 1 <= nlist <= len(bank):
            raise UserError(f"--nlist {nlist} must be between 1 and the bank size {len(bank)}")
        idx = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = bank if len(bank) <= 64 * nlist else bank[np.sort(rng.choice(len(bank), 64 * nlist, replace=False))]
        idx.cp.seed = seed
        idx.train(sample)
        idx.nprobe = max(1, min(nprobe, nlist))
    else:
        raise UserError(f"unknown index '{index}'; use one of: {', '.join(INDEXES)}")
    if use_gpu:
        idx = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, idx)
    for start in range(0, len(bank), 262144):  # add in slices: no second full copy of the bank
        idx.add(bank[start:start + 262144])
    return idx


def _faiss_search(query: torch.Tensor, bank: torch.Tensor, k: int, chunk: int, use_gpu: bool,
                  index: str, nlist: int, nprobe: int):
    index = build_index(np.ascontiguousarray(bank.detach().float().cpu().numpy()), index, nlist, nprobe, use_gpu)
    q = np.ascontiguousarray(query.detach().float().cpu().numpy())
    sims, idx = [], []
    for start in range(0, len(q), chunk):
        s, i = index.search(q[start:start + chunk], k)
        sims.append(s)
        idx.append(i)
    return torch.from_numpy(np.concatenate(sims)), torch.from_numpy(np.concatenate(idx)).long()


def knn_search(query: torch.Tensor, bank: torch.Tensor, k: int, backend: str = "auto",
               chunk: int = 4096, index: str = "flat", nlist: int | None = None,
               nprobe: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities [Q, k] and bank indices [Q, k] of the k nearest bank rows, best first.

    query: [Q, E], bank: [N, E]; both are L2-normalized here. index: `flat` (exact) or `ivf`
    (approximate, FAISS only, `nlist` cells of which `nprobe` are searched; missing neighbours come
    back as index -1 with similarity -inf).
    """
    if index not in INDEXES:
        raise UserError(f"unknown index '{index}'; use one of: {', '.join(INDEXES)}")
    if backend not in BACKENDS:
        raise UserError(f"unknown kNN backend '{backend}'; use one of: {', '.join(BACKENDS)}")
    if k < 1 or k > len(bank):
        raise UserError(f"k={k} is larger than the bank of {len(bank)} vectors; pass --k at most {len(bank)}")
    query, bank = F.normalize(query.float(), dim=1), F.normalize(bank.float(), dim=1)
    on_cuda = query.is_cuda or bank.is_cuda
    if backend == "auto":
        backend = "faiss" if (not on_cuda or faiss_has_gpu() or index != "flat") else "torch"
    if backend == "torch":
        if index != "flat":
            raise UserError("the torch kNN backend searches exactly; use the faiss backend for --index ivf")
        dev = query.device if query.is_cuda else bank.device
        s, i = _torch_search(query.to(dev), bank.to(dev), k, chunk)
        return s.cpu(), i.cpu()
    sims, idx = _faiss_search(query, bank, k, chunk, on_cuda and faiss_has_gpu(), index, nlist, nprobe)
    return sims.masked_fill(idx < 0, float("-inf")), idx


def knn_vote(sims: torch.Tensor, neighbor_labels: torch.Tensor, num_classes: int,
             temperature: float | None) -> torch.Tensor:
    """Class scores [Q, C] from neighbours: sims [Q, k], neighbor_labels [Q, k] (int64).

    temperature T: each neighbour votes exp(sim / T) (as in InstDisc / DINO); None: one vote each
    (majority). Weighted scores are scaled per query by exp(-max sim / T), which keeps them finite for
    small T and changes no ranking.
    """
    if temperature is not None and not 0 < temperature < float("inf"):  # NaN fails this too: it would vote at random
        raise UserError(f"kNN temperature must be a finite number > 0, got {temperature}; pass e.g. --temperature 0.07")
    if temperature is not None:
        votes = ((sims - sims.amax(1, keepdim=True)) / temperature).exp()
    else:
        votes = torch.ones_like(sims)
    missing = ~torch.isfinite(sims)  # an approximate index may return fewer than k neighbours
    votes = votes.masked_fill(missing, 0.0)
    scores = torch.zeros(sims.shape[0], num_classes, dtype=votes.dtype)
    return scores.scatter_add_(1, neighbor_labels.masked_fill(missing, 0), votes)


def ranked_classes(scores: torch.Tensor, sims: torch.Tensor, neighbor_labels: torch.Tensor, n: int) -> torch.Tensor:
    """The `n` best classes per query [Q, n], best first, by score [Q, C]; a tie (common with majority
    votes) goes to the class holding the most similar neighbour, then to the lower class id, so the
    result never depends on the order a search returned equal scores in."""
    found = torch.isfinite(sims)
    nearest = torch.full(scores.shape, float("-inf"), dtype=torch.float64).scatter_reduce(
        1, neighbor_labels.masked_fill(~found, 0), sims.double().masked_fill(~found, float("-inf")), "amax")
    by_nearest = torch.argsort(nearest, dim=1, descending=True, stable=True)  # stable: equal -> lower id first
    by_score = torch.argsort(scores.gather(1, by_nearest), dim=1, descending=True, stable=True)
    return by_nearest.gather(1, by_score)[:, :n]


def knn_accuracy(query: torch.Tensor, query_labels: torch.Tensor, bank: torch.Tensor,
                 bank_labels: torch.Tensor, num_classes: int, *, k: int, temperature: float, backend: str = "auto",
                 index: str = "flat", nlist: int | None = None, nprobe: int | None = None) -> dict:
    """Top-1 and (with more than 5 classes) top-5 accuracy in %, of weighted (temperature) and majority
    kNN votes of the k nearest bank rows."""
    sims, idx = knn_search(query, bank, k, backend, index=index, nlist=nlist, nprobe=nprobe)
    nl = bank_labels.cpu()[idx.clamp_min(0)]
    y = query_labels.cpu()
    out = {}
    for name, t in (("weighted", temperature), ("majority", None)):
        scores = knn_vote(sims, nl, num_classes, t)
        top = ranked_classes(scores, sims, nl, min(5, num_classes))
        out[f"{name}_top1"] = 100.0 * (top[:, 0] == y).float().mean().item()
        if num_classes > 5:  # with 5 classes or fewer, every query is trivially in its top 5
            out[f"{name}_top5"] = 100.0 * (top == y[:, None]).any(1).float().mean().item()
    return out


# --- the `knn` probe method (see evaluate/methods.py)
NEEDS_LABELS = True
COLUMNS = (("kNN top-1", "weighted_top1"), ("kNN top-5", "weighted_top5"), ("kNN maj.", "majority_top1"))


SETTINGS = {"k": None, "temperature": None, "centre": None, "index": None, "nlist": ("index", "ivf"),
            "nprobe": ("index", "ivf")}


def measure(bank: torch.Tensor, bank_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor, num_classes: int,
            settings, seed: int, device) -> dict:
    """Cosine kNN of labelled query rows against labelled bank rows (each less the bank's mean: `centre`)."""
    if settings.centre:
        bank, query = centred_on(bank, bank, query)
    return knn_accuracy(query, query_y, bank, bank_y, num_classes, k=settings.k, temperature=settings.temperature,
                        index=settings.index, nlist=settings.nlist, nprobe=settings.nprobe)


def centred_on(bank: torch.Tensor, *features: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each of `features` [*, E] less the mean of bank [N, E] (the probe's `centre`)."""
    mean = bank.float().mean(0)
    return tuple(x.float() - mean for x in features)
