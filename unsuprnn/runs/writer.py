"""Writing a run directory safely: one command at a time, a `--force` that destroys nothing until the new
run has a checkpoint to show for itself, and no file touched that the run did not write.

`claim_run(out, resume, force)` is called once every check of the config, the data and any run read
has passed, just before the first write. It takes an exclusive lock (`.NAME.lock` beside `out`, never
followed if it is a symlink, released when the command ends) and returns a `RunWriter` whose `work`
directory receives the files:

- a new run, or a resumed one: `out` itself;
- `--force` over an existing run: a staging folder `out/.unsuprnn-new`. `checkpointed()`, called once the
  new run's first checkpoint is written, swaps it in: the old run's files move into `out/.unsuprnn-old`
  (then a marker file says they all have), the new files move into `out`, the old ones are deleted. Every
  move is a rename inside `out`, on one filesystem, so `out` may be a mount point. A command that fails
  or is interrupted before then leaves the old run exactly as it was; `recover` completes or undoes a swap
  that a killed command left, before any other command reads or writes the run.

Files of the user's in the run directory (notes, reports) stay where they are.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
from pathlib import Path

from ..errors import RunInterrupted, UserError
from ..atomic import node_kind, sweep_temp_files
from .files import DERIVED_FILES, RUN_FILES, check_out, holds_run, is_ours
from .loggers import logger_folders

try:
    import fcntl
except ImportError:  # not on POSIX: runs are not locked
    fcntl = None

STAGE, OLD, MOVED = ".unsuprnn-new", ".unsuprnn-old", ".moved"


def lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def _holder_of(fd: int) -> str:
    """What the lock file open at `fd` says of its holder (pid and command)."""
    return os.read(fd, 1000).decode(errors="replace").strip() or "another process"


def _in_use(out: Path, who: str) -> UserError:
    return UserError(f"{out} is in use by another unsuprnn command ({who}); "
                     "wait for it to end, or choose another --out")


def _check_lock_node(path: Path) -> None:
    """The lock file's place holds nothing or a regular file (never a link, a folder, a device, a FIFO)."""
    kind = node_kind(path)
    if kind not in (None, "regular file"):
        raise UserError(f"{path} (the run's lock file) is a {kind}, not unsuprnn's; remove it, or choose another "
                        "--out")


def _open_lock(path: Path, flags: int) -> int:
    """The lock file, opened without following a symlink; anything but a regular file there is an error."""
    _check_lock_node(path)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            _check_lock_node(path)  # something took its place meanwhile: say what
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        _check_lock_node(path)
    return fd


def _lock(out: Path) -> int | None:
    """An exclusive lock on `out` (a lock file beside it), or a UserError naming the holder."""
    if fcntl is None:
        return None
    path = lock_path(out)
    while True:
        fd = _open_lock(path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _holder_of(fd)
            os.close(fd)
            raise _in_use(out, who) from None
        try:  # the holder before us may have removed the file: lock the one at `path` now
            if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}: {' '.join(sys.argv)}".encode())
    return fd


