"""The clustering analysis's figures (report/analysis.py computes what they show): the number of clusters
the data chooses, each cluster's typical and least typical images, the odd ones out and the near-copies."""

from __future__ import annotations

import numpy as np

from .figures import PAGE_INCHES, Figure, _plt, _render

GALLERY_STRIP = 8      # images per strip: the most and the least typical of each cluster
GALLERY_CLUSTERS = 30  # clusters shown, largest first


def _show(ax, img: np.ndarray) -> None:
    """One uint8 [C, H, W] image, grey or colour, without axes."""
    ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray" if img.shape[0] == 1 else None,
              vmin=0, vmax=255)
    ax.axis("off")


def k_curve_figure(analysis: dict, n_classes: int, title: str) -> Figure:
    """Modularity of the k-means partition into K clusters on the kNN graph, against K, for the embeddings
    and for raw pixels, each with its chosen K marked (and the number of classes, where labels give one)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(PAGE_INCHES * 0.6, 3.6), layout="constrained")
    for name, curve, k, colour in (("encoder", analysis["k_curve"], analysis["k_auto"], "tab:blue"),
                                   ("raw pixels", analysis["raw_k_curve"], analysis["raw_k_auto"], "tab:grey")):
        ks = sorted(curve)
        ax.plot(ks, [curve[i] for i in ks], marker=".", color=colour, label=f"{name}: K = {k}")
        ax.plot([k], [curve[k]], marker="o", ms=11, mfc="none", mec=colour, mew=2)
    if n_classes >= 2:
        ax.axvline(n_classes, color="green", ls="--", lw=0.8, label=f"classes: {n_classes}")
    ax.set(xlabel="K (number of k-means clusters)", ylabel="modularity on the kNN graph",
           title=f"{title}: the number of clusters chosen from the test embeddings (circled)")
    ax.set_xticks(sorted(analysis["k_curve"]))
    ax.legend(title="chosen K", fontsize=9, frameon=False)
    return _render(fig)


def cluster_gallery(images: np.ndarray, analysis: dict, labels: np.ndarray, classes: list[str],
                    title: str) -> Figure:
    """One row per cluster (largest first): its size, mean score (the head's confidence or the silhouette),
    majority label and purity where labels exist, a strip of its most typical images and a strip of its least
    typical ones. images: uint8 [N, C, H, W]; labels: [N] (-1 = unknown)."""
    plt = _plt()
    shown, s, what = analysis["summary"][:GALLERY_CLUSTERS], GALLERY_STRIP, analysis["score_name"]
    fig, axes = plt.subplots(len(shown), 2 * s + 2, figsize=(PAGE_INCHES * 0.75, 0.75 * len(shown) + 0.7),
                             gridspec_kw={"width_ratios": [5.5] + [1] * s + [0.3] + [1] * s}, squeeze=False)
    for r, c in enumerate(shown):
        idx = np.flatnonzero(analysis["ids"] == c["cluster"])
        text = f"cluster {c['cluster']}: {c['size']} images\nmean {what} {c['score']:.2f}"
        known = labels[idx] >= 0
        if known.any():
            counts = np.bincount(labels[idx][known])
            major = int(counts.argmax())
            name = classes[major] if major < len(classes) else str(major)
            name = name if len(name) <= 16 else name[:15] + "…"  # long class names would run under the images
            text += f"\nmajority '{name}', purity {100 * counts[major] / known.sum():.0f}%"
        axes[r, 0].text(0, 0.5, text, va="center", fontsize=8.5)
        strips = (c["typical"], [i for i in c["atypical"] if i not in c["typical"]])
        for j, pos in enumerate(list(range(1, s + 1)) + list(range(s + 2, 2 * s + 2))):
            strip, k = strips[j // s], j % s
            if k < len(strip):
                _show(axes[r, pos], images[strip[k]])
        for ax in axes[r]:
            ax.axis("off")
    axes[0, 1 + s // 2].set_title(f"most typical (highest {what})", fontsize=10)
    axes[0, s + 2 + s // 2].set_title(f"least typical (lowest {what})", fontsize=10)
    fig.suptitle(f"{title}: clusters of the test split ({analysis['clusters_by']})", fontsize=11)
    return _render(fig)


def outlier_figure(images: np.ndarray, analysis: dict, title: str) -> Figure:
    """The test images with the highest outlier scores, oddest first, each with its score."""
    plt = _plt()
    shown = analysis["outliers"]
    fig, axes = plt.subplots(1, max(len(shown), 1), figsize=(PAGE_INCHES * 0.75, 1.4), squeeze=False)
    for ax, i in zip(axes[0], shown):
        _show(ax, images[i])
        ax.set_title(f"#{i}\n{analysis['outlier'][i]:.3f}", fontsize=7)
    for ax in axes[0][len(shown):]:
        ax.axis("off")
    fig.suptitle(f"{title}: the odd ones out (test position and outlier score: one less the mean similarity "
                 "to the nearest neighbours)", fontsize=10)
    return _render(fig)


def duplicates_figure(images: np.ndarray, analysis: dict, title: str) -> Figure:
    """Near-duplicate pairs side by side, each with its cosine similarity."""
    plt = _plt()
    pairs = analysis["pairs"]
    slots = max(2 * len(pairs), 16)  # fixed-size thumbnails however few pairs there are
    fig, axes = plt.subplots(1, slots, figsize=(PAGE_INCHES * 0.75, 1.5), squeeze=False)
    for ax in axes[0]:
        ax.axis("off")
    for p, (i, j, sim) in enumerate(pairs):
        _show(axes[0, 2 * p], images[j])
        _show(axes[0, 2 * p + 1], images[i])
        axes[0, 2 * p].set_title(f"#{j} = #{i}\ncos {sim:.3f}", fontsize=7, loc="left")
    fig.suptitle(f"{title}: near-duplicate pairs ({analysis['pair_count']} in the test split; the earlier image "
                 "first)", fontsize=10)
    return _render(fig)
