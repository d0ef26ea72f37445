"""Run configuration: one dataclass per area, loaded from defaults, a YAML file, CLI flags
and `--set section.key=value` overrides, in that order.

Every default lives here. An unknown key or a value of the wrong type is a `UserError`
naming the key, so a typo in a config never silently falls back to a default.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from .bounds import BIG, check_fields, opt, read_setting
from .errors import UserError
from .names import encoders, objectives
from .names.choices import CELLS, INTENSITIES, POOLS, PRECISIONS, STACKS, VIEWS
from .names.clusters import CLASSES, K_RANGE, MAX_K, parse_k_range, spell_clusters
from .names.datasets import check_spec, dataset_help
from .names.loggers import LOGGERS, check_logger
from .plan import AUTO, parse_duration
from .safe_yaml import MAX_VALUE_CHARS, load_yaml, read_config_file
from .schema import SCHEMA, SECTIONS, SchemaError, digest_of, migrate

@dataclass
class DataConfig:
    dataset: str = opt("digits", flag=("--dataset", "-d"), help=dataset_help())
    data_dir: str = opt("data", flag="--data-dir", help="Where torchvision datasets are stored.")
    download: bool = opt(False, flag="--download/--no-download", help="Let torchvision fetch missing datasets.")
    test_fraction: float = opt(0.2, gt=0, lt=1, flag="--test-fraction",
                               help="Test share for sources without their own split.")
    # auto by image size (data/views.py): rows up to 32 px; larger images as about 6 x 6 patches, which read the
    # photograph protocol far better than rows at 64 and 96 px (BENCHMARKS.md, "A view that scales")
    view: str = opt(AUTO, choices=(AUTO, *VIEWS), flag="--view",
                    help="How an image becomes a sequence: rows, columns, snake, or patches (a grid of --patch "
                         "squares, raster order); auto: rows up to 32 px a side, larger images as about 6 x 6 "
                         "patches, each embedded by a learned linear map (encoder.input_proj).")
    patch: int | str = opt(AUTO, 1, 4096, also=(AUTO,), flag="--patch",
                           help="Patch side for --view patches; auto: about a sixth of the image's side.")
    grayscale: bool = opt(False, flag="--grayscale/--color", help="Convert images to one channel.")
    # auto: a 224 px photograph read as 224 rows trained at 26 images/s in 4.3 GB and read worse than raw pixels;
    # resized to 96 and read as 6 x 6 patches, 212 images/s in 1.7 GB (BENCHMARKS.md, "A view that scales")
    resize: Optional[int | str] = opt(AUTO, 1, 4096, also=(AUTO,), flag="--resize",
                                      help="Resize images to N x N; auto: images larger than 96 px a side to 96 x 96, "
                                           "smaller ones kept; none: keep every size.")
    blur: float = opt(0.0, 0.1, 100, also=(0,), note="Gaussian sigma in pixels, 0 = off", flag="--blur",
                      help="Gaussian blur sigma in pixels (0 = off).")
    binarize: Optional[float] = opt(None, 0, 1, flag="--binarize", help="Threshold in [0, 1]; pixels become 0 or 1.")
    # auto (data/invariance.py): canonical where brightness, contrast, polarity or colour vary at random (there it
    # raised kNN by 20 to 28 points, RESULTS.md "Images that are not digits") and for grey images; standardize for
    # colour sets closed neither under negatives nor under turned colour channels, where colour and polarity say
    # what an image shows (RESULTS.md, "Colour and polarity kept where the data says they are information")
    intensity: str = opt(AUTO, choices=INTENSITIES + (AUTO,), flag="--intensity",
                         help="keep: the train split's channel mean and std; standardize: each image by its own "
                              "mean and std (brightness and contrast removed; colour and polarity kept); canonical: "
                              "each channel standardized, and negated where needed so that its sparse part is bright "
                              "(polarity and colour cast removed too); auto: standardize for a colour set that holds "
                              "no negatives and no colour-turned copies of its images (measured without labels at "
                              "pretraining), canonical otherwise.")
    normalize: bool = True           # per-channel mean/std of the train split
    cache_dir: Optional[str] = None  # decoded-folder cache; default beside the data


@dataclass
class AugmentConfig:
    # The defaults are what a new user's folder gets: on unseen handwriting (1,000 and 2,000 MNIST images given
    # as folders) these stronger views raised k-means accuracy by 8.5 and 2.3 points over the digits recipe's
    # (RESULTS.md, "defaults for unseen data"); every recipe in configs/ writes its own values out.
    crop_scale: float = opt(0.75, 0.05, 1)       # random resized crop: min zoom (1 = off)
    rotate: float = opt(15.0, 0, 180)            # degrees, uniform in [-rotate, rotate]
    translate: float = opt(0.12, 0, 1)           # fraction of the side
    shear: float = opt(10.0, 0, lt=80)           # degrees
    noise: float = opt(0.1, 0, 1)                # max Gaussian noise std (images in [0, 1])
    erase_prob: float = opt(0.3, 0, 1)           # probability of erasing a block or a band of rows
    erase_max: float = opt(0.35, 0, 1)           # largest erased fraction of each side
    brightness: float = opt(0.3, 0, 1)
    contrast: float = opt(0.3, 0, 1)
    # auto: on where the images are closed under mirroring (data/invariance.py: a mirrored image is about as close to
    # the set as the image is), read from the train split at pretraining: photographs yes, digits and letters no
    hflip: bool | str = opt(AUTO, choices=(AUTO, True, False), flag="--hflip",
                            help="Mirror views at random (true, false, or auto: where the set holds mirror images "
                                 "of its images, measured without labels at pretraining).")
    # colour, for RGB images only: a contrastive encoder otherwise matches two views by their colours
    # (SimCLR's colour distortion: saturation and hue jitter, and grey views one time in five)
    # auto: off where an image's colour follows its shape (data/invariance.py: images drawn alike are coloured
    # alike), so that colour adds to what the shapes say; on where it varies whatever the shape (RESULTS.md,
    # "Colour jitter read from the data")
    colour_jitter: bool | str = opt(AUTO, choices=(AUTO, True, False), flag="--colour-jitter",
                                    help="Jitter the views' colours (augment.saturation, hue, grayscale; true, false, or "
                                         "auto: off where images drawn alike are coloured alike, measured without "
                                         "labels at pretraining).")
    saturation: float = opt(0.8, 0, 1)           # saturation factor in [1 - s, 1 + s]
    hue: float = opt(0.2, 0, 0.5)                # hue turned by up to this share of the colour wheel, each way
    grayscale: float = opt(0.2, 0, 1)            # probability of a grey view
    # polarity: a view drawn as its negative (1 - x) with this probability, for images whose objects may be
    # light on dark or dark on light (0 = off: digits and scans have one polarity)
    invert: float = opt(0.0, 0, 1)


@dataclass
class EncoderConfig:
    kind: str = opt("rnn", choices=encoders.kinds(), flag="--encoder", help=encoders.kinds_help())
    cell: str = opt("lstm", choices=CELLS, flag="--cell")
    bidirectional: bool = opt(True, flag="--bidirectional/--no-bidirectional", help="Read the sequence both ways.")
    layers: int = opt(2, 1, 64, flag="--layers", help="Stacked RNN layers (sequencer2d: blocks).")
    hidden: int = opt(128, 1, 65536, flag="--hidden", help="Hidden units per direction.")
    dropout: float = opt(0.0, 0, lt=1, flag="--dropout",
                         help="Dropout between RNN layers (sequencer2d: on each block's two branches).")
    pool: str = opt("meanmax", choices=POOLS, flag="--pool")
    input_proj: int | str = opt(AUTO, 0, 65536, also=(AUTO,), note="linear patch embedding width, 0 = none",
                                flag="--input-proj",
                                help="Linear patch embedding width (0 = none; sequencer2d: its token width, 0 = 2 x "
                                     "--hidden x directions); auto: 128 for a patch view of an rnn encoder, else 0.")
    stacks: str = opt("joint", choices=STACKS, flag="--stacks",
                      help="joint: torch's bidirectional RNN; separate: the two directions as stacks of their own, "
                           "so that each step's forward output sees no later step (needed by cpc and apc with more "
                           "than one layer).")


def _objective_section() -> type:
    """The `objective` section: `name`, then every objective's keys, declared in the objective files
    (objectives/_shared.py and objectives/NAME.py: a new objective brings its keys with it)."""
    types_ = {"int": int, "float": float, "str": str, "bool": bool}
    fields = [("name", str, opt("contrastive", flag="--objective", parse=objectives.parts_of,
                                help=" | ".join(f"{n} ({objectives.specs()[n].summary})"
                                                for n in objectives.names(uses_labels=False))
                                + "; or a mix of them joined by + (contrastive+cpc), weighted by objective.weights"))]
    for key, decl in objectives.objective_keys().items():
        decl = dict(decl)
        default = decl.pop("default")
        tp = types_[decl.pop("type")] if "type" in decl else type(default)
        fields.append((key, Optional[tp] if default is None else tp, opt(default, **decl)))
    return dataclasses.make_dataclass("ObjectiveConfig", fields, namespace={
        "__doc__": "The objective and its settings; each objective reads the keys it declares."})


ObjectiveConfig = _objective_section()


@dataclass
class TrainConfig:
    epochs: int | str = opt("auto", 1, 1_000_000, also=("auto",), flag="--epochs",
                            help="Training epochs; auto: the epochs that make train.steps optimizer steps.")
    batch_size: int | str = opt("auto", 1, BIG, also=("auto",), flag="--batch-size",
                                help="Images per batch (per process); auto: from the number of training images "
                                     "(32-256, about 12 steps an epoch).")
    steps: int = opt(2000, 1, 10_000_000, help="optimizer steps of a run whose epochs are auto")
    budget: Optional[str] = opt(None, flag="--budget", parse=parse_duration,
                                help="Train for this wall-clock time (90s, 10m, 2h): a few timed steps choose the "
                                     "epochs that fit (instead of --epochs).")
    lr: float = opt(2e-3, gt=0, hi=10, flag="--lr", help="Peak learning rate (AdamW, warmup + cosine).")
    weight_decay: float = opt(1e-4, 0, 10)
    warmup_epochs: float = opt(1.0, 0, 1_000_000)
    grad_clip: float = opt(1.0, 0, note="max gradient norm, 0 = off")
    seed: int = opt(0, 0, 2**32 - 1, flag="--seed", help="One seed for splits, init, sampling and augmentation.")
    device: str = opt("auto", flag="--device", help="auto | cpu | cuda | cuda:N")
    precision: str = opt("auto", choices=tuple(PRECISIONS))
    devices: int = opt(1, 1, 1024, flag="--devices", help="Processes (GPUs) per node; DDP when > 1.")
    num_nodes: int = opt(1, 1, 65536, flag="--num-nodes", help="Nodes for multi-node DDP.")
    knn_every: int | str = opt("auto", 0, also=("auto",),
                               note="kNN top-1 on the test split every N epochs, 0 = off, auto = 20 times a run")
    max_steps_per_epoch: int = opt(0, 0, note="cap on steps per epoch for very large datasets, 0 = a full pass")
    logger: str = opt("none", choices=LOGGERS, flag="--logger",
                      help="Also send the training curves to TensorBoard or a CSV file (Lightning Fabric's loggers), "
                           "in the run directory beside log.jsonl.")


def k_setting(flag, help: str):
    """A number of clusters (names/clusters.py: K, `classes` or `auto`), as the cluster stage and the probe take it."""
    return opt(CLASSES, 2, MAX_K, also=(AUTO, CLASSES), spelling=spell_clusters, flag=flag, help=help)


def k_range_setting():
    return opt(K_RANGE, flag="--k-range", parse=parse_k_range,
               help="The numbers of clusters that `auto` chooses from, A:B.")


@dataclass
class ClusterConfig:
    """The clustering stage (`unsuprnn cluster`, SCAN): read only by that command."""
    clusters: int | str = k_setting(("--clusters", "-k"), "Number of clusters K: a number, classes (the dataset's "
                                    "number of classes) or auto (chosen from the frozen embeddings within --k-range).")
    k_range: str = k_range_setting()
    neighbors: int | str = opt("auto", 1, 1024, also=("auto",), flag="--neighbors",
                               help="Nearest neighbours mined per training image; auto: one per 200 training "
                                    "images, from 5 to 20.")
    heads: int = opt(10, 1, 1024, flag="--heads",
                     help="Clustering heads trained side by side; the one with the lowest loss is kept.")
    epochs: int = opt(30, 1, 1_000_000, flag="--epochs",
                      help="SCAN epochs: neighbour consistency + entropy of the mean assignment.")
    selflabel_epochs: int = opt(10, 0, 1_000_000, flag="--selflabel-epochs",
                                help="Self-labeling epochs on confident images (0 = skip).")
    budget: Optional[str] = opt(None, flag="--budget", parse=parse_duration,
                                help="Run the stage for this wall-clock time (90s, 10m, 2h): its SCAN and self-labeling "
                                     "epochs are scaled to fit, in the ratio of --epochs to --selflabel-epochs, and "
                                     "re-planned after every epoch.")
    batch_size: int = opt(128, 2, BIG)
    lr: float = opt(1e-2, gt=0, hi=10, flag="--lr", help="Learning rate of the heads during SCAN (Adam).")
    selflabel_lr: float = opt(1e-3, gt=0, hi=10)  # the kept head during self-labeling
    # fine-tuning the encoder during SCAN; 0 = frozen (as good on digits, 3x faster)
    encoder_lr: float = opt(0.0, 0, 10, note="0 = frozen encoder", flag="--encoder-lr",
                            help="Learning rate for fine-tuning the encoder; 0 keeps it frozen.")
    selflabel_encoder_lr: float = opt(0.0, 0, 10, note="0 = frozen encoder")
    weight_decay: float = opt(1e-4, 0, 10)
    entropy_weight: float = opt(5.0, 0, 1000)  # SCAN's weight on the entropy of the mean assignment
    threshold: float = opt(0.99, gt=0, lt=1)   # self-labeling: confidence a sample must pass
    strong_augment: float = opt(1.5, 1, 4)     # self-labeling: the strong view's augmentation strength, x the run's
    # umap: every head starts from k-means of the embeddings' UMAP layout; random: SCAN's own start
    init: str = opt("umap", choices=("umap", "random"))
    # at the end, keep k-means of the same embeddings (or UMAP's grouping) instead of the head where its clusters
    # split the kNN graph better (modularity; cluster/guard.py); false: always the head
    guard: bool = True


@dataclass
class ProbeSettings:
    """How a run's frozen embeddings are measured (`probe`, the report's probes, `export --cluster`):
    not part of a run's config; a probe.json records them beside each figure."""
    k: int = opt(20, 1, BIG, flag="--k", help="kNN neighbours (k-means clusters when --method kmeans alone).")
    temperature: float = opt(0.07, 1e-4, 100, note="the kNN vote temperature", flag="--temperature",
                             help="kNN vote temperature.")
    # each feature set less its bank's mean before the kNN's cosines: a direction every feature shares says
    # nothing about any image, yet it bunches the cosines near 1 and flattens the weighted vote into a majority
    # of k (the encoder's mean holds 0.66-0.95 of its squared norm), while raw pixels' vote stays sharp (RESULTS.md)
    centre: bool = opt(True, flag="--centre/--no-centre",
                       help="kNN on each feature set less its bank's mean, so that the vote weighs neighbours "
                            "alike for every feature set (off: on the features as they are).")
    clusters: int | str = k_setting("--clusters", "k-means clusters: a number K, classes (the number of classes; "
                                    "without labels, a cluster run's K or auto) or auto (chosen from the data within "
                                    "--k-range).")
    k_range: str = k_range_setting()
    duplicate_threshold: float = opt(0.995, 0, 1, flag="--duplicate-threshold",
                                     help="Cosine similarity (of centred embeddings) from which two images count as "
                                          "near-duplicates.")
    index: str = opt("flat", choices=("flat", "ivf"), flag="--index", help="kNN index: flat (exact) | ivf (approximate).")
    nlist: int = opt(1024, 1, BIG, flag="--nlist", help="IVF cells.")
    nprobe: int = opt(16, 1, BIG, flag="--nprobe", help="IVF cells searched per query.")
    restarts: Optional[int] = opt(None, 1, 1000, note="k-means restarts; none = 20 up to 20,000 queries, else 5")
    reduce: str = opt("umap", choices=("none", "umap"), flag="--reduce",
                      help="What k-means and HDBSCAN group, for every feature set alike: none: the L2-normalized "
                           "features; umap: their UMAP layout (10 dimensions, 10 neighbours, cosine; fitted on the "
                           "bank and queries together, no labels).")

    def check(self, flags: dict[str, str] | None = None) -> "ProbeSettings":
        """Every setting within its bounds, else a UserError naming its flag (`flags`: a command's own
        names for them, e.g. export's --cluster)."""
        def complaint(name, value, b):
            flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
            return f"{flag} {value!r} is out of range: it must be {b.describe()}; pass a valid value"
        check_fields(self, complaint)
        return self


