"""rnn: one RNN (LSTM, GRU or plain; both directions by default) over the view's sequence, pooled.

`RNNEncoder`: a (bidirectional) LSTM/GRU/RNN over a sequence, pooled to one embedding.

    x: [B, T, D]  ->  embedding: [B, E]                          (forward)
    x: [B, T, D]  ->  (embedding [B, E], steps: ([B, T, H], ...))  (encode: per-step outputs too)

E = hidden * directions for pool last | mean | max, twice that for meanmax. `steps` holds the last
layer's output at every step, one tensor per direction (forward first), in the sequence's order.

In a stacked bidirectional RNN read jointly (`stacks="joint"`, torch's own), layer 2's forward output at
step t already depends on every step (through layer 1's backward half): an objective that predicts ahead
could copy the answer. `stacks="separate"` runs the two directions as two stacks of their own (as ELMo
does), so that the forward outputs at t see steps <= t only and the backward ones steps >= t; the
embedding concatenates both, as the joint encoder's does. `causal` says whether the per-step outputs
are safe to predict ahead from.
"""

from __future__ import annotations

import torch
from torch import nn

from ...config import DataConfig, EncoderConfig
from ...errors import UserError
from ...names.choices import POOLS, STACKS
from . import rnn_class


class RNNEncoder(nn.Module):
    kind = "rnn"

    def __init__(self, input_dim: int, cell: str = "lstm", hidden: int = 128, layers: int = 2,
                 bidirectional: bool = True, dropout: float = 0.0, pool: str = "meanmax",
                 input_proj: int = 0, stacks: str = "joint"):
        super().__init__()
        if pool not in POOLS:
            raise UserError(f"unknown pool '{pool}'; use one of: {', '.join(POOLS)}")
        if stacks not in STACKS:
            raise UserError(f"unknown encoder stacks '{stacks}'; use one of: {', '.join(STACKS)}")
        if hidden < 1 or layers < 1:
            raise UserError(f"encoder hidden and layers must be >= 1, got {hidden} and {layers}")
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"encoder dropout must be in [0, 1), got {dropout}")
        self.input_dim, self.cell, self.hidden, self.layers = input_dim, cell, hidden, layers
        self.bidirectional, self.pool = bidirectional, pool
        self.separate = stacks == "separate" and bidirectional
        # optional patch embedding: a shared linear map of every step before the RNN
        self.proj = nn.Linear(input_dim, input_proj) if input_proj > 0 else nn.Identity()
        args = dict(input_size=input_proj or input_dim, hidden_size=hidden, num_layers=layers, batch_first=True,
                    dropout=dropout if layers > 1 else 0.0)
        self.rnn = rnn_class(cell)(**args, bidirectional=bidirectional and not self.separate)
        if self.separate:  # the backward stack reads the reversed sequence
            self.rnn_backward = rnn_class(cell)(**args, bidirectional=False)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def causal(self) -> bool:
        """Whether the forward outputs at step t see only steps <= t (and the backward ones steps >= t)."""
        return self.separate or not self.bidirectional or self.layers == 1

    def why_not_causal(self) -> str | None:
        """Why an objective that predicts ahead and behind cannot read this encoder's steps (None: it can)."""
        if not self.bidirectional:
            return "it predicts ahead and behind along the sequence, so it needs both directions; drop --no-bidirectional"
        if not self.causal:
            return (f"a {self.layers}-layer bidirectional encoder read jointly lets each step see the ones after it; "
                    "pass --stacks separate (the two directions as stacks of their own), or --layers 1")
        return None

    @property
    def step_dim(self) -> int:
        """Features of one step's output, every direction together (the `steps` that `encode` returns)."""
        return self.hidden * self.directions

    @property
    def out_dim(self) -> int:
        return self.hidden * self.directions * (2 if self.pool == "meanmax" else 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """x [B, T, D] -> (embedding [B, E], per-step outputs: one [B, T, H] per direction)."""
        h = self.proj(x)
        out, state = self.rnn(h)                       # out: [B, T, H * dirs] (joint), [B, T, H] (separate)
        if self.separate:
            back, back_state = self.rnn_backward(h.flip(1))
            out = torch.cat([out, back.flip(1)], dim=-1)
        steps = out.split(self.hidden, dim=-1)
        if self.pool == "last":
            stacks = (state, back_state) if self.separate else (state,)
            keep = 1 if self.separate else self.directions  # each stack's last layer: its directions
            h_n = torch.cat([(s[0] if self.cell == "lstm" else s)[-keep:] for s in stacks])  # [dirs, B, H]
            return h_n.transpose(0, 1).reshape(x.shape[0], -1), steps
        if self.pool == "mean":
            return out.mean(1), steps
        if self.pool == "max":
            return out.amax(1), steps
        return torch.cat([out.mean(1), out.amax(1)], dim=1), steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, D] -> embedding [B, E]."""
        return self.encode(x)[0]


TOKEN_WIDTH = 128  # input_proj auto on a patch view: each patch embedded to this width by a learned linear map


def input_proj(cfg: EncoderConfig, patches: bool) -> int:
    """encoder.input_proj, `auto` resolved: TOKEN_WIDTH where the view is patches (a patch of 12 x 12 x 3 is 432
    numbers a step), else 0."""
    return cfg.input_proj if cfg.input_proj != "auto" else TOKEN_WIDTH if patches else 0


def build(cfg: EncoderConfig, input_dim: int, grid: tuple[int, int] | None = None) -> RNNEncoder:
    return RNNEncoder(input_dim, cell=cfg.cell, hidden=cfg.hidden, layers=cfg.layers, bidirectional=cfg.bidirectional,
                      dropout=cfg.dropout, pool=cfg.pool, input_proj=input_proj(cfg, grid is not None),
                      stacks=cfg.stacks)


def activation_floats(cfg: EncoderConfig, sequence_shape: tuple[int, int]) -> int:
    """The steps (and their gradient), and a dozen floats per hidden unit, direction, layer and step (gates,
    cell states)."""
    t, d = sequence_shape
    return t * (4 * d + 12 * cfg.hidden * cfg.layers * (2 if cfg.bidirectional else 1))


def describe(cfg: EncoderConfig, data: DataConfig) -> str:
    return f"{'bi' if cfg.bidirectional else ''}{cfg.cell} {cfg.layers}x{cfg.hidden}, {cfg.pool} pool"
