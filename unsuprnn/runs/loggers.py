"""Training curves for TensorBoard or as CSV (`--logger tensorboard|csv`), through Lightning Fabric's
loggers, beside log.jsonl (which stays the run's own record: resume and the report read it).

The logger writes into the run directory: `tensorboard/version_N/` or `csv/version_N/metrics.csv`. A
resumed run starts a new version and first replays the epochs it resumes from, so that each version holds
a whole curve.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..names.loggers import check_logger


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
