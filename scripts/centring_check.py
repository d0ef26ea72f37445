"""Whether taking the mean embedding off (centring) gives a run's encoder better neighbours (RESULTS.md, "Centred
embeddings: measured, not adopted"). For each pretraining run, on its own split, with and without centring on
the train split's mean embedding:

- the mean's share of an embedding's squared norm, and the median cosine between two train images;
- test -> train kNN: 1-NN, majority of 5 and of 20, and the probe's default vote (20 neighbours weighted by
  exp(cosine / 0.1));
- the clustering stage's neighbours (`cluster.neighbors: auto` of them, mined among the train images): the share
  that have the image's own label.

    python scripts/centring_check.py runs/photos64 runs/mnist2000 ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from unsuprnn.cluster.scan import mine_neighbors  # noqa: E402
from unsuprnn.data.dataset import load_dataset_matching  # noqa: E402
from unsuprnn.evaluate.embed import embed_images  # noqa: E402
from unsuprnn.evaluate.probe import load_probe_data  # noqa: E402
from unsuprnn.plan import auto_neighbors  # noqa: E402
from unsuprnn.runs.checkpoint import load_run_encoder  # noqa: E402


def vote(bank, bank_y, query, query_y, k: int, temperature: float | None) -> float:
    """kNN top-1 (%) of cosine neighbours: each of the k votes exp(cos / temperature), or 1 (None)."""
    bank, query = (torch.nn.functional.normalize(x, dim=1) for x in (bank, query))
    top = (query @ bank.T).topk(k, dim=1)
    weight = (top.values / temperature).exp() if temperature else torch.ones_like(top.values)
    votes = torch.zeros(len(query), int(bank_y.max()) + 1).scatter_add_(1, bank_y[top.indices], weight)
    return 100 * float((votes.argmax(1) == query_y).float().mean())


def check(run: str) -> str:
    encoder, pipeline, cfg, info = load_run_encoder(run)
    data = load_probe_data(cfg, tuple(info["shape"]))
    bank = embed_images(encoder, pipeline, data.bank_images, "cpu", indices=data.bank_idx)
    query = embed_images(encoder, pipeline, data.query_images, "cpu", indices=data.query_idx)
    mean = bank.mean(0)
    share = float(mean.square().sum() / bank.square().sum(1).mean())
    ds = load_dataset_matching(cfg.data, cfg.train.seed, tuple(info["shape"]))
    train_y = ds.labels[ds.splits["train"]]
    n = auto_neighbors(len(train_y))
    parts = [f"{run}: the mean holds {share:.2f} of the squared norm"]
    for name, (b, q) in (("plain", (bank, query)), ("centred", (bank - mean, query - mean))):
        unit = torch.nn.functional.normalize(b, dim=1)
        sims = unit @ unit.T
        median = float(sims[~torch.eye(len(b), dtype=torch.bool)].median())
        purity = 100 * float((train_y[mine_neighbors(b, n)] == train_y[:, None]).float().mean())
        parts.append(f"{name}: median cosine {median:.2f}, 1-NN {vote(b, data.bank_y, q, data.query_y, 1, None):.1f}, "
                     f"5-maj {vote(b, data.bank_y, q, data.query_y, 5, None):.1f}, "
                     f"20-maj {vote(b, data.bank_y, q, data.query_y, 20, None):.1f}, "
                     f"probe's vote {vote(b, data.bank_y, q, data.query_y, 20, 0.1):.1f}, "
                     f"stage's {n} neighbours {purity:.1f}% of their image's class")
    return "\n  ".join(parts)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(check(path), flush=True)
