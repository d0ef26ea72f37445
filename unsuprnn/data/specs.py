"""The dataset specs `--dataset` accepts, known without importing the loaders (the CLI's help lists them
and checks a spec before anything heavy is imported). The loaders are in `sources.py`."""

from __future__ import annotations

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
