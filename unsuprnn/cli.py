"""The `unsuprnn` command line: parse, load the config, call the library. Nothing more."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, List, Optional

import typer

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


def user_errors(fn):
    """Turn a UserError into one `error: ...` line on stderr and exit code 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(UserError.exit_code) from None
        except KeyboardInterrupt as exc:
            why = exc.args[0] if isinstance(exc, RunInterrupted) else \
                "interrupted; rerun with --resume to continue from the last checkpoint"
            typer.echo(f"error: {why}", err=True)
            raise typer.Exit(130) from None
    return wrapper


def _default(key: str) -> str:
    """The config default of `section.key`, shown in --help (the one place defaults live is config.py)."""
    from .config import Config
    section, name = key.split(".")
    value = getattr(getattr(Config(), section), name)
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def flag(*names: str, key: str, help: str, **kw):
    """An option that overrides config key `key` (None = keep the config's value), its default shown."""
    return typer.Option(*names, help=help, show_default=_default(key), **kw)


DATASETS = ("digits | mnist | fashion-mnist | kmnist | emnist-SPLIT | cifar10 | cifar100 | svhn | idx:DIR | "
            "folder:DIR | npz:FILE | npy:FILE")
# Options shared by several commands (one definition each, reused by annotation).
Dataset = Annotated[Optional[str], flag("--dataset", "-d", key="data.dataset", help=DATASETS)]
DataDir = Annotated[Optional[str], flag("--data-dir", key="data.data_dir", help="Where torchvision datasets are stored.")]
Download = Annotated[Optional[bool], flag("--download/--no-download", key="data.download", help="Let torchvision fetch missing datasets.")]
View = Annotated[Optional[str], flag("--view", key="data.view", help="rows | columns | patches | snake")]
Patch = Annotated[Optional[int], flag("--patch", key="data.patch", help="Patch side for --view patches.")]
TestFraction = Annotated[Optional[float], flag("--test-fraction", key="data.test_fraction", help="Test share for sources without their own split.")]
Grayscale = Annotated[Optional[bool], flag("--grayscale/--color", key="data.grayscale", help="Convert images to one channel.")]
Resize = Annotated[Optional[int], flag("--resize", key="data.resize", help="Resize images to N x N.")]
Blur = Annotated[Optional[float], flag("--blur", key="data.blur", help="Gaussian blur sigma in pixels (0 = off).")]
Binarize = Annotated[Optional[float], flag("--binarize", key="data.binarize", help="Threshold in [0, 1]; pixels become 0 or 1.")]
Seed = Annotated[Optional[int], flag("--seed", key="train.seed", help="One seed for splits, init, sampling and augmentation.")]
Device = Annotated[Optional[str], flag("--device", key="train.device", help="auto | cpu | cuda | cuda:N")]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (see configs/).", show_default="none")]
Sets = Annotated[Optional[List[str]], typer.Option("--set", help="Override: section.key=value (repeatable).")]


def data_flags(dataset=None, data_dir=None, download=None, view=None, patch=None, test_fraction=None,
               grayscale=None, resize=None, blur=None, binarize=None) -> dict:
    return {"data.dataset": dataset, "data.data_dir": data_dir, "data.download": download,
            "data.view": view, "data.patch": patch, "data.test_fraction": test_fraction,
            "data.grayscale": grayscale, "data.resize": resize, "data.blur": blur, "data.binarize": binarize}


