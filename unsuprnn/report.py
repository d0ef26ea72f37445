"""`report`: one page that answers "are my embeddings better than raw pixels?".

For each dataset (runs whose test images and probe settings are the same) one comparison table: every
run, then raw pixels, PCA, a random encoder and the supervised reference once each; the best label-free
figure of each column marked, a "vs raw" difference, and a sentence per run saying where it is better,
worse or within noise. Then provenance (config, probe settings, versions, commit, dates), the training
curves, t-SNE maps, confusion matrices and, for a cluster run, its gallery. Self-contained HTML, or
Markdown with a folder of PNGs. Runs are probed first where their probe.json lacks a measurement.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from . import report_figures as figs
from .atomic import check_output_file
from .errors import UserError
from .evaluate.probe import METHODS, columns
from .rundir import read_json, read_log

WANTED_BASELINES = ("raw", "pca", "random")
HEADLINE = (("kNN", "knn", "weighted_top1"), ("linear", "linear", "accuracy"))


@dataclasses.dataclass
class Row:
    label: str
    kind: str               # run | raw | reference | supervised
    results: dict           # method -> result


def read_run_files(run: Path) -> dict:
    """A run's log, meta and metrics (checked: a damaged file is one error line, before any probing)."""
    return {"log": read_log(run / "log.jsonl"),
            "meta": read_json(run / "meta.json") if (run / "meta.json").is_file() else {},
            "metrics": read_json(run / "metrics.json") if (run / "metrics.json").is_file() else {}}


def check_report_args(runs: list, out: Path, force: bool) -> list[Path]:
    """Every input and the output checked before any probing or writing."""
    if out.suffix.lower() not in (".html", ".md"):
        raise UserError(f"report --out must end with .html or .md, got '{out.name}'")
    if not runs:
        raise UserError("pass at least one run: unsuprnn report RUN [RUN ...] (or --runs RUN ...)")
    check_output_file(out, force)
    paths = list(dict.fromkeys(Path(r) for r in runs))
    for run in paths:
        if not (run / "encoder.pt").is_file():
            raise UserError(f"{run} has no encoder.pt; pass run directories written by pretrain, supervised or cluster")
    return paths


