"""Training curves for TensorBoard or as CSV (`--logger tensorboard|csv`), through Lightning Fabric's
loggers, beside log.jsonl (which stays the run's own record: resume and the report read it).

The logger writes into the run directory: `tensorboard/version_N/` or `csv/version_N/metrics.csv`. A
resumed run starts a new version and first replays the epochs it resumes from, so that each version holds
a whole curve.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..atomic import node_kind
from ..errors import UserError
from ..names.loggers import LOGGERS, check_logger

VERSION = re.compile(r"version_\d+")


def is_logger_folder(path: Path) -> bool:
    """Whether `path` is a logger's folder of ours: a directory (not a link) of `version_N` directories."""
    return node_kind(path) == "directory" and all(
        VERSION.fullmatch(p.name) and node_kind(p) == "directory" for p in path.iterdir())


def logger_folders(out: Path) -> list[str]:
    """The loggers' folders of ours in a run directory (moved out with the old run by --force)."""
    return [kind for kind in LOGGERS[1:] if is_logger_folder(out / kind)]


def check_logger_folder(out: Path, kind: str) -> None:
    """Before anything is written: the folder `--logger kind` writes into, in the run directory `out`, is
    absent or a logger's folder (never a file, a link or a folder of the user's)."""
    folder = out / kind
    if kind == "none" or node_kind(folder) is None:
        return
    if not is_logger_folder(folder):
        what = node_kind(folder)
        what = "folder that holds files a logger did not write" if what == "directory" else what
        raise UserError(f"--logger {kind} writes into {folder}, which is a {what}; move it, or choose another "
                        "--out or --logger")


def open_logger(kind: str, run_dir: Path):
    """A Fabric logger writing under `run_dir`, or None for `none`."""
    check_logger(kind)
    if kind == "none":
        return None
    from lightning_fabric.loggers import CSVLogger, TensorBoardLogger
    cls = TensorBoardLogger if kind == "tensorboard" else CSVLogger
    return cls(root_dir=run_dir / kind, name="")


def scalars(entry: dict) -> dict[str, float]:
    """The finite numbers of a log.jsonl entry (its epoch is the step, not a curve)."""
    out = {}
    for key, value in entry.items():
        if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value):
            out[key] = float(value)
    return out


def log_epochs(logger, entries: list[dict]) -> None:
    """Send log.jsonl entries to the logger, each at its epoch, and flush them to disk."""
    if logger is None or not entries:
        return
    for entry in entries:
        logger.log_metrics(scalars(entry), step=int(entry["epoch"]))
    logger.save()
