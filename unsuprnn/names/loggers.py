"""The loggers `--logger` names, and whether this install can run the one asked for (checked with the
config, before anything is written). Opening one is `runs/loggers.py`."""

from __future__ import annotations

import importlib.util

from ..errors import UserError

LOGGERS = ("none", "tensorboard", "csv")


def check_logger(kind: str) -> None:
    """Refuse, before anything is written, a logger this install cannot run."""
    if kind not in LOGGERS:  # (the config check names the flag; this guards calls from Python)
        raise UserError(f"unknown logger '{kind}'; use one of: {', '.join(LOGGERS)}")
    if kind == "tensorboard" and not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
        raise UserError("--logger tensorboard needs tensorboard, which is not installed: "
                        "pip install 'unsuprnn[tensorboard]' (or pip install tensorboard), or use --logger csv")
