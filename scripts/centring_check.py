"""Whether taking the mean embedding off (centring) gives a run's encoder better neighbours (RESULTS.md, "Centred
embeddings: measured, not adopted"). For each pretraining run, on its own split, with and without centring on
the train split's mean embedding:

- the mean's share of an embedding's squared norm, and the median cosine between two train images;
- test -> train kNN: 1-NN, majority of 5 and of 20, and the probe's default vote (20 neighbours weighted by
  exp(cosine / 0.07));
- the clustering stage's neighbours (`cluster.neighbors: auto` of them, mined among the train images): the share
  that have the image's own label.

`--raw` adds the same kNN figures for raw pixels (the probe's `raw` baseline), plain and centred, beside them.

    python scripts/centring_check.py [--raw] runs/photos64 runs/mnist2000 ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from unsuprnn.cluster.scan import mine_neighbors  # noqa: E402
from unsuprnn.config import ProbeSettings  # noqa: E402
from unsuprnn.data.dataset import load_dataset_matching  # noqa: E402
from unsuprnn.evaluate.baselines import raw_features  # noqa: E402
from unsuprnn.evaluate.embed import embed_images  # noqa: E402
from unsuprnn.evaluate.knn import knn_accuracy  # noqa: E402
from unsuprnn.evaluate.probe import load_probe_data  # noqa: E402
from unsuprnn.plan import auto_neighbors  # noqa: E402
from unsuprnn.runs.checkpoint import load_run_encoder  # noqa: E402


def votes(bank, bank_y, query, query_y) -> str:
    """kNN top-1 (%) of test queries against the train bank, as the probe's `knn` votes (evaluate/knn.py): 1-NN,
    majorities of 5 and of the probe's k, and the probe's own figure (k neighbours weighted by exp(cos / T))."""
    settings, classes = ProbeSettings(), int(bank_y.max()) + 1
    knn = lambda k: knn_accuracy(query, query_y, bank, bank_y, classes, k=k, temperature=settings.temperature)
    probe = knn(settings.k)
    return (f"1-NN {knn(1)['majority_top1']:.1f}, 5-maj {knn(5)['majority_top1']:.1f}, "
            f"{settings.k}-maj {probe['majority_top1']:.1f}, probe's vote {probe['weighted_top1']:.1f}")


def check(run: str, raw: bool = False) -> str:
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
        parts.append(f"{name}: median cosine {median:.2f}, {votes(b, data.bank_y, q, data.query_y)}, "
                     f"stage's {n} neighbours {purity:.1f}% of their image's class")
    if raw:
        pixels = [raw_features(pipeline, images, idx) for images, idx in ((data.bank_images, data.bank_idx),
                                                                          (data.query_images, data.query_idx))]
        unit = torch.nn.functional.normalize(pixels[0], dim=1)
        median = float((unit @ unit.T)[~torch.eye(len(unit), dtype=torch.bool)].median())
        parts.append(f"raw pixels: median cosine {median:.2f}, {votes(pixels[0], data.bank_y, pixels[1], data.query_y)}")
        mean = pixels[0].mean(0)
        parts.append(f"raw pixels centred: {votes(pixels[0] - mean, data.bank_y, pixels[1] - mean, data.query_y)}")
    return "\n  ".join(parts)


if __name__ == "__main__":
    args = sys.argv[1:]
    for path in [a for a in args if a != "--raw"]:
        print(check(path, "--raw" in args), flush=True)
