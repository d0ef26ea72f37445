"""Sizes checked before a run starts: a model that cannot fit in memory, a schedule too long to
precompute, and a run time no one would choose on purpose (a warning)."""

from __future__ import annotations

import os
import sys

import torch

from .config import Config, EncoderConfig
from .errors import UserError

MAX_STEPS = 10_000_000      # the learning-rate schedule is precomputed, one float per step
ABSURD_SECONDS = 7 * 86400  # a run estimated longer than a week gets a warning before it starts
# Rough sustained training rates for these recurrent encoders, measured on digits and MNIST rows
# (about 6e10 FLOP/s on 2 CPU cores); only their order of magnitude matters for the warning.
FLOPS_PER_CPU_CORE = 3e10
FLOPS_CUDA = 1e13


def model_parameters(build) -> int:
    """The parameter count of the module `build()` returns, built on the meta device (no memory used)."""
    with torch.device("meta"):
        return sum(p.numel() for p in build().parameters())


def available_memory(device: torch.device) -> int:
    """Bytes a run may use on `device`: the GPU's total memory, or the host's available memory; at most
    UNSUPRNN_MEMORY bytes where that is set (a cap for a shared machine)."""
    cap = os.environ.get("UNSUPRNN_MEMORY")
    if cap:
        try:
            return min(int(float(cap)), _device_memory(device))
        except ValueError:
            raise UserError(f"UNSUPRNN_MEMORY={cap!r} is not a number of bytes; set it like 8e9, or unset it") from None
    return _device_memory(device)


def _device_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[1]
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


MEMORY_SHARE = 0.8  # of the memory available now, what one allocation may ask for


def check_memory(nbytes: int, what: str, fix: str, device: torch.device | str = "cpu") -> None:
    """Refuse, before allocating, `what` needing `nbytes` of memory when the device has less than
    MEMORY_SHARE of it available: one line with the sizes and `fix`."""
    have = available_memory(torch.device(device))
    if nbytes > MEMORY_SHARE * have:
        raise UserError(f"{what} would take {nbytes / 2**30:.1f} GiB of memory, more than the {have / 2**30:.1f} GiB "
                        f"available on {device}; {fix}")


def check_activations(batch: int, encoder: EncoderConfig, sequence_shape: tuple, device: torch.device) -> None:
    """Refuse a batch whose training step would not fit: 2 views x batch x the floats one image's pass keeps
    for the backward pass (`models.encoders.activation_floats`), in float32."""
    from .models.encoders import activation_floats
    t, d = sequence_shape
    nbytes = 4 * 2 * batch * activation_floats(encoder, sequence_shape)
    check_memory(nbytes, f"a training step of {batch} images (sequences of {t} x {d})",
                 "lower --batch-size, --hidden or --layers", device)


def check_model_fits(build, device: torch.device) -> int:
    """Refuse a model (encoder and objective heads, from `build()`) whose weights, gradients and two
    AdamW moments (4 x fp32 each) exceed the memory of `device`. Returns the parameter count."""
    n = model_parameters(build)
    need, have = 16 * n, available_memory(device)
    if need > have:
        raise UserError(f"the model would have {n:,} parameters ({need / 2**30:.1f} GiB with gradients and "
                        f"optimizer state), more than the {have / 2**30:.1f} GiB of memory on {device}; "
                        "lower --hidden, --layers or the objective's head sizes")
    return n


def check_schedule_size(epochs: int, steps_per_epoch: int) -> None:
    if steps_per_epoch < 1:
        raise UserError("the batch size is larger than the training split, so an epoch has no step; "
                        "lower --batch-size")
    if epochs * steps_per_epoch > MAX_STEPS:
        raise UserError(f"{epochs} epochs x {steps_per_epoch} steps = {epochs * steps_per_epoch:,} steps, more than "
                        f"the {MAX_STEPS:,} a run may schedule; lower --epochs or set train.max_steps_per_epoch")


def estimated_seconds(parameters: int, sequence_shape: tuple, images: int, device: torch.device) -> float:
    """A rough training time: about 12 FLOPs per parameter per time step per image (two views,
    forward and backward), at the rate of `device`."""
    flops = 12.0 * parameters * sequence_shape[0] * images
    rate = FLOPS_CUDA if device.type == "cuda" else FLOPS_PER_CPU_CORE * max(1, torch.get_num_threads())
    return flops / rate


def warn_if_absurd(cfg: Config, encoder: torch.nn.Module, sequence_shape: tuple, steps: int,
                   device: torch.device) -> None:
    """Print a warning before training when the run would take longer than a week at a typical rate."""
    images = steps * cfg.train.batch_size
    seconds = estimated_seconds(sum(p.numel() for p in encoder.parameters()), sequence_shape, images, device)
    if seconds > ABSURD_SECONDS:
        print(f"warning: at a typical rate on {device.type} this run would take about {seconds / 86400:,.0f} days "
              f"({steps:,} steps of {cfg.train.batch_size} images); lower --epochs or set "
              "train.max_steps_per_epoch if that was not meant (Ctrl-C stops it, --resume continues)",
              file=sys.stderr)
