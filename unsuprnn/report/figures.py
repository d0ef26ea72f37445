"""The report's figures, as PNG bytes with the titles of the legends they carry: training curves
(one loss panel per objective, kNN against wall time with raw-pixel and PCA reference lines, the
collapse monitor), a UMAP (or t-SNE) map by label and by cluster, a row-normalised confusion matrix.
The clustering analysis's figures are in cluster_figures.py. Sized for a 1,300 px wide page at DPI."""

from __future__ import annotations

import dataclasses
import io

import numpy as np

DPI = 100
PAGE_INCHES = 13.0          # 1,300 px: the page's figure width
MAP_POINTS = 2000
SHORT_NAME = 12             # class names longer than this are shortened on the confusion matrix's axes, with a key


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
    are not on one scale), then, where some run logged them, kNN top-1 against wall time with
    `references` (label -> accuracy, e.g. raw pixels) as horizontal lines, and the collapse monitor
    (std of L2-normalized embeddings x sqrt(dim))."""
    plt = _plt()
    objectives = list(dict.fromkeys(r["objective"] for r in runs))
    per_row = min(4, max(2, len(objectives)))
    loss_rows = -(-len(objectives) // per_row)
    knn = {r["name"]: [(e["elapsed"], e["knn_top1"]) for e in r["log"] if "knn_top1" in e] for r in runs}
    std = {r["name"]: [(e["epoch"], e["embedding_std"] * r["dim"] ** 0.5) for e in r["log"] if "embedding_std" in e]
           for r in runs}
    bottom = [p for p, data in (("knn", knn), ("std", std)) if any(data.values())]
    fig = plt.figure(figsize=(PAGE_INCHES, 3.2 * loss_rows + 4.0 * bool(bottom)), layout="constrained")
    grid = fig.add_gridspec(loss_rows + bool(bottom), 2 * per_row, height_ratios=[3.2] * loss_rows + [4.0] * bool(bottom))
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(dict.fromkeys(r["name"] for r in runs))}
    for j, objective in enumerate(objectives):
        ax = fig.add_subplot(grid[j // per_row, 2 * (j % per_row):2 * (j % per_row) + 2])
        for r in runs:
            if r["objective"] == objective and r["log"]:
                _curve(ax, [(e["epoch"], e["loss"]) for e in r["log"]], colours[r["name"]], r["name"], "{:.4g}")
        ax.set(xlabel="epoch", ylabel="training loss", title=f"{objective} loss")
        _legend(ax, "run")
    width = 2 * per_row // len(bottom) if bottom else 0
    for i, panel in enumerate(bottom):
        ax = fig.add_subplot(grid[loss_rows, i * width:(i + 1) * width])
        (_knn_panel if panel == "knn" else _collapse_panel)(ax, knn if panel == "knn" else std, colours, references)
    return _render(fig)


def _curve(ax, points: list[tuple[float, float]], colour, name: str, fmt: str) -> None:
    """A run's curve; a curve of one point (a run of one epoch) is its value, written beside its marker."""
    if len(points) == 1:
        (x, y), = points
        ax.plot([x], [y], marker="o", ms=7, color=colour, ls="none", label=f"{name}: {fmt.format(y)} (one epoch)")
        ax.annotate(fmt.format(y), (x, y), textcoords="offset points", xytext=(8, 0), va="center", fontsize=9)
        return
    ax.plot(*zip(*points), marker=".", color=colour, label=name)


def _legend(ax, title: str) -> None:
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, title=title, title_fontsize=8)


def _knn_panel(ax, knn: dict, colours: dict, references: dict[str, float]) -> None:
    for name, points in knn.items():
        if points:
            _curve(ax, points, colours[name], name, "{:.2f}")
    styles = iter(["--", ":", "-.", (0, (5, 1))] * 8)
    for label, acc in references.items():
        ax.axhline(acc, color="0.35", lw=1.2, ls=next(styles), label=f"{label}: {acc:.2f}")
    ax.set(xlabel="training time (s)", ylabel="kNN top-1 (%)", title="kNN accuracy against wall time")
    _legend(ax, "run / reference")


def _collapse_panel(ax, std: dict, colours: dict, references: dict) -> None:
    from ..monitors import COLLAPSED_BELOW
    for name, points in std.items():
        if points:
            _curve(ax, points, colours[name], name, "{:.3f}")
    ax.axhline(1.0, color="green", lw=0.8, ls="--")
    ax.axhline(COLLAPSED_BELOW, color="red", lw=0.8, ls="--")
    ax.set(xlabel="epoch", ylabel="std x sqrt(dim)", ylim=(0, None),
           title="collapse monitor (1 = isotropic; below red: collapsed)")
    _legend(ax, "run")


