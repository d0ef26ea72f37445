"""Scores: classification (accuracy, macro P/R/F1, confusion) and clustering (NMI, ARI, Hungarian
accuracy)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm


def classification_metrics(y_true, y_pred, num_classes: int) -> dict:
    """Accuracy and macro precision/recall/F1 in %, and the confusion matrix (rows = true)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(num_classes))
    p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro",
                                                     zero_division=0)
    return {"accuracy": 100.0 * float((y_true == y_pred).mean()), "precision": 100.0 * p,
            "recall": 100.0 * r, "f1": 100.0 * f,
            "confusion": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()}


def cluster_accuracy(y_true, clusters) -> float:
    """Best one-to-one matching of clusters to classes (Hungarian), accuracy in %."""
    y_true, clusters = np.asarray(y_true), np.asarray(clusters)
    n = max(y_true.max(), clusters.max()) + 1
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (clusters, y_true), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return 100.0 * counts[rows, cols].sum() / len(y_true)


def clustering_metrics(y_true, clusters) -> dict:
    return {"nmi": float(skm.normalized_mutual_info_score(y_true, clusters)),
            "ari": float(skm.adjusted_rand_score(y_true, clusters)),
            "accuracy": float(cluster_accuracy(y_true, clusters))}
