"""`report`: one self-contained HTML page (or Markdown with image files) comparing runs: the probe
table, training-loss curves, kNN accuracy against wall time, a t-SNE map of the test embeddings
(coloured by label and by k-means cluster) and the linear probe's confusion matrix."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import torch

from .atomic import write_bytes, write_text
from .errors import UserError
from .evaluate.probe import METHODS, columns, load_probe_data, run_probe, summary_rows
from .rundir import read_json, read_log

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


def loss_figure(logs: dict[str, list[dict]]) -> bytes:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, log in logs.items():
        axes[0].plot([e["epoch"] for e in log], [e["loss"] for e in log], marker=".", label=name)
        knn = [(e["elapsed"], e["knn_top1"]) for e in log if "knn_top1" in e]
        if knn:
            axes[1].plot(*zip(*knn), marker=".", label=name)
    axes[0].set(xlabel="epoch", ylabel="training loss", title="training loss")
    axes[1].set(xlabel="training time (s)", ylabel="kNN top-1 (%)", title="kNN accuracy against wall time")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    return _png(fig)


def embedding_map(emb: np.ndarray, labels: np.ndarray, n_clusters: int, seed: int, title: str) -> bytes:
    """t-SNE of up to TSNE_POINTS embeddings, coloured by label and by k-means cluster."""
    from sklearn.manifold import TSNE

    from .evaluate.kmeans import kmeans
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(emb), min(TSNE_POINTS, len(emb)), replace=False)
    e, y = emb[pick], labels[pick]
    xy = TSNE(2, init="pca", random_state=seed, perplexity=min(30.0, max(2.0, (len(e) - 1) / 3))).fit_transform(e)
    clusters = kmeans(torch.nn.functional.normalize(torch.from_numpy(e), dim=1), max(1, min(n_clusters, len(e))),
                      seed=seed)[0]
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, colour, what in ((axes[0], y, "label"), (axes[1], clusters, "k-means cluster")):
        ax.scatter(xy[:, 0], xy[:, 1], c=colour, cmap="tab10" if colour.max() < 10 else "tab20", s=4)
        ax.set(title=f"{title}: t-SNE of test embeddings by {what}", xticks=[], yticks=[])
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
    # reuse the last probe only if it scored every method on the run's own split
    if (probe is None or not set(METHODS) <= set(probe["results"].get("encoder", {}))
            or probe["bank"] != cfg.data.dataset or probe["queries"] != cfg.data.dataset):
        probe = run_probe(run, METHODS, ["raw"], device=device)
        write_text(probe_file, json.dumps(probe, indent=2) + "\n")
    data = load_probe_data(cfg, tuple(info["shape"]))
    emb = embed_images(encoder, pipeline, data.query_images, device, indices=data.query_idx).numpy()
    return {"name": run.name, "probe": probe, "log": read_log(run / "log.jsonl"),
            "metrics": read_json(run / "metrics.json") if (run / "metrics.json").is_file() else {},
            "emb": emb, "labels": data.query_y.numpy(), "classes": data.classes, "seed": cfg.train.seed,
            "objective": cfg.objective.name, "dataset": cfg.data.dataset}


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
    figures = [("Training", loss_figure({r["name"]: r["log"] for r in info}))]
    for r in info:
        labelled = (r["labels"] >= 0).any()
        n_cls = len(r["classes"]) or 10
        figures.append((f"{r['name']}: embedding map",
                        embedding_map(r["emb"], np.where(r["labels"] >= 0, r["labels"], 0) if labelled
                                      else np.zeros(len(r["emb"]), int), n_cls, r["seed"], r["name"])))
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
