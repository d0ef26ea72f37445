"""`report`: one page that answers "are my embeddings better than raw pixels?".

For each dataset (runs whose test images and probe settings are the same) one compact comparison table: every
run, then raw pixels, PCA, UMAP of raw pixels, a random encoder and the supervised reference once each, with
kNN, linear, clusters and the difference from raw pixels with its noise bound; the best label-free figure of
each column marked; every probe method's full figures in a table of its own, folded; and a sentence per run
saying where it is better, worse or within noise. Then provenance (config, probe settings, versions, commit, dates), the training
curves, UMAP (or t-SNE) maps, the number of clusters the data chooses, each cluster's typical and least
typical images (the head's clusters, else k-means), the odd ones out and near-duplicates, confusion matrices. Self-contained HTML, or
Markdown with a folder of PNGs. Runs are probed first where their probe.json lacks a measurement.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import ProbeSettings
from . import cluster_figures as cfigs
from . import figures as figs
from .collect import check_report_args, collect, read_run_files
from .tables import (detail_tables, group_key, group_title, main_table, provenance, table_rows, unlabelled_table,
                     value, verdicts)


def build_report(runs: list[str | Path], out: str | Path, device="cpu", force: bool = False,
                 say=lambda line: None, settings: ProbeSettings | None = None) -> Path:
    """Probe what is missing, then write the report to `out` (.html or .md) atomically. settings: the
    k-range and near-duplicate threshold of the clustering analysis (ProbeSettings' defaults if None)."""
    from .write import write_report
    out = Path(out)
    paths = check_report_args(runs, out, force)
    files = [read_run_files(run) for run in paths]
    info = []
    for i, run in enumerate(paths):
        say(f"report: [{i + 1}/{len(paths)}] {run}")
        info.append(collect(run, files[i], device, settings or ProbeSettings(), say))
    groups: dict[str, list[dict]] = {}
    for r in info:
        groups.setdefault(group_key(r), []).append(r)
    sections = []
    for group in groups.values():
        rows = table_rows(group)
        n_queries = group[0]["probe"]["query_size"] or 0
        main = main_table(rows, n_queries) if group[0]["labelled"] else unlabelled_table(rows)
        sections.append({"title": group_title(group), "rows": rows, "main": main,
                         "details": detail_tables(rows), "verdicts": verdicts(rows, n_queries),
                         "no_supervised": group[0]["labelled"] and not any(r.kind == "supervised" for r in rows),
                         "unlabelled": not group[0]["labelled"]})
    say("report: drawing figures")
    figures = report_figures(info, sections)
    notes = [f"{r['name']}: {note}" for r in info for note in r["meta"].get("data_notes", [])]
    write_report(out, sections, provenance(info), nuisance_tables(info), figures, device, notes)
    return out


def nuisance_tables(info: list[dict]) -> list[dict]:
    """Per run: what share of its embedding brightness, contrast, polarity (colour; the object's size and place)
    explain, how closely its clusters follow each, and a sentence naming those the clusters may follow, with the
    settings that would take them out (evaluate/nuisance.py)."""
    from ..evaluate.nuisance import followed, remedies
    out = []
    for r in info:
        rows, labelled = r["analysis"]["nuisances"], (r["labels"] >= 0).any()
        header = ["property", "share of embedding variance", "clusters' NMI"] + (["classes' NMI"] if labelled else [])
        cells = [[row["property"], f"{100 * row['variance_share']:.1f}%", f"{row['cluster_nmi']:.3f}"]
                 + ([f"{row['label_nmi']:.3f}"] if labelled else []) for row in rows]
        names = followed(rows)
        said = (f"The clusters may follow {' and '.join(names)} rather than what the images show: look at the "
                f"gallery; {' and '.join(remedies(names))} would take it out of what the encoder reads, where it "
                "does not say what an image shows." if names
                else "The clusters follow none of these properties closely.")
        out.append({"title": f"Run {r['name']}: what the clusters may follow ({r['analysis']['clusters_by']})",
                     "header": header, "rows": cells, "said": said})
        moved = r["probe"]["results"].get("encoder", {}).get("consistency")
        if moved:
            worst = max(moved, key=lambda k: moved[k]["split"])
            out.append({"title": f"Run {r['name']}: images whose transformed copy falls in another cluster",
                        "header": ["transformation", "copies in another cluster", "the flag that makes the encoder "
                                   "ignore it"],
                        "rows": [[k, f"{v['split']:.1f}%", v["flag"] or "-"] for k, v in moved.items()],
                        "said": f"Most split: {worst} ({moved[worst]['split']:.1f}% of the test images land in "
                                "another cluster than their transformed copy). Where a transformation does not change "
                                "what an image shows (a mirrored photograph of an object), a high share means the "
                                "clusters follow it: train with its flag."})
    return out


def training_runs(info: list[dict]) -> list[dict]:
    """The loss curves to draw: one per run, and for a cluster run one per phase (SCAN's loss and the
    self-labeling loss are on different scales, as different objectives' losses are)."""
    out = []
    for r in info:
        base = {"name": r["name"], "dim": r["probe"]["embedding_dim"]}
        if not r.get("cluster"):
            out.append(base | {"objective": r["objective"], "log": r["log"]})
            continue
        for phase, title in (("scan", "cluster stage: SCAN"), ("selflabel", "cluster stage: self-labeling")):
            log = [e for e in r["log"] if e.get("phase") == phase]
            if log:
                out.append(base | {"objective": title, "log": log})
    return out


def report_figures(info: list[dict], sections: list[dict]) -> list[tuple[str, str, figs.Figure]]:
    """(title, kind, figure) in page order."""
    references = {}
    for s in sections:
        tag = f" ({s['title'].split(':')[0]})" if len(sections) > 1 else ""
        for row in s["rows"]:
            v = value(row.results, "knn", "weighted_top1")
            if row.kind in ("raw", "reference") and not row.label.startswith("random") and v is not None:
                references[f"{row.label}{tag}"] = v
    out = [("Training", "training", figs.training_figure(training_runs(info), references))]
    in_report = {str(r["path"].resolve()) for r in info}
    for r in info:
        labelled = (r["labels"] >= 0).any()
        a, name = r["analysis"], r["name"]
        # a cluster run on an encoder whose run is in the report: its map differs only by the head's clusters
        repeat = r.get("source") is not None and str(r["source"].resolve()) in in_report
        out.append((f"Run {name}: embedding map", "embedding-map",
                    figs.embedding_map(r["emb"], np.where(r["labels"] >= 0, r["labels"], 0) if labelled
                                       else None, r["classes"], r["seed"], name, (a["ids"], a["clusters_by"]),
                                       labels_panel=not repeat)))
        if not repeat:
            out.append((f"Run {name}: number of clusters", "k-curve",
                        cfigs.k_curve_figure(a, len(r["classes"]) if labelled else 0, name)))
        out.append((f"Run {name}: cluster gallery", "cluster-gallery",
                    cfigs.cluster_gallery(r["images"], a, r["labels"], r["classes"], name)))
        moved = r["probe"]["results"].get("encoder", {}).get("consistency")
        if moved and not repeat:
            out.append((f"Run {name}: split by a transformation", "consistency",
                        cfigs.consistency_gallery(r["images"], moved, name, r["cfg"].augment)))
        if not repeat:
            out.append((f"Run {name}: odd ones out", "outliers", cfigs.outlier_gallery(r["images"], a, name)))
            out.append((f"Run {name}: near-duplicates", "duplicates", cfigs.duplicates_gallery(r["images"], a, name)))
        conf = r["probe"]["results"].get("encoder", {}).get("linear", {}).get("confusion")
        if conf and r.get("source") is None:
            out.append((f"Run {name}: confusion matrix", "confusion",
                        figs.confusion_figure(conf, r["classes"], name)))
    return out
