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

NOTE = ("Bold: the best label-free figure in each column (the supervised reference is shown, not ranked). kNN: "
        "top-1 of cosine, temperature-weighted votes. Linear: logistic regression on standardized features. "
        "Clusters: the cluster stage's head where a run has one (head), else k-means (the restart with the lowest "
        "objective). vs raw pixels: points above (+) or below (-) raw pixels, ± two standard errors of the "
        "difference on the test images (clusters: at least twice the spread over k-means restarts). Every figure "
        "of every probe method is in the folded tables below.")
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
    "embedding-map": "A 2-D UMAP map of the test embeddings. By label where there are labels, and by cluster: the "
                     "cluster head's, else k-means (one cluster per class where there are labels, else the K chosen "
                     "from the data). Each cluster is matched to one label, one-to-one (Hungarian matching), and "
                     "coloured like it: 3 ≈ '5' reads cluster 3, matched to label 5. The gallery names each "
                     "cluster's majority label, which can differ where two clusters share a majority.",
    "k-curve": "How many clusters the data holds, without labels: for each K, k-means splits the test embeddings "
               "(and, grey, the raw pixels) into K clusters and the split is scored by its modularity on the "
               "10-nearest-neighbour graph (the share of neighbour links inside clusters, less chance). The "
               "smallest K within 0.01 of the best is chosen (circled); `--clusters auto` makes the same choice.",
    "cluster-gallery": "Each cluster, largest first: its size, how well its images fit it (the head's mean "
                       "confidence, or the mean silhouette of k-means clusters), its majority label and purity where "
                       "there are labels (and the label the map matches it to, where that differs), its most "
                       "typical test images, then its least typical ones.",
    "outliers": "The test images least like any other: the highest outlier scores (one less the mean cosine "
                "similarity to the nearest neighbours). Look here for junk, mislabelled or corrupt files; "
                "`unsuprnn export` writes the score of every image with its path (outlier_score).",
    "duplicates": "Pairs of test images whose embeddings nearly coincide (cosine similarity of centred embeddings "
                  "at or above 0.995, or each other's distinct nearest neighbour): copies, or near-copies. "
                  "`unsuprnn export` names each one's original (duplicate_of).",
    "confusion": "The linear probe's confusion matrix on the test split, each row (true class) normalised to 100%.",
    "consistency": "Test images whose mirrored (shifted, zoomed, turned, negative, colour-turned) copy fell in another "
                   "cluster, each beside its copy: what the grouping follows besides what the images show.",
}
NO_SUPERVISED = ("No supervised reference on this data: add a `unsuprnn supervised` run with the same data and "
                 "view to the report (or probe with --baselines supervised=RUN).")


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


DATA_NOTES = "What loading changed in the images, or what the labels cannot score (recorded in each run's meta.json):"


def write_report(out: Path, sections: list[dict], provenance: tuple, nuisances: list[dict], figures: list,
                 device, notes: list[str] = ()) -> None:
    if out.suffix.lower() == ".html":
        write_text(out, html_page(sections, provenance, nuisances, figures, _generated(device), notes))
    else:
        write_markdown(out, sections, provenance, nuisances, figures, _generated(device), notes)


def _html_table(header: list[str], rows: list[list[str]], cls: str) -> str:
    esc = html.escape
    return (f"<table class='{cls}'><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>")


THUMB = 64  # thumbnails are at least this many pixels a side (small images enlarged, nearest neighbour)


