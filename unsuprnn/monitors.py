"""What a training run measures of itself each epoch: kNN top-1 on (a subset of) the test split, and
the collapse monitor (the std of L2-normalized embeddings); and the supervised reference's own test
scores at the end."""

from __future__ import annotations

import torch
from lightly.utils.debug import std_of_l2_normalized

from .config import ProbeSettings
from .evaluate.embed import embed_images
from .evaluate.knn import centred_on, knn_accuracy
from .evaluate.metrics import classification_metrics

PROBE = ProbeSettings()  # the monitor's kNN votes as the probe's do by default

MONITOR_POINTS = 20     # monitor passes in a run whose train.knn_every is auto
MONITOR_SHARE = 0.1     # of a --budget run's time, what its monitor passes may take (auto knn_every)
MONITOR_SIZE = 10000     # bank and query images for the per-epoch kNN monitor (the probe uses all)
COLLAPSE_SAMPLE = 2048   # training images embedded each epoch for the collapse monitor
# x 1/sqrt(dim): the std of L2-normalized embeddings under which a run has collapsed. Encoder features are
# not centred, so healthy runs sit below 1/sqrt(dim): 0.15-0.66 of it for every objective on digits
# (RESULTS.md); a collapse drives it to 0.
COLLAPSED_BELOW = 0.05


def knn_monitor_indices(labels: torch.Tensor, train_idx: torch.Tensor, test_idx: torch.Tensor | None, seed: int):
    """Seeded subsets (labelled rows only) of the train and test splits for the per-epoch kNN, or None."""
    if test_idx is None or len(labels[train_idx][labels[train_idx] >= 0].unique()) < 2:
        return None  # (no test split, or one class: a kNN of one class is trivially right)
    g = torch.Generator().manual_seed(seed)
    out = []
    for idx in (train_idx, test_idx):
        idx = idx[labels[idx] >= 0]
        if len(idx) == 0:
            return None
        if len(idx) > MONITOR_SIZE:
            idx = idx[torch.randperm(len(idx), generator=g)[:MONITOR_SIZE].sort().values]
        out.append(idx)
    return tuple(out)


class EpochMonitors:
    """The per-epoch measurements of one run, every `every` epochs and at the last (`schedule`): kNN top-1
    where the data has labels (unless `knn` is off), and the collapse monitor."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int, train_idx: torch.Tensor,
                 test_idx: torch.Tensor | None, seed: int, knn: bool = True):
        self.images, self.labels, self.num_classes = images, labels, num_classes
        self.every, self.epochs = 1, 1
        self.knn_idx = knn_monitor_indices(labels, train_idx, test_idx, seed) if knn else None
        pick = torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(seed))[:COLLAPSE_SAMPLE]
        self.collapse_idx = train_idx[pick.sort().values]

    def schedule(self, every: int, epochs: int) -> None:
        self.every, self.epochs = max(1, every), epochs

    @property
    def queries(self) -> int | None:
        """The kNN monitor's query count (None without one)."""
        return len(self.knn_idx[1]) if self.knn_idx else None

    def measure(self, encoder, pipeline, device, epoch: int) -> dict:
        """{knn_top1, embedding_std} after epoch `epoch` (1-based) where the schedule says so, else {}."""
        if epoch % self.every and epoch != self.epochs:
            return {}
        out = {}
        if self.knn_idx:
            bank_idx, query_idx = self.knn_idx
            bank = embed_images(encoder, pipeline, self.images, device, indices=bank_idx)
            query = embed_images(encoder, pipeline, self.images, device, indices=query_idx)
            if PROBE.centre:  # (as the probe votes)
                bank, query = centred_on(bank, bank, query)
            out["knn_top1"] = knn_accuracy(query, self.labels[query_idx], bank, self.labels[bank_idx],
                                           self.num_classes, k=min(PROBE.k, len(bank_idx)),
                                           temperature=PROBE.temperature)["weighted_top1"]
        # the collapse monitor: about 1/sqrt(dim) is healthy, 0 is one point for every image
        out["embedding_std"] = float(std_of_l2_normalized(
            embed_images(encoder, pipeline, self.images, device, indices=self.collapse_idx)))
        return out


def collapse_verdict(std: float, dim: int) -> dict:
    """metrics.json's collapse fields: the last std of L2-normalized embeddings, against 1/sqrt(dim)."""
    healthy = dim ** -0.5
    return {"embedding_std": std, "embedding_std_healthy": healthy, "collapsed": std < COLLAPSED_BELOW * healthy}


def supervised_test_metrics(objective, pipeline, images, labels, indices, num_classes: int, device) -> dict:
    """Accuracy and macro precision/recall/F1 of the trained classifier on clean test images."""
    idx = indices[labels[indices] >= 0]
    classifier = torch.nn.Sequential(objective.encoder, objective.classifier)  # = objective.logits
    preds = embed_images(classifier, pipeline, images, device, indices=idx).argmax(1)
    return classification_metrics(labels[idx].numpy(), preds.numpy(), num_classes)