@app.command("data")
@user_errors
def data_cmd(dataset: Dataset = None, data_dir: DataDir = None, download: Download = None,
             split: Annotated[str, typer.Option(help="train | test | all")] = "train",
             view: View = None, patch: Patch = None, test_fraction: TestFraction = None,
             grayscale: Grayscale = None, resize: Resize = None, blur: Blur = None, binarize: Binarize = None,
             grid: Annotated[Optional[Path], typer.Option(help="Write a PNG of samples beside augmented views.", show_default="none")] = None,
             force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --grid file.")] = False,
             seed: Seed = None, config: ConfigFile = None, set_: Sets = None):
    """Describe a dataset: split sizes, image shape, classes and the sequence shape of a view."""
    from .config import load_config
    from .data import load_dataset
    from .data.augment import BatchAugment
    from .data.views import make_view

    flags = data_flags(dataset, data_dir, download, view, patch, test_fraction, grayscale, resize, blur, binarize)
    flags["train.seed"] = seed
    cfg = load_config(config, flags, set_)
    if grid is not None:
        from .atomic import check_output_file
        check_output_file(grid, force, "--grid")
    ds = load_dataset(cfg.data, cfg.train.seed)
    images, labels = ds.split(split)
    c, h, w = ds.shape
    v = make_view(cfg.data.view, ds.shape, cfg.data.patch)
    t, d = v.seq_shape()
    info = ds.split_info
    how = ("own split" if info["source"] == "own"
           else f"stratified split, test fraction {info['test_fraction']}, seed {info['seed']}")
    typer.echo(f"dataset: {ds.spec} ({how})")
    typer.echo("splits: " + ", ".join(f"{k} {n}" for k, n in info["sizes"].items()))
    typer.echo(f"image shape: {c} x {h} x {w} (C x H x W), uint8")
    if ds.has_labels:
        counts = labels[labels >= 0].bincount(minlength=len(ds.classes)).tolist()
        unl = int((labels < 0).sum())
        typer.echo(f"classes ({len(ds.classes)}) in {split} [{len(images)} images]: "
                   + ", ".join(f"{name}: {n}" for name, n in zip(ds.classes, counts))
                   + (f", unlabeled: {unl}" if unl else ""))
    else:
        typer.echo(f"classes: none (unlabeled) in {split} [{len(images)} images]")
    typer.echo(f"view: {cfg.data.view} -> sequence T x D = {t} x {d}")
    if grid is not None:
        from .data.grid import save_augmentation_grid
        save_augmentation_grid(images, BatchAugment(cfg.augment), grid, seed=cfg.train.seed)
        typer.echo(f"wrote {grid}")


