"""Every command-line option, declared once. An option that sets a config key (or a probe setting) is
declared beside the key's default and bounds, in config.py (`opt(..., flag=, help=)`), and named here
by its key (`"data.view"`); a command's own options (where to write, which run to read) are declared
in OPTIONS below.

`command(app, name, OPTIONS...)` registers a function `fn(o)` as a typer command taking those
options; `o.NAME` is an option's value (a config option's name is its key with `_` for `.`:
`o.train_device`) and `o.flags()` the {config key: value} of the options that override the config
(None = not given). Help lists come from the registries (datasets, objectives, probe methods).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional

import typer

from .names.datasets import dataset_help
from .evaluate.methods import BASELINES, METHOD_NAMES


def _settings_class(section: str):
    from . import config
    return config.ProbeSettings if section == "probe" else config.SECTION_TYPES[section]


@functools.cache
def config_default(key: str) -> str:
    """The config default of `section.key`, shown in --help (the one place defaults live is config.py)."""
    section, name = key.split(".")
    value = getattr(_settings_class(section)(), name)
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


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
    # writing a run directory
    "out": _o("--out", "-o", type=Path, default=..., help="Run directory to write."),
    "resume": _o("--resume", type=bool, default=False, help="Continue the run in --out from its last checkpoint."),
    "force": _o("--force", type=bool, default=False,
                help="Start over: replace the run already in --out (swapped in once the new run has a checkpoint)."),
    "quiet": _o("--quiet", "-q", type=bool, default=False,
                help="No progress bar; one log line per epoch (the same happens when stderr is not a terminal)."),
    "config": _o("--config", "-c", type=Optional[Path], show_default="none", help="YAML config (see configs/)."),
    "set_": _o("--set", type=Optional[List[str]], help="Override: section.key=value (repeatable)."),
    "source_run": _o("--run", "-r", type=Optional[Path], show_default=False,
                     help="Pretrained run to cluster (its encoder.pt); with --resume, default: the one recorded in --out."),
    # reading a run: probe, export, report
    "run": _o("--run", "-r", type=Path, default=..., help="Run directory holding encoder.pt."),
    "probe_dataset": _o("--dataset", "-d", show_default="the run's dataset",
                        help=lambda: "Bank (train split) and, by default, queries (test split): " + dataset_help() + "."),
    "test_dataset": _o("--test-dataset", show_default="none", help="Take the queries from this source instead."),
    "method": _o("--method", "-m", type=str, default="all",
                 help=lambda: " | ".join(METHOD_NAMES) + " | all, or a comma list."),
    "baselines": _o("--baselines", type=str, default="", show_default="none",
                    help="Comma list: " + ", ".join(BASELINES) + "."),
    "json_out": _o("--json", type=Optional[Path], show_default="none", help="Also write this probe's results as JSON here."),
    "export_out": _o("--out", "-o", type=Path, default=...,
                     help="File: .npz, .npy (+ .json), .parquet (needs pyarrow) or .csv; a folder for --format "
                          "projector."),
    "export_format": _o("--format", type=str, default="auto",
                        help="auto (by --out's extension) | npz | npy | parquet | csv | lightly (lightly's embeddings "
                             "CSV) | projector (TensorBoard projector folder: tensors, metadata, sprite, config)."),
    "diagnostics": _o("--diagnostics/--no-diagnostics", type=bool, default=True,
                      help="Add outlier_score (higher = odder) and duplicate_of (the index of an earlier image it "
                           "nearly copies, -1 = none) columns."),
    "export_dataset": _o("--dataset", "-d", show_default="the run's dataset", help=lambda: dataset_help() + "."),
    "export_split": _o("--split", type=str, default="all", help="train | test | all"),
    "export_clusters": _o("--cluster", type=Optional[str], show_default="none",
                          help="Add a cluster column: K or classes (k-means), auto (k-means, K chosen within "
                               "--k-range) or hdbscan (-1 = noise)."),
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
    # every command
    "threads": _o("--threads", type=Optional[int], show_default="the CPUs this process may use",
                  help="Threads for torch, faiss and UMAP (idle threads wait passively unless OMP_WAIT_POLICY is set)."),
}


def config_option(key: str) -> Opt:
    """The option that sets config key `key` (`section.name`; `probe.name`: a ProbeSettings field), as
    declared beside its default in config.py."""
    section, name = key.split(".")
    cls = _settings_class(section)
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    base = str if str in args else args[0]  # `int | str`: a number or `auto`, read by the config
    bounds = f.metadata.get("bounds")
    text = f.metadata["help"] or (" | ".join(map(str, bounds.choices)) if bounds and bounds.choices else name)
    return Opt(f.metadata["flag"], Optional[base], text, key=key)


def option(name: str) -> Opt:
    return config_option(name) if "." in name else OPTIONS[name]


DATA = tuple(f"data.{k}" for k in ("dataset", "data_dir", "download", "view", "patch", "test_fraction", "grayscale",
                                    "resize", "blur", "binarize", "intensity"))
ENCODER = tuple(f"encoder.{k}" for k in ("kind", "cell", "bidirectional", "layers", "hidden", "dropout", "pool", "input_proj",
                                         "stacks"))
TRAIN = tuple(f"train.{k}" for k in ("epochs", "batch_size", "budget", "lr", "seed", "device", "devices",
                                     "num_nodes", "logger"))
AUGMENT = ("augment.hflip", "augment.colour_jitter")
WRITE_RUN = ("resume", "force", "quiet", "config", "set_")
PROBE = tuple(f"probe.{k}" for k in ("k", "temperature", "centre", "clusters", "k_range", "reduce", "index", "nlist", "nprobe"))
CLUSTER = tuple(f"cluster.{k}" for k in ("clusters", "k_range", "neighbors", "heads", "epochs", "selflabel_epochs",
                                         "budget", "lr", "encoder_lr"))


def _param(name: str) -> str:
    """The Python name of an option: a config key with `_` for `.` (`train.device` -> `train_device`)."""
    return name.replace(".", "_")


class Given:
    """The values of a command's options: `o.NAME`, and `o.flags()` for the config keys they override."""

    def __init__(self, values: dict[str, Any], names: tuple[str, ...]):
        self.__dict__.update(values)
        self._names = names

    def set(self, key: str, value: Any) -> None:
        setattr(self, _param(key), value)

    def flags(self, section: str | None = None) -> dict[str, Any]:
        """{config key: value} of the options that override the config (None = not given); `section`
        keeps one section's keys."""
        keys = {n: getattr(self, _param(n)) for n in self._names if "." in n}
        return {k: v for k, v in keys.items() if section is None or k.split(".")[0] == section}


