"""The report's tables: one compact comparison table per dataset (each run, then raw pixels, PCA, UMAP of raw
pixels, random encoders and the supervised reference once each: kNN, linear, clusters and the difference from
raw pixels with its noise bound), one detail table per probe method, their best cells, one verdict per run; and
the provenance table."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from ..evaluate.table import UNRANKED
from ..plan import CHOSEN_FROM_IMAGES

HEADLINE = (("kNN", "knn", "weighted_top1"), ("linear", "linear", "accuracy"))


@dataclasses.dataclass
class Row:
    label: str
    kind: str               # run | raw | reference | supervised
    results: dict           # method -> result


def group_key(r: dict) -> str:
    """Runs compare in one table when their raw pixels, split and probe settings are the same."""
    d = dataclasses.asdict(r["cfg"].data)
    pixels = {k: v for k, v in d.items() if k not in ("view", "patch", "cache_dir", "data_dir", "download")}
    p = r["probe"]
    # without labels nothing is scored, so probe settings do not make two tables
    settings = {m: v for m, v in p["settings"].items() if m != "head"} if r["labelled"] else {}
    return json.dumps({"pixels": pixels, "seed": r["seed"], "bank": p["bank"], "queries": p["queries"],
                       "sizes": [p["bank_size"], p["query_size"]], "settings": settings}, sort_keys=True)


def _arch(cfg) -> str:
    from ..models.encoders import describe_encoder
    return describe_encoder(cfg.encoder, cfg.data)


def _run_rows(group: list[dict]) -> list[Row]:
    """One row per run. A cluster run on its source's unchanged encoder shows only its head's figures (the
    encoder's are its source's row; where the source is not in the report, a row of its own)."""
    names = {str(r["path"].resolve()) for r in group}
    rows = []
    for r in group:
        res = dict(r["probe"]["results"].get("encoder", {}))
        label = r["name"] if r["name"] == r["objective"] else f"{r['name']} ({r['objective']})"
        if r["supervised"] and r.get("own_test"):
            res["own"] = {"accuracy": r["own_test"]["accuracy"]}
        if r.get("cluster"):
            label = f"{r['name']} (cluster stage, {r['clusters']} clusters)"
        if r.get("source") is not None:
            src = r["source"]
            label = f"{r['name']} (cluster stage on the encoder of {src.name}, {r['clusters']} clusters)"
            if str(src.resolve()) not in names and any(k != "head" for k in res):
                rows.append(Row(f"{src.name} (the encoder {r['name']} clusters)", "run",
                                {k: v for k, v in res.items() if k != "head"}))
            res = {"head": res["head"]} if "head" in res else {}
        rows.append(Row(label, "supervised" if r["supervised"] else "run", res))
    return rows


def table_rows(group: list[dict]) -> list[Row]:
    """The group's runs, then each reference once: raw pixels, PCA, random encoder(s), supervised."""
    rows = _run_rows(group)
    refs, randoms, sup_sources = {}, {}, {str(r["path"].resolve()) for r in group if r["supervised"]}
    for r in group:
        for name, res in r["probe"]["results"].items():
            if name == "raw":
                refs.setdefault("raw", Row("raw pixels", "raw", res))
            elif name == "pca":  # (older probe.json files also hold pcaNNN rows of a dimension the data did not support)
                dim = next((m["dim"] for m in res.values() if "dim" in m), "?")
                refs.setdefault(name, Row(f"PCA of raw pixels ({dim} dims)", "reference", res))
            elif name == "umap":
                refs.setdefault(name, Row("UMAP of raw pixels", "reference", res))
            elif name == "random":
                randoms.setdefault(_arch(r["cfg"]), res)
    out = [row for row in rows if row.kind == "run"]
    out += [refs[k] for k in sorted(refs, key=lambda k: ("raw", "pca", "umap").index(k))]
    for arch, res in randoms.items():
        out.append(Row("random encoder" + (f" ({arch})" if len(randoms) > 1 else ""), "reference", res))
    out += [row for row in rows if row.kind == "supervised"]
    for r in group:  # a supervised run measured as a probe baseline, unless it is in the report itself
        res = r["probe"]["results"].get("supervised")
        src = r["probe"].get("sources", {}).get("supervised")
        if res and (src is None or str(Path(src).resolve()) not in sup_sources):
            sup_sources.add(str(Path(src).resolve()) if src else r["name"])
            out.append(Row(f"supervised reference ({Path(src).name if src else 'probe baseline'})", "supervised", res))
    return out


