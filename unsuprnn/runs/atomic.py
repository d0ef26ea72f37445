"""Atomic file writes: a temporary file in the destination folder, then `os.replace`.

A process killed mid-write leaves either the old file or nothing at the destination,
never a half-written one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import DiskFull


TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]{8}\.tmp")  # .NAME.PID.RANDOM.tmp[.ext]
FULL = (errno.ENOSPC, errno.EDQUOT)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def sweep_temp_files(folder: str | os.PathLike) -> None:
    """Remove temporary files that killed writers left in `folder` (their process is gone)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        m = TEMP_NAME.match(entry.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success it is renamed onto `dest`.

    `suffix` keeps the extension for writers that look at it (numpy adds `.npy`, pyarrow
    checks nothing); by default the destination's own suffix is used. The temporary name carries the
    writer's pid, so that a later write into the same folder removes what a killed writer left. A full
    disk is a UserError naming the destination, and leaves `dest` as it was.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_temp_files(dest.parent)
    # the temporary name ends with the real suffix, so writers that append one (np.save) do not
    fd, tmp = tempfile.mkstemp(
        prefix=f".{dest.name}.{os.getpid()}.", suffix=".tmp" + (dest.suffix if suffix is None else suffix),
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
    except OSError as exc:
        if exc.errno in FULL:
            raise DiskFull(f"no space left on the device to write {dest} ({exc.strerror}); free some space "
                            "or write elsewhere (the previous file, if any, is unchanged)") from None
        raise
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


def check_output_file(dest: str | os.PathLike, force: bool = False, what: str = "--out") -> Path:
    """Refuse, before any work, an output that names a directory, sits where no folder can be
    made, or exists without `force` (so that a command never overwrites a result silently)."""
    from ..errors import UserError

    dest = Path(dest)
    if dest.is_dir():
        raise UserError(f"{dest} is a directory; {what} must name a file")
    if dest.exists() and not force:
        raise UserError(f"{dest} exists; pass --force to overwrite it or choose another {what}")
    parent = next((p for p in [dest.parent, *dest.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise UserError(f"cannot write {dest}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {dest}: no write permission in {parent}")
    return dest