def command(app: typer.Typer, name: str, *groups: tuple[str, ...] | str, wrap: Callable = lambda f: f):
    """Register `fn(o: Given)` as the command `name` taking the options of `groups` (names or tuples of
    names from OPTIONS), in that order, and --threads: the threads are chosen before the command's work
    imports torch (threads.py)."""
    names = tuple(n for g in groups for n in ((g,) if isinstance(g, str) else g)) + ("threads",)

    def register(fn):
        params = [option(n).parameter(_param(n)) for n in names]

        @functools.wraps(fn)
        def run(**values):
            from .threads import MAX_THREADS, choose
            if values["threads"] is not None and not 1 <= values["threads"] <= MAX_THREADS:
                from .errors import UserError
                raise UserError(f"--threads {values['threads']} is out of range: it must be in [1, {MAX_THREADS}]")
            choose(values["threads"])
            from .progress import configure
            quiet_steps = values.get("quiet_steps")  # probe, export, report: no bars or lines
            configure(None if quiet_steps else lambda line: print(line, file=sys.stderr, flush=True),
                      bars=not (quiet_steps or values.get("quiet")))
            return fn(Given(values, names))
        run.__signature__ = inspect.Signature(params)
        run.__annotations__ = {p.name: p.annotation for p in params}
        del run.__wrapped__  # typer must read the signature above, not fn's
        app.command(name)(wrap(run))
        return fn
    return register