@dataclass
class Config:
    """A run's settings. `cluster` is the clustering stage's own section: None in every other run, whose
    config holds its own settings only."""
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cluster: Optional[ClusterConfig] = None

    def to_dict(self) -> dict:
        """{section: {key: value}} of the sections the run has."""
        return {f.name: dataclasses.asdict(getattr(self, f.name)) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None}

    def saved(self) -> dict:
        """What a run saves (config.yaml, and inside checkpoint.pt and encoder.pt): the schema version, the
        digest and every key of every section (schema.py)."""
        return {"schema": SCHEMA, "digest": self.digest(), **self.to_dict()}

    def saved_yaml(self) -> str:
        return yaml.safe_dump(self.saved(), sort_keys=False)

    def digest(self) -> str:
        """Short hash of the config, recorded with exported embeddings: the digest a saved run was made with,
        as long as nothing was changed since it was read; otherwise computed (`schema.digest_of`)."""
        fresh = digest_of(self.to_dict())
        recorded = self.__dict__.get("_recorded_digest")
        return recorded[0] if recorded and recorded[1] == fresh else fresh


SECTION_TYPES = {"data": DataConfig, "augment": AugmentConfig, "encoder": EncoderConfig, "objective": ObjectiveConfig,
                 "train": TrainConfig, "cluster": ClusterConfig}


