"""Batch norm whose batch statistics span every process of a distributed run.

Under DDP each process sees B / world images; a plain `BatchNorm1d` then normalizes by the statistics of
that slice, and training differs from one process with batch B (projection heads, predictors and the
clustering head all hold one). torch's `SyncBatchNorm` runs on CUDA only, so this one all-reduces the
mean and variance with autograd (`torch.distributed.nn`), on gloo (CPU) and NCCL alike: forward and
gradients equal one process's on the whole batch (tests/test_ddp_equivalence.py).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """`BatchNorm1d` over x [N, C] whose training statistics are those of every process's rows together."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        if x.dim() != 2:
            raise ValueError(f"GlobalBatchNorm1d normalizes [N, C] features, got {tuple(x.shape)}")
        from torch.distributed.nn.functional import all_reduce
        n = all_reduce(x.new_tensor([float(x.shape[0])]))
        mean = all_reduce(x.sum(0)) / n
        var = all_reduce(((x - mean) ** 2).sum(0)) / n          # two passes: as stable as torch's own
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp_min(1), m)  # unbiased, as torch keeps
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y * self.weight + self.bias if self.affine else y


def global_batchnorm(module: nn.Module) -> nn.Module:
    """`module` with every BatchNorm1d made a GlobalBatchNorm1d in place (the same parameters and buffers, so
    checkpoints are unchanged). For a run of more than one process."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm1d:
            new = GlobalBatchNorm1d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            new.load_state_dict(child.state_dict())
            new.train(child.training)
            for p_new, p_old in zip(new.parameters(), child.parameters()):
                p_new.requires_grad_(p_old.requires_grad)
            setattr(module, name, new.to(next(child.buffers(), torch.empty(0)).device))
        else:
            global_batchnorm(child)
    return module
