"""Export files: .npz, .npy (+ .json sidecar), .parquet (pyarrow) and .csv, chosen by extension, and the
files other tools read (`clients.py`). Each is written atomically; an existing file is kept unless `force`,
and a file this tool did not write is never replaced."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..atomic import atomic_path, check_output_file, together
from ..runs.checkpoint import file_sha256
from .gather import LazyEmbeddings, chunks_of

FORMATS = (".npz", ".npy", ".parquet", ".csv")


ROW_COLUMNS = ("indices", "split", "labels", "paths", "cluster", "confidence", "outlier_score", "duplicate_of")
FLOAT_COLUMNS = ("confidence", "outlier_score")


FORMAT_NAMES = ("auto", "npz", "npy", "parquet", "csv", "lightly", "projector")


def check_target(out: str | Path, force: bool = False, fmt: str = "auto") -> str:
    """The export format for `out`: `fmt`, or with `auto` the one its extension names (.npz, .npy, .parquet,
    .csv); refusing unknown formats and, without `force`, existing files (and an .npy's .json sidecar).
    `lightly` writes lightly's embeddings CSV (--out FILE.csv); `projector` a folder for TensorBoard's
    projector (--out DIR)."""
    out = Path(out)
    ext = out.suffix.lower()
    if fmt not in FORMAT_NAMES:
        raise UserError(f"unknown --format '{fmt}'; use one of: {', '.join(FORMAT_NAMES)}")
    if fmt == "projector":
        from .clients import check_projector_dir
        check_projector_dir(out, force)
        return fmt
    if out.is_dir() or not ext:
        what = "is a folder" if out.is_dir() else "has no file extension"
        raise UserError(f"--out {out} {what}; name a file that ends with {', '.join(FORMATS)} "
                        f"(e.g. {out / 'embeddings.npz'}), or pass --format projector to write a folder")
    want = ".csv" if fmt == "lightly" else "." + fmt if fmt != "auto" else ext
    if ext not in FORMATS or ext != want:
        raise UserError(f"--out {out} does not end with {want}, which --format {fmt} writes; end --out with {want}"
                        if fmt != "auto" else
                        f"unknown export format '{out.suffix}'; end --out with {', '.join(FORMATS)} "
                        "(or pass --format lightly or projector)")
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
    return "lightly" if fmt == "lightly" else ext.lstrip(".")


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
        for chunk in chunks_of(emb):
            block = np.ascontiguousarray(chunk, dtype="<f4").tobytes()
            h.update(block)
            fh.write(block)
    return h.hexdigest()


def write_embeddings(cols: dict, out: str | Path, force: bool = False, fmt: str = "auto") -> Path:
    """Write the columns of `gather_embeddings` to `out` in the format `fmt` (auto: its extension's)."""
    out = Path(out)
    kind = check_target(out, force, fmt)
    if kind in ("lightly", "projector"):
        from . import clients
        (clients.write_lightly_csv if kind == "lightly" else clients.write_projector)(cols, out)
        return out
    ext = "." + kind
    meta = {"config_hash": cols["config_hash"], "dataset": cols["dataset"], "classes": cols["classes"],
            "normalization": cols.get("normalization", "none"),
            "rows": int(cols["embeddings"].shape[0]), "dim": int(cols["embeddings"].shape[1])}
    if "cluster_method" in cols:
        meta["cluster_method"] = cols["cluster_method"]
    rows = {k: cols[k] for k in ROW_COLUMNS if k in cols}
    emb = cols["embeddings"]
    if ext == ".npz":  # one zip member: the whole array is built in memory
        emb = emb.numpy() if isinstance(emb, LazyEmbeddings) else emb
        extra = {"cluster_method": np.array(meta["cluster_method"])} if "cluster_method" in meta else {}
        with atomic_path(out, suffix=".npz") as tmp:
            np.savez(tmp, embeddings=emb, **rows, config_hash=np.array(cols["config_hash"]),
                     normalization=np.array(meta["normalization"]), **extra,
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
            for chunk in chunks_of(emb):
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
                for chunk in chunks_of(emb):
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
        for key in ("config_hash", "normalization", "cluster_method", "dataset"):
            if key in out:
                out[key] = str(out[key])
        out.setdefault("normalization", "none")
        return out
    if ext == ".npy":
        side = json.loads(path.with_suffix(".json").read_text())
        if "npy_sha256" in side and side["npy_sha256"] != file_sha256(path):
            raise UserError(f"{path} and its sidecar {path.with_suffix('.json')} come from different exports (an "
                            "export interrupted between its two files); export again (no --force needed)")
        out = {k: np.asarray(v) for k, v in side.items() if k in ROW_COLUMNS}
        return out | {"embeddings": np.load(path), "config_hash": side["config_hash"],
                      "normalization": side.get("normalization", "none")} | \
            ({"cluster_method": side["cluster_method"]} if "cluster_method" in side else {})
    if ext == ".parquet":
        import pyarrow.parquet as pq
        t = pq.read_table(path)
        out = {k: t.column(k).to_numpy() for k in t.column_names if k != "embedding"}
        out["embeddings"] = np.stack(t.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
        meta = json.loads(t.schema.metadata[b"unsuprnn"])
        out["config_hash"], out["normalization"] = meta["config_hash"], meta.get("normalization", "none")
        if "cluster_method" in meta:
            out["cluster_method"] = meta["cluster_method"]
        return out
    if ext == ".csv":
        with open(path) as fh:
            r = list(csv.reader(fh))
        head, body = r[0], r[1:]
        if head[:1] == ["filenames"]:  # lightly's embeddings CSV (--format lightly)
            from .clients import read_lightly_csv
            return read_lightly_csv(path)
        out = {}
        for j, k in enumerate(head):
            if k in ROW_COLUMNS:
                vals = [row[j] for row in body]
                kind = str if k in ("split", "paths") else np.float32 if k in FLOAT_COLUMNS else np.int64
                out[k] = np.array(vals, dtype=kind)
        first = head.index("e0")
        out["embeddings"] = np.array([row[first:] for row in body], dtype=np.float32)
        out["config_hash"] = body[0][head.index("config_hash")] if body else None
        out["normalization"] = body[0][head.index("normalization")] if body and "normalization" in head else "none"
        return out
    raise UserError(f"unknown export format '{path.suffix}'")