Epochs = Annotated[Optional[int], flag("--epochs", key="train.epochs", help="Training epochs.")]
BatchSize = Annotated[Optional[int], flag("--batch-size", key="train.batch_size", help="Images per batch (per process).")]
Lr = Annotated[Optional[float], flag("--lr", key="train.lr", help="Peak learning rate (AdamW, warmup + cosine).")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Run directory to write.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")]
Force = Annotated[bool, typer.Option("--force", help="Start over: replace the run already in --out (swapped in once the new run has a checkpoint).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; one log line per epoch (the same happens when stderr is not a terminal).")]
QuietBars = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or step lines.")]
Cell = Annotated[Optional[str], flag("--cell", key="encoder.cell", help="lstm | gru | rnn")]
Bidirectional = Annotated[Optional[bool], flag("--bidirectional/--no-bidirectional", key="encoder.bidirectional", help="Read the sequence both ways.")]
Layers = Annotated[Optional[int], flag("--layers", key="encoder.layers", help="Stacked RNN layers.")]
Hidden = Annotated[Optional[int], flag("--hidden", key="encoder.hidden", help="Hidden units per direction.")]
Dropout = Annotated[Optional[float], flag("--dropout", key="encoder.dropout", help="Dropout between RNN layers.")]
Pool = Annotated[Optional[str], flag("--pool", key="encoder.pool", help="last | mean | max | meanmax")]
InputProj = Annotated[Optional[int], flag("--input-proj", key="encoder.input_proj", help="Linear patch embedding width (0 = none).")]
Devices = Annotated[Optional[int], flag("--devices", key="train.devices", help="Processes (GPUs) per node; DDP when > 1.")]
NumNodes = Annotated[Optional[int], flag("--num-nodes", key="train.num_nodes", help="Nodes for multi-node DDP.")]


def _train_command(objective: str, flags: dict, config, set_, out, resume, force, quiet):
    from .config import load_config
    from .rundir import saved_config
    from .train import train

    if resume and config is None and (out / "config.yaml").is_file():
        base = saved_config(out)  # a resumed run keeps its own settings unless told otherwise
        cfg = load_config(None, {**{f"{s}.{k}": v for s, sec in base.to_dict().items() for k, v in sec.items()},
                                 **{k: v for k, v in flags.items() if v is not None}}, set_)
    else:
        cfg = load_config(config, flags, set_)
    if objective == "supervised":
        cfg.objective.name = "supervised"
    elif cfg.objective.name == "supervised":
        raise UserError("pretrain is label-free; use `unsuprnn supervised` for the supervised reference")
    metrics = train(cfg, out, resume=resume, force=force, quiet=quiet)
    if metrics is None:  # a DDP rank other than 0: rank 0 reports
        return
    if metrics.get("collapsed"):
        typer.echo(f"warning: the embeddings collapsed: the std of L2-normalized embeddings is "
                   f"{metrics['embedding_std']:.4f}, about {metrics['embedding_std_healthy']:.4f} is healthy; "
                   "try a lower --lr, another objective or more augmentation", err=True)
    line = f"done: {out} ({cfg.objective.name}, {metrics['epochs']} epochs, loss {metrics['final_loss']:.4f}"
    if metrics.get("knn_top1") is not None:
        line += f", kNN top-1 {metrics['knn_top1']:.2f}%"
    if "test" in metrics:
        t = metrics["test"]
        line += f", test accuracy {t['accuracy']:.2f}%, macro F1 {t['f1']:.2f}%"
    typer.echo(line + ")")


def _train_flags(dataset, data_dir, download, view, patch, test_fraction, grayscale, resize, blur, binarize,
                 cell, bidirectional, layers, hidden, dropout, pool, input_proj, epochs, batch_size, lr, seed,
                 device, devices, num_nodes) -> dict:
    return data_flags(dataset, data_dir, download, view, patch, test_fraction, grayscale, resize, blur, binarize) | {
        "encoder.cell": cell, "encoder.bidirectional": bidirectional, "encoder.layers": layers,
        "encoder.hidden": hidden, "encoder.dropout": dropout, "encoder.pool": pool, "encoder.input_proj": input_proj,
        "train.epochs": epochs, "train.batch_size": batch_size, "train.lr": lr, "train.seed": seed,
        "train.device": device, "train.devices": devices, "train.num_nodes": num_nodes}


@app.command("pretrain")
@user_errors
def pretrain_cmd(out: Out, objective: Annotated[Optional[str], flag("--objective", key="objective.name", help="contrastive | autoencoder | byol | simsiam | vicreg | barlowtwins | moco | nnclr | dcl")] = None,
                 temperature: Annotated[Optional[float], flag("--temperature", key="objective.temperature", help="Temperature of NT-Xent (contrastive, moco, nnclr) and DCL.")] = None,
                 dataset: Dataset = None, data_dir: DataDir = None, download: Download = None, view: View = None,
                 patch: Patch = None, test_fraction: TestFraction = None, grayscale: Grayscale = None,
                 resize: Resize = None, blur: Blur = None, binarize: Binarize = None, cell: Cell = None,
                 bidirectional: Bidirectional = None, layers: Layers = None, hidden: Hidden = None,
                 dropout: Dropout = None, pool: Pool = None, input_proj: InputProj = None, epochs: Epochs = None,
                 batch_size: BatchSize = None, lr: Lr = None, seed: Seed = None, device: Device = None,
                 devices: Devices = None, num_nodes: NumNodes = None, resume: Resume = False, force: Force = False,
                 quiet: Quiet = False, config: ConfigFile = None, set_: Sets = None):
    """Pretrain a recurrent encoder without labels (contrastive, autoencoder or one of lightly's methods)."""
    flags = _train_flags(dataset, data_dir, download, view, patch, test_fraction, grayscale, resize, blur, binarize,
                         cell, bidirectional, layers, hidden, dropout, pool, input_proj, epochs, batch_size, lr,
                         seed, device, devices, num_nodes)
    flags |= {"objective.name": objective, "objective.temperature": temperature}
    _train_command("pretrain", flags, config, set_, out, resume, force, quiet)


@app.command("supervised")
@user_errors
def supervised_cmd(out: Out, dataset: Dataset = None, data_dir: DataDir = None, download: Download = None,
                   view: View = None, patch: Patch = None, test_fraction: TestFraction = None,
                   grayscale: Grayscale = None, resize: Resize = None, blur: Blur = None, binarize: Binarize = None,
                   cell: Cell = None, bidirectional: Bidirectional = None, layers: Layers = None,
                   hidden: Hidden = None, dropout: Dropout = None, pool: Pool = None, input_proj: InputProj = None,
                   epochs: Epochs = None, batch_size: BatchSize = None, lr: Lr = None, seed: Seed = None,
                   device: Device = None, devices: Devices = None, num_nodes: NumNodes = None,
                   resume: Resume = False, force: Force = False, quiet: Quiet = False, config: ConfigFile = None,
                   set_: Sets = None):
    """Train the same encoder with labels: the supervised reference for unsupervised runs."""
    flags = _train_flags(dataset, data_dir, download, view, patch, test_fraction, grayscale, resize, blur, binarize,
                         cell, bidirectional, layers, hidden, dropout, pool, input_proj, epochs, batch_size, lr,
                         seed, device, devices, num_nodes)
    _train_command("supervised", flags, config, set_, out, resume, force, quiet)


@app.command("cluster")
@user_errors
def cluster_cmd(out: Out,
                run: Annotated[Optional[Path], typer.Option("--run", "-r", help="Pretrained run to cluster (its encoder.pt); with --resume, default: the one recorded in --out.")] = None,
                clusters: Annotated[Optional[int], typer.Option("--clusters", "-k", help="Number of clusters K.", show_default="the dataset's number of classes")] = None,
                neighbors: Annotated[Optional[int], flag("--neighbors", key="cluster.neighbors", help="Nearest neighbours mined per training image.")] = None,
                heads: Annotated[Optional[int], flag("--heads", key="cluster.heads", help="Clustering heads trained side by side; the lowest-loss one is kept.")] = None,
                epochs: Annotated[Optional[int], flag("--epochs", key="cluster.epochs", help="SCAN epochs (neighbour consistency + entropy).")] = None,
                selflabel_epochs: Annotated[Optional[int], flag("--selflabel-epochs", key="cluster.selflabel_epochs", help="Self-labeling epochs on confident images (0 = skip).")] = None,
                lr: Annotated[Optional[float], flag("--lr", key="cluster.lr", help="Learning rate of the heads (Adam).")] = None,
                encoder_lr: Annotated[Optional[float], flag("--encoder-lr", key="cluster.encoder_lr", help="Learning rate for fine-tuning the encoder; 0 keeps it frozen.")] = None,
                seed: Seed = None, device: Device = None, resume: Resume = False, force: Force = False,
                quiet: Quiet = False, set_: Sets = None):
    """Cluster a pretrained run's images without labels (SCAN: mined neighbours, then self-labeling)."""
    from .cluster import source_config, train_clusters
    from .config import apply_flags, apply_overrides
    from .rundir import saved_config

    flags = {"cluster.clusters": clusters, "cluster.neighbors": neighbors, "cluster.heads": heads,
             "cluster.epochs": epochs, "cluster.selflabel_epochs": selflabel_epochs, "cluster.lr": lr,
             "cluster.encoder_lr": encoder_lr, "train.seed": seed, "train.device": device}
    if resume and (out / "config.yaml").is_file():
        cfg = saved_config(out)  # a resumed run keeps its own settings unless told otherwise
    elif run is not None:
        cfg = source_config(run)
    else:
        raise UserError("pass --run DIR: the pretrained run whose encoder is to be clustered")
    apply_overrides(apply_flags(cfg, flags), set_ or [])
    m = train_clusters(cfg, run, out, resume=resume, force=force, quiet=quiet)
    line = f"done: {out} ({m['clusters']} clusters, head {m['selected_head']}"
    if m.get("neighbor_accuracy") is not None:
        line += f", neighbour accuracy {m['neighbor_accuracy']:.2f}%"
    if "accuracy" in m.get("test", {}):
        t = m["test"]
        line += f", test cluster accuracy {t['accuracy']:.2f}%, NMI {t['nmi']:.3f}, ARI {t['ari']:.3f}"
    typer.echo(line + ")")


Run = Annotated[Path, typer.Option("--run", "-r", help="Run directory holding encoder.pt.")]


def _probe_device(device: Optional[str]):
    from .devices import resolve_device
    return resolve_device(device or "auto")


def _say(quiet: bool):
    """Step lines on stderr (one per step, readable in a redirected log), or nothing with --quiet."""
    return (lambda line: None) if quiet else (lambda line: typer.echo(line, err=True))


@app.command("probe")
@user_errors
def probe_cmd(run: Run,
              method: Annotated[str, typer.Option("--method", "-m", help="knn | linear | kmeans | all, or a comma list.")] = "all",
              dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Bank (train split) and, by default, queries (test split): " + DATASETS + ".", show_default="the run's dataset")] = None,
              test_dataset: Annotated[Optional[str], typer.Option("--test-dataset", help="Take the queries from this source instead.", show_default="none")] = None,
              baselines: Annotated[str, typer.Option("--baselines", help="Comma list: raw, pca, random, supervised=RUN.", show_default="none")] = "",
              k: Annotated[int, typer.Option("--k", help="kNN neighbours (k-means clusters when --method kmeans alone).")] = 20,
              temperature: Annotated[float, typer.Option("--temperature", help="kNN vote temperature.")] = 0.07,
              clusters: Annotated[Optional[int], typer.Option("--clusters", help="k-means clusters.", show_default="the number of classes")] = None,
              json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write this probe's results as JSON here.", show_default="none")] = None,
              index: Annotated[str, typer.Option("--index", help="kNN index: flat (exact) | ivf (approximate).")] = "flat",
              nlist: Annotated[int, typer.Option("--nlist", help="IVF cells.")] = 1024,
              nprobe: Annotated[int, typer.Option("--nprobe", help="IVF cells searched per query.")] = 16,
              force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --json file.")] = False,
              device: Device = None, quiet: QuietBars = False):
    """Score frozen embeddings: FAISS kNN, linear probe, k-means, beside baselines.

    Every measurement is kept in RUN/probe.json: a narrower probe adds to earlier ones.
    """
    import json

    from .atomic import check_output_file, write_text
    from .config import check_options
    from .evaluate.probe import METHODS, format_table, run_probe
    from .evaluate.probe_store import record_probe

    methods = METHODS if method == "all" else tuple(m.strip() for m in method.split(","))
    if methods == ("kmeans",) and clusters is None and k != 20:
        clusters = k
    check_options(k=k, temperature=temperature, clusters=clusters, nlist=nlist, nprobe=nprobe)
    if json_out is not None:
        check_output_file(json_out, force, "--json")
    report = run_probe(run, methods, [b for b in baselines.split(",") if b.strip()], dataset, test_dataset,
                       k, temperature, clusters, _probe_device(device), progress=not quiet,
                       index=index, nlist=nlist, nprobe=nprobe)
    if run.is_dir():
        store = record_probe(run, report)
        kept = sorted({(e["features"], e["method"]) for e in store["measurements"]}
                      - {(f, m) for f, res in report["results"].items() for m in res})
        if kept:
            _say(quiet)(f"{run / 'probe.json'} also keeps {len(kept)} earlier measurement(s) of this encoder: "
                        + ", ".join(f"{f} {m}" for f, m in kept[:8]) + (" ..." if len(kept) > 8 else ""))
    if json_out is not None:
        write_text(json_out, json.dumps(report, indent=2) + "\n")
    typer.echo(f"bank: {report['bank']} train ({report['bank_size']}), queries: {report['queries']} "
               f"({report['query_size']}), embedding dim {report['embedding_dim']}")
    typer.echo(format_table(report))
    for name, res in report["results"].items():
        if "note" in res.get("kmeans", {}):
            typer.echo(f"{name} k-means: {res['kmeans']['note']}")


@app.command("export")
@user_errors
def export_cmd(run: Run, out: Annotated[Path, typer.Option("--out", "-o", help="File: .npz, .npy (+ .json), .parquet (needs pyarrow) or .csv.")],
               dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help=DATASETS + ".", show_default="the run's dataset")] = None,
               split: Annotated[str, typer.Option("--split", help="train | test | all")] = "all",
               cluster: Annotated[Optional[int], typer.Option("--cluster", help="Add k-means cluster ids with K clusters.", show_default="none")] = None,
               normalize: Annotated[bool, typer.Option("--normalize/--no-normalize", help="L2-normalize the embeddings, as the probes' kNN and k-means do (recorded in the file).")] = True,
               force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out file.")] = False,
               device: Device = None, quiet: QuietBars = False):
    """Write embeddings with labels, indices, split and the run's config hash."""
    from .config import check_options
    from .export import check_target, gather_embeddings, write_embeddings

    check_options(cluster=cluster)
    check_target(out, force)  # format, its library and the path, before the embedding work
    cols = gather_embeddings(run, dataset, split, _probe_device(device), cluster, progress=not quiet,
                             normalize=normalize)
    write_embeddings(cols, out, force)
    typer.echo(f"wrote {out}: {len(cols['embeddings'])} x {cols['embeddings'].shape[1]} embeddings "
               f"({split}, {cols['normalization']} normalization, config {cols['config_hash']})")


@app.command("report")
@user_errors
def report_cmd(run_args: Annotated[Optional[List[Path]], typer.Argument(metavar="RUN", help="Run directories (or give them with --runs).", show_default=False)] = None,
               runs: Annotated[Optional[List[Path]], typer.Option("--runs", metavar="RUN", help="Run directories: --runs A B or --runs A --runs B.", show_default="none")] = None,
               out: Annotated[Path, typer.Option("--out", "-o", help="report.html (self-contained) or report.md (+ a _files folder).")] = Path("report.html"),
               force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out report.")] = False,
               device: Device = None, quiet: QuietBars = False):
    """Write an HTML or Markdown report: one comparison table per dataset with raw-pixel, PCA, random and
    supervised references, provenance, loss curves, t-SNE maps, confusion matrices.

    Runs lacking probe measurements are probed first (only what is missing).
    """
    from .report import build_report
    # `--runs A B`: click gives the option A and the arguments B, so both lists are runs
    build_report(list(runs or []) + list(run_args or []), out, _probe_device(device), force=force, say=_say(quiet))
    typer.echo(f"wrote {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
