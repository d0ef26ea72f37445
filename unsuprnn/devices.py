"""Choosing the device and precision for a run, and the Lightning Fabric that runs it."""

from __future__ import annotations

import torch

from .errors import UserError
from .names.choices import PRECISIONS


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu. An unavailable cuda is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' requested but CUDA is not available here; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"device '{name}' does not exist: {torch.cuda.device_count()} CUDA device(s) here")
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"unsupported device '{name}'; use auto, cpu, cuda or cuda:N")
    return dev


def resolve_precision(name: str, device: torch.device) -> str:
    """Fabric precision string. 'auto' is fp32: cuDNN's LSTM ran slower under bf16 autocast at the
    sizes this tool trains (see BENCHMARKS.md), and CPU autocast brings nothing here."""
    if name not in PRECISIONS:
        raise UserError(f"unknown precision '{name}'; use one of: {', '.join(PRECISIONS)}")
    prec = PRECISIONS[name]
    if prec != "32-true" and device.type == "cpu":
        raise UserError(f"precision {name} needs a CUDA device; use --set train.precision=32 on CPU")
    return prec


def make_fabric(device: torch.device, precision: str, devices: int, num_nodes: int):
    """Lightning Fabric for `devices` processes per node on `num_nodes` nodes (DDP when more than one)."""
    from lightning_fabric import Fabric

    if device.type == "cuda":
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = True
        devs = [device.index] if (device.index is not None and devices == 1) else devices
    else:
        devs = devices
    strategy = "ddp" if devices * num_nodes > 1 else "auto"
    return Fabric(accelerator=device.type, devices=devs, num_nodes=num_nodes, precision=precision,
                  strategy=strategy)
