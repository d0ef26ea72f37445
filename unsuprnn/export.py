"""Export embeddings with labels, sample indices, split, file paths (folder datasets), cluster ids
(k-means, or a cluster run's head with its confidence) and the run's config hash. Formats by extension: .npz, .npy (+ .json sidecar), .parquet (pyarrow), .csv.
Written atomically; an existing file is kept unless `force`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch

from .runs.atomic import atomic_path, check_output_file, together
from .runs.checkpoint import file_sha256, load_run_encoder
from .data.dataset import load_dataset_matching
from .errors import UserError
from .evaluate.embed import embed_images

FORMATS = (".npz", ".npy", ".parquet", ".csv")


def gather_embeddings(run: str | Path, dataset: str | None = None, split: str = "all",
                      device: torch.device | str = "cpu", cluster: int | None = None,
                      progress: bool = False, normalize: bool = True) -> dict:
    """Embed `split` ('train', 'test' or 'all') of the run's dataset (or `dataset`) -> dict of columns.

    normalize: L2-normalize each embedding, as the probes' kNN and k-means do (so that clustering
    the export reproduces their figures); False keeps the encoder's raw output, which the linear probe
    standardizes. The choice is recorded as `normalization` (l2 | none)."""
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
    def embed_rows(rows):
        e = embed_images(encoder, pipeline, ds.images, device, indices=rows)
        return (torch.nn.functional.normalize(e, dim=1) if normalize else e).numpy()

    emb = LazyEmbeddings(embed_rows, indices, encoder.out_dim, progress)
    cols = {"embeddings": emb, "labels": ds.labels[indices].numpy(),
            "indices": indices.numpy().astype(np.int64), "split": names.astype(str),
            "config_hash": cfg.digest(), "dataset": ds.spec, "classes": ds.classes,
            "normalization": "l2" if normalize else "none"}
    if ds.paths is not None:
        cols["paths"] = np.array([ds.paths[i] for i in indices.tolist()], dtype=str)
    from .cluster.scan import assign_clusters
    from .runs.checkpoint import load_cluster_head
    head = load_cluster_head(run) if Path(run).is_dir() else None
    if head is not None:  # a cluster run: its head's cluster and confidence for every row
        if cluster:
            raise UserError(f"{run} is a cluster run: its `cluster` column comes from its clustering head; "
                            "drop --cluster (or export the pretrained run with --cluster K for k-means)")
        ids, conf = assign_clusters(encoder, head, pipeline, ds.images, device, indices=indices, progress=progress)
        cols["cluster"], cols["confidence"] = ids.numpy().astype(np.int64), conf.numpy().astype(np.float32)
    if cluster:  # k-means needs every vector at once
        from .evaluate.kmeans import default_restarts, kmeans
        cols["embeddings"] = emb = emb.numpy()
        x = torch.from_numpy(emb)  # clustered exactly as the probe's k-means clusters (same seed and restarts)
        x = x if normalize else torch.nn.functional.normalize(x, dim=1)
        cols["cluster"] = kmeans(x, cluster, seed=cfg.train.seed, device=device, restarts=default_restarts(len(x)))[0]
    return cols


class LazyEmbeddings:
    """Embeddings computed chunk by chunk while they are written, so memory stays bounded."""

    CHUNK = 65536

    def __init__(self, embed_rows, indices: torch.Tensor, dim: int, progress: bool = False):
        self.embed_rows, self.indices, self.shape, self.progress = embed_rows, indices, (len(indices), dim), progress

    def __len__(self) -> int:
        return self.shape[0]

    def chunks(self):
        from .progress import progress_bar
        with progress_bar(self.progress, total=len(self), unit="img", desc="embedding") as bar:
            for start in range(0, len(self), self.CHUNK):
                rows = self.indices[start:start + self.CHUNK]
                yield self.embed_rows(rows).astype(np.float32)
                bar.update(len(rows))

    def numpy(self) -> np.ndarray:
        return np.concatenate(list(self.chunks())) if len(self) else np.zeros(self.shape, np.float32)


def _chunks(emb):
    if isinstance(emb, LazyEmbeddings):
        yield from emb.chunks()
    else:
        for start in range(0, len(emb), LazyEmbeddings.CHUNK):
            yield np.asarray(emb[start:start + LazyEmbeddings.CHUNK], dtype=np.float32)


ROW_COLUMNS = ("indices", "split", "labels", "paths", "cluster", "confidence")


def check_target(out: str | Path, force: bool = False) -> str:
    """The export format of `out` (its extension), refusing unknown formats and, without `force`,
    existing files (and an .npy's .json sidecar)."""
    out = Path(out)
    ext = out.suffix.lower()
    if out.is_dir() or not ext:
        what = "is a folder" if out.is_dir() else "has no file extension"
        raise UserError(f"--out {out} {what}; name a file that ends with {', '.join(FORMATS)} "
                        f"(e.g. {out / 'embeddings.npz'})")
    if ext not in FORMATS:
        raise UserError(f"unknown export format '{out.suffix}'; end --out with {', '.join(FORMATS)}")
    pair = npy_pair_state(out) if ext == ".npy" else None
    if pair == "foreign":
        raise UserError(f"{out.with_suffix('.json')} exists and is not the sidecar of an unsuprnn export; an .npy "
                        "export writes its sidecar there, so choose another --out")
    for path in (out, out.with_suffix(".json")) if ext == ".npy" else (out,):
        if path.is_dir():
            raise UserError(f"{path} is a directory; --out must name a file (e.g. {path / 'embeddings'}{ext})")
        check_output_file(path, force or pair == "interrupted")  # an interrupted export's pair is ours to redo
    if ext == ".parquet":
        parquet_module()
    return ext


def npy_pair_state(out: Path) -> str:
    """What sits at an .npy export's place: `none`, `ours` (an export's .npy and its sidecar), `interrupted`
    (a pair from an export killed between its two renames: the sidecar's checksum is not the .npy's), or
    `foreign` (a .json there that is not an export's sidecar: never replaced)."""
    side = out.with_suffix(".json")
    if not side.exists() and not side.is_symlink():
        return "none"
    try:
        d = json.loads(side.read_text()) if side.is_file() and not side.is_symlink() else None
    except (OSError, ValueError, RecursionError):
        d = None
    if not isinstance(d, dict) or not {"npy_sha256", "config_hash"} <= set(d):
        return "foreign"
    return "ours" if out.is_file() and file_sha256(out) == d["npy_sha256"] else "interrupted"


def parquet_module():
    """pyarrow and pyarrow.parquet, or one line naming the extra that installs them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError("writing .parquet needs pyarrow, which is not installed: pip install 'unsuprnn[parquet]' "
                        "(or pip install pyarrow), or export to .npz, .npy or .csv") from None
    return pa, pq


def write_npy_stream(path: Path, emb) -> str:
    """Write embeddings [N, E] as a float32 .npy chunk by chunk with plain writes (a full disk is an
    OSError, never a SIGBUS through a memory map). Returns the file's SHA-256."""
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                      "shape": tuple(int(d) for d in emb.shape)})
        h.update(header.getvalue())
        fh.write(header.getvalue())
        for chunk in _chunks(emb):
            block = np.ascontiguousarray(chunk, dtype="<f4").tobytes()
            h.update(block)
            fh.write(block)
    return h.hexdigest()


