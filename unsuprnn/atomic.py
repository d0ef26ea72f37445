"""Atomic file writes: a temporary file in the destination folder, then `os.replace`.

A process killed mid-write leaves either the old file or nothing at the destination,
never a half-written one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success it is renamed onto `dest`.

    `suffix` keeps the extension for writers that look at it (numpy adds `.npy`, pyarrow
    checks nothing); by default the destination's own suffix is used.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name ends with the real suffix, so writers that append one (np.save) do not
    fd, tmp = tempfile.mkstemp(
        prefix=f".{dest.name}.", suffix=".tmp" + (dest.suffix if suffix is None else suffix),
        dir=dest.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        with open(tmp_path, "rb+") as fh:  # flush to disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(dest: str | os.PathLike, text: str) -> None:
    """Write `text` to `dest` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `dest` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
