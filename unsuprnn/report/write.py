"""Writing the report: self-contained HTML, or Markdown beside a folder of PNGs. Both are written so
that an interrupted `report` leaves the previous report readable: the page (or the .md) is replaced
atomically, and a Markdown report's figures carry content-hash names, so the old .md keeps pointing at
its own files until the new one replaces it (the old figures are removed after)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import time
from pathlib import Path

from ..atomic import node_kind, write_bytes, write_text
from ..evaluate.table import cell_text
from ..runs.files import git_commit

NOTE = ("Bold: the best label-free figure in each column (the supervised reference is shown, not ranked). "
        "kNN: cosine, temperature-weighted votes (maj.: plain majority). Linear: logistic regression on "
        "standardized features. k-means (NMI, ARI, cluster acc): the restart with the lowest objective, ± the "
        "standard deviation over restarts. vs raw: points above (+) or below (-) raw pixels at kNN top-1, linear "
        "top-1 and cluster accuracy (a cluster run's head, else k-means, against raw-pixel k-means).")
UNLABELLED = ("This dataset has no labels, so no accuracy can be scored: the table shows what a cluster run "
              "found (its number of clusters and how confident its head is), and the maps and galleries show the "
              "groups. With labels (images in one subfolder per class) the report would compare kNN, linear-probe "
              "and cluster accuracy with raw pixels, PCA and a random encoder. `unsuprnn cluster --clusters auto` "
              "groups the images (auto: K chosen from the data); `unsuprnn export --cluster auto` (or K, or hdbscan) "
              "writes clusters with file paths.")
CAPTIONS = {
    "training": "Training loss per objective (a cluster run: one panel per phase); where the data has labels, kNN "
                "top-1 on the test split against training time, with raw pixels and PCA as reference lines; the "
                "collapse monitor.",
    "embedding-map": "A 2-D map of the test embeddings: UMAP where umap-learn is installed, else t-SNE (the title "
                     "says which; pip install 'unsuprnn[umap]' for UMAP). By label where there are labels, and by "
                     "cluster: the cluster head's, else k-means (one cluster per class where there are labels, else "
                     "the K chosen from the data). A cluster is coloured like the label it overlaps most "
                     "(Hungarian matching): 3 ≈ '5' reads cluster 3, matched to label 5.",
    "k-curve": "How many clusters the data holds, without labels: for each K, k-means splits the test embeddings "
               "(and, grey, the raw pixels) into K clusters and the split is scored by its modularity on the "
               "10-nearest-neighbour graph (the share of neighbour links inside clusters, less chance). The "
               "smallest K within 0.01 of the best is chosen (circled); `--clusters auto` makes the same choice.",
    "cluster-gallery": "Each cluster, largest first: its size, how well its images fit it (the head's mean "
                       "confidence, or the mean silhouette of k-means clusters), its majority label and purity where "
                       "there are labels, its most typical test images, then its least typical ones.",
    "outliers": "The test images least like any other: the highest outlier scores (one less the mean cosine "
                "similarity to the nearest neighbours). Look here for junk, mislabelled or corrupt files; "
                "`unsuprnn export` writes the score of every image with its path (outlier_score).",
    "duplicates": "Pairs of test images whose embeddings nearly coincide (cosine similarity of centred embeddings "
                  "at or above 0.995, or each other's distinct nearest neighbour): copies, or near-copies. "
                  "`unsuprnn export` names each one's original (duplicate_of).",
    "confusion": "The linear probe's confusion matrix on the test split, each row (true class) normalised to 100%.",
}
NO_SUPERVISED = ("No supervised reference on this data: add a `unsuprnn supervised` run with the same data and "
                 "view to the report (or probe with --baselines supervised=RUN).")


def _header(section: dict) -> list[str]:
    return ["features"] + [c for c, _ in section["cols"]] + ([] if section["unlabelled"] else
                                                             ["vs raw: kNN / linear / clusters"])


def _generated(device) -> str:
    import torch

    from .. import __version__
    commit = git_commit()
    return (f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %z')} by unsuprnn {__version__}"
            + (f" (commit {commit[:10]})" if commit else "") + f", torch {torch.__version__}, probes on {device}.")


NUISANCE = ("Properties of the pixels that rarely say what an image shows. Share: how much of the (L2-normalized) "
            "embedding's variance a linear function of the property explains. NMI: how closely the clusters (and, "
            "with labels, the classes) follow it: polarity as light-on-dark against dark-on-light, colour by the "
            "dominant channel, the others by quartile.")


def write_report(out: Path, sections: list[dict], provenance: tuple, nuisances: list[dict], figures: list,
                 device) -> None:
    if out.suffix.lower() == ".html":
        write_text(out, html_page(sections, provenance, nuisances, figures, _generated(device)))
    else:
        write_markdown(out, sections, provenance, nuisances, figures, _generated(device))


def _diff(v: float | None) -> str:
    return "-" if v is None else f"{v:+.2f}"


def _html_table(header: list[str], rows: list[list[str]], cls: str) -> str:
    esc = html.escape
    return (f"<table class='{cls}'><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>")


def html_page(sections: list[dict], provenance: tuple, nuisances: list[dict], figures: list, generated: str) -> str:
    esc = html.escape
    body = [f"<h1>unsuprnn report</h1><p class='generated'>{esc(generated)}</p><h2>Comparison</h2>"]
    for s in sections:
        head = "".join(f"<th>{esc(h)}</th>" for h in _header(s))
        rows = []
        for i, row in enumerate(s["rows"]):
            cells = [f"<td class='label'>{esc(row.label)}</td>"]
            for j, (_, (method, key)) in enumerate(s["cols"]):
                text = esc(cell_text(row.results, method, key))
                cells.append(f"<td class='best'><b>{text}</b></td>" if (i, j) in s["best"] else f"<td>{text}</td>")
            parts = s["vs_raw"][i]
            spans = " / ".join(f"<span class='{'up' if v and v > 0 else 'down' if v and v < 0 else 'flat'}'>"
                               f"{_diff(v)}</span>" for v in parts) if parts else "-"
            cells += [] if s["unlabelled"] else [f"<td class='vs-raw'>{spans}</td>"]
            rows.append(f"<tr class='kind-{row.kind}'>" + "".join(cells) + "</tr>")
        body.append(f"<h3>{esc(s['title'])}</h3><table class='comparison'><tr>{head}</tr>{''.join(rows)}</table>"
                    + ("" if s["unlabelled"] else f"<p class='note'>{esc(NOTE)}</p>"))
        if s["verdicts"]:
            body.append("<ul class='verdicts'>" + "".join(f"<li>{esc(v)}</li>" for v in s["verdicts"]) + "</ul>")
        for flag, text in (("unlabelled", UNLABELLED), ("no_supervised", NO_SUPERVISED)):
            if s[flag]:
                body.append(f"<p class='note'>{esc(text)}</p>")
    if nuisances:
        body.append(f"<h2>What the clusters may follow</h2><p class='note'>{esc(NUISANCE)}</p>")
    for n in nuisances:
        body.append(f"<h3>{esc(n['title'])}</h3>" + _html_table(n["header"], n["rows"], "nuisance")
                    + f"<p>{esc(n['said'])}</p>")
    body.append("<h2>Provenance</h2>" + _html_table(*provenance, "provenance"))
    for title, kind, fig in figures:
        src = "data:image/png;base64," + base64.b64encode(fig.png).decode()
        body.append(f"<h2>{esc(title)}</h2><figure data-kind='{kind}' data-legends='{esc('|'.join(fig.legends))}'>"
                    f"<img alt='{esc(title)}' width='{fig.width}' src='{src}'><figcaption>{esc(CAPTIONS[kind])}"
                    "</figcaption></figure>")
    style = ("body{font-family:sans-serif;margin:2em auto;max-width:1340px;padding:0 1em}"
             "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
             "td.label,table.provenance td{text-align:left}th{background:#f3f3f3}td.best{background:#e3f4e6}"
             "tr.kind-raw td,tr.kind-reference td{color:#444}tr.kind-supervised td{color:#555;font-style:italic}"
             ".up{color:#137333}.down{color:#b3261e}.note,.generated{color:#555;font-size:0.9em;max-width:1100px}"
             "figure{margin:0}img{max-width:100%;height:auto}figcaption{color:#555;font-size:0.85em}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>unsuprnn report</title><style>{style}</style>"
            f"</head><body>{''.join(body)}</body></html>\n")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    clean = lambda c: c.replace("|", "\\|")
    return (["| " + " | ".join(map(clean, header)) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(map(clean, r)) + " |" for r in rows])


def figure_folder(out: Path) -> Path:
    """A Markdown report's folder of PNGs (refused where a symlink or a file has its name)."""
    files = out.parent / f"{out.stem}_files"
    kind = node_kind(files)
    if kind not in (None, "directory"):
        from ..errors import UserError
        raise UserError(f"{files} (the report's figure folder) is a {kind}; remove it, or choose another --out")
    return files