def _section(cfg: Config, name: str) -> Any:
    if name not in SECTION_TYPES:
        raise UserError(f"unknown config section '{name}'; valid sections: {', '.join(SECTION_TYPES)}")
    section = getattr(cfg, name)
    if section is None:
        raise UserError(f"the {name} settings are the clustering stage's own: give them to `unsuprnn cluster` "
                        "(its flags, or --set cluster.KEY=VALUE there)")
    return section


def _set(cfg: Config, dotted: str, value: Any) -> None:
    if "." not in dotted:
        raise UserError(f"config key '{dotted}' must be written as section.key (e.g. train.lr)")
    sec_name, key = dotted.split(".", 1)
    sec = _section(cfg, sec_name)
    hints = typing.get_type_hints(type(sec))
    if key not in hints:
        raise UserError(f"unknown config key '{dotted}'; valid keys in [{sec_name}]: {', '.join(hints)}")
    setattr(sec, key, read_setting(sec, key, value, dotted))


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
        if len(raw) > MAX_VALUE_CHARS:
            raise UserError(f"--set {key.strip()}: the value is {len(raw):,} characters long; no setting takes that")
        try:
            value = load_yaml(raw) if raw.strip() else raw
        except UserError as exc:
            if "YAML cannot hold" in str(exc) or "alias" in str(exc):
                raise UserError(f"--set {key.strip()}: {exc}") from None
            value = raw  # not YAML: the text itself
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
    for sec_name in cfg.to_dict():
        def complaint(name, value, bounds, sec_name=sec_name):
            key = f"{sec_name}.{name}"
            what = "is not a valid choice" if bounds.choices else "is out of range"
            return (f"{key} = {value!r} {what}: it must be {bounds.describe()}; "
                    f"pass a valid value (its flag, or --set {key}=VALUE)")
        check_fields(getattr(cfg, sec_name), complaint)
    if str(cfg.objective.weights).strip() and len(objectives.parts_of(cfg.objective.name)) == 1:
        raise UserError(f"objective.weights '{cfg.objective.weights}' weighs the parts of a mix (A+B), and "
                        f"{cfg.objective.name} is one objective; drop the setting, or name a mix")
    encoders.check_kind_settings(cfg.encoder.kind, cfg.data.view, dataclasses.asdict(cfg.encoder))
    check_spec(cfg.data.dataset)  # here, so that a mistyped dataset is one line before torch is even imported
    check_logger(cfg.train.logger)
    return cfg


