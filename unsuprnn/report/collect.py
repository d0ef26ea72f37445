"""What the report shows of each run: its files (read and checked before any probing) and its probe
figures, probing only what its probe.json lacks, with the embeddings its maps are drawn from."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..evaluate.methods import METHOD_NAMES
from ..runs.atomic import check_output_file
from ..runs.files import read_json, read_log

WANTED_BASELINES = ("raw", "pca", "random")


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
    from ..runs.checkpoint import load_cluster_head, load_run_encoder
    from ..evaluate.embed import embed_images
    from ..evaluate.baselines import encoder_digest, pca_dim
    from ..evaluate.probe import load_probe_data, run_probe
    from ..evaluate.probe_store import probe_settings, read_store, record_probe, view

    loaded = load_run_encoder(run, device)
    encoder, pipeline, cfg, info = loaded
    head = load_cluster_head(run)
    data = load_probe_data(cfg, tuple(info["shape"]))
    own = data.bank_spec
    store = read_store(run, encoder_digest(encoder, head))
    table = view(store, own, own) if store else None
    labelled = bool((data.bank_y >= 0).any()) and bool((data.query_y >= 0).any())
    methods = METHOD_NAMES if labelled else ()  # without labels there is nothing to score; the maps still show clusters
    pca = f"pca{pca_dim(encoder.out_dim, int(np.prod(info['shape'])), len(data.bank_idx))}"
    want = ["encoder", "raw", pca, "random"]
    need_methods, need_features = _missing(table, want, methods)
    if head is not None and "head" not in (table or {}).get("results", {}).get("encoder", {}):
        need_methods, need_features = need_methods or ["kmeans"], need_features or ["encoder"]
    if need_methods:
        baselines = [b for b, f in zip(WANTED_BASELINES, want[1:]) if f in need_features]
        say(f"report: probing {run} ({', '.join(need_methods)}; "
            f"{', '.join(['encoder'] + baselines)}) on {len(data.bank_idx)} + {len(data.query_idx)} images")
        t0 = time.perf_counter()
        settings = probe_settings((table or {}).get("settings", {}))  # as the encoder's latest figures
        probe = run_probe(run, tuple(need_methods), baselines, settings=settings, device=device, progress=True,
                          loaded=loaded, data=data)
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
        from ..cluster.scan import confident_clusters
        with torch.no_grad():
            ids, conf = confident_clusters(head(torch.from_numpy(emb)))
        out |= {"head_clusters": ids.numpy(), "confidence": conf.numpy(),
                "images": data.query_images[data.query_idx].numpy()}
    return out
