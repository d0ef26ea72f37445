"""The report's figures, as PNG bytes with the titles of the legends they carry: training curves
(one loss panel per objective, kNN against wall time with raw-pixel and PCA reference lines, the
collapse monitor), a t-SNE map by label and by cluster, a row-normalised confusion matrix, and a
cluster run's gallery. Sized for a 1,300 px wide page at DPI."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import torch

DPI = 100
PAGE_INCHES = 13.0          # 1,300 px: the page's figure width
TSNE_POINTS = 2000
GALLERY_STRIP = 8           # images per strip: the most and the least confident of each cluster
GALLERY_CLUSTERS = 30       # clusters shown, largest first


@dataclasses.dataclass
class Figure:
    png: bytes
    legends: list[str]      # the title (or first entry) of each legend drawn, for readers and tests
    width: int              # pixels


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _render(fig) -> Figure:
    legends = []
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            legends.append(leg.get_title().get_text() or leg.get_texts()[0].get_text())
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    width = int(round(fig.get_figwidth() * DPI))
    _plt().close(fig)
    return Figure(buf.getvalue(), legends, width)


def training_figure(runs: list[dict], references: dict[str, float]) -> Figure:
    """runs: {name, objective, log, dim}. One loss panel per objective (losses of different objectives
    are not on one scale), then kNN top-1 against wall time with `references` (label -> accuracy, e.g.
    raw pixels) as horizontal lines, and the collapse monitor (std of L2-normalized embeddings x sqrt(dim))."""
    from ..monitors import COLLAPSED_BELOW
    plt = _plt()
    objectives = list(dict.fromkeys(r["objective"] for r in runs))
    per_row = min(4, max(2, len(objectives)))
    loss_rows = -(-len(objectives) // per_row)
    fig = plt.figure(figsize=(PAGE_INCHES, 3.2 * loss_rows + 4.0), layout="constrained")
    grid = fig.add_gridspec(loss_rows + 1, per_row * 2, height_ratios=[3.2] * loss_rows + [4.0])
    colours = {r["name"]: plt.get_cmap("tab10")(i % 10) for i, r in enumerate(runs)}
    for j, objective in enumerate(objectives):
        ax = fig.add_subplot(grid[j // per_row, 2 * (j % per_row):2 * (j % per_row) + 2])
        for r in runs:
            if r["objective"] == objective and r["log"]:
                ax.plot([e["epoch"] for e in r["log"]], [e["loss"] for e in r["log"]], marker=".",
                        color=colours[r["name"]], label=r["name"])
        ax.set(xlabel="epoch", ylabel="training loss", title=f"{objective} loss")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, title="run", title_fontsize=8)
    knn_ax = fig.add_subplot(grid[loss_rows, :per_row])
    for r in runs:
        knn = [(e["elapsed"], e["knn_top1"]) for e in r["log"] if "knn_top1" in e]
        if knn:
            knn_ax.plot(*zip(*knn), marker=".", color=colours[r["name"]], label=r["name"])
    styles = iter(["--", ":", "-.", (0, (5, 1))] * 8)
    for label, acc in references.items():
        knn_ax.axhline(acc, color="0.35", lw=1.2, ls=next(styles), label=f"{label}: {acc:.2f}")
    knn_ax.set(xlabel="training time (s)", ylabel="kNN top-1 (%)", title="kNN accuracy against wall time")
    std_ax = fig.add_subplot(grid[loss_rows, per_row:])
    for r in runs:
        std = [(e["epoch"], e["embedding_std"] * r["dim"] ** 0.5) for e in r["log"] if "embedding_std" in e]
        if std:
            std_ax.plot(*zip(*std), marker=".", color=colours[r["name"]], label=r["name"])
    std_ax.axhline(1.0, color="green", lw=0.8, ls="--")
    std_ax.axhline(COLLAPSED_BELOW, color="red", lw=0.8, ls="--")
    std_ax.set(xlabel="epoch", ylabel="std x sqrt(dim)", ylim=(0, None),
               title="collapse monitor (1 = isotropic; below red: collapsed)")
    for ax in (knn_ax, std_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # runs logged before a panel existed draw nothing there
            ax.legend(fontsize=8, title="run" if ax is std_ax else "run / reference", title_fontsize=8)
    return _render(fig)


def matched_colours(clusters: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """cluster id -> the label it overlaps most under a one-to-one (Hungarian) matching."""
    from scipy.optimize import linear_sum_assignment
    counts = np.zeros((clusters.max() + 1, labels.max() + 1), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return {int(r): int(c) for r, c in zip(rows, cols)}


def embedding_map(emb: np.ndarray, labels: np.ndarray, classes: list[str], n_clusters: int, seed: int, title: str,
                  head_clusters: np.ndarray | None = None) -> Figure:
    """t-SNE of up to TSNE_POINTS embeddings, coloured by label and by cluster (a cluster run's head,
    else k-means on L2-normalized embeddings), each panel with its legend; a cluster takes the colour
    of the label it matches (Hungarian), so that the two panels compare by colour."""
    from sklearn.manifold import TSNE

    from ..evaluate.kmeans import kmeans
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(emb), min(TSNE_POINTS, len(emb)), replace=False)
    e, y = emb[pick], labels[pick]
    xy = TSNE(2, init="pca", random_state=seed, perplexity=min(30.0, max(2.0, (len(e) - 1) / 3))).fit_transform(e)
    if head_clusters is not None:
        clusters, what = head_clusters[pick], "cluster head"
    else:
        clusters = kmeans(torch.nn.functional.normalize(torch.from_numpy(e), dim=1),
                          max(1, min(n_clusters, len(e))), seed=seed)[0]
        what = "k-means cluster"
    match = matched_colours(clusters, y) if len(classes) > 1 else {}
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_INCHES, 5.6), layout="constrained")
    for ax, colour, by, names in ((axes[0], y, "label", classes), (axes[1], clusters, what, None)):
        cmap = plt.get_cmap("tab10" if max(colour.max(), y.max()) < 10 else "tab20")
        for v in np.unique(colour):
            m = colour == v
            if names:
                name, c = (names[v] if v < len(names) else f"{v}"), int(v)
            else:
                c = match.get(int(v), int(v))
                name = f"{v}" + (f" ~ {classes[c]}" if int(v) in match and c < len(classes) else "")
            ax.scatter(xy[m, 0], xy[m, 1], color=cmap(c % cmap.N), s=5, label=name)
        ax.set(title=f"{title}: t-SNE of test embeddings by {by}", xticks=[], yticks=[])
        ax.legend(fontsize=8, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
                  title=by, ncol=1 if len(np.unique(colour)) <= 20 else 2)
    return _render(fig)


def confusion_figure(conf: list[list[int]], classes: list[str], title: str) -> Figure:
    """The linear probe's confusion matrix, each row normalised to 100% (so rare classes read as well
    as common ones), with the accuracy and the query count in the title."""
    plt = _plt()
    c = np.asarray(conf, dtype=np.float64)
    n = len(c)
    total = c.sum()
    accuracy = 100 * np.trace(c) / max(total, 1)
    rows = 100 * c / np.maximum(c.sum(1, keepdims=True), 1)
    side = min(8.0, max(5.0, 0.45 * n + 2))
    fig, ax = plt.subplots(figsize=(side + 1.2, side), layout="constrained")
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=100)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if rows[i, j] >= 0.5:
                    ax.text(j, i, f"{rows[i, j]:.0f}", ha="center", va="center", fontsize=9 if n <= 12 else 7,
                            color="white" if rows[i, j] > 50 else "black")
        ax.set_xticks(range(n), classes[:n], fontsize=9)
        ax.set_yticks(range(n), classes[:n], fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="% of the true class")
    ax.set(xlabel="predicted", ylabel="true",
           title=f"{title}: linear probe, accuracy {accuracy:.2f}% on {int(total)} test images (rows sum to 100%)")
    ax.title.set_fontsize(10)
    return _render(fig)


def cluster_gallery(images: np.ndarray, clusters: np.ndarray, confidence: np.ndarray, labels: np.ndarray,
                    classes: list[str], title: str) -> Figure:
    """One row per cluster (largest first): its size, majority label and purity where labels exist,
    a strip of its most confident images and a strip of its least confident ones.
    images: uint8 [N, C, H, W]; clusters, confidence, labels: [N] (label -1 = unknown)."""
    plt = _plt()
    sizes = np.bincount(clusters)
    shown = [c for c in np.argsort(-sizes, kind="stable") if sizes[c] > 0][:GALLERY_CLUSTERS]
    s = GALLERY_STRIP
    fig, axes = plt.subplots(len(shown), 2 * s + 2, figsize=(PAGE_INCHES * 0.75, 0.75 * len(shown) + 0.7),
                             gridspec_kw={"width_ratios": [5.5] + [1] * s + [0.3] + [1] * s}, squeeze=False)
    for r, c in enumerate(shown):
        idx = np.flatnonzero(clusters == c)
        idx = idx[np.argsort(-confidence[idx], kind="stable")]
        text = f"cluster {c}: {len(idx)} images"
        known = labels[idx] >= 0
        if known.any():
            counts = np.bincount(labels[idx][known])
            major = int(counts.argmax())
            name = classes[major] if major < len(classes) else str(major)
            text += f"\nmajority '{name}', purity {100 * counts[major] / known.sum():.0f}%"
        axes[r, 0].text(0, 0.5, text, va="center", fontsize=9)
        strips = (idx[:s], idx[::-1][:s][::-1])  # least confident strip ends with the least confident
        for j, pos in enumerate(list(range(1, s + 1)) + list(range(s + 2, 2 * s + 2))):
            strip, k = strips[j // s], j % s
            if k < len(strip):
                img = images[strip[k]]
                axes[r, pos].imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0),
                                    cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=255)
        for ax in axes[r]:
            ax.axis("off")
    axes[0, 1 + s // 2].set_title("most confident", fontsize=10)
    axes[0, s + 2 + s // 2].set_title("least confident", fontsize=10)
    fig.suptitle(f"{title}: clusters of the test split", fontsize=11)
    return _render(fig)