REPORT_COLUMNS = [("supervised classifier", ("own", "accuracy"))]  # a supervised run's own classifier


def value(res: dict, method: str, key: str) -> float | None:
    v = res.get(method, {}).get(key)
    return None if v is None else float(v)


def _cluster_acc(res: dict) -> tuple[float | None, str]:
    """The row's best clustering accuracy: its cluster head where it has one, else k-means."""
    if value(res, "head", "accuracy") is not None:
        return value(res, "head", "accuracy"), "cluster head"
    return value(res, "kmeans", "accuracy"), "k-means"


def best_cells(rows: list[Row], cols) -> set[tuple[int, int]]:
    """(row, column) of the best label-free figure per column (ties all marked); the supervised
    reference is shown for comparison, not ranked."""
    best = set()
    for j, (_, (method, key)) in enumerate(cols):
        if (method, key) in UNRANKED:
            continue
        vals = [(i, value(r.results, method, key)) for i, r in enumerate(rows) if r.kind != "supervised"]
        vals = [(i, v) for i, v in vals if v is not None]
        if len(vals) >= 2:
            top = max(v for _, v in vals)
            best |= {(i, j) for i, v in vals if v >= top - 1e-9}
    return best


def _noise(p1: float, p2: float, n: int) -> float:
    """Two standard errors of the difference of two accuracies (in points) on n queries."""
    return 200 * math.sqrt((p1 / 100 * (1 - p1 / 100) + p2 / 100 * (1 - p2 / 100)) / max(n, 1))


def verdicts(rows: list[Row], n_queries: int) -> list[str]:
    """One sentence per label-free run: better, worse or within noise of raw pixels at neighbours,
    the linear probe and clusters."""
    raw = next((r for r in rows if r.kind == "raw"), None)
    if raw is None:
        return []
    lines = []
    for row in rows:
        if row.kind != "run":
            continue
        parts = []
        for name, method, key in HEADLINE:
            a, b = value(row.results, method, key), value(raw.results, method, key)
            if a is not None and b is not None:
                parts.append(_compare(name, a, b, _noise(a, b, n_queries)))
        (a, how), b = _cluster_acc(row.results), value(raw.results, "kmeans", "accuracy")
        if a is not None and b is not None:
            spread = max([row.results.get("kmeans", {}).get("spread", {}).get("accuracy", {}).get("std", 0),
                          raw.results.get("kmeans", {}).get("spread", {}).get("accuracy", {}).get("std", 0)])
            parts.append(_compare(f"clusters ({how} vs raw k-means, accuracy)", a, b,
                                  max(_noise(a, b, n_queries), 2 * spread)))
        if parts:
            lines.append(f"{row.label} against raw pixels: " + "; ".join(parts) + ".")
    return lines


MAIN = (("kNN top-1", "knn", "weighted_top1"), ("linear top-1", "linear", "accuracy"))


