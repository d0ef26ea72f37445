"""Writing a run directory safely: one command at a time, and a `--force` that destroys nothing until
the new run has a checkpoint to show for itself.

`claim_run(out, resume, force)` is called once every check of the config, the data and any run read
has passed, just before the first write. It takes an exclusive lock (`.NAME.lock` beside `out`,
released when the command ends) and returns a `RunWriter` whose `work` directory receives the files:

- a new run, or a resumed one: `out` itself;
- `--force` over an existing run: a staging directory `.NAME.new` beside it. `checkpointed()`, called
  once the new run's first checkpoint is written, swaps it in for the old run. A command that fails or
  is interrupted before then leaves the old run exactly as it was; its staging directory is removed at
  once, or by the next command on `out` if the process was killed.

Files a user keeps in the run directory beside the run's own (notes, reports) move to the new run.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import RunInterrupted, UserError
from .files import DERIVED_FILES, RUN_FILES, check_out, clear_out, holds_run

try:
    import fcntl
except ImportError:  # not on POSIX: runs are not locked
    fcntl = None


def _sibling(out: Path, kind: str) -> Path:
    return out.parent / f".{out.name}.{kind}"


def _holder_of(fd: int) -> str:
    """What the lock file open at `fd` says of its holder (pid and command)."""
    return os.read(fd, 1000).decode(errors="replace").strip() or "another process"


def _in_use(out: Path, who: str) -> UserError:
    return UserError(f"{out} is in use by another unsuprnn command ({who}); "
                     "wait for it to end, or choose another --out")


def _lock(out: Path) -> int | None:
    """An exclusive lock on `out` (a lock file beside it), or a UserError naming the holder."""
    if fcntl is None:
        return None
    path = _sibling(out, "lock")
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _holder_of(fd)
            os.close(fd)
            raise _in_use(out, who) from None
        try:  # the holder before us may have removed the file: lock the one at `path` now
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
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
    try:
        fd = os.open(_sibling(out, "lock"), os.O_RDONLY)
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
    """Exit at once when another command is writing `out` (checked again, for good, by `claim_run`)."""
    who = holder(out)
    if who:
        raise _in_use(out, who)


def _unlock(out: Path, fd: int | None) -> None:
    if fd is not None:
        _sibling(out, "lock").unlink(missing_ok=True)  # before closing: a waiter then locks a fresh file
        os.close(fd)


def _keeps(name: str) -> bool:
    """A file the user keeps beside the run: not the run's own, not a derived result, not a temp file."""
    return name not in RUN_FILES + DERIVED_FILES and not (name.startswith(".") and ".tmp" in name)


def _finish_swap(out: Path) -> None:
    """After the new run took `out`'s place: bring the user's own files over and drop the old run."""
    old = _sibling(out, "old")
    for entry in list(old.iterdir()):
        if _keeps(entry.name) and not (out / entry.name).exists():
            os.rename(entry, out / entry.name)
    shutil.rmtree(old)


def recover(out: Path) -> None:
    """Complete or undo what a --force killed mid-way left beside `out` (call with the lock held)."""
    new, old = _sibling(out, "new"), _sibling(out, "old")
    if old.exists() and not out.exists():  # killed between the two renames of the swap
        os.rename(new, out) if (new / "checkpoint.pt").is_file() else os.rename(old, out)
    if old.exists():
        _finish_swap(out)
    if new.exists():  # a --force that never reached its first checkpoint: the old run stays
        shutil.rmtree(new)


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
        if not self.staged:
            return
        old = _sibling(self.out, "old")
        try:
            os.rename(self.out, old)
        except OSError:  # `out` cannot be renamed (a mount point): replace the run file by file
            for f in RUN_FILES + DERIVED_FILES:
                (self.out / f).unlink(missing_ok=True)
            for entry in list(self.work.iterdir()):
                os.replace(entry, self.out / entry.name)
            self.work.rmdir()
        else:
            os.rename(self.work, self.out)
            _finish_swap(self.out)
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


def claim_run(out: str | Path, resume: bool, force: bool) -> RunWriter:
    """Lock `out` and prepare where the run is written (see the module docstring). Check everything
    else first: this is the first step that changes the disk."""
    out = Path(out).resolve()  # a symlinked run directory is replaced where it really lives
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = _lock(out)
    try:
        recover(out)
        resuming = check_out(out, resume, force)  # again under the lock: another command may have written
        if resuming or not holds_run(out):
            clear_out(out, keep_run=resuming)
            work = out
        else:
            work = _sibling(out, "new")
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