def matched_colours(clusters: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """cluster id -> the label it overlaps most under a one-to-one (Hungarian) matching."""
    from scipy.optimize import linear_sum_assignment
    counts = np.zeros((clusters.max() + 1, labels.max() + 1), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return {int(r): int(c) for r, c in zip(rows, cols)}


def project_2d(e: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
    """(points [N, 2], the method's name): UMAP where umap-learn is installed (pip install 'unsuprnn[umap]'),
    else t-SNE."""
    try:
        import umap
    except ImportError:
        from sklearn.manifold import TSNE
        perplexity = min(30.0, max(2.0, (len(e) - 1) / 3))
        return TSNE(2, init="pca", random_state=seed, perplexity=perplexity).fit_transform(e), "t-SNE"
    reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(15, len(e) - 1)), random_state=seed, metric="cosine",
                        n_jobs=1)  # (a seed makes UMAP single-threaded anyway; saying so silences its warning)
    return reducer.fit_transform(e), "UMAP"


def embedding_map(emb: np.ndarray, labels: np.ndarray | None, classes: list[str], seed: int, title: str,
                  clusters: tuple[np.ndarray, str] | None = None, labels_panel: bool = True) -> Figure:
    """A 2-D map (UMAP, else t-SNE) of up to MAP_POINTS embeddings: a panel by label (where there are labels
    and `labels_panel`) and one by cluster (`clusters`: ids [N] and what made them); without either, one
    plain panel. A cluster takes the colour of the label it overlaps most (Hungarian matching), so that the
    panels compare by colour."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(emb), min(MAP_POINTS, len(emb)), replace=False)
    e = emb[pick]
    y = labels[pick] if labels is not None else None
    xy, method = project_2d(e, seed)
    panels = []
    if y is not None and labels_panel:
        panels.append(("label", y, {int(v): (classes[v] if v < len(classes) else str(v), int(v)) for v in np.unique(y)}))
    if clusters is not None:
        ids, what = clusters[0][pick], clusters[1]
        match = matched_colours(ids[ids >= 0], y[ids >= 0]) if y is not None and len(classes) > 1 else {}
        names = {int(v): (f"{v} ≈ '{classes[match[int(v)]]}'" if int(v) in match and match[int(v)] < len(classes)
                          else "noise" if v < 0 else str(v), match.get(int(v), int(v) % 20)) for v in np.unique(ids)}
        panels.append((what, ids, names))
    if not panels:
        panels.append(("", np.zeros(len(e), dtype=int), {0: ("test image", 0)}))
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(PAGE_INCHES if len(panels) > 1 else PAGE_INCHES * 0.6, 5.6),
                             layout="constrained", squeeze=False)
    for ax, (by, colour, names) in zip(axes[0], panels):
        cmap = plt.get_cmap("tab10" if max(c for _, c in names.values()) < 10 else "tab20")
        for v, (name, c) in names.items():
            m = colour == v
            ax.scatter(xy[m, 0], xy[m, 1], color="lightgrey" if v < 0 else cmap(c % cmap.N), s=5, label=name)
        ax.set(title=f"{title}: {method} of test embeddings" + (f" by {by}" if by else ""), xticks=[], yticks=[])
        if by:
            ax.legend(fontsize=8, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
                      title=by, ncol=1 if len(names) <= 20 else 2)
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
    names = [str(c) for c in classes[:n]]
    short = [c if len(c) <= SHORT_NAME else f"{c[:SHORT_NAME - 3]}.{i}" for i, c in enumerate(names)]
    key = [f"{s} = {c}" for s, c in zip(short, names) if s != c]
    fig, ax = plt.subplots(figsize=(side + 1.6, side + 0.6 + 0.18 * len(key)), layout="constrained")
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=100)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if rows[i, j] >= 0.5:
                    ax.text(j, i, f"{rows[i, j]:.0f}", ha="center", va="center", fontsize=9 if n <= 12 else 7,
                            color="white" if rows[i, j] > 50 else "black")
        # rotated, and names longer than SHORT_NAME shortened, with a key below: labels never run into each other
        ax.set_xticks(range(n), short, fontsize=9, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(n), short, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="% of the true class")
    ax.set(xlabel="predicted", ylabel="true")
    # the title above the whole figure (over the colour bar too), wrapped to its width
    fig.suptitle(f"{title}: linear probe, accuracy {accuracy:.2f}% on {int(total)} test images\n(each row, a true "
                 "class, sums to 100%)", fontsize=10)
    if key:
        fig.text(0.01, 0.0, "key: " + "; ".join(key), fontsize=8, ha="left", va="bottom", wrap=True)
    return _render(fig)
