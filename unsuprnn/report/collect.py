"""What the report shows of each run: its files (read and checked before any probing) and its probe
figures, probing only what its probe.json lacks, with the embeddings its maps are drawn from.

A cluster run whose encoder was frozen has its source run's encoder: its kNN, linear and k-means
figures are the source's (taken from the source's probe.json where it has them, not measured again), and
what it adds is its head's clusters."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import UserError
from ..atomic import check_output_file
from ..evaluate.methods import METHOD_NAMES
from ..names.clusters import parse_k_range
from ..names.objectives import spec_of
from ..runs.files import check_run, read_json, read_log

WANTED = ("encoder", "raw", "pca", "umap", "random")  # the feature sets every labelled table shows


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
    if out.suffix.lower() == ".md":
        from .write import figure_folder
        figure_folder(out)
    paths = list(dict.fromkeys(Path(r) for r in runs))
    from ..evaluate.probe_store import check_store
    for run in paths:
        check_run(run, "report")
        check_store(run)  # a run lacking figures is probed, and its probe.json written
    return paths


def _missing(view: dict | None, methods: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(methods, feature sets) a probe must still measure so that every wanted feature set has every method."""
    results = view["results"] if view else {}
    need = [(f, m) for f in WANTED for m in methods if m not in results.get(f, {})]
    return sorted({m for _, m in need}, key=methods.index), list(dict.fromkeys(f for f, _ in need))


def frozen_source(meta: dict, encoder: torch.nn.Module) -> Path | None:
    """The source run of a cluster run whose encoder is the source's, unchanged (None otherwise)."""
    from ..evaluate.baselines import state_digest, tensors_digest
    from ..runs.checkpoint import load_encoder_file
    src = meta.get("source_run")
    if meta.get("stage") != "cluster" or not src or not (Path(src) / "encoder.pt").is_file():
        return None
    return Path(src) if tensors_digest(load_encoder_file(Path(src) / "encoder.pt")[0]) == state_digest(encoder) else None


def measured_view(run: Path, loaded: tuple, head, data, source: Path | None, device, say) -> dict | None:
    """The run's probe figures on its own data, probing what is missing (a frozen cluster run first takes
    its source's figures). None where the data has no labels and the run no head: nothing to measure."""
    from ..evaluate.baselines import encoder_digest, state_digest
    from ..evaluate.probe import run_probe
    from ..evaluate.methods import probe_settings
    from ..evaluate.probe_store import adopt, read_store, record_probe, view
    own, digest = data.bank_spec, encoder_digest(loaded[0], head)
    store = read_store(run, digest)
    if source is not None:
        src_store = read_store(source, state_digest(loaded[0]))
        if src_store and _missing(view(src_store, own, own), METHOD_NAMES)[0] != list(METHOD_NAMES):
            store = adopt(run, digest, src_store)
            say(f"report: {run}: its encoder is {source}'s, unchanged: took that run's figures from its probe.json")
    table = view(store, own, own) if store else None
    methods = METHOD_NAMES if data.labelled else ("kmeans",) if head is not None else ()
    need_methods, need_features = _missing(table, methods)
    if head is not None and "head" not in (table or {}).get("results", {}).get("encoder", {}):
        need_methods, need_features = need_methods or ["kmeans"], need_features or ["encoder"]
    if not need_methods:
        if methods:
            say(f"report: {run}: every measurement is in its probe.json")
        return table
    baselines = [f for f in need_features if f != "encoder"] if data.labelled else []
    say(f"report: probing {run} ({', '.join(need_methods)}; {', '.join(['encoder'] + baselines)}) on "
        f"{len(data.bank_idx)} + {len(data.query_idx)} images")
    t0 = time.perf_counter()
    probe = run_probe(run, tuple(need_methods), baselines, settings=probe_settings((table or {}).get("settings", {})),
                      device=device, progress=True, loaded=loaded, data=data, say=say)
    say(f"report: probed {run} in {time.perf_counter() - t0:.0f} s")
    return view(record_probe(run, probe), own, own)


def collect(run: Path, files: dict, device, settings, say=lambda line: None) -> dict:
    """Everything the report shows about one run; `settings` (ProbeSettings): the k-range of its choice of K
    and the near-duplicate threshold of its analysis."""
    from ..evaluate.embed import embed_images
    from ..evaluate.probe import load_probe_data
    from ..runs.checkpoint import load_cluster_head, load_run_encoder

    loaded = load_run_encoder(run, device)
    encoder, pipeline, cfg, info = loaded
    head = load_cluster_head(run)
    data = load_probe_data(cfg, tuple(info["shape"]))
    source = frozen_source(files["meta"], encoder) if head is not None else None
    table = measured_view(run, loaded, head, data, source, device, say)
    if not data.labelled:
        say(f"report: {run}: {data.bank_spec} has no labels, so no accuracy is scored")
    table = table if table and table["results"] else {"bank": data.bank_spec, "queries": data.bank_spec, "bank_size": len(data.bank_idx),
                      "query_size": len(data.query_idx), "embedding_dim": encoder.out_dim, "results": {},
                      "settings": {}, "sources": {}}
    emb = embed_images(encoder, pipeline, data.query_images, device, indices=data.query_idx).numpy()
    supervised = spec_of(cfg.objective.name).uses_labels
    out = files | {"path": run, "name": run.name, "probe": table, "cfg": cfg, "emb": emb,
                   "labels": data.query_y.numpy(), "classes": data.classes, "seed": cfg.train.seed,
                   "objective": cfg.objective.name, "cluster": head is not None, "source": source,
                   "dataset": data.bank_spec, "supervised": supervised, "labelled": data.labelled,
                   "own_test": files["metrics"].get("test") if supervised else None}
    head_ids = None
    if head is not None:
        from ..models.heads import confident_clusters
        with torch.no_grad():
            ids, conf = confident_clusters(head(torch.from_numpy(emb)))
        head_ids = (ids.numpy(), conf.numpy())
        out["clusters"] = head[-1].out_features
    say(f"report: {run}: choosing K, clusters, outliers and near-duplicates of {len(emb)} test images")
    from ..evaluate.baselines import raw_features
    from .analysis import analyse
    raw = raw_features(pipeline, data.query_images, data.query_idx)
    images = data.query_images[data.query_idx]
    out["analysis"] = analyse(emb, raw, images, out["labels"], len(data.classes), cfg.train.seed, head_ids,
                              parse_k_range(settings.k_range), settings.duplicate_threshold,
                              probe_grouping(loaded, data, emb, table, device))
    out["images"] = images.numpy()
    return out


def probe_grouping(loaded: tuple, data, emb: np.ndarray, table: dict, device) -> tuple[str, Callable]:
    """(what it is, K -> ids [Q]): the k-means the run's table scored, with the settings it was measured under
    (of the UMAP layout of bank and queries by default), so that the report's gallery and its "what the clusters
    follow" show the grouping whose accuracy the table gives."""
    from ..evaluate.embed import embed_images
    from ..evaluate.methods import probe_settings
    from ..evaluate.probe import cluster_ids
    encoder, pipeline, cfg, _ = loaded
    measured = probe_settings(table.get("settings", {}))

    def ids(k: int) -> np.ndarray:
        bank = embed_images(encoder, pipeline, data.bank_images, device, indices=data.bank_idx)
        return np.asarray(cluster_ids(None, bank, torch.from_numpy(emb), k, measured, cfg.train.seed, device))
    return ("k-means of the UMAP layout" if measured.reduce == "umap" else "k-means"), ids