def main_table(rows: list[Row], n_queries: int) -> dict:
    """The comparison a reader takes in at once: per row kNN top-1, linear top-1 and its clusters' accuracy (its
    head's, else k-means'), each best label-free figure marked, and the differences from raw pixels with the
    noise bound of each (two standard errors on the queries; for clusters also twice the restarts' spread)."""
    raw = next((r for r in rows if r.kind == "raw"), None)
    figures = [[value(r.results, m, k) for _, m, k in MAIN] + [_cluster_acc(r.results)[0]] for r in rows]
    best = set()
    for j in range(len(MAIN) + 1):
        ranked = [(i, f[j]) for i, f in enumerate(figures) if f[j] is not None and rows[i].kind != "supervised"]
        if len(ranked) >= 2:
            best |= {(i, j) for i, v in ranked if v >= max(v for _, v in ranked) - 1e-9}
    out = []
    for i, row in enumerate(rows):
        how = _cluster_acc(row.results)[1]
        cells = [("-" if v is None else f"{v:.2f}" + (" (head)" if j == len(MAIN) and how == "cluster head" else ""),
                  (i, j) in best) for j, v in enumerate(figures[i])]
        diffs = []
        if raw is not None and row is not raw:
            for j, v in enumerate(figures[i]):
                ref = figures[rows.index(raw)][j]
                if v is None or ref is None:
                    diffs.append("-")
                    continue
                noise = _noise(v, ref, n_queries)
                if j == len(MAIN):
                    noise = max(noise, 2 * max(_spread(row.results), _spread(raw.results)))
                diffs.append(f"{v - ref:+.1f} ±{noise:.1f}")
        out.append({"label": row.label, "kind": row.kind, "cells": cells, "vs_raw": " / ".join(diffs) or "-"})
    return {"header": ["features", "kNN top-1", "linear top-1", "clusters: accuracy", "vs raw pixels: kNN / linear / "
                       "clusters"], "rows": out}


def unlabelled_table(rows: list[Row]) -> dict:
    """Without labels nothing is scored: what each run's cluster head found (its K and mean confidence)."""
    out = [{"label": r.label, "kind": r.kind, "vs_raw": None,
            "cells": [(str(r.results["head"].get("k", "-")), False),
                      (f"{r.results['head'].get('mean_confidence', 0):.3f}", False)]}
           for r in rows if "head" in r.results]
    return {"header": ["features", "clusters", "head's mean confidence"], "rows": out}


def _spread(res: dict) -> float:
    return res.get("kmeans", {}).get("spread", {}).get("accuracy", {}).get("std", 0.0)


def detail_tables(rows: list[Row]) -> list[dict]:
    """One table per probe method (and a cluster head, and a supervised run's own classifier) with every figure
    it gives, for the rows it measured; the best label-free figure of each column marked."""
    from ..evaluate.methods import METHOD_NAMES, method
    from ..evaluate.table import HEAD_COLUMNS
    titles = {"knn": "kNN (cosine, temperature-weighted votes; maj.: plain majority)",
              "linear": "Linear probe (logistic regression on standardized features)",
              "kmeans": "k-means (the restart with the lowest objective, ± the spread over restarts)",
              "hdbscan": "HDBSCAN (noise counted wrong in accuracy)", "head": "The cluster stage's head",
              "own": "The supervised run's own classifier"}
    groups = [(name, [(t, (name, k)) for t, k in method(name).COLUMNS]) for name in METHOD_NAMES]
    groups += [("head", HEAD_COLUMNS), ("own", REPORT_COLUMNS)]
    out = []
    for name, cols in groups:
        shown = [r for r in rows if any(value(r.results, m, k) is not None for _, (m, k) in cols)]
        cols = [c for c in cols if any(value(r.results, *c[1]) is not None for r in shown)]
        if shown and cols:
            out.append({"title": titles[name], "method": name, "rows": shown, "cols": cols,
                        "best": best_cells(shown, cols)})
    return out


def _compare(name: str, a: float, b: float, noise: float) -> str:
    d = round(a - b, 2)  # as printed: a difference that shows as +0.00 is none
    word = "the same" if d == 0 else "within noise" if abs(d) < noise else "better" if d > 0 else "worse"
    return f"{name} {a:.2f} vs {b:.2f} ({d:+.2f}, {word}; noise ±{noise:.2f})"


def group_title(group: list[dict]) -> str:
    r = group[0]
    p, split = r["probe"], r["meta"].get("split", {})
    how = "own split" if split.get("source") == "own" else f"seeded split (seed {r['seed']})"
    s = p["settings"]
    knn = s.get("knn", {})
    km = s.get("kmeans", {})
    probe = [f"kNN k={knn['k']}, temperature {knn['temperature']}, {knn['index']} index" if knn else "",
             f"k-means {km['clusters']} clusters" if km else ""]
    return (f"Dataset {r['dataset']}: {p['bank_size']} bank (train) and {p['query_size']} query (test) images, "
            f"{how}" + "".join(f"; {x}" for x in probe if x))