def thumbnail(img) -> tuple[bytes, int]:
    """(PNG bytes, side in px) of one uint8 [C, H, W] image, enlarged by a whole factor to at least THUMB px."""
    import io

    import numpy as np
    from PIL import Image
    a = np.asarray(img)
    a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    scale = max(1, -(-THUMB // max(a.shape[:2])))
    im = Image.fromarray(a).resize((a.shape[1] * scale, a.shape[0] * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue(), im.size[0]


def _html_gallery(gallery) -> str:
    esc = html.escape
    out = []
    for group in gallery.groups:
        strips = []
        for title, images, captions in group["strips"]:
            cells = []
            for k, img in enumerate(images):
                png, side = thumbnail(img)
                cap = f"<span class='thumb-caption'>{esc(captions[k])}</span>" if k < len(captions) else ""
                cells.append(f"<span class='thumb'>{cap}<img width='{side}' height='{side}' alt='' "
                             f"src='data:image/png;base64,{base64.b64encode(png).decode()}'></span>")
            head = f"<span class='strip-title'>{esc(title)}</span>" if title else ""
            strips.append(f"<div class='strip'>{head}<div class='thumbs'>{''.join(cells)}</div></div>")
        out.append(f"<div class='group'><p class='group-caption'>{esc(group['caption'])}</p>{''.join(strips)}</div>")
    return "".join(out)


def _detail_html(detail: dict) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in ["features"] + [c for c, _ in detail["cols"]])
    rows = []
    for i, row in enumerate(detail["rows"]):
        cells = [f"<td class='label'>{esc(row.label)}</td>"]
        for j, (_, (method, key)) in enumerate(detail["cols"]):
            text = esc(cell_text(row.results, method, key))
            cells.append(f"<td class='best'><b>{text}</b></td>" if (i, j) in detail["best"] else f"<td>{text}</td>")
        rows.append(f"<tr class='kind-{row.kind}'>" + "".join(cells) + "</tr>")
    return (f"<details class='method' data-method='{detail['method']}'><summary>{esc(detail['title'])}</summary>"
            f"<table class='detail'><tr>{head}</tr>{''.join(rows)}</table></details>")


def html_page(sections: list[dict], provenance: tuple, nuisances: list[dict], figures: list, generated: str,
              notes: list[str] = ()) -> str:
    from .cluster_figures import Gallery
    esc = html.escape
    body = [f"<h1>unsuprnn report</h1><p class='generated'>{esc(generated)}</p>"]
    if notes:
        body.append(f"<h2>Notes on the data</h2><p class='note'>{esc(DATA_NOTES)}</p><ul class='data-notes'>"
                    + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    body.append("<h2>Comparison</h2>")
    for s in sections:
        body.append(f"<h3>{esc(s['title'])}</h3>")
        main = s["main"]
        rows = []
        for row in main["rows"]:
            cells = [f"<td class='label'>{esc(row['label'])}</td>"]
            cells += [f"<td class='best'><b>{esc(t)}</b></td>" if best else f"<td>{esc(t)}</td>"
                      for t, best in row["cells"]]
            cells += [] if row["vs_raw"] is None else [f"<td class='vs-raw'>{esc(row['vs_raw'])}</td>"]
            rows.append(f"<tr class='kind-{row['kind']}'>" + "".join(cells) + "</tr>")
        head = "".join(f"<th>{esc(h)}</th>" for h in main["header"])
        body.append(f"<table class='comparison'><tr>{head}</tr>{''.join(rows)}</table>"
                    + ("" if s["unlabelled"] else f"<p class='note'>{esc(NOTE)}</p>"))
        body += [_detail_html(d) for d in s["details"]]
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
        legends = esc("|".join(fig.legends))
        if isinstance(fig, Gallery):
            body.append(f"<h2>{esc(title)}</h2><section class='gallery' data-kind='{kind}' data-legends='{legends}'>"
                        f"<p class='caption'>{esc(CAPTIONS[kind])}</p>{_html_gallery(fig)}</section>")
            continue
        src = "data:image/png;base64," + base64.b64encode(fig.png).decode()
        body.append(f"<h2>{esc(title)}</h2><figure data-kind='{kind}' data-legends='{legends}'>"
                    f"<img alt='{esc(title)}' width='{fig.width}' src='{src}'><figcaption>{esc(CAPTIONS[kind])}"
                    "</figcaption></figure>")
    style = ("body{font-family:sans-serif;margin:2em auto;max-width:1300px;padding:0 1em}"
             "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
             "td.label{text-align:left;max-width:22em}table.provenance td{text-align:left}th{background:#f3f3f3}"
             "table.provenance{table-layout:fixed;width:100%;font-size:0.85em}table.provenance td{overflow-wrap:anywhere}"
             "td.best{background:#e3f4e6}tr.kind-raw td,tr.kind-reference td{color:#444}"
             "tr.kind-supervised td{color:#555;font-style:italic}td.vs-raw{white-space:nowrap}"
             ".note,.generated,.caption{color:#555;font-size:0.9em;max-width:1100px}"
             "details.method{margin:0.3em 0}summary{cursor:pointer;color:#333}"
             "figure{margin:0}img{max-width:100%;height:auto}figcaption{color:#555;font-size:0.85em}"
             ".group{margin:0.8em 0}.group-caption{margin:0.2em 0;font-size:0.95em}"
             ".strip{display:flex;align-items:flex-start;gap:0.6em;margin:0.2em 0}"
             ".strip-title{width:11em;flex:none;font-size:0.85em;color:#555}.thumbs{display:flex;flex-wrap:wrap;gap:4px}"
             ".thumb{display:inline-flex;flex-direction:column;align-items:center;font-size:0.75em;color:#444}"
             ".thumb img{image-rendering:pixelated;max-width:none}")
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


def strip_png(images: list) -> bytes:
    """One PNG of thumbnails side by side (8 px apart), for a Markdown report's gallery."""
    import io

    from PIL import Image
    thumbs = [Image.open(io.BytesIO(thumbnail(img)[0])).convert("RGB") for img in images]
    side = max(t.size[0] for t in thumbs)
    strip = Image.new("RGB", (len(thumbs) * (side + 8) - 8, side), "white")
    for k, t in enumerate(thumbs):
        strip.paste(t, (k * (side + 8), 0))
    buf = io.BytesIO()
    strip.save(buf, format="PNG")
    return buf.getvalue()


def _md_detail(detail: dict) -> list[str]:
    rows = []
    for i, row in enumerate(detail["rows"]):
        cells = [cell_text(row.results, m, k) for _, (m, k) in detail["cols"]]
        rows.append([row.label] + [f"**{c}**" if (i, j) in detail["best"] else c for j, c in enumerate(cells)])
    return [f"#### {detail['title']}", "", *_md_table(["features"] + [c for c, _ in detail["cols"]], rows), ""]


def write_markdown(out: Path, sections: list[dict], provenance: tuple, nuisances: list[dict], figures: list,
                   generated: str, notes: list[str] = ()) -> None:
    from .cluster_figures import Gallery
    files = figure_folder(out)
    replaced = _referenced(out, files) if out.is_file() else set()
    files.mkdir(parents=True, exist_ok=True)
    md = ["# unsuprnn report", "", generated, ""]
    md += ["## Notes on the data", "", DATA_NOTES, "", *[f"- {n}" for n in notes], ""] if notes else []
    md += ["## Comparison", ""]
    for s in sections:
        md += [f"### {s['title']}", ""]
        rows = [[row["label"]] + [f"**{t}**" if best else t for t, best in row["cells"]]
                + ([] if row["vs_raw"] is None else [row["vs_raw"]]) for row in s["main"]["rows"]]
        md += [*_md_table(s["main"]["header"], rows), ""] + ([] if s["unlabelled"] else [NOTE, ""])
        for detail in s["details"]:
            md += _md_detail(detail)
        md += [f"- {v}" for v in s["verdicts"]] + ([""] if s["verdicts"] else [])
        md += [text for flag, text in (("unlabelled", UNLABELLED), ("no_supervised", NO_SUPERVISED)) if s[flag]]
        md += [""]
    md += ["## What the clusters may follow", "", NUISANCE, ""] if nuisances else []
    for n in nuisances:
        md += [f"### {n['title']}", "", *_md_table(n["header"], n["rows"]), "", n["said"], ""]
    md += ["## Provenance", "", *_md_table(*provenance), ""]
    names = []

    def png_file(png: bytes) -> str:
        name = f"fig-{hashlib.sha256(png).hexdigest()[:16]}.png"
        if not (files / name).is_file():
            write_bytes(files / name, png)
        names.append(name)
        return f"{files.name}/{name}"
    for title, kind, fig in figures:
        md += [f"## {title}", "", CAPTIONS[kind], ""]
        if isinstance(fig, Gallery):
            for group in fig.groups:
                md += [f"**{group['caption']}**", ""]
                for strip_title, images, captions in group["strips"]:
                    if images:
                        label = strip_title or "; ".join(captions)
                        md += [f"{label}: ![{label}]({png_file(strip_png(images))})", ""]
            continue
        md += [f"![{title}]({png_file(fig.png)})", ""]
    write_text(out, "\n".join(md))
    for name in replaced - set(names):  # figures of the report this one replaced; nothing else in the folder
        (files / name).unlink(missing_ok=True)
