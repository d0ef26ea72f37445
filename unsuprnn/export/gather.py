"""The columns of an export: a run's embeddings of a split with their labels, indices, split, file paths
(folder datasets), a cluster id per row (a cluster run's head with its confidence; or k-means with K given
or chosen, or HDBSCAN), the diagnostics a person cleaning a set acts on (`outlier_score`, `duplicate_of`)
and the run's config hash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import ProbeSettings
from ..data.dataset import load_dataset_matching
from ..errors import UserError
from ..evaluate.embed import embed_images
from ..names.clusters import AUTO, parse_clusters, parse_k_range, resolve_k
from ..runs.checkpoint import load_run_encoder

DIAGNOSE_MAX = 200_000  # beyond this many rows the all-pairs kNN behind the diagnostics takes too long
HDBSCAN = "hdbscan"


def parse_cluster(value) -> int | str | None:
    """--cluster: None (no column), a number of clusters (names/clusters.py: K, classes or auto) or `hdbscan`;
    else a UserError naming the choices."""
    return None if value is None else parse_clusters(value, "--cluster", also=(HDBSCAN,))


def gather_embeddings(run: str | Path, dataset: str | None = None, split: str = "all",
                      device: torch.device | str = "cpu", cluster: int | str | None = None,
                      progress: bool = False, normalize: bool = True, diagnostics: bool = True,
                      settings: ProbeSettings | None = None, thumbnails: int = 0) -> dict:
    """Embed `split` ('train', 'test' or 'all') of the run's dataset (or `dataset`) -> dict of columns.

    normalize: L2-normalize each embedding, as the probes' kNN and k-means do (so that clustering
    the export reproduces their figures); False keeps the encoder's raw output, which the linear probe
    standardizes. The choice is recorded as `normalization` (l2 | none).
    cluster: K or `classes` (k-means), `auto` (k-means, K chosen within settings.k_range: evaluate/kmeans.py)
    or `hdbscan` (-1 = noise); a cluster run's head gives the column without it.
    settings: the k-range and the near-duplicate threshold (ProbeSettings' defaults if None).
    diagnostics: the `outlier_score` and `duplicate_of` columns (evaluate/diagnostics.py).
    thumbnails: a side in pixels: the images themselves, shrunk to fit it (`thumbnails` [N, s, s, C] uint8),
    for the projector's sprite."""
    cluster, settings = parse_cluster(cluster), settings or ProbeSettings()
    encoder, pipeline, cfg, info = load_run_encoder(run, device)
    ds = load_dataset_matching(cfg.data, cfg.train.seed, info["shape"], dataset)
    if split == "all":
        indices = torch.arange(len(ds.images))
        names = np.empty(len(indices), dtype=object)
        for s, idx in ds.splits.items():
            names[idx.numpy()] = s
    elif split in ds.splits:
        indices = ds.splits[split]
        names = np.full(len(indices), split, dtype=object)
    else:
        raise UserError(f"{ds.spec} has no split '{split}'; use {', '.join(ds.splits)} or all")
    from ..runs.checkpoint import load_cluster_head
    head = load_cluster_head(run) if Path(run).is_dir() else None
    if head is not None and cluster is not None:
        raise UserError(f"{run} is a cluster run: its `cluster` column comes from its clustering head; "
                        "drop --cluster (or export the pretrained run with --cluster K, auto or hdbscan)")

    def embed_rows(rows):
        e = embed_images(encoder, pipeline, ds.images, device, indices=rows)
        return (torch.nn.functional.normalize(e, dim=1) if normalize else e).numpy()

    emb = LazyEmbeddings(embed_rows, indices, encoder.out_dim, progress)
    cols = {"embeddings": emb, "labels": ds.labels[indices].numpy(),
            "indices": indices.numpy().astype(np.int64), "split": names.astype(str),
            "config_hash": cfg.digest(), "dataset": ds.spec, "classes": ds.classes,
            "normalization": "l2" if normalize else "none", "notes": []}
    if ds.paths is not None:
        cols["paths"] = np.array([ds.paths[i] for i in indices.tolist()], dtype=str)
    if head is not None:  # a cluster run: its head's cluster and confidence for every row
        from ..cluster.scan import assign_clusters
        ids, conf = assign_clusters(encoder, head, pipeline, ds.images, device, indices=indices, progress=progress)
        cols["cluster"], cols["confidence"] = ids.numpy().astype(np.int64), conf.numpy().astype(np.float32)
        cols["cluster_method"] = "cluster head"
    diagnose = diagnostics and len(indices) <= DIAGNOSE_MAX
    if diagnostics and not diagnose:
        cols["notes"].append(f"outlier_score and duplicate_of were not computed: {len(indices):,} rows are more "
                             f"than {DIAGNOSE_MAX:,}; export one --split, or pass --no-diagnostics")
    if cluster is not None or diagnose:  # these need every vector at once
        cols["embeddings"] = emb = emb.numpy()
        x = torch.from_numpy(emb)
        x = x if normalize else torch.nn.functional.normalize(x, dim=1)
        if cluster is not None:
            cols |= cluster_column(x, resolve_k(cluster, len(ds.classes)), cfg.train.seed, device, settings.k_range)
        if diagnose:
            cols |= diagnostic_columns(x, cols["indices"], settings.duplicate_threshold, ds.images)
    if thumbnails:
        cols["thumbnails"] = shrink(ds.images, indices, thumbnails)
    return cols


def cluster_column(x: torch.Tensor, cluster: int | str, seed: int, device, k_range: str) -> dict:
    """`cluster` [N] and `cluster_method` for L2-normalized x [N, E]: k-means clustered exactly as the
    probe's k-means clusters (same seed and restarts), or HDBSCAN as the probe's `hdbscan` method."""
    from ..evaluate.hdbscan import hdbscan_clusters, min_cluster_size
    from ..evaluate.kmeans import choose_k, default_restarts, kmeans
    if cluster == HDBSCAN:
        ids = hdbscan_clusters(x, seed)
        return {"cluster": ids, "cluster_method": f"hdbscan (min cluster size {min_cluster_size(len(x))}; "
                                                  f"-1 = noise, {int((ids < 0).sum())} rows)"}
    how = f"kmeans K={cluster}"
    if cluster != AUTO and cluster < 2:
        raise UserError(f"--cluster classes: the dataset has {cluster} class(es), too few to cluster by; pass "
                        "--cluster K or auto")
    if cluster != AUTO and cluster > len(x):
        raise UserError(f"--cluster {cluster} is more than the {len(x)} rows exported; pass --cluster at most "
                        f"{len(x)} (or auto)")
    if cluster == AUTO:
        cluster, curve = choose_k(x, parse_k_range(k_range), seed)
        how = f"kmeans K={cluster} (auto: modularity over {k_range})"
    ids = kmeans(x, cluster, seed=seed, device=device, restarts=default_restarts(len(x)))[0]
    return {"cluster": ids, "cluster_method": how}


def diagnostic_columns(x: torch.Tensor, indices: np.ndarray, threshold: float, images: torch.Tensor) -> dict:
    """`outlier_score` [N] (higher = odder) and `duplicate_of` [N] (the index of an earlier row it nearly
    copies, -1 = none; row i is image `indices[i]` of `images`)."""
    from ..evaluate.diagnostics import near_duplicates, outlier_scores
    dup = near_duplicates(x, threshold, rows=indices, images=images, image_rows=torch.from_numpy(indices))
    return {"outlier_score": outlier_scores(x).astype(np.float32), "duplicate_of": dup.astype(np.int64)}


def shrink(images: torch.Tensor, indices: torch.Tensor, side: int) -> np.ndarray:
    """images uint8 [N, C, H, W] at `indices` as uint8 [n, s, s, C] thumbnails (area-averaged, s <= side)."""
    c, h, w = images.shape[1:]
    s = min(side, max(h, w))
    out = np.zeros((len(indices), s, s, c), dtype=np.uint8)
    for start in range(0, len(indices), 4096):
        rows = indices[start:start + 4096]
        x = images[rows].float()
        x = torch.nn.functional.interpolate(x, size=(s, s), mode="area") if (h, w) != (s, s) else x
        out[start:start + len(rows)] = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


class LazyEmbeddings:
    """Embeddings computed chunk by chunk while they are written, so memory stays bounded."""

    CHUNK = 65536

    def __init__(self, embed_rows, indices: torch.Tensor, dim: int, progress: bool = False):
        self.embed_rows, self.indices, self.shape, self.progress = embed_rows, indices, (len(indices), dim), progress

    def __len__(self) -> int:
        return self.shape[0]

    def chunks(self):
        from ..progress import progress_bar
        with progress_bar(self.progress, total=len(self), unit="img", desc="embedding") as bar:
            for start in range(0, len(self), self.CHUNK):
                rows = self.indices[start:start + self.CHUNK]
                yield self.embed_rows(rows).astype(np.float32)
                bar.update(len(rows))

    def numpy(self) -> np.ndarray:
        return np.concatenate(list(self.chunks())) if len(self) else np.zeros(self.shape, np.float32)


def chunks_of(emb):
    """Float32 chunks of embeddings [N, E], lazy or an array."""
    if isinstance(emb, LazyEmbeddings):
        yield from emb.chunks()
    else:
        for start in range(0, len(emb), LazyEmbeddings.CHUNK):
            yield np.asarray(emb[start:start + LazyEmbeddings.CHUNK], dtype=np.float32)
