"""Run configuration: one dataclass per area, loaded from defaults, a YAML file, CLI flags
and `--set section.key=value` overrides, in that order.

Every default lives here. An unknown key or a value of the wrong type is a `UserError`
naming the key, so a typo in a config never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from .errors import UserError


INF = float("inf")
OBJECTIVE_NAMES = ("contrastive", "autoencoder", "byol", "simsiam", "vicreg", "barlowtwins", "moco", "nnclr", "dcl",
                   "supervised")


@dataclass(frozen=True)
class Bounds:
    """The values a config key accepts: a numeric interval (NaN and infinity never pass), a set of
    choices, or both (`also`: values allowed outside the interval, e.g. 0 = off)."""
    lo: float = -INF
    hi: float = INF
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    also: tuple = ()
    note: str = ""

    def allows(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        if value in self.also:
            return True
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        lo, hi = _number(self.lo), _number(self.hi)
        if self.lo > -INF and self.hi < INF:
            text = f"in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        elif self.lo > -INF:
            text = f"{'>' if self.lo_open else '>='} {lo}"
        else:
            text = f"{'<' if self.hi_open else '<='} {hi}"
        text = " or ".join([str(a) for a in self.also] + [text])
        return text + (f" ({self.note})" if self.note else "")


def _number(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) else f"{x:g}"


def opt(default: Any, lo: float = -INF, hi: float = INF, *, gt: float | None = None, lt: float | None = None,
        choices: tuple = (), also: tuple = (), note: str = ""):
    """A config field: its default and, beside it, the values it accepts (`gt`/`lt` for open ends)."""
    b = Bounds(lo=lo if gt is None else gt, hi=hi if lt is None else lt, lo_open=gt is not None,
               hi_open=lt is not None, choices=choices, also=also, note=note)
    return field(default=default, metadata={"bounds": b})


BIG = 1 << 20  # a generous ceiling for sizes, so that a typo fails here and not as an allocation


@dataclass
class DataConfig:
    dataset: str = "digits"          # digits | mnist | ... | idx:DIR | folder:DIR | npz:FILE
    data_dir: str = "data"           # where torchvision datasets live
    download: bool = False           # torchvision sources only
    test_fraction: float = opt(0.2, gt=0, lt=1)            # for sources without their own split
    view: str = opt("rows", choices=("rows", "columns", "patches", "snake"))
    patch: int = opt(4, 1, 4096)                           # patch side for the patches view
    grayscale: bool = False
    resize: Optional[int] = opt(None, 1, 4096)             # square side in pixels (None = keep)
    blur: float = opt(0.0, 0, 100, note="Gaussian sigma in pixels, 0 = off")
    binarize: Optional[float] = opt(None, 0, 1)            # threshold (None = off)
    normalize: bool = True           # per-channel mean/std of the train split
    cache_dir: Optional[str] = None  # decoded-folder cache; default beside the data


@dataclass
class AugmentConfig:
    crop_scale: float = opt(0.8, gt=0, hi=1)     # random resized crop: min zoom (1 = off)
    rotate: float = opt(10.0, 0, 180)            # degrees, uniform in [-rotate, rotate]
    translate: float = opt(0.1, 0, 1)            # fraction of the side
    shear: float = opt(8.0, 0, lt=80)            # degrees
    noise: float = opt(0.05, 0, 1)               # max Gaussian noise std (images in [0, 1])
    erase_prob: float = opt(0.25, 0, 1)          # probability of erasing a block or a band of rows
    erase_max: float = opt(0.3, 0, 1)            # largest erased fraction of each side
    brightness: float = opt(0.2, 0, 1)
    contrast: float = opt(0.2, 0, 1)
    hflip: bool = False              # off: it changes the meaning of digits


@dataclass
class EncoderConfig:
    cell: str = opt("lstm", choices=("lstm", "gru", "rnn"))
    bidirectional: bool = True
    layers: int = opt(2, 1, 64)
    hidden: int = opt(128, 1, 65536)
    dropout: float = opt(0.0, 0, lt=1)
    pool: str = opt("meanmax", choices=("last", "mean", "max", "meanmax"))
    input_proj: int = opt(0, 0, 65536, note="linear patch embedding width, 0 = none")


@dataclass
class ObjectiveConfig:
    name: str = opt("contrastive", choices=OBJECTIVE_NAMES)
    temperature: float = opt(0.2, 1e-4, 100)     # NT-Xent (contrastive, moco, nnclr), DCL
    proj_hidden: int = opt(512, 1, 65536)        # projection head of every joint-embedding method
    proj_out: int = opt(128, 1, 65536)
    pred_hidden: int = opt(512, 1, 65536)        # predictor head (byol, simsiam, nnclr)
    momentum: float = opt(0.99, 0, 1, note="teacher momentum at the first step, cosine to 1 (byol, moco)")
    bank_size: int = opt(4096, 1, BIG)           # memory bank: negatives (moco), support set (nnclr)
    decoder_hidden: int = opt(256, 1, 65536)     # sequence autoencoder
    teacher_forcing: bool = True
    denoise: str = opt("mask", choices=("none", "mask", "augment"))
    recon_loss: str = opt("auto", choices=("auto", "mse", "bce"))  # auto: bce when binarized


@dataclass
class TrainConfig:
    epochs: int = opt(30, 1, 1_000_000)
    batch_size: int = opt(256, 1, BIG)
    lr: float = opt(2e-3, gt=0, hi=10)
    weight_decay: float = opt(1e-4, 0, 10)
    warmup_epochs: float = opt(1.0, 0, 1_000_000)
    grad_clip: float = opt(1.0, 0, note="max gradient norm, 0 = off")
    seed: int = opt(0, 0, 2**32 - 1)
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    precision: str = opt("auto", choices=("auto", "32", "32-true", "bf16-mixed", "16-mixed"))
    devices: int = opt(1, 1, 1024)                 # processes per node (DDP when > 1)
    num_nodes: int = opt(1, 1, 65536)
    knn_every: int = opt(1, 0, note="kNN top-1 on the test split every N epochs, 0 = off")
    max_steps_per_epoch: int = opt(0, 0, note="cap on steps per epoch for very large datasets, 0 = a full pass")


@dataclass
class ClusterConfig:
    """The clustering stage (`unsuprnn cluster`, SCAN): read only by that command."""
    clusters: int = opt(0, 2, BIG, also=(0,), note="0 = the number of classes of the run's dataset")
    neighbors: int = opt(20, 1, 1024)        # nearest neighbours mined per training image
    heads: int = opt(10, 1, 1024)            # heads trained side by side; the one with the lowest loss is kept
    epochs: int = opt(30, 1, 1_000_000)      # SCAN epochs: neighbour consistency + entropy of the mean assignment
    selflabel_epochs: int = opt(10, 0, 1_000_000)  # self-labeling epochs on confident samples (0 = skip)
    batch_size: int = opt(128, 2, BIG)
    lr: float = opt(1e-2, gt=0, hi=10)       # heads during SCAN (Adam, warmup + cosine)
    selflabel_lr: float = opt(1e-3, gt=0, hi=10)  # the kept head during self-labeling
    # fine-tuning the encoder during SCAN; 0 = frozen (as good on digits, 3x faster)
    encoder_lr: float = opt(0.0, 0, 10, note="0 = frozen encoder")
    selflabel_encoder_lr: float = opt(0.0, 0, 10, note="0 = frozen encoder")
    weight_decay: float = opt(1e-4, 0, 10)
    entropy_weight: float = opt(5.0, 0, 1000)  # SCAN's weight on the entropy of the mean assignment
    threshold: float = opt(0.99, gt=0, lt=1)   # self-labeling: confidence a sample must pass
    strong_augment: float = opt(1.5, 1, 4)     # self-labeling: the strong view's augmentation strength, x the run's


# Options of the commands that read a run (`probe`, `export`): not part of a run's config, bounded here too.
OPTION_BOUNDS = {
    "--k": Bounds(1, BIG),
    "--temperature": Bounds(1e-4, 100, note="the kNN vote temperature"),
    "--clusters": Bounds(2, BIG),
    "--cluster": Bounds(2, BIG, note="k-means clusters"),
    "--nlist": Bounds(1, BIG),
    "--nprobe": Bounds(1, BIG),
}


def check_options(**values: Any) -> None:
    """Check command options (named as in OPTION_BOUNDS without the dashes; None = not given)."""
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        bounds = OPTION_BOUNDS[flag]
        if value is not None and not bounds.allows(value):
            raise UserError(f"{flag} {value!r} is out of range: it must be {bounds.describe()}; pass a valid value")


LATER_KEYS = ("objective.pred_hidden", "objective.momentum", "objective.bank_size")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def digest(self) -> str:
        """Short hash of the resolved config, recorded with exported embeddings. The cluster section
        and keys added later count only where they differ from their defaults, so runs keep the hashes
        they had."""
        d = self.to_dict()
        if self.cluster == ClusterConfig():
            del d["cluster"]
        for dotted in LATER_KEYS:
            sec, key = dotted.split(".")
            if d[sec][key] == getattr(Config(), sec).__dict__[key]:
                del d[sec][key]
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert `value` to the annotated type `tp`, or raise a UserError naming `key`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        return _coerce(value, args[0], key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise UserError(f"config key '{key}' expects {getattr(tp, '__name__', tp)}, got {value!r}; fix the value")


_SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}


def _section(cfg: Config, name: str) -> Any:
    if name not in _SECTIONS:
        raise UserError(f"unknown config section '{name}'; valid sections: {', '.join(_SECTIONS)}")
    return getattr(cfg, name)


def _set(cfg: Config, dotted: str, value: Any) -> None:
    if "." not in dotted:
        raise UserError(f"config key '{dotted}' must be written as section.key (e.g. train.lr)")
    sec_name, key = dotted.split(".", 1)
    sec = _section(cfg, sec_name)
    hints = typing.get_type_hints(type(sec))
    if key not in hints:
        raise UserError(f"unknown config key '{dotted}'; valid keys in [{sec_name}]: {', '.join(hints)}")
    setattr(sec, key, _coerce(value, hints[key], dotted))


def apply_mapping(cfg: Config, mapping: dict) -> Config:
    """Apply a nested {section: {key: value}} mapping (from YAML or a checkpoint)."""
    if not isinstance(mapping, dict):
        raise UserError("a config file must hold a mapping of sections, e.g. 'train: {epochs: 5}'")
    for sec_name, values in mapping.items():
        _section(cfg, sec_name)
        if not isinstance(values, dict):
            raise UserError(f"config section '{sec_name}' must be a mapping of keys")
        for key, value in values.items():
            _set(cfg, f"{sec_name}.{key}", value)
    return cfg


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` strings; the value is parsed as YAML (so 1e-3, true, null work)."""
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set expects section.key=value, got '{item}'")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        _set(cfg, key.strip(), value)
    return cfg


