"""The probe methods: one module each, named as the method, listed here in the order the table shows
them. A method module provides
- `measure(bank, bank_y, query, query_y, num_classes, settings, seed, device) -> dict`: the figures of
  bank features [N, E] and query features [Q, E] (labels -1 = unknown; `settings` a `ProbeSettings`);
  a method that `NEEDS_LABELS` is given the labelled rows only;
- `NEEDS_LABELS`: whether it can measure anything without labels;
- `COLUMNS`: ((table column title, key of its result), ...);
- `SETTINGS`: the ProbeSettings fields it reads, {field: None, or (other field, value): read only where that
  holds} (`recorded` keeps them with each figure, so that probe.json never compares figures measured
  differently, and `probe_settings` reads them back);
- optionally `resolved(settings, result)`: the settings as the figure used them (k-means' `classes` as its K),
  and `RESULT_KEYS`: figures chosen from the data that key a measurement too (HDBSCAN's smallest cluster).
A new probe method is its module plus its name here; a new probe setting is its ProbeSettings field, named in
the SETTINGS of the methods that read it.
"""

from __future__ import annotations

import dataclasses
import importlib

METHOD_NAMES = ("knn", "linear", "kmeans", "hdbscan")
BASELINES = ("raw", "pca", "umap", "random", "supervised=RUN")  # the feature sets of baselines.py


def method(name: str):
    """The module of probe method `name`."""
    return importlib.import_module(f"{__package__}.{name}")


def recorded(name: str, settings, result: dict) -> dict:
    """What a figure of method `name` (measured under the ProbeSettings `settings`) depends on besides the data:
    each setting it declares (where its condition holds, and set), as the figure used it, and its RESULT_KEYS."""
    m = method(name)
    used = m.resolved(settings, result) if hasattr(m, "resolved") else settings
    out = {field: getattr(used, field) for field, when in m.SETTINGS.items()
           if getattr(used, field) is not None and (when is None or getattr(used, when[0]) == when[1])}
    return out | {key: result.get(key) for key in getattr(m, "RESULT_KEYS", ())}


def settings_from(values: dict):
    """ProbeSettings from a mapping that holds some of its fields (others ignored; missing ones at their default)."""
    from ..config import ProbeSettings
    fields = {f.name for f in dataclasses.fields(ProbeSettings)}
    return ProbeSettings(**{k: v for k, v in values.items() if k in fields})


def probe_settings(records: dict[str, dict]):
    """The ProbeSettings under which figures were measured, read back from their records ({method: `recorded`}),
    so that what is still missing is measured the same way."""
    return settings_from({k: v for record in records.values() for k, v in record.items()})