def _missing(view: dict | None, features: list[str], methods: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(methods, feature sets) a probe must still measure so that every feature set has every method."""
    results = view["results"] if view else {}
    need = [(f, m) for f in features for m in methods if m not in results.get(f, {})]
    return sorted({m for _, m in need}, key=methods.index), list(dict.fromkeys(f for f, _ in need))


def collect(run: Path, files: dict, device, say=lambda line: None) -> dict:
    """Everything the report shows about one run, probing what its probe.json lacks (the encoder and
    the raw, PCA and random baselines, under the settings of the encoder's latest measurement)."""
    from .checkpoint import load_run_encoder
    from .cluster import load_cluster_head
    from .evaluate.embed import embed_images
    from .evaluate.probe import encoder_digest, load_probe_data, pca_dim, run_probe
    from .evaluate.probe_store import read_store, record_probe, view

    loaded = load_run_encoder(run, device)
    encoder, pipeline, cfg, info = loaded
    head = load_cluster_head(run)
    data = load_probe_data(cfg, tuple(info["shape"]))
    own = data.bank_spec
    store = read_store(run, encoder_digest(encoder, head))
    table = view(store, own, own) if store else None
    labelled = bool((data.bank_y >= 0).any()) and bool((data.query_y >= 0).any())
    methods = METHODS if labelled else ()  # without labels there is nothing to score; the maps still show clusters
    pca = f"pca{pca_dim(encoder.out_dim, int(np.prod(info['shape'])), len(data.bank_idx))}"
    want = ["encoder", "raw", pca, "random"]
    need_methods, need_features = _missing(table, want, methods)
    if head is not None and "head" not in (table or {}).get("results", {}).get("encoder", {}):
        need_methods, need_features = need_methods or ["kmeans"], need_features or ["encoder"]
    if need_methods:
        s = (table or {}).get("settings", {})
        knn, km = s.get("knn", {}), s.get("kmeans", {})
        baselines = [b for b, f in zip(WANTED_BASELINES, want[1:]) if f in need_features]
        say(f"report: probing {run} ({', '.join(need_methods)}; "
            f"{', '.join(['encoder'] + baselines)}) on {len(data.bank_idx)} + {len(data.query_idx)} images")
        t0 = time.perf_counter()
        probe = run_probe(run, tuple(need_methods), baselines, k=knn.get("k", 20),
                          temperature=knn.get("temperature", 0.07), clusters=km.get("clusters"), device=device,
                          progress=True, index=knn.get("index", "flat"), nlist=knn.get("nlist") or 1024,
                          nprobe=knn.get("nprobe") or 16, loaded=loaded, data=data)
        table = view(record_probe(run, probe), own, own)
        say(f"report: probed {run} in {time.perf_counter() - t0:.0f} s")
    elif labelled:
        say(f"report: {run}: every measurement is in its probe.json")
    if not labelled:
        say(f"report: {run}: {own} has no labels, so nothing is scored; the map shows its k-means clusters")
        table = {"bank": own, "queries": own, "bank_size": len(data.bank_idx), "query_size": len(data.query_idx),
                 "embedding_dim": encoder.out_dim, "results": {}, "settings": {}, "sources": {}}
    emb = embed_images(encoder, pipeline, data.query_images, device, indices=data.query_idx).numpy()
    out = files | {"path": run, "name": run.name, "probe": table, "cfg": cfg, "emb": emb, "labels": data.query_y.numpy(), "classes": data.classes, "seed": cfg.train.seed,
           "objective": cfg.objective.name + (" + cluster" if head is not None else ""), "dataset": own,
           "supervised": cfg.objective.name == "supervised", "labelled": labelled}
    if head is not None:
        from .scan import confident_clusters
        with torch.no_grad():
            ids, conf = confident_clusters(head(torch.from_numpy(emb)))
        out |= {"head_clusters": ids.numpy(), "confidence": conf.numpy(),
                "images": data.query_images[data.query_idx].numpy()}
    return out


def group_key(r: dict) -> str:
    """Runs compare in one table when their raw pixels, split and probe settings are the same."""
    d = dataclasses.asdict(r["cfg"].data)
    pixels = {k: v for k, v in d.items() if k not in ("view", "patch", "cache_dir", "data_dir", "download")}
    p = r["probe"]
    return json.dumps({"pixels": pixels, "seed": r["seed"], "bank": p["bank"], "queries": p["queries"],
                       "sizes": [p["bank_size"], p["query_size"]],
                       "settings": {m: v for m, v in p["settings"].items() if m != "head"}}, sort_keys=True)


def _arch(cfg) -> str:
    e = cfg.encoder
    return f"{'bi' if e.bidirectional else ''}{e.cell} {e.layers}x{e.hidden}, {e.pool} pool"


def table_rows(group: list[dict]) -> list[Row]:
    """The group's runs, then each reference once: raw pixels, PCA, random encoder(s), supervised."""
    rows = [Row(r["name"] if r["name"] == r["objective"] else f"{r['name']} ({r['objective']})",
                "supervised" if r["supervised"] else "run",
                r["probe"]["results"].get("encoder", {})) for r in group]
    refs, randoms, sup_sources = {}, {}, {str(r["path"].resolve()) for r in group if r["supervised"]}
    for r in group:
        for name, res in r["probe"]["results"].items():
            if name == "raw":
                refs.setdefault("raw", Row("raw pixels", "raw", res))
            elif name.startswith("pca"):
                refs.setdefault(name, Row(f"PCA of raw pixels ({name[3:]} dims)", "reference", res))
            elif name == "random":
                randoms.setdefault(_arch(r["cfg"]), res)
    out = [row for row in rows if row.kind == "run"]
    out += [refs[k] for k in sorted(refs, key=lambda k: (k != "raw", k))]
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


def _value(res: dict, method: str, key: str) -> float | None:
    v = res.get(method, {}).get(key)
    return None if v is None else float(v)


def _cluster_acc(res: dict) -> tuple[float | None, str]:
    """The row's best clustering accuracy: its cluster head where it has one, else k-means."""
    if _value(res, "head", "accuracy") is not None:
        return _value(res, "head", "accuracy"), "cluster head"
    return _value(res, "kmeans", "accuracy"), "k-means"


def best_cells(rows: list[Row], cols) -> set[tuple[int, int]]:
    """(row, column) of the best label-free figure per column (ties all marked); the supervised
    reference is shown for comparison, not ranked."""
    best = set()
    for j, (_, (method, key)) in enumerate(cols):
        vals = [(i, _value(r.results, method, key)) for i, r in enumerate(rows) if r.kind != "supervised"]
        vals = [(i, v) for i, v in vals if v is not None]
        if len(vals) >= 2:
            top = max(v for _, v in vals)
            best |= {(i, j) for i, v in vals if v >= top - 1e-9}
    return best


def vs_raw(row: Row, raw: Row | None) -> list[float | None]:
    """Differences from raw pixels in points: kNN top-1, linear top-1, cluster accuracy."""
    if raw is None or row is raw:
        return []
    out = [None if _value(row.results, m, k) is None or _value(raw.results, m, k) is None
           else _value(row.results, m, k) - _value(raw.results, m, k) for _, m, k in HEADLINE]
    mine, raw_acc = _cluster_acc(row.results)[0], _value(raw.results, "kmeans", "accuracy")
    return out + [None if mine is None or raw_acc is None else mine - raw_acc]


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
            a, b = _value(row.results, method, key), _value(raw.results, method, key)
            if a is not None and b is not None:
                parts.append(_compare(name, a, b, _noise(a, b, n_queries)))
        (a, how), b = _cluster_acc(row.results), _value(raw.results, "kmeans", "accuracy")
        if a is not None and b is not None:
            spread = max([row.results.get("kmeans", {}).get("spread", {}).get("accuracy", {}).get("std", 0),
                          raw.results.get("kmeans", {}).get("spread", {}).get("accuracy", {}).get("std", 0)])
            parts.append(_compare(f"clusters ({how} vs raw k-means, accuracy)", a, b,
                                  max(_noise(a, b, n_queries), 2 * spread)))
        if parts:
            lines.append(f"{row.label} against raw pixels: " + "; ".join(parts) + ".")
    return lines


def _compare(name: str, a: float, b: float, noise: float) -> str:
    d = a - b
    word = "within noise" if abs(d) < noise else "better" if d > 0 else "worse"
    return f"{name} {a:.2f} vs {b:.2f} ({d:+.2f}, {word}; noise ±{noise:.2f})"


def _group_title(group: list[dict]) -> str:
    r = group[0]
    p, split = r["probe"], r["meta"].get("split", {})
    how = "own split" if split.get("source") == "own" else f"seeded split (seed {r['seed']})"
    s = p["settings"]
    knn = s.get("knn", {})
    km = s.get("kmeans", {})
    probe = [f"kNN k={knn['k']}, temperature {knn['temperature']}, {knn['index']} index" if knn else "",
             f"k-means {km['clusters']} clusters" if km else ""]
    return (f"{r['dataset']}: {p['bank_size']} bank (train) and {p['query_size']} query (test) images, {how}; "
            + "; ".join(x for x in probe if x))


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
        rows.append([str(r["path"]), r["objective"], f"{r['dataset']}, {view} view",
                     f"{_arch(cfg)}, dim {r['probe']['embedding_dim']}",
                     training + (f", {seconds:.0f} s on {meta.get('device', '?')}" if seconds else ""),
                     meta.get("started", "-"), (meta.get("git_commit") or "-")[:10],
                     ", ".join(f"{k} {v[k]}" for k in ("unsuprnn", "torch", "lightly") if v.get(k)), probe])
    return header, rows


def build_report(runs: list[str | Path], out: str | Path, device="cpu", force: bool = False,
                 say=lambda line: None) -> Path:
    """Probe what is missing, then write the report to `out` (.html or .md) atomically."""
    from .report_write import write_report
    out = Path(out)
    paths = check_report_args(runs, out, force)
    files = [read_run_files(run) for run in paths]
    info = []
    for i, run in enumerate(paths):
        say(f"report: [{i + 1}/{len(paths)}] {run}")
        info.append(collect(run, files[i], device, say))
    groups: dict[str, list[dict]] = {}
    for r in info:
        groups.setdefault(group_key(r), []).append(r)
    sections = []
    for group in groups.values():
        rows = table_rows(group)
        cols = columns([{"results": {str(i): row.results for i, row in enumerate(rows)}}])
        raw = next((row for row in rows if row.kind == "raw"), None)
        sections.append({"title": _group_title(group), "rows": rows, "cols": cols, "best": best_cells(rows, cols),
                         "vs_raw": [vs_raw(row, raw) for row in rows],
                         "verdicts": verdicts(rows, group[0]["probe"]["query_size"] or 0),
                         "no_supervised": group[0]["labelled"] and not any(r.kind == "supervised" for r in rows),
                         "unlabelled": not group[0]["labelled"]})
    say("report: drawing figures")
    figures = report_figures(info, sections)
    write_report(out, sections, provenance(info), figures, device)
    return out


def report_figures(info: list[dict], sections: list[dict]) -> list[tuple[str, str, figs.Figure]]:
    """(title, kind, figure) in page order."""
    references = {}
    for s in sections:
        tag = f" ({s['title'].split(':')[0]})" if len(sections) > 1 else ""
        for row in s["rows"]:
            v = _value(row.results, "knn", "weighted_top1")
            if row.kind in ("raw", "reference") and not row.label.startswith("random") and v is not None:
                references[f"{row.label}{tag}"] = v
    out = [("Training", "training", figs.training_figure(
        [{"name": r["name"], "objective": r["objective"], "log": r["log"], "dim": r["probe"]["embedding_dim"]}
         for r in info], references))]
    for r in info:
        labelled = (r["labels"] >= 0).any()
        n_cls = len(r["classes"]) or 10
        out.append((f"{r['name']}: embedding map", "embedding-map",
                    figs.embedding_map(r["emb"], np.where(r["labels"] >= 0, r["labels"], 0) if labelled
                                       else np.zeros(len(r["emb"]), int), r["classes"] if labelled else ["unlabelled"],
                                       n_cls, r["seed"], r["name"], r.get("head_clusters"))))
        if "head_clusters" in r:
            out.append((f"{r['name']}: cluster gallery", "cluster-gallery",
                        figs.cluster_gallery(r["images"], r["head_clusters"], r["confidence"], r["labels"],
                                             r["classes"], r["name"])))
        conf = r["probe"]["results"].get("encoder", {}).get("linear", {}).get("confusion")
        if conf:
            out.append((f"{r['name']}: confusion matrix", "confusion",
                        figs.confusion_figure(conf, r["classes"], r["name"])))
    return out
