"""Whether SimCLR's projection head groups a set better than the encoder's own embedding (RESULTS.md, "The
projection head's output for grouping: measured, not adopted"). For each contrastive pretraining run, on its own
split: kNN top-1 (the probe's vote) and k-means accuracy of the UMAP layout (the probe's default), of the
encoder's embeddings and of the projection head's outputs on them.

    python scripts/head_features_check.py runs/photos64 runs/icons ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from unsuprnn.evaluate.kmeans import kmeans_scores  # noqa: E402
from unsuprnn.evaluate.knn import knn_accuracy  # noqa: E402
from unsuprnn.config import ProbeSettings  # noqa: E402
from unsuprnn.evaluate.embed import embed_images  # noqa: E402
from unsuprnn.evaluate.probe import load_probe_data  # noqa: E402
from unsuprnn.evaluate.reduce import clustering_features  # noqa: E402
from unsuprnn.models.heads import SimCLRProjectionHead  # noqa: E402
from unsuprnn.runs.checkpoint import load_checkpoint, load_run_encoder  # noqa: E402


def check(run: str) -> str:
    encoder, pipeline, cfg, info = load_run_encoder(run)
    if cfg.objective.name != "contrastive":
        return f"{run}: not a contrastive run ({cfg.objective.name})"
    state = load_checkpoint(Path(run) / "checkpoint.pt")["model"]
    head = SimCLRProjectionHead(encoder.out_dim, cfg.objective.proj_hidden, cfg.objective.proj_out)
    head.load_state_dict({k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")})
    head.eval()
    data = load_probe_data(cfg, tuple(info["shape"]))
    bank = embed_images(encoder, pipeline, data.bank_images, "cpu", indices=data.bank_idx)
    query = embed_images(encoder, pipeline, data.query_images, "cpu", indices=data.query_idx)
    with torch.no_grad():
        sets = {"embedding": (bank, query), "projection head": (head(bank), head(query))}
    settings, k, seed = ProbeSettings(), len(data.classes), cfg.train.seed
    parts = []
    for name, (b, q) in sets.items():
        knn = knn_accuracy(q, data.query_y, b, data.bank_y, k, k=settings.k, temperature=settings.temperature)
        layout = clustering_features(b, q, "umap", seed)
        km = kmeans_scores(layout, data.query_y, k, seed, normalize=False)["accuracy"]
        parts.append(f"{name}: kNN {knn['weighted_top1']:.1f}, k-means of the UMAP layout {km:.1f}")
    return f"{run}: " + "; ".join(parts)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(check(path), flush=True)
