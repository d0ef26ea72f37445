"""The encoders, one file per kind: `models/encoders/KIND.py` (what a file holds: names/encoders.py, the
registry that reads them). A new kind is its file; the config, the CLI, the memory check, the report and the
objectives that predict ahead ask the file.

    x: [B, T, D]  ->  embedding: [B, E]                            (forward)
    x: [B, T, D]  ->  (embedding [B, E], per-step outputs (...))  (encode)
"""

from __future__ import annotations

import importlib

from torch import nn

from ...config import DataConfig, EncoderConfig
from ...errors import UserError
from ...names.choices import CELLS
from ...names.encoders import kinds


def rnn_class(cell: str) -> type[nn.RNNBase]:
    """torch's recurrent layer for a cell name (names/choices.py): lstm -> nn.LSTM, gru -> nn.GRU, rnn -> nn.RNN."""
    if cell not in CELLS:
        raise UserError(f"unknown cell '{cell}'; use one of: {', '.join(CELLS)}")
    return getattr(nn, cell.upper())


def encoder_module(kind: str):
    """The file of encoder kind `kind`."""
    if kind not in kinds():
        raise UserError(f"unknown encoder '{kind}'; use one of: {', '.join(kinds())}")
    return importlib.import_module(f"{__name__}.{kind}")


def build_encoder(cfg: EncoderConfig, input_dim: int, grid: tuple[int, int] | None = None) -> nn.Module:
    """The encoder `cfg.kind` for steps of `input_dim` features; `grid` (rows, columns of patches) is the patch
    view's (None for the other views)."""
    return encoder_module(cfg.kind).build(cfg, input_dim, grid)


def activation_floats(cfg: EncoderConfig, sequence_shape: tuple[int, int]) -> int:
    """About how many floats one image's pass through the encoder keeps for the backward pass."""
    return encoder_module(cfg.kind).activation_floats(cfg, sequence_shape)


def resolve_input_proj(cfg: EncoderConfig, view: str) -> str | None:
    """Resolve `auto` in encoder.input_proj for `view`, in place (the kind's file says how); returns what it chose,
    or None where it was not auto."""
    if cfg.input_proj != "auto":
        return None
    cfg.input_proj = encoder_module(cfg.kind).input_proj(cfg, view == "patches")
    return f"input_proj auto: each step embedded to {cfg.input_proj} by a learned linear map" if cfg.input_proj else \
        None


def describe_encoder(cfg: EncoderConfig, data: DataConfig) -> str:
    """The encoder in a few words (the report's provenance)."""
    return encoder_module(cfg.kind).describe(cfg, data)