def load_config(path: str | Path | None = None, flags: dict[str, Any] | None = None,
                overrides: list[str] | None = None) -> Config:
    """Resolve a new run's config: defaults <- YAML file (a recipe, or a run's saved config.yaml) <- flags
    (dotted keys, None = not given) <- --set, then check every value against its bounds.

    The run's length is one setting given two ways, train.epochs or train.budget: the flags' choice of one
    replaces the file's other, and both at once are refused rather than one silently dropped."""
    cfg = Config()
    if path is not None:
        mapping = read_config_file(path)
        if isinstance(mapping, dict) and "schema" in mapping:  # a run's saved config.yaml: every setting it ran with
            stage = "cluster" if "cluster" in mapping else "pretrain"
            cfg = config_from_saved(mapping, stage, where=f"config file {path}")
        else:
            apply_mapping(cfg, mapping)
    before = (cfg.train.epochs, cfg.train.budget)
    apply_overrides(apply_flags(cfg, flags or {}), overrides or [])
    epochs_given, budget_given = cfg.train.epochs != before[0], cfg.train.budget != before[1]
    if budget_given and not epochs_given and cfg.train.budget is not None:
        cfg.train.epochs = AUTO  # --budget plans the epochs the file set
    elif epochs_given and not budget_given and cfg.train.epochs != AUTO:
        cfg.train.budget = None  # --epochs replaces the file's --budget
    if cfg.train.budget is not None and cfg.train.epochs != AUTO:
        raise UserError(f"the run's length is set twice: train.epochs {cfg.train.epochs} and train.budget "
                        f"{cfg.train.budget}{' (in the config file)' if path is not None else ''}; pass one of them "
                        "(--epochs N or --budget TIME)")
    return check_config(cfg)


