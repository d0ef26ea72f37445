"""sequencer2d: Sequencer2D blocks, an RNN down every column and one along every row of a grid of patches.

`Sequencer2DEncoder`: recurrent passes along both axes of a grid of patches (Tatsunami and Taki, NeurIPS 2022).

    x: [B, T, D] patches in raster order of a gh x gw grid (T = gh * gw)  ->  embedding [B, E]
    encode(x) -> (embedding [B, E], steps: (tokens [B, T, width],))

A linear stem embeds each patch to `width` channels (a convolution with kernel = stride = the patch side).
Each of `blocks` blocks then mixes the tokens in two residual branches, each after a LayerNorm:
1. BiRNN2D: an RNN (LSTM or GRU, both directions) down every column of the grid and one along every row;
   the two outputs are concatenated and fused back to `width` by a linear layer. A token thus hears its
   whole column and row in one block, and every token of the grid after two;
2. a channel MLP (width -> 3 width -> width, GELU).
A final LayerNorm, then the tokens are pooled (mean, max or both) to one embedding. Unlike a row RNN, no
token's output is blind to the tokens after it, so objectives that predict ahead along a sequence refuse
this encoder (`causal` is False). `--layers` counts its blocks, `--input-proj` is its token width (0 = 2 x
--hidden x directions).
"""

from __future__ import annotations

import torch
from torch import nn

from ...config import DataConfig, EncoderConfig
from ...errors import UserError
from . import rnn_class

VIEWS = ("patches",)
FIXED = {"stacks": "joint"}
NEEDS = "reads the image as a grid of patches, whole rows and columns of it in every block"

MLP_RATIO = 3  # the paper's channel MLP: 3 x width


