"""Write the golden runs of tests/golden/: small runs saved by earlier commits of unsuprnn, kept so that
today's code is held to reading them back as they ran (tests/test_saved_runs.py).

    python tests/golden/make_golden.py            # every commit below (a few minutes on 2 cores)

For each commit it checks the code out beside this repository (`git worktree`), runs that commit's own
command line on a tiny run (`PYTHONPATH=WORKTREE python -m unsuprnn.cli ...`), and keeps:
- `pretrain/` and `cluster/`: config.yaml and meta.json of a tiny digits run (and its encoder.pt) and of its
  clustering stage;
- `recorded.json`: the config digest that commit's `export` printed for each ("config XXXX"), and its git commit;
- for the RGB resume fixtures: the whole 2-epoch run (`rgb/`) on the 400 RGB images of ../rgb.npz (made by
  `rgb_images` below) and `rgb-epoch3-encoder.pt`, the encoder that commit's own `--resume --epochs 3` ended with.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# (commit, what it stands for, whether it keeps an RGB run to resume)
COMMITS = (
    ("675eac4", "before colour augmentation (augment.saturation/hue/grayscale)", True),
    ("8b7b369", "before data.intensity, the stage's UMAP start and its guard", False),
    ("90a1326", "intensity `keep` by default, the guard on", False),
    ("a11e74f", "the last config without a schema version", True),
    ("9f7c2ac", "config schema 1", True),
)
TINY = ["--hidden", "8", "--layers", "1", "--device", "cpu", "--quiet", "--set", "objective.proj_hidden=16",
        "--set", "objective.proj_out=8"]


def rgb_images(path: Path) -> None:
    """400 RGB 8x8 images in 4 classes (a bright square in one quadrant each, on a random colour)."""
    rng = np.random.default_rng(0)
    labels = np.arange(400) % 4
    images = (rng.random((400, 8, 8, 3)) * 80 + rng.random((400, 1, 1, 3)) * 120).astype(np.uint8)
    for i, c in enumerate(labels):
        r, q = divmod(int(c), 2)
        images[i, 4 * r:4 * r + 4, 4 * q:4 * q + 4] = 255
    np.savez(path, images=images, labels=labels)


def cli(worktree: Path, cwd: Path, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(worktree))
    done = subprocess.run([sys.executable, "-m", "unsuprnn.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(f"{worktree.name}: unsuprnn {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout + done.stderr


def digest_of_export(worktree: Path, cwd: Path, run: str) -> str:
    out = cli(worktree, cwd, "export", "--run", run, "--out", f"export-{run}.npz", "--split", "test", "--quiet")
    return re.search(r"config ([0-9a-f]{12})", out).group(1)


def make(commit: str, why: str, rgb: bool, scratch: Path) -> None:
    worktree = scratch / commit
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), commit], check=True,
                   capture_output=True)
    try:
        work = scratch / f"work-{commit}"
        work.mkdir()
        full = subprocess.run(["git", "-C", str(REPO), "rev-parse", commit], capture_output=True, text=True).stdout.strip()
        recorded = {"commit": full, "stands_for": why}
        cli(worktree, work, "pretrain", "--dataset", "digits", "--epochs", "1", "--batch-size", "256", *TINY,
            "--out", "pretrain")
        cli(worktree, work, "cluster", "--run", "pretrain", "--out", "cluster", "--clusters", "10", "--heads", "2",
            "--epochs", "1", "--selflabel-epochs", "1", "--device", "cpu", "--quiet")
        recorded["pretrain_digest"] = digest_of_export(worktree, work, "pretrain")
        recorded["cluster_digest"] = digest_of_export(worktree, work, "cluster")
        dest = HERE / commit
        shutil.rmtree(dest, ignore_errors=True)
        for run in ("pretrain", "cluster"):
            (dest / run).mkdir(parents=True)
            for name in ("config.yaml", "meta.json") + (("encoder.pt",) if run == "pretrain" else ()):
                shutil.copy(work / run / name, dest / run / name)
        if rgb:
            if not (HERE / "rgb.npz").is_file():
                rgb_images(HERE / "rgb.npz")
            shutil.copy(HERE / "rgb.npz", work / "rgb.npz")
            cli(worktree, work, "pretrain", "--dataset", "npz:rgb.npz", "--epochs", "2", "--batch-size", "64", *TINY,
                "--out", "rgb")
            shutil.copytree(work / "rgb", dest / "rgb")
            shutil.copytree(work / "rgb", work / "rgb3")
            cli(worktree, work, "pretrain", "--resume", "--out", "rgb3", "--epochs", "3", "--quiet")
            shutil.copy(work / "rgb3" / "encoder.pt", dest / "rgb-epoch3-encoder.pt")
            recorded["rgb_digest"] = digest_of_export(worktree, work, "rgb")
        (dest / "recorded.json").write_text(json.dumps(recorded, indent=2) + "\n")
        print(f"{commit}: {recorded}")
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], capture_output=True)


def main() -> None:
    wanted = set(sys.argv[1:])
    with tempfile.TemporaryDirectory() as scratch:
        for commit, why, rgb in COMMITS:
            if not wanted or commit in wanted:
                make(commit, why, rgb, Path(scratch))


if __name__ == "__main__":
    main()
