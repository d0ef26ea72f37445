"""Embeddings where people look at them: lightly's embeddings CSV (`--format lightly`, read by
`lightly.utils.io.load_embeddings`) and TensorBoard's projector folder (`--format projector`: tensors.tsv,
metadata.tsv, sprite.png, projector_config.pbtxt, the layout its projector plugin reads).

Both are written atomically: the projector's four files replace their old versions together or not at all,
and a folder holding files this tool did not write is never written into over them."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..atomic import atomic_path, check_output_file, together
from .gather import LazyEmbeddings, chunks_of

PROJECTOR_FILES = ("tensors.tsv", "metadata.tsv", "sprite.png", "projector_config.pbtxt")
PROJECTOR_MARK = "# written by unsuprnn export --format projector"
SPRITE_MAX = 8192  # TensorBoard's projector reads sprites up to 8192 x 8192 pixels
THUMBNAIL = 64     # the largest thumbnail side in the sprite


def write_lightly_csv(cols: dict, out: Path) -> None:
    """lightly's CSV: `filenames, embedding_0.., labels` (written by lightly's own `save_embeddings`).
    filenames: the image files of a folder dataset, else `SPLIT/INDEX`; labels: the class index, -1 where
    unknown."""
    from lightly.utils.io import save_embeddings
    emb = cols["embeddings"]
    emb = emb.numpy() if isinstance(emb, LazyEmbeddings) else np.asarray(emb)
    names = cols["paths"] if "paths" in cols else [f"{s}/{i}" for s, i in zip(cols["split"], cols["indices"])]
    with atomic_path(out, suffix=".csv") as tmp:
        save_embeddings(str(tmp), emb, [int(v) for v in cols["labels"]], [str(n) for n in names])


def read_lightly_csv(path: Path) -> dict:
    """A lightly embeddings CSV back as export columns (embeddings, labels, paths)."""
    from lightly.utils.io import load_embeddings
    emb, labels, names = load_embeddings(str(path))
    return {"embeddings": emb.astype(np.float32), "labels": np.asarray(labels, dtype=np.int64),
            "paths": np.asarray(names, dtype=str), "config_hash": None, "normalization": "unknown"}


def check_projector_dir(out: Path, force: bool) -> None:
    """Refuse, before any work, a projector --out that is not a folder this export may write: a symlink or a
    file, or (without --force) one that holds an earlier projector export, or one whose projector file names
    are taken by files this tool did not write."""
    if out.is_symlink():
        raise UserError(f"--out {out} is a symbolic link; name a real folder for --format projector")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; --format projector writes a folder: name a new or empty one")
    taken = [f for f in PROJECTOR_FILES if (out / f).exists() or (out / f).is_symlink()]
    if taken:
        if not _ours(out / "projector_config.pbtxt"):
            raise UserError(f"{out} holds {', '.join(taken)}, which an unsuprnn projector export did not write; "
                            "name a new or empty folder")
        if not force:
            raise UserError(f"{out} holds a projector export already; pass --force to replace it or choose another "
                            "--out")
    for name in PROJECTOR_FILES:
        if (out / name).is_symlink() or (out / name).is_dir():
            raise UserError(f"{out / name} is a link or a folder; name a new or empty folder")
        check_output_file(out / name, True)


def _ours(config: Path) -> bool:
    try:
        return config.is_file() and not config.is_symlink() and config.read_text(errors="replace") \
            .startswith(PROJECTOR_MARK)
    except OSError:
        return False


def write_projector(cols: dict, out: Path) -> None:
    """The projector folder: one tab-separated row of numbers per image, a metadata row per image (label,
    cluster, split, outlier score, duplicate, path), a sprite of thumbnails where `cols` has them."""
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with together():
            with atomic_path(out / "tensors.tsv") as tmp, open(tmp, "w") as fh:
                for chunk in chunks_of(cols["embeddings"]):
                    fh.writelines("\t".join(f"{v:.7g}" for v in row) + "\n" for row in chunk)
            head, table = metadata_table(cols)
            with atomic_path(out / "metadata.tsv") as tmp, open(tmp, "w") as fh:
                fh.write("\t".join(head) + "\n")
                fh.writelines("\t".join(row) + "\n" for row in table)
            sprite = None
            if "thumbnails" in cols and len(cols["thumbnails"]):
                with atomic_path(out / "sprite.png") as tmp:
                    sprite = write_sprite(cols["thumbnails"], tmp)
            with atomic_path(out / "projector_config.pbtxt") as tmp:
                tmp.write_text(projector_config(len(table), int(cols["embeddings"].shape[1]), sprite))
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def metadata_table(cols: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of metadata.tsv: every value without tabs or line breaks."""
    classes = list(cols.get("classes") or [])
    columns = {"index": cols["indices"], "split": cols["split"],
               "label": [classes[v] if 0 <= v < len(classes) else ("" if v < 0 else str(v)) for v in cols["labels"]]}
    for key in ("cluster", "confidence", "outlier_score", "duplicate_of", "paths"):
        if key in cols:
            columns["path" if key == "paths" else key] = cols[key]
    clean = str.maketrans({"\t": " ", "\n": " ", "\r": " "})

    def text(v) -> str:
        return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v).translate(clean)
    n = len(cols["indices"])
    return list(columns), [[text(columns[c][i]) for c in columns] for i in range(n)]


def write_sprite(thumbnails: np.ndarray, path: Path) -> int:
    """A square grid of thumbnails [N, s, s, C] (row-major, the metadata's order) as one PNG of at most
    SPRITE_MAX pixels a side; returns the side of one thumbnail in it."""
    import torch
    from PIL import Image
    n, s = len(thumbnails), thumbnails.shape[1]
    grid = math.ceil(math.sqrt(n))
    side = max(1, min(s, SPRITE_MAX // grid))
    t = torch.from_numpy(thumbnails).permute(0, 3, 1, 2).float()
    if side != s:
        t = torch.nn.functional.interpolate(t, size=(side, side), mode="area")
    t = t.round().clamp(0, 255).to(torch.uint8)
    c = t.shape[1]
    sheet = torch.zeros(c, grid * side, grid * side, dtype=torch.uint8)
    for i in range(n):
        r, q = divmod(i, grid)
        sheet[:, r * side:(r + 1) * side, q * side:(q + 1) * side] = t[i]
    img = sheet[0].numpy() if c == 1 else sheet.permute(1, 2, 0).numpy()
    Image.fromarray(img, mode="L" if c == 1 else "RGB").save(path, format="PNG")
    return side


def projector_config(rows: int, dim: int, sprite: int | None) -> str:
    """projector_config.pbtxt (protobuf text format of TensorBoard's ProjectorConfig)."""
    lines = [PROJECTOR_MARK, "embeddings {", '  tensor_name: "unsuprnn"', f"  tensor_shape: {rows}",
             f"  tensor_shape: {dim}", '  tensor_path: "tensors.tsv"', '  metadata_path: "metadata.tsv"']
    if sprite:
        lines += ["  sprite {", '    image_path: "sprite.png"', f"    single_image_dim: {sprite}",
                  f"    single_image_dim: {sprite}", "  }"]
    return "\n".join(lines + ["}"]) + "\n"