def apply_flags(cfg: Config, flags: dict[str, Any]) -> Config:
    """Apply {dotted key: value} flags; None means the flag was not given."""
    for key, value in flags.items():
        if value is not None:
            _set(cfg, key, value)
    return cfg


def check_config(cfg: Config) -> Config:
    """Every value of `cfg` within the bounds declared beside its default, else a UserError that
    names the key, the value, the allowed values and the fix. Cheap: run it before any work."""
    for sec_name in _SECTIONS:
        sec = getattr(cfg, sec_name)
        for f in dataclasses.fields(sec):
            bounds, value = f.metadata.get("bounds"), getattr(sec, f.name)
            if bounds is not None and value is not None and not bounds.allows(value):
                key = f"{sec_name}.{f.name}"
                what = "is not a valid choice" if bounds.choices else "is out of range"
                raise UserError(f"{key} = {value!r} {what}: it must be {bounds.describe()}; "
                                f"pass a valid value (its flag, or --set {key}=VALUE)")
    return cfg


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (by default the last one wins)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise UserError(f"config key '{key}' is written twice in one section (line "
                                f"{key_node.start_mark.line + 1}); keep one of them")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_config_file(path: str | Path) -> dict:
    """The mapping in a YAML config file, or a UserError naming what is wrong with the file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {p}; pass an existing YAML file (see configs/)")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"config file {p} is not a UTF-8 text file; pass a YAML file (see configs/)") from None
    if "\x00" in text:
        raise UserError(f"config file {p} is a binary file, not YAML text; pass a YAML file (see configs/)")
    try:
        mapping = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise UserError(f"config file {p} is not valid YAML ({str(exc).splitlines()[0]})") from None
    return mapping or {}


def load_config(path: str | Path | None = None, flags: dict[str, Any] | None = None,
                overrides: list[str] | None = None) -> Config:
    """Resolve a config: defaults <- YAML file <- flags (dotted keys, None = not given) <- --set,
    then check every value against its bounds."""
    cfg = Config()
    if path is not None:
        apply_mapping(cfg, read_config_file(path))
    apply_flags(cfg, flags or {})
    apply_overrides(cfg, overrides or [])
    return check_config(cfg)


def config_from_dict(mapping: dict) -> Config:
    """Rebuild a Config saved with `to_dict` (checkpoints, run directories)."""
    return apply_mapping(Config(), mapping)
