"""The run directory: config.yaml, log.jsonl, meta.json, metrics.json, checkpoint.pt, encoder.pt
(and cluster_head.pt for a cluster run).

Every file is written atomically. An --out that already holds a run is refused unless the caller
resumes it or forces a fresh start.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from ..atomic import refuse_unless_file, write_text
from ..config import Config, config_from_saved
from ..errors import UserError

RUN_FILES = ("config.yaml", "log.jsonl", "meta.json", "metrics.json", "checkpoint.pt", "encoder.pt", "cluster_head.pt")
# written later by `probe`; measured on the run's encoder, so a fresh start drops it with the run
DERIVED_FILES = ("probe.json",)


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> dict:
    """A run's JSON file (meta, metrics, probe): a mapping, else one line naming the damaged file."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as exc:  # (JSONDecodeError, bad UTF-8, nesting too deep)
        raise UserError(f"cannot read {path} ({type(exc).__name__}); the run directory is damaged: restore the "
                        "file, or start the run over with --force") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} holds a {type(value).__name__}, not the mapping unsuprnn writes; the run directory "
                        "is damaged: restore the file, or start the run over with --force")
    return value


def write_log(path: Path, entries: list[dict]) -> None:
    write_text(path, "".join(json.dumps(e) + "\n" for e in entries))


def read_log(path: Path) -> list[dict]:
    """The entries of a log.jsonl ([] when there is none); a damaged line is a UserError naming it."""
    if not path.is_file():
        return []
    entries = []
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path} ({type(exc).__name__}); the run directory is damaged") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("epoch"), int):
            raise UserError(f"{path} line {n} is damaged (truncated or edited); restore the file, "
                            "or start the run over with --force")
        entries.append(entry)
    return entries


def holds_run(out: Path) -> bool:
    """Whether `out` holds a run worth keeping: one that saved weights. (A run stopped before its first
    checkpoint left only its config and meta: a plain rerun may start it again.)"""
    return out.is_dir() and any((out / f).exists() for f in ("checkpoint.pt", "encoder.pt", "metrics.json"))


CONFIG_HEADER = "# unsuprnn run config: the resolved settings of this run (written by unsuprnn)\n"


def is_ours(path: Path) -> bool:
    """Whether a file named like a run's file was written by unsuprnn (and not a file of the user's that
    happens to share the name): read without following a symlink, and only its start."""
    try:
        if path.is_symlink() or not path.is_file():
            return False
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    if path.suffix == ".pt":  # torch's zip files, or a checkpoint's format line
        return head.startswith(b"PK") or head.startswith(b"UNSUPRNN-CHECKPOINT")
    if path.name == "config.yaml":
        # (before the header line, runs wrote the plain dump: every section, in order, no comment)
        return head.startswith(CONFIG_HEADER.encode()) or (
            head.startswith(b"data:\n  dataset: ") and b"#" not in head
            and all(f"\n{sec}:\n".encode() in head for sec in ("augment", "encoder", "objective", "train")))
    if path.name == "log.jsonl":
        return head.startswith(b'{"epoch": ')
    return head.lstrip().startswith(b"{") and any(k in head for k in (b'"versions"', b'"final_loss"', b'"stage"',
                                                                       b'"format"', b'"encoder_sha256"'))


def foreign_run_files(out: Path) -> list[str]:
    """Files in `out` named like a run's own that unsuprnn did not write: a new run must not replace them."""
    return [f for f in RUN_FILES + DERIVED_FILES if (out / f).exists() or (out / f).is_symlink()
            if not is_ours(out / f)]


def check_out(out: Path, resume: bool, force: bool) -> bool:
    """Check --out against --resume/--force without changing anything (safe on every DDP rank).

    Returns True when an existing run is to be resumed.
    """
    if resume and force:
        raise UserError("--resume and --force contradict each other; pass one of them")
    if out.is_symlink() and not out.is_dir():
        raise UserError(f"--out {out} is a symlink to no directory; choose another --out")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a run directory; choose another --out")
    for name in RUN_FILES + DERIVED_FILES if out.is_dir() else ():  # what a run writes or replaces there
        refuse_unless_file(out / name, "the run's file")
    if resume:
        if not (out / "checkpoint.pt").is_file():
            raise UserError(f"nothing to resume: {out / 'checkpoint.pt'} does not exist; drop --resume to start")
        return True
    if holds_run(out) and not force:
        raise UserError(f"--out {out} already holds a run; pass --resume to continue it, "
                        "--force to overwrite it, or choose another --out")
    foreign = foreign_run_files(out) if out.is_dir() and not holds_run(out) else []
    if foreign:
        raise UserError(f"--out {out} holds {', '.join(foreign)} that unsuprnn did not write (and no run); a run would "
                        "replace them: move them, or choose another --out")
    return False