def write_embeddings(cols: dict, out: str | Path, force: bool = False) -> Path:
    """Write the columns of `gather_embeddings` to `out` in the format its extension names."""
    out = Path(out)
    ext = check_target(out, force)
    meta = {"config_hash": cols["config_hash"], "dataset": cols["dataset"], "classes": cols["classes"],
            "normalization": cols.get("normalization", "none"),
            "rows": int(cols["embeddings"].shape[0]), "dim": int(cols["embeddings"].shape[1])}
    rows = {k: cols[k] for k in ROW_COLUMNS if k in cols}
    emb = cols["embeddings"]
    if ext == ".npz":  # one zip member: the whole array is built in memory
        emb = emb.numpy() if isinstance(emb, LazyEmbeddings) else emb
        with atomic_path(out, suffix=".npz") as tmp:
            np.savez(tmp, embeddings=emb, **rows, config_hash=np.array(cols["config_hash"]),
                     normalization=np.array(meta["normalization"]),
                     dataset=np.array(cols["dataset"]), classes=np.array(cols["classes"], dtype=str))
    elif ext == ".npy":
        # both files are written whole before either replaces an older one; the sidecar holds the
        # .npy's checksum, so that a pair from two exports is refused when read back
        with together():
            with atomic_path(out, suffix=".npy") as tmp:
                digest = write_npy_stream(tmp, emb)
            side = meta | {"npy_sha256": digest} | {k: v.tolist() for k, v in rows.items()}
            with atomic_path(out.with_suffix(".json")) as tmp_side:
                tmp_side.write_text(json.dumps(side) + "\n")
    elif ext == ".parquet":
        pa, pq = parquet_module()
        writer, start = None, 0
        with atomic_path(out, suffix=".parquet") as tmp:  # one row group per chunk
            for chunk in _chunks(emb):
                end = start + len(chunk)
                table = pa.table({**{k: pa.array(v[start:end]) for k, v in rows.items()},
                                  "embedding": pa.FixedSizeListArray.from_arrays(pa.array(chunk.reshape(-1)),
                                                                                 emb.shape[1])})
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema.with_metadata({"unsuprnn": json.dumps(meta)}))
                writer.write_table(table)
                start = end
            if writer is not None:
                writer.close()
    else:  # .csv, row by row
        with atomic_path(out, suffix=".csv") as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(list(rows) + ["config_hash", "normalization"] + [f"e{i}" for i in range(emb.shape[1])])
                i = 0
                for chunk in _chunks(emb):
                    for vec in chunk:
                        w.writerow([rows[k][i] for k in rows] + [cols["config_hash"], meta["normalization"]]
                                   + [f"{v:.7g}" for v in vec])
                        i += 1
    return out


