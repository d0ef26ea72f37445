"""A PNG grid of sample images beside augmented views, so a user can see what augmentation does."""

from __future__ import annotations

from pathlib import Path

import torch

from ..atomic import atomic_path
from .augment import BatchAugment


def save_augmentation_grid(images: torch.Tensor, augment: BatchAugment, path: str | Path,
                           n_images: int = 8, n_views: int = 4, seed: int = 0) -> None:
    """images: uint8 [N, C, H, W]. Draws `n_images` of them (seeded); row i shows the original, then
    `n_views` augmented views."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(images), generator=g)[:n_images]
    x = images[pick].float() / 255.0
    views = [augment(x, g) for _ in range(n_views)]
    n = len(x)
    fig, axes = plt.subplots(n, n_views + 1, figsize=(1.2 * (n_views + 1), 1.2 * n), squeeze=False)
    for i in range(n):
        for j, img in enumerate([x] + views):
            ax = axes[i][j]
            a = img[i].permute(1, 2, 0).numpy()
            ax.imshow(a[..., 0] if a.shape[-1] == 1 else a, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title("original" if j == 0 else f"view {j}", fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