def run_stage(out: Path) -> str:
    """"cluster" for a clustering stage's run directory (its meta.json says so), else "pretrain"."""
    meta = out / "meta.json"
    return "cluster" if meta.is_file() and read_json(meta).get("stage") == "cluster" else "pretrain"


def saved_config(out: Path) -> Config:
    """The config.yaml of the run in `out`, as the run ran (any schema version: schema.py); missing or damaged
    is a UserError naming the file."""
    from ..safe_yaml import read_config_file
    p = out / "config.yaml"
    if not p.is_file():
        raise UserError(f"{p} not found; {out} is not an unsuprnn run directory")
    try:
        return config_from_saved(read_config_file(p), run_stage(out), where=str(p))
    except UserError as exc:
        text = str(exc)
        if text.startswith(str(p)):
            raise
        raise UserError(f"{p} is damaged ({exc}); restore it, or start the run over with --force") from None


def config_difference(a: Config, b: Config, ignore: tuple[str, ...] = ()) -> list[str]:
    """Dotted keys whose values differ between two configs. `auto` matches any value: a run records
    what its `auto` settings resolved to."""
    diffs = []
    for sec, values in a.to_dict().items():
        other = b.to_dict()[sec]
        diffs += [f"{sec}.{k}" for k, v in values.items()
                  if other[k] != v and "auto" not in (v, other[k]) and f"{sec}.{k}" not in ignore]
    return diffs


def check_resume_config(out: Path, cfg: Config, ignore: tuple[str, ...] = ()) -> None:
    """Refuse to resume the run in `out` with a config that differs from its own (keys in `ignore` aside)."""
    diffs = config_difference(saved_config(out), cfg, ignore=ignore)
    if diffs:
        raise UserError(f"--out {out} holds a run with a different config ({', '.join(diffs)}); "
                        "resume with the same settings, or use --force or another --out")


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    import numpy
    import sklearn
    import torch
    import torchvision

    from .. import __version__
    out = {"unsuprnn": __version__, "python": platform.python_version(), "torch": torch.__version__,
           "torchvision": torchvision.__version__, "numpy": numpy.__version__, "scikit-learn": sklearn.__version__,
           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None}
    for mod in ("lightly", "lightning_fabric", "faiss"):
        try:
            out[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            out[mod] = None
    return out


def base_meta(seed: int) -> dict:
    from ..threads import record
    return {"versions": versions(), "git_commit": git_commit(), "seed": seed, "threads": record(), "command": sys.argv,
            "platform": platform.platform(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def check_run(run: str | Path, flag: str = "--run") -> Path:
    """A run directory (or an encoder.pt) that exists and holds an encoder, else one line saying what the
    path is and what to do (without importing torch, so that the error comes at once)."""
    run = Path(run)
    if run.is_file() and run.name.endswith(".pt"):
        return run
    if not run.exists():
        raise UserError(f"{flag} {run} does not exist; pass a run directory written by pretrain, supervised or cluster")
    if not run.is_dir():
        raise UserError(f"{flag} {run} is a file, not a run directory; pass a directory written by pretrain, "
                        "supervised or cluster")
    if not (run / "encoder.pt").is_file():
        if (run / "checkpoint.pt").is_file() or (run / "config.yaml").is_file():
            raise UserError(f"{run} is a run that has not finished an epoch yet (no encoder.pt); resume it with "
                            f"unsuprnn pretrain --out {run} --resume")
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in list(run.iterdir())[:200]) or any(
                p.is_dir() for p in run.iterdir()):
            raise UserError(f"{run} is not a run directory (no encoder.pt); to train on its images: unsuprnn pretrain "
                            f"--dataset folder:{run} --out runs/NAME, then pass {flag} runs/NAME")
        raise UserError(f"{run} has no encoder.pt; pass a run directory written by pretrain, supervised or cluster")
    return run