def read_embeddings(path: str | Path) -> dict:
    """Read any export format back into columns (embeddings, labels, indices, split, ...)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".npz":
        with np.load(path) as z:
            out = {k: z[k] for k in z.files}
        out["config_hash"] = str(out["config_hash"])
        out["normalization"] = str(out.get("normalization", "none"))
        return out
    if ext == ".npy":
        side = json.loads(path.with_suffix(".json").read_text())
        if "npy_sha256" in side and side["npy_sha256"] != file_sha256(path):
            raise UserError(f"{path} and its sidecar {path.with_suffix('.json')} come from different exports (an "
                            "export interrupted between its two files); export again (no --force needed)")
        out = {k: np.asarray(v) for k, v in side.items() if k in ROW_COLUMNS}
        return out | {"embeddings": np.load(path), "config_hash": side["config_hash"],
                      "normalization": side.get("normalization", "none")}
    if ext == ".parquet":
        import pyarrow.parquet as pq
        t = pq.read_table(path)
        out = {k: t.column(k).to_numpy() for k in t.column_names if k != "embedding"}
        out["embeddings"] = np.stack(t.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
        meta = json.loads(t.schema.metadata[b"unsuprnn"])
        out["config_hash"], out["normalization"] = meta["config_hash"], meta.get("normalization", "none")
        return out
    if ext == ".csv":
        with open(path) as fh:
            r = list(csv.reader(fh))
        head, body = r[0], r[1:]
        out = {}
        for j, k in enumerate(head):
            if k in ROW_COLUMNS:
                vals = [row[j] for row in body]
                kind = {"split": str, "paths": str, "confidence": np.float32}.get(k, np.int64)
                out[k] = np.array(vals, dtype=kind)
        first = head.index("e0")
        out["embeddings"] = np.array([row[first:] for row in body], dtype=np.float32)
        out["config_hash"] = body[0][head.index("config_hash")] if body else None
        out["normalization"] = body[0][head.index("normalization")] if body and "normalization" in head else "none"
        return out
    raise UserError(f"unknown export format '{path.suffix}'")
