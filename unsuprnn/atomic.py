"""Atomic file writes: a temporary file in the destination folder, then `os.replace`.

A process killed mid-write leaves either the old file or nothing at the destination,
never a half-written one.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import DiskFull


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
    tmp_path, pending = Path(tmp), _PENDING.get()
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        with open(tmp_path, "rb+") as fh:  # flush to disk before the rename makes it visible
            os.fsync(fh.fileno())
        if pending is not None:  # inside `together()`: replaced with the others at its end
            pending.append((tmp_path, dest))
        else:
            os.replace(tmp_path, dest)
    except OSError as exc:
        raise _named(exc, dest) from None
    finally:
        if tmp_path.exists() and (pending is None or (tmp_path, dest) not in pending):
            tmp_path.unlink()


def _named(exc: OSError, dest: Path) -> Exception:
    """A full disk as one line that names the file; other errors as they are."""
    if exc.errno in FULL:
        return DiskFull(f"no space left on the device to write {dest} ({exc.strerror}); free some space "
                        "or write elsewhere (the previous files are unchanged)")
    return exc


_PENDING: contextvars.ContextVar = contextvars.ContextVar("pending_writes", default=None)


@contextlib.contextmanager
def together() -> Iterator[None]:
    """Files written inside (through `atomic_path`) replace their destinations together at the end: all of
    them, or, where a write or a replacement fails, none (those already replaced are put back)."""
    pending: list[tuple[Path, Path]] = []
    token = _PENDING.set(pending)
    try:
        yield
        _PENDING.reset(token)
        token = None
        _replace_all(pending)
    finally:
        if token is not None:
            _PENDING.reset(token)
        for tmp, _ in pending:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _replace_all(pending: list[tuple[Path, Path]]) -> None:
    backups, done = {}, []
    try:
        for _, dest in pending:  # a hard link to each old file, to put it back if a later replace fails
            if dest.is_file() and not dest.is_symlink():
                bak = dest.with_name(f".{dest.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp.bak")
                with contextlib.suppress(OSError):
                    os.link(dest, bak)
                    backups[dest] = bak
        for tmp, dest in pending:
            os.replace(tmp, dest)
            done.append(dest)
    except OSError as exc:
        for dest in reversed(done):
            with contextlib.suppress(OSError):
                os.replace(backups[dest], dest) if dest in backups else os.unlink(dest)
        raise _named(exc, pending[len(done)][1] if len(done) < len(pending) else done[-1]) from None
    finally:
        for bak in backups.values():
            with contextlib.suppress(OSError):
                os.unlink(bak)


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
    from .errors import UserError

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
