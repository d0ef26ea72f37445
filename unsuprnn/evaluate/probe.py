"""`probe`: embed the bank (train split) and queries (test split) with a frozen encoder, then score
kNN, a linear probe and k-means, beside baselines on the very same images."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

import torch

from ..checkpoint import load_run_encoder
from ..config import Config
from ..data import load_dataset_matching
from ..errors import UserError
from .embed import embed_images
from .kmeans import kmeans_scores
from .knn import INDEXES, knn_accuracy
from .linear import linear_probe
from .metrics import clustering_metrics

METHODS = ("knn", "linear", "kmeans")


@dataclasses.dataclass
class ProbeData:
    """The bank (train split) and the queries (test split): uint8 image sets with the row indices
    to use, so that a memory-mapped set is read batch by batch and never copied whole."""
    bank_images: torch.Tensor
    bank_idx: torch.Tensor
    bank_y: torch.Tensor
    query_images: torch.Tensor
    query_idx: torch.Tensor
    query_y: torch.Tensor
    classes: list[str]
    bank_spec: str
    query_spec: str

    def embed(self, encoder, pipeline, device, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(bank embeddings [N, E], query embeddings [Q, E])."""
        return (embed_images(encoder, pipeline, self.bank_images, device, progress=progress, indices=self.bank_idx),
                embed_images(encoder, pipeline, self.query_images, device, progress=progress, indices=self.query_idx))


def load_probe_data(cfg: Config, shape: tuple, dataset: str | None = None,
                    test_dataset: str | None = None) -> ProbeData:
    """The run's own data (or `dataset`) split as in training; `test_dataset` supplies the queries
    instead (its own test split where it has one, else all of it). Classes match by label index."""
    bank = load_dataset_matching(cfg.data, cfg.train.seed, shape, dataset)
    q = load_dataset_matching(cfg.data, cfg.train.seed, shape, test_dataset) if test_dataset else bank
    if test_dataset and q.split_info["source"] != "own":
        query_idx = torch.arange(len(q.images))
    else:
        query_idx = q.splits["test"]
    bank_idx = bank.splits["train"]
    return ProbeData(bank.images, bank_idx, bank.labels[bank_idx], q.images, query_idx, q.labels[query_idx],
                     bank.classes, bank.spec, q.spec)


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


def score_features(bank: torch.Tensor, bank_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor,
                   num_classes: int, methods: tuple[str, ...], k: int = 20, temperature: float = 0.07,
                   clusters: int | None = None, seed: int = 0, device: torch.device | str = "cpu",
                   index: str = "flat", nlist: int = 1024, nprobe: int = 16) -> dict:
    """Run the probes in `methods` on bank features [N, E] and query features [Q, E]."""
    out: dict = {}
    bank_known, query_known = bank_y >= 0, query_y >= 0
    labelled = bool(bank_known.any()) and bool(query_known.any())
    if "knn" in methods:
        if not labelled:
            raise UserError("kNN needs labels in both the bank and the queries; this dataset has none "
                            "(k-means still works: --method kmeans)")
        out["knn"] = knn_accuracy(query[query_known], query_y[query_known], bank[bank_known],
                                  bank_y[bank_known], num_classes, k=k, temperature=temperature,
                                  index=index, nlist=nlist, nprobe=nprobe)
    if "linear" in methods:
        if not labelled:
            raise UserError("the linear probe needs labels in both splits; this dataset has none "
                            "(k-means still works: --method kmeans)")
        out["linear"] = linear_probe(bank[bank_known], bank_y[bank_known], query[query_known],
                                     query_y[query_known], num_classes, device=device, seed=seed)
    if "kmeans" in methods:
        kk = clusters or num_classes
        if not kk:
            raise UserError("the dataset has no classes to count; pass --k for the number of clusters")
        out["kmeans"] = kmeans_scores(query, query_y, kk, seed=seed, device=device)
    return out


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


def feature_sets(loaded: tuple, data: ProbeData, baselines: list[str], device: torch.device,
                 progress: bool = False) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name -> (bank features, query features) for the run's encoder and each baseline.

    loaded: (encoder, pipeline, config, info) from `load_run_encoder` on `device`.
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
            from sklearn.decomposition import PCA
            rb = raw_features(pipeline, data.bank_images, data.bank_idx)
            rq = raw_features(pipeline, data.query_images, data.query_idx)
            dim = pca_dim(encoder.out_dim, rb.shape[1], len(rb))
            pca = PCA(n_components=dim, random_state=cfg.train.seed).fit(rb.numpy())
            sets[f"pca{dim}"] = (torch.from_numpy(pca.transform(rb.numpy())).float(),
                                 torch.from_numpy(pca.transform(rq.numpy())).float())
        elif name == "random":
            torch.manual_seed(cfg.train.seed)
            rnd = build_encoder(cfg.encoder, pipeline.seq_shape[1]).to(device)
            sets["random"] = data.embed(rnd, pipeline, device)
        elif name == "supervised":
            if not arg:
                raise UserError("baseline 'supervised' needs a run: --baselines supervised=RUN_DIR")
            sup, sup_pipe, _, sup_info = load_run_encoder(Path(arg), device)
            if list(sup_info["shape"]) != list(info["shape"]):
                raise UserError(f"supervised run {arg} was trained on images {sup_info['shape']}, "
                                f"this run on {info['shape']}; compare runs on the same data")
            sets["supervised"] = data.embed(sup, sup_pipe, device)
        else:
            raise UserError(f"unknown baseline '{b}'; use raw, pca, random or supervised=RUN")
    if state_digest(encoder) != before:  # moco-v3 style guard: probing must never train the encoder
        raise RuntimeError("the frozen encoder's weights changed during probing")
    return sets


