"""The probe methods: one module each, named as the method, listed here in the order the table shows
them. A method module provides
- `measure(bank, bank_y, query, query_y, num_classes, settings, seed, device) -> dict`: the figures of
  bank features [N, E] and query features [Q, E] (labels -1 = unknown; `settings` a `ProbeSettings`);
  a method that `NEEDS_LABELS` is given the labelled rows only;
- `NEEDS_LABELS`: whether it can measure anything without labels;
- `COLUMNS`: ((table column title, key of its result), ...);
- `settings_of(settings, result) -> dict`: what a figure depends on besides the data, so that
  probe.json never compares figures measured differently (`settings` holds the ProbeSettings fields).
A new probe method is its module plus its name here.
"""

from __future__ import annotations

import importlib

METHOD_NAMES = ("knn", "linear", "kmeans", "hdbscan")
BASELINES = ("raw", "pca", "umap", "random", "supervised=RUN")  # the feature sets of baselines.py


def method(name: str):
    """The module of probe method `name`."""
    return importlib.import_module(f"{__package__}.{name}")