class BiRNN2D(nn.Module):
    """x: [B, H, W, C] -> [B, H, W, C]: an RNN down each column and one along each row, concatenated, fused."""

    def __init__(self, width: int, hidden: int, rnn: type[nn.RNNBase], bidirectional: bool):
        super().__init__()
        self.vertical = rnn(width, hidden, batch_first=True, bidirectional=bidirectional)
        self.horizontal = rnn(width, hidden, batch_first=True, bidirectional=bidirectional)
        self.fuse = nn.Linear(2 * hidden * (2 if bidirectional else 1), width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        down, _ = self.vertical(x.transpose(1, 2).reshape(b * w, h, c))        # [B*W, H, Hv]
        down = down.reshape(b, w, h, -1).transpose(1, 2)
        across, _ = self.horizontal(x.reshape(b * h, w, c))                    # [B*H, W, Hh]
        return self.fuse(torch.cat([down, across.reshape(b, h, w, -1)], dim=-1))


class Sequencer2DBlock(nn.Module):
    """x: [B, H, W, C] -> [B, H, W, C]: token mixing by BiRNN2D, then a channel MLP, each pre-norm and residual."""

    def __init__(self, width: int, hidden: int, rnn: type[nn.RNNBase], bidirectional: bool, dropout: float):
        super().__init__()
        self.norm_mix, self.norm_mlp = nn.LayerNorm(width), nn.LayerNorm(width)
        self.mix = BiRNN2D(width, hidden, rnn, bidirectional)
        self.mlp = nn.Sequential(nn.Linear(width, MLP_RATIO * width), nn.GELU(), nn.Linear(MLP_RATIO * width, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.mix(self.norm_mix(x)))
        return x + self.drop(self.mlp(self.norm_mlp(x)))


class Sequencer2DEncoder(nn.Module):
    kind = "sequencer2d"

    def __init__(self, input_dim: int, grid: tuple[int, int], cell: str = "lstm", hidden: int = 64, blocks: int = 2, bidirectional: bool = True,
                 dropout: float = 0.0, pool: str = "meanmax", width: int = 0):
        super().__init__()
        if pool == "last":
            raise UserError("a sequencer2d encoder has no last step to pool (its tokens form a grid); pass --pool "
                            "mean, max or meanmax")
        gh, gw = grid
        if gh < 1 or gw < 1:
            raise UserError(f"a sequencer2d encoder needs a grid of patches, got {gh} x {gw}")
        self.input_dim, self.grid, self.cell, self.hidden, self.layers = input_dim, (gh, gw), cell, hidden, blocks
        self.bidirectional, self.pool = bidirectional, pool
        # by default as in the paper: the union of both axes' outputs is as wide as the tokens
        self.width = width or 2 * hidden * self.directions
        self.stem = nn.Linear(input_dim, self.width)
        self.blocks = nn.ModuleList(Sequencer2DBlock(self.width, hidden, rnn_class(cell), bidirectional, dropout)
                                    for _ in range(blocks))
        self.norm = nn.LayerNorm(self.width)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def causal(self) -> bool:
        return False  # every block reads whole rows and columns

    def why_not_causal(self) -> str | None:
        return (f"a sequencer2d encoder {NEEDS}, so each token already sees the ones ahead; use --encoder rnn "
                "for it")

    @property
    def step_dim(self) -> int:
        """Features of one token's output (the `steps` that `encode` returns)."""
        return self.width

    @property
    def out_dim(self) -> int:
        return self.width * (2 if self.pool == "meanmax" else 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """x [B, T, D] (raster order) -> (embedding [B, E], (tokens [B, T, width],))."""
        b, t, _ = x.shape
        gh, gw = self.grid
        if t != gh * gw:
            raise ValueError(f"expected {gh} x {gw} = {gh * gw} patches, got {t}")
        z = self.stem(x).reshape(b, gh, gw, self.width)
        for block in self.blocks:
            z = block(z)
        tokens = self.norm(z).reshape(b, t, self.width)
        if self.pool == "mean":
            return tokens.mean(1), (tokens,)
        if self.pool == "max":
            return tokens.amax(1), (tokens,)
        return torch.cat([tokens.mean(1), tokens.amax(1)], dim=1), (tokens,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, D] -> embedding [B, E]."""
        return self.encode(x)[0]


def build(cfg: EncoderConfig, input_dim: int, grid: tuple[int, int] | None = None) -> Sequencer2DEncoder:
    if grid is None:
        raise UserError("--encoder sequencer2d reads the image as a grid of patches; pass --view patches "
                        "(--patch P sets their side)")
    return Sequencer2DEncoder(input_dim, grid, cell=cfg.cell, hidden=cfg.hidden, blocks=cfg.layers,
                              bidirectional=cfg.bidirectional, dropout=cfg.dropout, pool=cfg.pool, width=_width(cfg))


def activation_floats(cfg: EncoderConfig, sequence_shape: tuple[int, int]) -> int:
    """The steps, and per block: both axes' RNN states (as a row RNN's), the norms, the fused union and the
    3x-wide channel MLP at every token."""
    t, d = sequence_shape
    dirs = 2 if cfg.bidirectional else 1
    width = _width(cfg) or 2 * cfg.hidden * dirs
    per_block = 2 * 12 * cfg.hidden * dirs + 2 * cfg.hidden * dirs + (4 + 2 * MLP_RATIO) * width
    return t * (4 * d + width + cfg.layers * per_block)


def _width(cfg: EncoderConfig) -> int:
    """The token width asked for (0, and auto: 2 x hidden x directions, as the paper's)."""
    return input_proj(cfg, True)


def input_proj(cfg: EncoderConfig, patches: bool) -> int:
    """encoder.input_proj, `auto` resolved: 0 (its tokens 2 x hidden x directions wide, as the paper's)."""
    return 0 if cfg.input_proj == "auto" else cfg.input_proj


def describe(cfg: EncoderConfig, data: DataConfig) -> str:
    cell = f"{'bi' if cfg.bidirectional else ''}{cfg.cell}"
    return f"sequencer2d {cfg.layers} blocks of {cell} {cfg.hidden} on {data.patch}px patches, {cfg.pool} pool"
