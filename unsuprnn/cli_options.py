"""Every command-line option, declared once: its flags, help text and the config key it overrides.

`command(app, name, OPTIONS...)` registers a function `fn(o)` as a typer command taking those
options; `o.NAME` is an option's value and `o.flags()` the {config key: value} of the options that
override the config (None = not given). Commands that share options name the same table entries;
help lists come from the registries (datasets, objectives, probe methods, baselines).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional

import typer

from .data.specs import dataset_help
from .evaluate.methods import METHOD_NAMES


@functools.cache
def config_default(key: str) -> str:
    """The config default of `section.key`, shown in --help (the one place defaults live is config.py)."""
    from .config import Config, ProbeSettings
    section, name = key.split(".")
    value = getattr(ProbeSettings() if section == "probe" else getattr(Config(), section), name)
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def objective_help() -> str:
    from .objectives import names, specs
    return " | ".join(f"{n} ({specs()[n].summary})" for n in names(uses_labels=False))


@dataclasses.dataclass(frozen=True)
class Opt:
    decls: tuple[str, ...]       # e.g. ("--dataset", "-d"); empty for an argument
    type: Any
    help: str | Callable[[], str]
    key: str | None = None       # the config key it overrides (probe.KEY: ProbeSettings); None: the command's own
    default: Any = None
    show_default: Any = True     # for command options: True (the default), False, or a text
    argument: bool = False
    metavar: str | None = None

    def parameter(self, name: str) -> inspect.Parameter:
        text = self.help() if callable(self.help) else self.help
        if self.argument:
            info = typer.Argument(metavar=self.metavar, help=text, show_default=self.show_default)
        else:
            shown = config_default(self.key) if self.key else self.show_default
            info = typer.Option(*self.decls, help=text, show_default=shown, metavar=self.metavar)
        default = inspect.Parameter.empty if self.default is ... else self.default  # ...: required
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                 annotation=Annotated[self.type, info])


def _o(*decls, type=Optional[str], **kw) -> Opt:
    return Opt(tuple(decls), type, **kw)


OPTIONS: dict[str, Opt] = {
    # the data (config section `data`)
    "dataset": _o("--dataset", "-d", key="data.dataset", help=dataset_help),
    "data_dir": _o("--data-dir", key="data.data_dir", help="Where torchvision datasets are stored."),
    "download": _o("--download/--no-download", type=Optional[bool], key="data.download",
                   help="Let torchvision fetch missing datasets."),
    "view": _o("--view", key="data.view", help="rows | columns | patches | snake"),
    "patch": _o("--patch", type=Optional[int], key="data.patch", help="Patch side for --view patches."),
    "test_fraction": _o("--test-fraction", type=Optional[float], key="data.test_fraction",
                        help="Test share for sources without their own split."),
    "grayscale": _o("--grayscale/--color", type=Optional[bool], key="data.grayscale", help="Convert images to one channel."),
    "resize": _o("--resize", type=Optional[int], key="data.resize", help="Resize images to N x N."),
    "blur": _o("--blur", type=Optional[float], key="data.blur", help="Gaussian blur sigma in pixels (0 = off)."),
    "binarize": _o("--binarize", type=Optional[float], key="data.binarize", help="Threshold in [0, 1]; pixels become 0 or 1."),
    # the encoder
    "cell": _o("--cell", key="encoder.cell", help="lstm | gru | rnn"),
    "bidirectional": _o("--bidirectional/--no-bidirectional", type=Optional[bool], key="encoder.bidirectional",
                        help="Read the sequence both ways."),
    "layers": _o("--layers", type=Optional[int], key="encoder.layers", help="Stacked RNN layers."),
    "hidden": _o("--hidden", type=Optional[int], key="encoder.hidden", help="Hidden units per direction."),
    "dropout": _o("--dropout", type=Optional[float], key="encoder.dropout", help="Dropout between RNN layers."),
    "pool": _o("--pool", key="encoder.pool", help="last | mean | max | meanmax"),
    "input_proj": _o("--input-proj", type=Optional[int], key="encoder.input_proj",
                     help="Linear patch embedding width (0 = none)."),
    # the objective and the training schedule
    "objective": _o("--objective", key="objective.name", help=objective_help),
    "temperature": _o("--temperature", type=Optional[float], key="objective.temperature",
                      help="Temperature of NT-Xent (contrastive, moco, nnclr) and DCL."),
    "epochs": _o("--epochs", type=Optional[int], key="train.epochs", help="Training epochs."),
    "batch_size": _o("--batch-size", type=Optional[int], key="train.batch_size", help="Images per batch (per process)."),
    "lr": _o("--lr", type=Optional[float], key="train.lr", help="Peak learning rate (AdamW, warmup + cosine)."),
    "seed": _o("--seed", type=Optional[int], key="train.seed",
               help="One seed for splits, init, sampling and augmentation."),
    "device": _o("--device", key="train.device", help="auto | cpu | cuda | cuda:N"),
    "devices": _o("--devices", type=Optional[int], key="train.devices", help="Processes (GPUs) per node; DDP when > 1."),
    "num_nodes": _o("--num-nodes", type=Optional[int], key="train.num_nodes", help="Nodes for multi-node DDP."),
    # the clustering stage (config section `cluster`)
    "source_run": _o("--run", "-r", type=Optional[Path], show_default=False,
                     help="Pretrained run to cluster (its encoder.pt); with --resume, default: the one recorded in --out."),
    "clusters": _o("--clusters", "-k", type=Optional[int], key="cluster.clusters",
                   help="Number of clusters K (0 = the dataset's number of classes)."),
    "neighbors": _o("--neighbors", type=Optional[int], key="cluster.neighbors",
                    help="Nearest neighbours mined per training image."),
    "heads": _o("--heads", type=Optional[int], key="cluster.heads",
                help="Clustering heads trained side by side; the lowest-loss one is kept."),
    "cluster_epochs": _o("--epochs", type=Optional[int], key="cluster.epochs",
                         help="SCAN epochs (neighbour consistency + entropy)."),
    "selflabel_epochs": _o("--selflabel-epochs", type=Optional[int], key="cluster.selflabel_epochs",
                           help="Self-labeling epochs on confident images (0 = skip)."),
    "cluster_lr": _o("--lr", type=Optional[float], key="cluster.lr", help="Learning rate of the heads (Adam)."),
    "encoder_lr": _o("--encoder-lr", type=Optional[float], key="cluster.encoder_lr",
                     help="Learning rate for fine-tuning the encoder; 0 keeps it frozen."),
    # writing a run directory
    "out": _o("--out", "-o", type=Path, default=..., help="Run directory to write."),
    "resume": _o("--resume", type=bool, default=False, help="Continue the run in --out from its last checkpoint."),
    "force": _o("--force", type=bool, default=False,
                help="Start over: replace the run already in --out (swapped in once the new run has a checkpoint)."),
    "quiet": _o("--quiet", "-q", type=bool, default=False,
                help="No progress bar; one log line per epoch (the same happens when stderr is not a terminal)."),
    "config": _o("--config", "-c", type=Optional[Path], show_default="none", help="YAML config (see configs/)."),
    "set_": _o("--set", type=Optional[List[str]], help="Override: section.key=value (repeatable)."),
    # reading a run: probe, export, report
    "run": _o("--run", "-r", type=Path, default=..., help="Run directory holding encoder.pt."),
    "probe_dataset": _o("--dataset", "-d", show_default="the run's dataset",
                        help=lambda: "Bank (train split) and, by default, queries (test split): " + dataset_help() + "."),
    "test_dataset": _o("--test-dataset", show_default="none", help="Take the queries from this source instead."),
    "method": _o("--method", "-m", type=str, default="all",
                 help=lambda: " | ".join(METHOD_NAMES) + " | all, or a comma list."),
    "baselines": _o("--baselines", type=str, default="", show_default="none",
                    help="Comma list: raw, pca, random, supervised=RUN."),
    "k": _o("--k", type=Optional[int], key="probe.k", help="kNN neighbours (k-means clusters when --method kmeans alone)."),
    "knn_temperature": _o("--temperature", type=Optional[float], key="probe.temperature", help="kNN vote temperature."),
    "probe_clusters": _o("--clusters", type=Optional[int], key="probe.clusters",
                         help="k-means clusters (none = the number of classes)."),
    "index": _o("--index", key="probe.index", help="kNN index: flat (exact) | ivf (approximate)."),
    "nlist": _o("--nlist", type=Optional[int], key="probe.nlist", help="IVF cells."),
    "nprobe": _o("--nprobe", type=Optional[int], key="probe.nprobe", help="IVF cells searched per query."),
    "json_out": _o("--json", type=Optional[Path], show_default="none", help="Also write this probe's results as JSON here."),
    "export_out": _o("--out", "-o", type=Path, default=...,
                     help="File: .npz, .npy (+ .json), .parquet (needs pyarrow) or .csv."),
    "export_dataset": _o("--dataset", "-d", show_default="the run's dataset",
                         help=lambda: dataset_help() + "."),
    "export_split": _o("--split", type=str, default="all", help="train | test | all"),
    "export_clusters": _o("--cluster", type=Optional[int], show_default="none",
                          help="Add k-means cluster ids with K clusters."),
    "normalize": _o("--normalize/--no-normalize", type=bool, default=True,
                    help="L2-normalize the embeddings, as the probes' kNN and k-means do (recorded in the file)."),
    "run_args": Opt((), Optional[List[Path]], "Run directories (or give them with --runs).", argument=True,
                    metavar="RUN", show_default=False),
    "runs": _o("--runs", type=Optional[List[Path]], metavar="RUN", show_default="none",
               help="Run directories: --runs A B or --runs A --runs B."),
    "report_out": _o("--out", "-o", type=Path, default=Path("report.html"),
                     help="report.html (self-contained) or report.md (+ a _files folder)."),
    "force_file": _o("--force", type=bool, default=False, help="Overwrite an output file that exists already."),
    "quiet_steps": _o("--quiet", "-q", type=bool, default=False, help="No progress bars or step lines."),
    # data
    "split": _o("--split", type=str, default="train", help="train | test | all"),
    "grid": _o("--grid", type=Optional[Path], show_default="none", help="Write a PNG of samples beside augmented views."),
}

DATA = ("dataset", "data_dir", "download", "view", "patch", "test_fraction", "grayscale", "resize", "blur", "binarize")
ENCODER = ("cell", "bidirectional", "layers", "hidden", "dropout", "pool", "input_proj")
TRAIN = ("epochs", "batch_size", "lr", "seed", "device", "devices", "num_nodes")
WRITE_RUN = ("resume", "force", "quiet", "config", "set_")
PROBE = ("k", "knn_temperature", "probe_clusters", "index", "nlist", "nprobe")


class Given:
    """The values of a command's options: `o.NAME`, and `o.flags()` for the config keys they override."""

    def __init__(self, values: dict[str, Any], names: tuple[str, ...]):
        self.__dict__.update(values)
        self._names = names

    def flags(self, section: str | None = None) -> dict[str, Any]:
        """{config key: value} of the options that override the config (None = not given); `section`
        keeps one section's keys."""
        keys = {OPTIONS[n].key: getattr(self, n) for n in self._names if OPTIONS[n].key}
        return {k: v for k, v in keys.items() if section is None or k.split(".")[0] == section}


def command(app: typer.Typer, name: str, *groups: tuple[str, ...] | str, wrap: Callable = lambda f: f):
    """Register `fn(o: Given)` as the command `name` taking the options of `groups` (names or tuples of
    names from OPTIONS), in that order."""
    names = tuple(n for g in groups for n in ((g,) if isinstance(g, str) else g))

    def register(fn):
        params = [OPTIONS[n].parameter(n) for n in names]

        @functools.wraps(fn)
        def run(**values):
            return fn(Given(values, names))
        run.__signature__ = inspect.Signature(params)
        run.__annotations__ = {p.name: p.annotation for p in params}
        del run.__wrapped__  # typer must read the signature above, not fn's
        app.command(name)(wrap(run))
        return fn
    return register
