"""The `unsuprnn` command line: parse, load the config, call the library. Nothing more.

Options are declared once, in `cli_options.py`; each command names the ones it takes.
"""

from __future__ import annotations

import functools
from typing import Annotated

import typer

from .cli_options import AUGMENT, CLUSTER, DATA, ENCODER, PROBE, TRAIN, WRITE_RUN, Given, command
from .errors import RunInterrupted, UserError

# Plain click help: readable in a redirected log, and no `<bool>` type shown after every flag.
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]},
                  help="Unsupervised representation learning with recurrent encoders over image sequences.")


def _print_version(value: bool):
    if value:
        from . import __version__
        typer.echo(f"unsuprnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="Print the version and exit.")] = False):
    """Unsupervised representation learning with recurrent encoders over image sequences.

    Defaults come from unsuprnn/config.py; a --config file overrides them, flags override both.
    """


def one_line(text: str) -> str:
    """A message on one line: a newline inside a value (a path, a dataset name) must not split it."""
    return " ".join(text.replace("\r", "\n").split("\n")).strip()


def user_errors(fn, resumable: bool = False):
    """Turn a UserError, or what the system refused (a file that cannot be written, memory), into one
    `error: ...` line on stderr and exit code 2; Ctrl-C into one line that says what it left."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {one_line(str(exc))}", err=True)
        except OSError as exc:  # a path the system refuses: permissions, /proc, a name too long, an immutable file
            where = f" {one_line(str(exc.filename))}" if exc.filename else ""
            typer.echo(f"error: cannot use{where}: {exc.strerror or exc}; check the path and its permissions (the "
                       "files there are as they were)", err=True)
        except MemoryError:
            typer.echo("error: out of memory; use a smaller set, batch or model", err=True)
        except KeyboardInterrupt as exc:
            why = exc.args[0] if isinstance(exc, RunInterrupted) else \
                "interrupted; rerun with --resume to continue from the last checkpoint" if resumable else \
                "interrupted; nothing was written (outputs are written whole or not at all)"
            typer.echo(f"error: {why}", err=True)
            raise typer.Exit(130) from None
        raise typer.Exit(UserError.exit_code)
    return wrapper


cmd = functools.partial(command, app, wrap=user_errors)
run_cmd = functools.partial(command, app, wrap=functools.partial(user_errors, resumable=True))  # writes a run


def _say(quiet: bool):
    """Step lines on stderr (one per step, readable in a redirected log), or nothing with --quiet."""
    return (lambda line: None) if quiet else (lambda line: typer.echo(line, err=True))


def _device(name: str | None):
    from .devices import resolve_device
    return resolve_device(name or "auto")


@cmd("data", DATA, AUGMENT, "split", "grid", "force_file", "train.seed", "config", "set_")
def data_cmd(o: Given):
    """Describe a dataset: split sizes, image shape, classes and the sequence shape of a view."""
    from .config import load_config
    from .data.describe import describe_dataset

    cfg = load_config(o.config, o.flags(), o.set_)
    if o.grid is not None:
        from .atomic import check_output_file
        check_output_file(o.grid, o.force_file, "--grid")
    for line in describe_dataset(cfg, o.split, o.grid):
        typer.echo(line)


def _train_command(o: Given, objective: str | None):
    from .config import changed, load_config
    from .runs.files import saved_config

    if o.resume and o.config is None and (o.out / "config.yaml").is_file():
        cfg = changed(saved_config(o.out), o.flags(), o.set_)  # a resumed run keeps its own settings unless told
    else:
        cfg = load_config(o.config, o.flags(), o.set_)
    from .names.objectives import spec_of
    if objective is not None:
        cfg.objective.name = objective
    elif spec_of(cfg.objective.name).uses_labels:
        raise UserError(f"pretrain is label-free and {cfg.objective.name} trains with labels; use `unsuprnn "
                        "supervised` for the supervised reference")
    from .train import train  # torch and friends: imported once the config has passed its checks
    metrics = train(cfg, o.out, resume=o.resume, force=o.force, quiet=o.quiet, started=COMMAND_STARTED)
    if metrics is None:  # a DDP rank other than 0: rank 0 reports
        return
    if metrics.get("collapsed"):
        typer.echo(f"warning: the embeddings collapsed: the std of L2-normalized embeddings is "
                   f"{metrics['embedding_std']:.4f}, about {metrics['embedding_std_healthy']:.4f} is healthy; "
                   "try a lower --lr, another objective or more augmentation", err=True)
    if metrics.get("undertrained"):
        u = metrics["undertrained"]
        typer.echo(f"note: the run looks undertrained: {u['why']}; train longer with {u['try']}", err=True)
    line = f"done: {o.out} ({cfg.objective.name}, {metrics['epochs']} epochs, loss {metrics['final_loss']:.4f}"
    if metrics.get("knn_top1") is not None:
        line += f", kNN top-1 {metrics['knn_top1']:.2f}%"
    if "test" in metrics:
        t = metrics["test"]
        line += f", test accuracy {t['accuracy']:.2f}%, macro F1 {t['f1']:.2f}%"
    typer.echo(line + ")")


@run_cmd("pretrain", "out", "objective.name", "objective.temperature", DATA, AUGMENT, ENCODER, TRAIN, WRITE_RUN)
def pretrain_cmd(o: Given):
    """Pretrain a recurrent encoder without labels (contrastive, autoencoder or one of lightly's methods)."""
    _train_command(o, None)


@run_cmd("supervised", "out", DATA, AUGMENT, ENCODER, TRAIN, WRITE_RUN)
def supervised_cmd(o: Given):
    """Train the same encoder with labels: the supervised reference for unsupervised runs."""
    _train_command(o, "supervised")


@run_cmd("cluster", "out", "source_run", CLUSTER, "train.seed", "train.device", "train.logger", "resume", "force", "quiet", "set_")
def cluster_cmd(o: Given):
    """Cluster a pretrained run's images without labels (SCAN: mined neighbours, then self-labeling)."""
    from .cluster.stage import source_config, train_clusters
    from .config import changed
    from .runs.files import saved_config

    if o.resume and (o.out / "config.yaml").is_file():
        cfg = saved_config(o.out)  # a resumed run keeps its own settings unless told otherwise
    elif o.source_run is not None:
        cfg = source_config(o.source_run)
    else:
        raise UserError("pass --run DIR: the pretrained run whose encoder is to be clustered")
    cfg = changed(cfg, o.flags(), o.set_)
    m = train_clusters(cfg, o.source_run, o.out, resume=o.resume, force=o.force, quiet=o.quiet,
                       started=COMMAND_STARTED)
    chosen = f" chosen from {m.get('k_searched', cfg.cluster.k_range)} by modularity" if m.get("k_auto") else ""
    line = f"done: {o.out} ({m['clusters']} clusters{chosen}, head {m['selected_head']}"
    if m.get("neighbor_accuracy") is not None:
        line += f", neighbour accuracy {m['neighbor_accuracy']:.2f}%"
    if "accuracy" in m.get("test", {}):
        t = m["test"]
        line += f", test cluster accuracy {t['accuracy']:.2f}%, NMI {t['nmi']:.3f}, ARI {t['ari']:.3f}"
    typer.echo(line + ")")


def _probe_settings(o: Given, flags: dict | None = None):
    """The ProbeSettings of the probe options given (the others at their defaults), read as their declared
    types (`--clusters 4` or `auto`) and checked."""
    from .bounds import read_setting
    from .config import ProbeSettings
    given = {k.split(".")[1]: v for k, v in o.flags("probe").items() if v is not None}
    return ProbeSettings(**{k: read_setting(ProbeSettings, k, v, k) for k, v in given.items()}).check(flags)


@cmd("probe", "run", "method", "probe_dataset", "test_dataset", "baselines", PROBE, "json_out", "force_file",
     "train.device", "quiet_steps")
def probe_cmd(o: Given):
    """Score frozen embeddings: FAISS kNN, linear probe, k-means, beside baselines.

    Every measurement is kept in RUN/probe.json: a narrower probe adds to earlier ones.
    """
    import json

    from .evaluate.methods import METHOD_NAMES
    from .atomic import check_output_file, write_text
    from .runs.files import check_run

    check_run(o.run)
    methods = METHOD_NAMES if o.method == "all" else tuple(m.strip() for m in o.method.split(","))
    if methods == ("kmeans",) and o.probe_clusters is None and o.probe_k is not None:
        o.set("probe.clusters", o.probe_k)  # `--method kmeans --k 5`: k is the number of clusters
    settings = _probe_settings(o)
    if o.json_out is not None:
        check_output_file(o.json_out, o.force_file, "--json")
    from .evaluate.probe_store import check_store, record_probe
    if o.run.is_dir():
        check_store(o.run)
    from .evaluate.probe import run_probe  # torch and friends: once the options have passed their checks
    from .evaluate.table import format_table
    report = run_probe(o.run, methods, [b for b in o.baselines.split(",") if b.strip()], o.probe_dataset,
                       o.test_dataset, settings, _device(o.train_device), progress=not o.quiet_steps,
                       explicit=o.method != "all", say=_say(o.quiet_steps))
    if o.run.is_dir():
        store = record_probe(o.run, report)
        kept = sorted({(e["features"], e["method"]) for e in store["measurements"]}
                      - {(f, m) for f, res in report["results"].items() for m in res})
        if kept:
            _say(o.quiet_steps)(f"{o.run / 'probe.json'} also keeps {len(kept)} earlier measurement(s) of this "
                                "encoder: " + ", ".join(f"{f} {m}" for f, m in kept[:8]) + (" ..." if len(kept) > 8 else ""))
    if o.json_out is not None:
        write_text(o.json_out, json.dumps(report, indent=2) + "\n")
    typer.echo(f"bank: {report['bank']} train ({report['bank_size']}), queries: {report['queries']} "
               f"({report['query_size']}), embedding dim {report['embedding_dim']}")
    typer.echo(format_table(report))
    for name, res in report["results"].items():
        if "note" in res.get("kmeans", {}):
            typer.echo(f"{name} k-means: {res['kmeans']['note']}")
        searched = res.get("kmeans", {}).get("k_searched")
        if searched and searched != settings.k_range:
            typer.echo(f"{name} k-means: auto K searched {searched} of --k-range {settings.k_range} (at most half "
                       f"the {report['query_size']} queries)")
    for note in report["notes"]:
        typer.echo(note)


@cmd("export", "run", "export_out", "export_format", "export_dataset", "export_split", "export_clusters",
     "probe.k_range", "diagnostics", "probe.duplicate_threshold", "normalize", "force_file", "train.device",
     "quiet_steps")
def export_cmd(o: Given):
    """Write embeddings with labels, indices, split, cluster ids, outlier scores, near-duplicates and the run's
    config hash, as a file (.npz, .npy, .parquet, .csv), lightly's CSV or a TensorBoard projector folder."""
    from .runs.files import check_run

    check_run(o.run)
    settings = _probe_settings(o, {"k_range": "--k-range", "duplicate_threshold": "--duplicate-threshold"})
    from .export.gather import parse_cluster
    cluster = parse_cluster(o.export_clusters)
    from .export import check_target, gather_embeddings, write_embeddings
    fmt = check_target(o.export_out, o.force_file, o.export_format)  # format, library, path: before any work
    cols = gather_embeddings(o.run, o.export_dataset, o.export_split, _device(o.train_device), cluster,
                             progress=not o.quiet_steps, normalize=o.normalize, diagnostics=o.diagnostics,
                             settings=settings, thumbnails=64 if fmt == "projector" else 0)
    write_embeddings(cols, o.export_out, o.force_file, o.export_format)
    typer.echo(f"wrote {o.export_out}: {len(cols['embeddings'])} x {cols['embeddings'].shape[1]} embeddings "
               f"({o.export_split}, {cols['normalization']} normalization, config {cols['config_hash']})")
    if "cluster_method" in cols:
        typer.echo(f"cluster: {cols['cluster_method']}")
    if "duplicate_of" in cols:
        dup = int((cols["duplicate_of"] >= 0).sum())
        typer.echo(f"diagnostics: outlier_score (highest {float(cols['outlier_score'].max()):.3f}), "
                   f"{dup} near-duplicate{'s' if dup != 1 else ''} (duplicate_of)")
    for note in cols["notes"]:
        typer.echo(f"note: {note}")


@cmd("report", "run_args", "runs", "report_out", "probe.k_range", "probe.duplicate_threshold", "force_file",
     "train.device", "quiet_steps")
def report_cmd(o: Given):
    """Write an HTML or Markdown report: one comparison table per dataset with raw-pixel, PCA, UMAP, random and
    supervised references, provenance, loss curves, UMAP maps, cluster galleries, confusion matrices.

    Runs lacking probe measurements are probed first (only what is missing).
    """
    settings = _probe_settings(o)
    from .report.build import build_report
    # `--runs A B`: click gives the option A and the arguments B, so both lists are runs
    build_report(list(o.runs or []) + list(o.run_args or []), o.report_out, _device(o.train_device), force=o.force_file,
                 say=_say(o.quiet_steps), settings=settings)
    typer.echo(f"wrote {o.report_out}")


COMMAND_STARTED = None  # set by main(): a --budget counts from the process's start, imports included


def main() -> None:
    """The `unsuprnn` command: click's own usage errors (an unknown option, a missing value) as one
    `error:` line and exit code 2, like every other error."""
    import sys
    global COMMAND_STARTED
    from . import STARTED
    COMMAND_STARTED = STARTED
    # click's UsageError (typer ships its own click): the base of typer.BadParameter
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    try:
        code = app(standalone_mode=False)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `unsuprnn` alone: the help
            typer.echo(exc.format_message())
            sys.exit(0)
        where = f" (see: {exc.ctx.command_path} -h)" if getattr(exc, "ctx", None) is not None else ""
        typer.echo(f"error: {one_line(exc.format_message())}{where}", err=True)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
