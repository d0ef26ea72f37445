"""The saved form of a run's config, and how one saved by an earlier unsuprnn is read as it ran.

A run's config.yaml, and the config inside its checkpoint.pt and encoder.pt, is a mapping

    schema: 1            # the version of this form (SCHEMA)
    digest: 1a2b3c4d5e6f  # the config's digest, computed once, when the run was made
    data: {...}  augment: {...}  encoder: {...}  objective: {...}  train: {...}
    cluster: {...}       # only in a clustering stage's run: the stage's own settings

with every key of every section written out, so that what a run did never depends on today's defaults.
Reading one, `migrate` applies MIGRATIONS in order, from the file's version to SCHEMA; a file without
`schema` was written before versions existed and is version 0.

Changing the config:
- a new default: nothing to do here (every saved run holds the value it ran with);
- a new key: SCHEMA + 1 and a migration N -> N + 1 that writes the key into older runs with the value that
  does what they did before it existed (usually the value that turns it off); tests/test_saved_runs.py fails
  until it is there;
- a renamed or removed key: a migration that rewrites or drops it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Callable

SCHEMA = 3
SECTIONS = ("data", "augment", "encoder", "objective", "train")  # every run's; `cluster` only a stage's
UNDIGESTED = ("train.logger",)  # where the curves are also sent changes nothing a run learns


def digest_of(sections: dict) -> str:
    """The digest of a config's sections (schema 1 on): a short hash of every key but UNDIGESTED."""
    kept = {sec: {k: v for k, v in values.items() if f"{sec}.{k}" not in UNDIGESTED}
            for sec, values in sections.items()}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:12]


# ---- version 0: configs written before 2026-12-07, without `schema` -------------------------------------------
# Frozen: what the code of that time wrote and how it computed a digest. Never edit these to follow a new default.

# Keys that version 0 files may lack (they were added to the config over its history) -> the value that does what
# a run did before the key existed. (Keys a version 0 file always holds are those of the first training code.)
_UNVERSIONED_ADDED = {
    "data": {"intensity": "keep"},               # images normalized by the train split's mean and std
    "augment": {"saturation": 0.0, "hue": 0.0, "grayscale": 0.0, "invert": 0.0},  # no colour jitter, no negatives
    "encoder": {"kind": "rnn", "stacks": "joint"},
    "objective": {"pred_hidden": 512, "momentum": 0.99, "bank_size": 4096, "apc_shift": 2, "cpc_steps": 3,
                  "code_dim": 64, "cpc_temperature": 0.1, "mask_share": 0.3, "mask_span": 2, "weights": ""},
    "train": {"max_steps_per_epoch": 0, "steps": 2000, "budget": None, "logger": "none"},
    "cluster": {"k_range": "2:20", "init": "random", "guard": False},  # SCAN's own start, no guard
}
# How version 0 digests were computed: the keys of the first digests always counted; every later key counted
# where it differed from the default it was added with; the cluster section counted only where it was not the
# defaults of its time (a pretraining run's always was); `classes` was written 0.
_UNVERSIONED_ALWAYS = {
    "data": ("dataset", "data_dir", "download", "test_fraction", "view", "patch", "grayscale", "resize", "blur",
             "binarize", "normalize", "cache_dir"),
    "augment": ("crop_scale", "rotate", "translate", "shear", "noise", "erase_prob", "erase_max", "brightness",
                "contrast", "hflip"),
    "encoder": ("cell", "bidirectional", "layers", "hidden", "dropout", "pool", "input_proj"),
    "objective": ("name", "temperature", "proj_hidden", "proj_out", "decoder_hidden", "teacher_forcing", "denoise",
                  "recon_loss"),
    "train": ("epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "grad_clip", "seed", "device",
              "precision", "devices", "num_nodes", "knn_every", "max_steps_per_epoch"),
    "cluster": ("clusters", "neighbors", "heads", "epochs", "selflabel_epochs", "batch_size", "lr", "selflabel_lr",
                "encoder_lr", "selflabel_encoder_lr", "weight_decay", "entropy_weight", "threshold", "strong_augment"),
}
_UNVERSIONED_ADDED_WITH = {  # the defaults the later keys were added with (not always what runs before them did)
    "data": {"intensity": "keep"},
    "augment": {"saturation": 0.0, "hue": 0.0, "grayscale": 0.0, "invert": 0.0},
    "encoder": {"kind": "rnn", "stacks": "joint"},
    "objective": _UNVERSIONED_ADDED["objective"],
    "train": {"steps": 2000, "budget": None},
    "cluster": {"k_range": "2:20", "init": "umap", "guard": True},
}
_UNVERSIONED_CLUSTER_DEFAULTS = {"clusters": 0, "k_range": "2:20", "neighbors": "auto", "heads": 10, "epochs": 30,
                                 "selflabel_epochs": 10, "batch_size": 128, "lr": 0.01, "selflabel_lr": 0.001,
                                 "encoder_lr": 0.0, "selflabel_encoder_lr": 0.0, "weight_decay": 0.0001,
                                 "entropy_weight": 5.0, "threshold": 0.99, "strong_augment": 1.5, "init": "umap",
                                 "guard": True}