def run_probe(run: str | Path, methods: tuple[str, ...] = METHODS, baselines: list[str] | None = None,
              dataset: str | None = None, test_dataset: str | None = None, k: int = 20,
              temperature: float = 0.07, clusters: int | None = None, device: torch.device | str = "cpu",
              progress: bool = False, index: str = "flat", nlist: int = 1024, nprobe: int = 16,
              loaded: tuple | None = None, data: ProbeData | None = None) -> dict:
    """Score the run's encoder (and baselines) with each method. Returns a JSON-ready dict.

    loaded, data: the run's `load_run_encoder` result and `load_probe_data` for it, where the caller
    has them already (they are loaded here otherwise)."""
    run = Path(run)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UserError(f"unknown probe method '{bad[0]}'; use knn, linear, kmeans or all")
    if index not in INDEXES:
        raise UserError(f"unknown index '{index}'; use one of: {', '.join(INDEXES)}")
    device = torch.device(device)
    loaded = loaded or load_run_encoder(run, device)
    _, _, cfg, info = loaded
    data = data or load_probe_data(cfg, tuple(info["shape"]), dataset, test_dataset)
    num_classes = len(data.classes)
    n_bank = int((data.bank_y >= 0).sum())
    if "knn" in methods and k > n_bank:
        raise UserError(f"k={k} is larger than the labelled bank of {n_bank} vectors; pass --k at most {n_bank}")
    if clusters is not None and not 1 <= clusters <= len(data.query_idx):
        raise UserError(f"--clusters {clusters} must be between 1 and the {len(data.query_idx)} queries")
    sets = feature_sets(loaded, data, baselines or [], device, progress)
    results = {name: score_features(b, data.bank_y, q, data.query_y, num_classes, methods, k, temperature,
                                    clusters, cfg.train.seed, device, index, nlist, nprobe)
               for name, (b, q) in sets.items()}
    from ..cluster import load_cluster_head
    head = load_cluster_head(run) if run.is_dir() else None
    if head is not None:  # a cluster run: its own head's clusters, beside k-means on the same embeddings
        results["encoder"]["head"] = head_scores(head, sets["encoder"][1], data.query_y)
    sources = {"supervised": str(Path(b.partition("=")[2])) for b in baselines or [] if b.startswith("supervised=")}
    return {"run": str(run), "bank": data.bank_spec, "queries": data.query_spec,
            "bank_size": len(data.bank_idx), "query_size": len(data.query_idx), "k": k, "temperature": temperature,
            "index": index, "nlist": nlist, "nprobe": nprobe, "embedding_dim": int(sets["encoder"][0].shape[1]),
            "encoder_sha256": encoder_digest(loaded[0], head), "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "sources": sources, "results": results}


def head_scores(head: torch.nn.Module, query: torch.Tensor, query_y: torch.Tensor) -> dict:
    """A cluster run's head on query embeddings [Q, E]: cluster sizes, mean confidence and, where
    labels exist, NMI, ARI and Hungarian accuracy (labels score only)."""
    from ..scan import confident_clusters
    with torch.no_grad():
        ids, conf = confident_clusters(head.eval()(query.float()))
    k = head[-1].out_features
    out = {"k": k, "sizes": torch.bincount(ids, minlength=k).tolist(), "mean_confidence": float(conf.mean())}
    known = query_y >= 0
    if not known.any():
        return out | {"note": "no labels: clusters computed but not scored"}
    return out | clustering_metrics(query_y[known].numpy(), ids[known].numpy())


COLUMNS = [("kNN top-1", ("knn", "weighted_top1")), ("kNN top-5", ("knn", "weighted_top5")),
           ("kNN maj.", ("knn", "majority_top1")),
           ("linear top-1", ("linear", "accuracy")), ("macro F1", ("linear", "f1")),
           ("NMI", ("kmeans", "nmi")), ("ARI", ("kmeans", "ari")), ("cluster acc", ("kmeans", "accuracy"))]
HEAD_COLUMNS = [("head NMI", ("head", "nmi")), ("head ARI", ("head", "ari")), ("head acc", ("head", "accuracy"))]


def columns(reports: list[dict]) -> list[tuple[str, tuple[str, str]]]:
    """The table's columns: the probe methods, and a cluster head's scores where any run has one."""
    has_head = any("head" in res for r in reports for res in r["results"].values())
    return COLUMNS + (HEAD_COLUMNS if has_head else [])


def cell_text(result: dict, method: str, key: str) -> str:
    """One table cell: the figure (NMI and ARI to 3 places, percentages to 2) and, for k-means, ± the
    standard deviation over restarts; '-' where it was not measured."""
    v = result.get(method, {}).get(key)
    fmt = (lambda x: f"{x:.3f}") if key in ("nmi", "ari") else (lambda x: f"{x:.2f}")
    spread = result.get(method, {}).get("spread", {}).get(key)
    return "-" if v is None else fmt(v) + (f" ±{fmt(spread['std'])}" if spread else "")


def summary_rows(report: dict, cols: list | None = None) -> list[tuple[str, list[str]]]:
    return [(name, [cell_text(res, method, key) for _, (method, key) in cols or columns([report])])
            for name, res in report["results"].items()]


def format_table(report: dict) -> str:
    """Plain-text comparison table: one row per feature set, one column per score (k-means: the
    restart with the lowest objective, ± the standard deviation over restarts)."""
    header = ["features"] + [c for c, _ in columns([report])]
    rows = [[n] + c for n, c in summary_rows(report)]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])
