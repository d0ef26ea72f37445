"""Data layer: sources -> preprocessing -> device batches -> augmentation -> sequence views.

The dataset names are `names/datasets.py`; the loaders are imported where used.
"""

_LAZY = {"load_dataset": "dataset", "load_dataset_matching": "dataset", "Images": "images",
         "stratified_split": "images", "channel_stats": "preprocess"}


def __getattr__(name: str):
    """`from unsuprnn.data import load_dataset` and the like, imported on first use."""
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