def _referenced(md: Path, files: Path) -> set[str]:
    """The figures an existing Markdown report shows (the only ones a new report may remove)."""
    try:
        return set(re.findall(rf"\]\({re.escape(files.name)}/(fig-[0-9a-f]{{16}}\.png)\)", md.read_text()))
    except (OSError, UnicodeDecodeError):
        return set()


def write_markdown(out: Path, sections: list[dict], provenance: tuple, nuisances: list[dict], figures: list,
                   generated: str) -> None:
    files = figure_folder(out)
    replaced = _referenced(out, files) if out.is_file() else set()
    files.mkdir(parents=True, exist_ok=True)
    md = ["# unsuprnn report", "", generated, "", "## Comparison", ""]
    for s in sections:
        rows = []
        for i, row in enumerate(s["rows"]):
            cells = [cell_text(row.results, m, k) for _, (m, k) in s["cols"]]
            cells = [f"**{c}**" if (i, j) in s["best"] else c for j, c in enumerate(cells)]
            parts = s["vs_raw"][i]
            rows.append([row.label] + cells + ([] if s["unlabelled"] else [" / ".join(map(_diff, parts)) if parts else "-"]))
        md += [f"### {s['title']}", "", *_md_table(_header(s), rows), ""] + ([] if s["unlabelled"] else [NOTE, ""])
        md += [f"- {v}" for v in s["verdicts"]] + ([""] if s["verdicts"] else [])
        md += [text for flag, text in (("unlabelled", UNLABELLED), ("no_supervised", NO_SUPERVISED)) if s[flag]]
        md += [""]
    md += ["## What the clusters may follow", "", NUISANCE, ""] if nuisances else []
    for n in nuisances:
        md += [f"### {n['title']}", "", *_md_table(n["header"], n["rows"]), "", n["said"], ""]
    md += ["## Provenance", "", *_md_table(*provenance), ""]
    names = []
    for title, kind, fig in figures:
        name = f"fig-{hashlib.sha256(fig.png).hexdigest()[:16]}.png"
        if not (files / name).is_file():
            write_bytes(files / name, fig.png)
        names.append(name)
        md += [f"## {title}", "", f"![{title}]({files.name}/{name})", "", CAPTIONS[kind], ""]
    write_text(out, "\n".join(md))
    for name in replaced - set(names):  # figures of the report this one replaced; nothing else in the folder
        (files / name).unlink(missing_ok=True)
