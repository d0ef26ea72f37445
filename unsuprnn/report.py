"""`report`: one self-contained HTML page (or Markdown with image files) comparing runs: the probe
table, training-loss curves, kNN accuracy against wall time, a t-SNE map of the test embeddings
(coloured by label and by cluster, with legends), the linear probe's confusion matrix and, for a cluster
run, a gallery of each cluster's most and least confident images."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import torch

from .atomic import write_bytes, write_text
from .cluster import load_cluster_head
from .errors import UserError
from .evaluate.probe import METHODS, columns, load_probe_data, run_probe, summary_rows
from .rundir import read_json, read_log
from .scan import confident_clusters

TSNE_POINTS = 2000


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def loss_figure(logs: dict[str, list[dict]], dims: dict[str, int]) -> bytes:
    """Training loss, kNN against wall time, and the collapse monitor (std of L2-normalized embeddings
    x sqrt(dim): 1 for isotropic features, 0 for a collapse), one line per run."""
    from .train import COLLAPSED_BELOW
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for name, log in logs.items():
        axes[0].plot([e["epoch"] for e in log], [e["loss"] for e in log], marker=".", label=name)
        knn = [(e["elapsed"], e["knn_top1"]) for e in log if "knn_top1" in e]
        if knn:
            axes[1].plot(*zip(*knn), marker=".", label=name)
        std = [(e["epoch"], e["embedding_std"] * dims[name] ** 0.5) for e in log if "embedding_std" in e]
        if std:
            axes[2].plot(*zip(*std), marker=".", label=name)
    axes[0].set(xlabel="epoch", ylabel="training loss", title="training loss")
    axes[1].set(xlabel="training time (s)", ylabel="kNN top-1 (%)", title="kNN accuracy against wall time")
    axes[2].axhline(1.0, color="green", lw=0.8, ls="--")
    axes[2].axhline(COLLAPSED_BELOW, color="red", lw=0.8, ls="--")
    axes[2].set(xlabel="epoch", ylabel="std x sqrt(dim)", ylim=(0, None),
                title="collapse monitor (1 = isotropic; below red: collapsed)")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # runs logged before a panel existed draw nothing there
            ax.legend(fontsize=8)
    return _png(fig)


def embedding_map(emb: np.ndarray, labels: np.ndarray, classes: list[str], n_clusters: int, seed: int, title: str,
                  head_clusters: np.ndarray | None = None) -> bytes:
    """t-SNE of up to TSNE_POINTS embeddings, coloured by label and by cluster (a cluster run's head,
    else k-means), each panel with its legend."""
    from sklearn.manifold import TSNE

    from .evaluate.kmeans import kmeans
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
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, colour, by, names in ((axes[0], y, "label", classes), (axes[1], clusters, what, None)):
        cmap = plt.get_cmap("tab10" if max(colour.max(), y.max()) < 10 else "tab20")
        for v in np.unique(colour):
            m = colour == v
            if names:
                name, c = (names[v] if v < len(names) else f"{v}"), int(v)
            else:  # a cluster takes the colour of the label it matches best (Hungarian), so panels compare
                c = match.get(int(v), int(v))
                name = f"{v}" + (f" ~ {classes[c]}" if int(v) in match and c < len(classes) else "")
            ax.scatter(xy[m, 0], xy[m, 1], color=cmap(c % cmap.N), s=4, label=name)
        ax.set(title=f"{title}: t-SNE of test embeddings by {by}", xticks=[], yticks=[])
        ax.legend(fontsize=7, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
                  title=by, ncol=1 if len(np.unique(colour)) <= 20 else 2)
    fig.tight_layout()
    return _png(fig)


def matched_colours(clusters: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """cluster id -> the label it overlaps most under a one-to-one (Hungarian) matching."""
    from scipy.optimize import linear_sum_assignment
    counts = np.zeros((clusters.max() + 1, labels.max() + 1), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return {int(r): int(c) for r, c in zip(rows, cols)}


GALLERY_STRIP = 8          # images per strip: the most and the least confident of each cluster
GALLERY_CLUSTERS = 30      # clusters shown, largest first


def cluster_gallery(images: np.ndarray, clusters: np.ndarray, confidence: np.ndarray, labels: np.ndarray,
                    classes: list[str], title: str) -> bytes:
    """One row per cluster (largest first): its size, majority label and purity where labels exist,
    a strip of its most confident images and a strip of its least confident ones.
    images: uint8 [N, C, H, W]; clusters, confidence, labels: [N] (label -1 = unknown)."""
    plt = _plt()
    sizes = np.bincount(clusters)
    shown = [c for c in np.argsort(-sizes, kind="stable") if sizes[c] > 0][:GALLERY_CLUSTERS]
    s = GALLERY_STRIP
    fig, axes = plt.subplots(len(shown), 2 * s + 2, figsize=(0.55 * (2 * s) + 3.2, 0.62 * len(shown) + 0.6),
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
        axes[r, 0].text(0, 0.5, text, va="center", fontsize=8)
        strips = (idx[:s], idx[::-1][:s][::-1])  # least confident strip ends with the least confident
        for j, pos in enumerate(list(range(1, s + 1)) + list(range(s + 2, 2 * s + 2))):
            strip, k = strips[j // s], j % s
            if k < len(strip):
                img = images[strip[k]]
                axes[r, pos].imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0),
                                    cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=255)
        for ax in axes[r]:
            ax.axis("off")
    axes[0, 1 + s // 2].set_title("most confident", fontsize=9)
    axes[0, s + 2 + s // 2].set_title("least confident", fontsize=9)
    fig.suptitle(f"{title}: clusters of the test split", fontsize=10)
    return _png(fig)


def confusion_figure(conf: list[list[int]], classes: list[str], title: str) -> bytes:
    plt = _plt()
    c = np.asarray(conf)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(c, cmap="Blues")
    n = len(c)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(c[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if c[i, j] > c.max() / 2 else "black")
        ax.set_xticks(range(n), classes[:n], fontsize=7)
        ax.set_yticks(range(n), classes[:n], fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=f"{title}: linear probe confusion")
    return _png(fig)


def collect(run: Path, device) -> dict:
    """Everything the report shows about one run; probes it (with a raw-pixel baseline) if needed."""
    from .checkpoint import load_run_encoder
    from .evaluate.embed import embed_images

    if not (run / "encoder.pt").is_file():
        raise UserError(f"{run} has no encoder.pt; pass run directories written by pretrain or supervised")
    probe_file = run / "probe.json"
    probe = read_json(probe_file) if probe_file.is_file() else None
    encoder, pipeline, cfg, info = load_run_encoder(run, device)
    head = load_cluster_head(run)
    # reuse the last probe only if it scored every method (and a cluster run's head) on the run's own split
    wanted = set(METHODS) | ({"head"} if head is not None else set())
    if (probe is None or not wanted <= set(probe["results"].get("encoder", {}))
            or probe["bank"] != cfg.data.dataset or probe["queries"] != cfg.data.dataset):
        probe = run_probe(run, METHODS, ["raw"], device=device)
        write_text(probe_file, json.dumps(probe, indent=2) + "\n")
    data = load_probe_data(cfg, tuple(info["shape"]))
    emb = embed_images(encoder, pipeline, data.query_images, device, indices=data.query_idx).numpy()
    out = {"name": run.name, "probe": probe, "log": read_log(run / "log.jsonl"),
           "metrics": read_json(run / "metrics.json") if (run / "metrics.json").is_file() else {},
           "emb": emb, "labels": data.query_y.numpy(), "classes": data.classes, "seed": cfg.train.seed,
           "objective": cfg.objective.name + (" + cluster" if head is not None else ""), "dataset": cfg.data.dataset}
    if head is not None:
        with torch.no_grad():
            ids, conf = confident_clusters(head(torch.from_numpy(emb)))
        out |= {"head_clusters": ids.numpy(), "confidence": conf.numpy(),
                "images": data.query_images[data.query_idx].numpy()}
    return out


def table_rows(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    cols = columns([r["probe"] for r in runs])
    header = ["run", "features"] + [c for c, _ in cols]
    rows = []
    for r in runs:
        for name, cells in summary_rows(r["probe"], cols):
            rows.append([r["name"], name] + cells)
    return header, rows


def build_report(runs: list[str | Path], out: str | Path, device="cpu") -> Path:
    out = Path(out)
    if out.suffix.lower() not in (".html", ".md"):
        raise UserError(f"report --out must end with .html or .md, got '{out.name}'")
    if not runs:
        raise UserError("pass at least one run: --runs DIR [--runs DIR ...]")
    info = [collect(Path(r), device) for r in runs]
    figures = [("Training", loss_figure({r["name"]: r["log"] for r in info},
                                        {r["name"]: r["probe"]["embedding_dim"] for r in info}))]
    for r in info:
        labelled = (r["labels"] >= 0).any()
        n_cls = len(r["classes"]) or 10
        figures.append((f"{r['name']}: embedding map",
                        embedding_map(r["emb"], np.where(r["labels"] >= 0, r["labels"], 0) if labelled
                                      else np.zeros(len(r["emb"]), int), r["classes"] if labelled else ["unlabelled"],
                                      n_cls, r["seed"], r["name"], r.get("head_clusters"))))
        if "head_clusters" in r:
            figures.append((f"{r['name']}: cluster gallery",
                            cluster_gallery(r["images"], r["head_clusters"], r["confidence"], r["labels"],
                                            r["classes"], r["name"])))
        conf = r["probe"]["results"].get("encoder", {}).get("linear", {}).get("confusion")
        if conf:
            figures.append((f"{r['name']}: confusion matrix", confusion_figure(conf, r["classes"], r["name"])))
    header, rows = table_rows(info)
    runs_line = [f"{r['name']}: {r['objective']} on {r['dataset']}, bank {r['probe']['bank_size']}, "
                 f"queries {r['probe']['query_size']}, embedding dim {r['probe']['embedding_dim']}" for r in info]
    if out.suffix.lower() == ".html":
        write_text(out, _html(header, rows, runs_line, figures))
    else:
        files = out.parent / f"{out.stem}_files"
        files.mkdir(parents=True, exist_ok=True)
        links = []
        for i, (title, png) in enumerate(figures):
            write_bytes(files / f"figure{i}.png", png)
            links.append(f"### {title}\n\n![{title}]({files.name}/figure{i}.png)\n")
        md = ["# unsuprnn report", "", *[f"- {line}" for line in runs_line], "",
              "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
              *["| " + " | ".join(r) + " |" for r in rows], "", *links]
        write_text(out, "\n".join(md) + "\n")
    return out


def _html(header, rows, runs_line, figures) -> str:
    esc = html.escape
    table = ("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"
             + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>")
    figs = "".join(f"<h2>{esc(t)}</h2><img alt='{esc(t)}' src='data:image/png;base64,{base64.b64encode(p).decode()}'>"
                   for t, p in figures)
    style = ("body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:nth-child(-n+2){text-align:left}"
             "th{background:#f3f3f3}img{max-width:100%}")
    items = "".join(f"<li>{esc(line)}</li>" for line in runs_line)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>unsuprnn report</title><style>{style}</style>"
            f"</head><body><h1>unsuprnn report</h1><ul>{items}</ul><h2>Comparison</h2>{table}{figs}</body></html>\n")
