"""Atomic file writes: a temporary file in the destination folder, then `os.replace`.

A process killed mid-write leaves either the old file or nothing at the destination,
never a half-written one. Only regular files are written, or replaced: a destination that is a
symbolic link (even a dangling one), a directory, a device, a FIFO or a socket is refused, before any work
(`check_output_file`) and again at every write (`atomic_path`), whatever --force says.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import DiskFull, UserError


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


NODE_KINDS = ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symbolic link"),
              (stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "device"),
              (stat.S_ISBLK, "device"))


def node_kind(path: str | os.PathLike) -> str | None:
    """What stands at `path` itself (a symbolic link is not followed): None for nothing, else one of
    NODE_KINDS' names."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    return next((name for test, name in NODE_KINDS if test(mode)), "special file")


def refuse_unless_file(dest: str | os.PathLike, what: str = "--out") -> None:
    """A UserError unless `dest` is absent or a regular file: the only things a write may replace."""
    kind = node_kind(dest)
    if kind not in (None, "regular file"):
        raise UserError(f"{what} {dest} is a {kind}, not a regular file; unsuprnn writes only regular files "
                        "(--force does not change that): choose another path")


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success it is renamed onto `dest`.

    `suffix` keeps the extension for writers that look at it (numpy adds `.npy`, pyarrow
    checks nothing); by default the destination's own suffix is used. The temporary name carries the
    writer's pid, so that a later write into the same folder removes what a killed writer left. A full
    disk is a UserError naming the destination, and leaves `dest` as it was. A destination that is not a
    regular file is refused, before and again just before the rename.
    """
    dest = Path(dest)
    refuse_unless_file(dest, "output")
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
            refuse_unless_file(dest, "output")  # (something may have taken its place meanwhile)
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
    for _, dest in pending:
        refuse_unless_file(dest, "output")
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
    """Refuse, before any work, an output that names a directory or anything else but a regular file (a
    symbolic link, a device, a FIFO, a socket: whatever `force` says), sits where no folder can be made, or
    exists without `force` (so that a command never overwrites a result silently)."""
    dest = Path(dest)
    kind = node_kind(dest)
    if kind == "directory":
        raise UserError(f"{dest} is a directory; {what} must name a file")
    refuse_unless_file(dest, what)
    if kind and not force:
        raise UserError(f"{dest} exists; pass --force to overwrite it or choose another {what}")
    parent = next((p for p in [dest.parent, *dest.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise UserError(f"cannot write {dest}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {dest}: no write permission in {parent}")
    return dest