def _unversioned_clusters(value):
    """cluster.clusters as version 0 digests wrote it: `classes` (or its first spelling 0) as 0."""
    return 0 if str(value).strip().lower() in ("classes", "0") else value


def _at_defaults_of_its_time(cluster: dict) -> bool:
    """Whether a version 0 cluster section holds the defaults of the code that wrote it (judged by its keys:
    before cluster.k_range existed, neighbours defaulted to 20)."""
    for key, value in cluster.items():
        default = _UNVERSIONED_CLUSTER_DEFAULTS.get(key)
        if key == "clusters":
            value = _unversioned_clusters(value)
        if not (value == default or (key == "neighbors" and value == 20 and "k_range" not in cluster)):
            return False
    return True


def unversioned_digest(saved: dict, stage: str) -> str:
    """The digest the code of its time recorded for a version 0 config (`saved` as the file holds it)."""
    kept = {}
    for sec, values in saved.items():
        if sec == "cluster" and (stage != "cluster" or _at_defaults_of_its_time(values)):
            continue
        always, added = _UNVERSIONED_ALWAYS.get(sec, ()), _UNVERSIONED_ADDED_WITH.get(sec, {})
        kept[sec] = {k: _unversioned_clusters(v) if (sec, k) == ("cluster", "clusters") else v
                     for k, v in values.items()
                     if f"{sec}.{k}" not in UNDIGESTED and (k in always or k not in added or v != added[k])}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:12]


def _from_unversioned(saved: dict, stage: str) -> dict:
    """0 -> 1: every key written out, the digest recorded, and the cluster section only in a stage's run.

    The keys added over the config's history take the values that did what the run did before they existed
    (a run saved before colour augmentation trained without it, whatever today's default). Before
    cluster.selflabel_encoder_lr existed, self-labeling fine-tuned the encoder at cluster.encoder_lr; `0` was the
    first spelling of cluster.clusters `classes`."""
    out = {"schema": 1, "digest": unversioned_digest(saved, stage)}
    for sec, values in saved.items():
        if sec == "cluster" and stage != "cluster":
            continue  # the defaults of the day a pretraining run was saved: never the run's own settings
        values = dict(values)
        if sec == "cluster":
            values.setdefault("selflabel_encoder_lr", values.get("encoder_lr"))
            if str(values.get("clusters")).strip() == "0":
                values["clusters"] = "classes"
        out[sec] = {**{k: v for k, v in _UNVERSIONED_ADDED.get(sec, {}).items() if k not in values}, **values}
    return out


def _cluster_budget(saved: dict, stage: str) -> dict:
    """1 -> 2: cluster.budget (2026-12-07); a stage saved before it ran its configured epochs (no budget)."""
    out = saved | {"schema": 2}
    if "cluster" in out:
        out["cluster"] = {"budget": None} | out["cluster"]
    return out


def _colour_jitter(saved: dict, stage: str) -> dict:
    """2 -> 3: augment.colour_jitter (2026-12-08); a run saved before it jittered colours as its saturation, hue
    and grayscale said."""
    out = saved | {"schema": 3}
    out["augment"] = {"colour_jitter": True} | out["augment"]
    return out


# ---- migrations: MIGRATIONS[n] turns a version n mapping into version n + 1 -------------------------------------
MIGRATIONS: tuple[Callable[[dict, str], dict], ...] = (_from_unversioned, _cluster_budget, _colour_jitter)
assert len(MIGRATIONS) == SCHEMA


class SchemaError(ValueError):
    """A saved config this unsuprnn cannot read (a newer or a damaged version)."""


def migrate(saved: dict, stage: str = "pretrain") -> dict:
    """A saved config (any version) as a version SCHEMA mapping: {schema, digest, sections...}.

    stage: "cluster" for a clustering stage's run, else "pretrain" (version 0 files hold a cluster section in
    every run; only a stage's is its own)."""
    mapping = copy.deepcopy(saved)
    version = mapping.get("schema", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise SchemaError(f"schema {version!r} is not a version number")
    if version > SCHEMA:
        raise SchemaError(f"it was written by a newer unsuprnn (config schema {version}; this one reads up to "
                          f"{SCHEMA}): upgrade unsuprnn")
    for step in MIGRATIONS[version:]:
        mapping = step(mapping, stage)
    if not isinstance(mapping.get("digest"), str):
        raise SchemaError("it has no digest")
    return mapping