def provenance(info: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["run", "objective", "data", "encoder", "training", "trained", "commit", "versions", "probe settings"]
    rows = []
    for r in info:
        cfg, meta, m = r["cfg"], r["meta"], r["metrics"]
        t = cfg.train
        view = cfg.data.view + (f" {cfg.data.patch}x{cfg.data.patch}" if cfg.data.view == "patches" else "")
        v = meta.get("versions", {})
        s = r["probe"]["settings"]
        probe = "; ".join(f"{k}: " + ", ".join(f"{a}={b}" for a, b in v_.items()) if v_ else k for k, v_ in s.items())
        seconds = m.get("train_seconds")
        if m.get("stage") == "cluster":
            c = cfg.cluster
            training = (f"{c.epochs} SCAN + {c.selflabel_epochs} self-label epochs, {m.get('clusters')} clusters, "
                        f"batch {c.batch_size}, lr {c.lr}, encoder lr {c.encoder_lr}, seed {t.seed}")
        else:
            training = f"{m.get('epochs', t.epochs)} epochs, batch {t.batch_size}, lr {t.lr}, seed {t.seed}"
        rows.append([str(r["path"]), r["objective"] + (" + cluster stage" if r.get("cluster") else ""),
                     f"{r['dataset']}, {view} view",
                     f"{_arch(cfg)}, dim {r['probe']['embedding_dim']}",
                     training + (f", {seconds:.0f} s on {meta.get('device', '?')}" if seconds else "")
                     + "".join(f"; {how}" for how in schedule_notes(meta, m)),
                     meta.get("started", "-"), (meta.get("git_commit") or "-")[:10],
                     ", ".join(f"{k} {v[k]}" for k in ("unsuprnn", "torch", "lightly") if v.get(k)), probe])
    return header, rows


def schedule_notes(meta: dict, metrics: dict) -> list[str]:
    """How a run's schedule and K came about, where a person reading its figures should know: a --budget, what
    `auto` chose from the images, a resume, a K the data chose, a note that it looks undertrained, the grouping
    the clustering stage's guard kept."""
    plan, out = meta.get("schedule") or {}, []
    if plan.get("how") == "budget":
        out.append(f"--budget {plan.get('budget')} ({plan.get('steps', 0):,} steps planned)")
    elif plan.get("how") == "auto":
        out.append(f"epochs auto ({plan.get('steps', 0):,} steps)")
    for key in CHOSEN_FROM_IMAGES:  # what `auto` chose from the images ("intensity auto: standardize")
        if plan.get(key):
            out.append(plan[key].split(" (")[0])
    if meta.get("resumed_at_epoch"):
        out.append(f"resumed at epoch {meta['resumed_at_epoch']}")
    if metrics.get("k_auto"):
        out.append(f"K = {metrics['k_auto']} chosen by {metrics.get('k_chosen_by', 'modularity')} over "
                   f"{metrics.get('k_searched', '?')}")
    if (metrics.get("undertrained") or {}).get("why"):
        out.append(f"looks undertrained: {metrics['undertrained']['why']}")
    if metrics.get("guard"):
        out.append(guard_note(metrics["guard"]))
    return out


GROUPINGS = {"head": "the SCAN head", "umap": "k-means of the UMAP layout", "kmeans": "k-means"}


def guard_note(record: dict) -> str:
    """Which grouping the clustering stage's guard kept, by modularity (no labels), and where the run had labels,
    each grouping's accuracy on the training images: whether that label-free choice was the right one."""
    name = lambda key: GROUPINGS.get(key, key)
    note = (f"the guard kept {name(record['kept'])} (modularity "
            + ", ".join(f"{name(key)} {q:.3f}" for key, q in record["modularity"].items()) + ")")
    if record.get("accuracy"):
        note += ("; train accuracy, scored after the choice: "
                 + ", ".join(f"{name(key)} {acc:.1f}" for key, acc in record["accuracy"].items()))
    return note
