"""Run configuration: one dataclass per area, loaded from defaults, a YAML file, CLI flags
and `--set section.key=value` overrides, in that order.

Every default lives here. An unknown key or a value of the wrong type is a `UserError`
naming the key, so a typo in a config never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from .errors import UserError


@dataclass
class DataConfig:
    dataset: str = "digits"          # digits | mnist | ... | idx:DIR | folder:DIR | npz:FILE
    data_dir: str = "data"           # where torchvision datasets live
    download: bool = False           # torchvision sources only
    test_fraction: float = 0.2       # for sources without their own split
    view: str = "rows"               # rows | columns | patches | snake
    patch: int = 4                   # patch side for the patches view
    grayscale: bool = False
    resize: Optional[int] = None     # square side in pixels
    blur: float = 0.0                # Gaussian sigma in pixels, 0 = off
    binarize: Optional[float] = None # threshold in [0, 1]
    normalize: bool = True           # per-channel mean/std of the train split
    cache_dir: Optional[str] = None  # decoded-folder cache; default beside the data


@dataclass
class AugmentConfig:
    crop_scale: float = 0.8          # random resized crop: min zoom (1 = off)
    rotate: float = 10.0             # degrees, uniform in [-rotate, rotate]
    translate: float = 0.1           # fraction of the side
    shear: float = 8.0               # degrees
    noise: float = 0.05              # max Gaussian noise std (images in [0, 1])
    erase_prob: float = 0.25         # probability of erasing a block or a band of rows
    erase_max: float = 0.3           # largest erased fraction of each side
    brightness: float = 0.2
    contrast: float = 0.2
    hflip: bool = False              # off: it changes the meaning of digits


@dataclass
class EncoderConfig:
    cell: str = "lstm"               # lstm | gru | rnn
    bidirectional: bool = True
    layers: int = 2
    hidden: int = 128
    dropout: float = 0.0
    pool: str = "meanmax"            # last | mean | max | meanmax
    input_proj: int = 0              # linear patch embedding width, 0 = none


@dataclass
class ObjectiveConfig:
    name: str = "contrastive"        # contrastive | autoencoder | supervised
    temperature: float = 0.2         # NT-Xent
    proj_hidden: int = 512           # SimCLR projection head
    proj_out: int = 128
    decoder_hidden: int = 256        # sequence autoencoder
    teacher_forcing: bool = True
    denoise: str = "mask"            # none | mask | augment
    recon_loss: str = "auto"         # auto (bce when binarized) | mse | bce


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    precision: str = "auto"          # auto | 32 | bf16-mixed | 16-mixed
    devices: int = 1                 # processes per node (DDP when > 1)
    num_nodes: int = 1
    knn_every: int = 1               # kNN top-1 on the test split every N epochs (0 = off)
    max_steps_per_epoch: int = 0     # cap on steps per epoch for very large datasets (0 = a full pass)


@dataclass
class ClusterConfig:
    """The clustering stage (`unsuprnn cluster`, SCAN): read only by that command."""
    clusters: int = 0                # K; 0 = the number of classes of the run's dataset
    neighbors: int = 20              # nearest neighbours mined per training image
    heads: int = 10                  # heads trained side by side; the one with the lowest loss is kept
    epochs: int = 30                 # SCAN epochs: neighbour consistency + entropy of the mean assignment
    selflabel_epochs: int = 10       # self-labeling epochs on confident samples (0 = skip)
    batch_size: int = 128
    lr: float = 1e-2                 # heads during SCAN (Adam, warmup + cosine)
    selflabel_lr: float = 1e-3       # the kept head during self-labeling
    encoder_lr: float = 0.0          # fine-tuning the encoder during SCAN; 0 = frozen (as good on digits, 3x faster)
    selflabel_encoder_lr: float = 0.0  # fine-tuning the encoder during self-labeling; 0 = frozen
    weight_decay: float = 1e-4
    entropy_weight: float = 5.0      # SCAN's weight on the entropy of the mean assignment
    threshold: float = 0.99          # self-labeling: confidence a sample must pass
    strong_augment: float = 1.5      # self-labeling: the strong view's augmentation strength, x the run's


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
        counts only where it differs from its defaults, so pretrain runs keep the hashes they had."""
        d = self.to_dict()
        if self.cluster == ClusterConfig():
            del d["cluster"]
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


def load_config(path: str | Path | None = None, flags: dict[str, Any] | None = None,
                overrides: list[str] | None = None) -> Config:
    """Resolve a config: defaults <- YAML file <- flags (dotted keys, None = not given) <- --set."""
    cfg = Config()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"config file not found: {p}; pass an existing YAML file (see configs/)")
        try:
            mapping = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"config file {p} is not valid YAML ({str(exc).splitlines()[0]})") from None
        apply_mapping(cfg, mapping)
    apply_flags(cfg, flags or {})
    apply_overrides(cfg, overrides or [])
    return cfg


def config_from_dict(mapping: dict) -> Config:
    """Rebuild a Config saved with `to_dict` (checkpoints, run directories)."""
    return apply_mapping(Config(), mapping)
