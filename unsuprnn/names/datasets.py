"""The dataset specs `--dataset` accepts, known without importing the loaders (the CLI's help lists them
and checks a spec before anything heavy is imported). The loaders are in `sources.py`."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError

TORCHVISION_NAMES = ("mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100", "svhn")
EMNIST_SPLITS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")
PREFIXES = {"idx": "DIR", "folder": "DIR", "npz": "FILE", "npy": "FILE"}  # prefix -> what follows it


def dataset_names() -> list[str]:
    return (["digits"] + list(TORCHVISION_NAMES) + [f"emnist-{s}" for s in EMNIST_SPLITS]
            + [f"{p}:PATH" for p in PREFIXES])


def dataset_help() -> str:
    """The specs for --help: digits | mnist | ... | emnist-SPLIT | ... | idx:DIR | folder:DIR | npz:FILE | npy:FILE."""
    return " | ".join(["digits", *TORCHVISION_NAMES[:3], "emnist-SPLIT", *TORCHVISION_NAMES[3:]]
                      + [f"{p}:{what}" for p, what in PREFIXES.items()])


def check_spec(spec: str) -> None:
    """A UserError, before anything is loaded, for a spec that names no dataset: an unknown name, or a
    prefixed path that does not exist as what the prefix needs (a folder, or a file)."""
    prefix, _, arg = str(spec).partition(":")
    if arg and prefix in PREFIXES:
        path = Path(arg)
        if PREFIXES[prefix] == "DIR" and not path.is_dir():
            what = "image folder" if prefix == "folder" else "idx directory"
            hint = "folder:DIR with images (in class subfolders, or flat)" if prefix == "folder" else \
                "idx:DIR with train-/t10k- idx files"
            raise UserError(f"{what} not found: {path}; pass {hint}")
        if PREFIXES[prefix] == "FILE" and not path.is_file():
            hint = "npz:FILE with an 'images' array" if prefix == "npz" else "npy:FILE.npy holding uint8 images"
            raise UserError(f"{prefix} file not found: {path}; pass {hint}")
        return
    names = set(dataset_names()) - {f"{p}:PATH" for p in PREFIXES}
    if spec not in names:
        raise UserError(f"unknown dataset '{spec}'; use one of: {', '.join(dataset_names())}")