def changed(cfg: Config, flags: dict[str, Any] | None = None, overrides: list[str] | None = None) -> Config:
    """A copy of `cfg` (a saved run's, to resume or to build on) with the flags and --set applied, checked."""
    return check_config(apply_overrides(apply_flags(copy.deepcopy(cfg), flags or {}), overrides or []))


def config_from_saved(saved: Any, stage: str = "pretrain", where: str = "the saved config") -> Config:
    """The Config of a saved run (config.yaml, or the config inside checkpoint.pt or encoder.pt), of any schema
    version, as it ran (schema.py), with the digest it was made with. stage: "cluster" for a clustering stage's
    run (a version 0 file's cluster section is its own only there). A file of a version that holds every key and
    lacks one is refused: nothing a run did is left to today's defaults."""
    if not isinstance(saved, dict):
        raise UserError(f"{where} is not a mapping of sections; restore it")
    try:
        mapping = migrate(saved, stage)
    except SchemaError as exc:
        raise UserError(f"{where} cannot be read: {exc}") from None
    sections = {k: v for k, v in mapping.items() if k not in ("schema", "digest")}
    cfg = Config(cluster=ClusterConfig() if "cluster" in sections else None)
    for name in SECTIONS:
        if not isinstance(sections.get(name), dict):
            raise UserError(f"{where} lacks its {name} section (or it is not a mapping); restore it")
    apply_mapping(cfg, sections)
    for name, values in sections.items():
        lacking = [f.name for f in dataclasses.fields(SECTION_TYPES[name]) if f.name not in values]
        if lacking:
            raise UserError(f"{where} lacks {name}.{lacking[0]} (a saved config holds every key); restore it")
    cfg.__dict__["_recorded_digest"] = (mapping["digest"], cfg.digest())
    return cfg