def holder(out: str | Path) -> str | None:
    """Who holds the lock on `out` (pid and command), or None when no command is writing it. Read-only."""
    if fcntl is None:
        return None
    out = Path(out).resolve()
    if node_kind(lock_path(out)) != "regular file":  # (opening a FIFO to read would wait for a writer)
        return None
    try:
        fd = os.open(lock_path(out), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder_of(fd)
    finally:
        os.close(fd)  # also releases a shared lock taken here
    return None


def refuse_if_in_use(out: str | Path) -> None:
    """Exit at once when another command is writing `out`, or when its lock file's place is taken by a
    symlink, a folder or another node that is not a regular file (checked again, for good, by `claim_run`)."""
    _check_lock_node(lock_path(Path(out).resolve()))
    who = holder(out)
    if who:
        raise _in_use(out, who)


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock held while the block runs (waiting for another holder), on a lock file that is
    never followed through a symlink: for a short read-change-write of one file (probe.json)."""
    if fcntl is None:
        yield
        return
    fd = _open_lock(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _unlock(out: Path, fd: int | None) -> None:
    if fd is not None:
        lock_path(out).unlink(missing_ok=True)  # before closing: a waiter then locks a fresh file
        os.close(fd)


def _ours(folder: Path) -> Path:
    """A staging folder of ours inside `out`, refused if something else (a symlink, a file) took its name."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UserError(f"{folder} is not unsuprnn's staging folder (a symlink or a file); remove it")
    return folder


def _swap(out: Path) -> None:
    """The staged run replaces the old one: old files into OLD (then the marker), new ones into `out`."""
    new, old = _ours(out / STAGE), _ours(out / OLD)
    old.mkdir(exist_ok=True)
    if not (old / MOVED).exists():
        for name in RUN_FILES + DERIVED_FILES + tuple(logger_folders(out)):
            if (out / name).exists() or (out / name).is_symlink():
                os.rename(out / name, old / name)
        (old / MOVED).touch()
    for entry in list(new.iterdir()):
        os.replace(entry, out / entry.name)
    new.rmdir()
    shutil.rmtree(old)


def recover(out: Path) -> None:
    """Complete or undo what a --force killed mid-way left in `out` (call with the lock held): once the old
    run's folder exists the new run had its checkpoint and takes the place; a staged run alone is dropped."""
    new, old = _ours(out / STAGE), _ours(out / OLD)
    if old.exists():
        _swap(out) if new.exists() else shutil.rmtree(old)
    elif new.exists():
        shutil.rmtree(new)


def settle(run: str | Path) -> None:
    """Before a command reads a run: complete a swap that a killed --force left (if no command holds it)."""
    run = Path(run)
    if run.is_dir() and ((run / STAGE).exists() or (run / OLD).exists()) and not holder(run):
        fd = _lock(run.resolve())
        try:
            recover(run.resolve())
        finally:
            _unlock(run.resolve(), fd)


class RunWriter:
    """Where a run's files go (`work`), under the lock on `out`. Use as a context manager."""

    def __init__(self, out: Path, work: Path, fd: int | None):
        self.out, self.work, self._fd = out, work, fd
        self.saved = False  # a checkpoint exists in `work`

    @property
    def staged(self) -> bool:
        return self.work != self.out

    def checkpointed(self) -> None:
        """The run's checkpoint is written: a staged --force run now replaces the old one."""
        self.saved = True
        if self.staged:
            _swap(self.out)
            self.work = self.out

    def close(self, failed: bool) -> None:
        try:
            if failed and self.staged:
                shutil.rmtree(self.work, ignore_errors=True)
        finally:
            _unlock(self.out, self._fd)
            self._fd = None

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        staged = self.staged
        self.close(failed=exc_type is not None)
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt) and not self.saved:
            if staged:
                raise RunInterrupted(f"interrupted before the new run's first checkpoint; {self.out} still "
                                     "holds the previous run, unchanged") from None
            raise RunInterrupted("interrupted before the first checkpoint, so there is nothing to resume; "
                                 "rerun the same command to start again") from None


def _start_fresh(out: Path) -> None:
    """A new run in `out` (no run there): drop what an earlier run of ours left before its first checkpoint.
    (`check_out` refused the folder if a file with a run's name there is not ours.)"""
    for name in RUN_FILES + DERIVED_FILES:
        if is_ours(out / name):
            (out / name).unlink()


def claim_run(out: str | Path, resume: bool, force: bool) -> RunWriter:
    """Lock `out` and prepare where the run is written (see the module docstring). Check everything
    else first: this is the first step that changes the disk."""
    out = Path(out).resolve()  # a symlinked run directory is replaced where it really lives
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = _lock(out)
    try:
        out.mkdir(exist_ok=True)
        recover(out)
        sweep_temp_files(out)
        resuming = check_out(out, resume, force)  # again under the lock: another command may have written
        if resuming or not holds_run(out):
            if not resuming:
                _start_fresh(out)
            work = out
        else:
            work = out / STAGE
            work.mkdir()
    except BaseException:
        _unlock(out, fd)
        raise
    writer = RunWriter(out, work, fd)
    writer.saved = resuming
    return writer


def claim_on_rank0(fabric, out: Path, resume: bool, force: bool) -> RunWriter | None:
    """`claim_run` on DDP rank 0 (the only writer); a refusal there stops every rank with its message."""
    writer, error = None, None
    if fabric.global_rank == 0:
        try:
            writer = claim_run(out, resume, force)
        except UserError as exc:
            error = str(exc)
    if fabric.world_size > 1:
        error = fabric.broadcast(error, src=0)
    if error:
        raise UserError(error)
    return writer
