"""Every file a command writes may be pointed at something that is not a regular file: a symbolic link (to a
file, or dangling), a directory, a FIFO, a socket or a device node. Each is refused with one `error:` line and
exit 2, with and without --force, and nothing on disk changes (links, their targets, the nodes, every file).

Tried: 14 outputs (probe --json, probe.json, export .npz/.npy and its sidecar/lightly .csv/projector, report
.html/.md and its figure folder, data --grid, a run's files fresh/forced/resumed, the --logger folder, the run's
lock file, the cluster stage's head) x 6 kinds of node x with and without --force.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
from pathlib import Path

import pytest

from tests.conftest import TINY, assert_one_error_line, copy_run, invoke, tree

KINDS = ("symlink", "dangling symlink", "directory", "fifo", "socket", "device")


def make_node(path: Path, kind: str) -> list:
    """Put a node of `kind` at `path`; returns what must stay open while it is used (a bound socket)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink":
        target = path.parent / "link-target.txt"
        target.write_text("the user's file")
        path.symlink_to(target)
    elif kind == "dangling symlink":
        path.symlink_to(path.parent / "nowhere")
    elif kind == "directory":
        path.mkdir()
        (path / "inside.txt").write_text("the user's file")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        here = os.getcwd()
        os.chdir(path.parent)  # a short name: a socket's path is limited to about 100 bytes
        try:
            s = socket.socket(socket.AF_UNIX)
            s.bind(path.name)
        finally:
            os.chdir(here)
        return [s]
    elif kind == "device":
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a null device of our own
        except PermissionError:
            pytest.skip("this machine does not let the tests make a device node")
    return []


@pytest.fixture(scope="module")
def runs(tiny_run, tmp_path_factory):
    """A finished tiny run and a cluster run of it, to copy."""
    run = tiny_run()
    root = tmp_path_factory.mktemp("nodes")
    from typer.testing import CliRunner
    r = invoke(CliRunner(), "cluster", "--run", run, "--out", root / "clu", "--epochs", "1", "--selflabel-epochs", "0",
               "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    return run, root / "clu"


def _run_dir(runs, tmp: Path, name: str = "run") -> Path:
    return copy_run(runs[0], tmp / name)


# output -> (how to set up the folder and return the node's path, the command's arguments)
def outputs():
    return {
        "probe --json": (lambda runs, t: t / "p.json",
                         lambda runs, t: ["probe", "--run", _run_dir(runs, t), "--json", t / "p.json", "--device", "cpu"]),
        "probe.json": (lambda runs, t: _swap_in(runs, t, "probe.json"),
                       lambda runs, t: ["probe", "--run", t / "run", "--device", "cpu"]),
        "export .npz": (lambda runs, t: t / "e.npz",
                        lambda runs, t: ["export", "--run", runs[0], "--out", t / "e.npz", "--device", "cpu"]),
        "export .npy sidecar": (lambda runs, t: t / "e.json",
                                lambda runs, t: ["export", "--run", runs[0], "--out", t / "e.npy", "--device", "cpu"]),
        "export lightly": (lambda runs, t: t / "e.csv",
                           lambda runs, t: ["export", "--run", runs[0], "--out", t / "e.csv", "--format", "lightly",
                                            "--device", "cpu"]),
        "export projector": (lambda runs, t: t / "proj" / "tensors.tsv",
                             lambda runs, t: ["export", "--run", runs[0], "--out", t / "proj", "--format", "projector",
                                              "--device", "cpu"]),
        "report .html": (lambda runs, t: t / "r.html",
                         lambda runs, t: ["report", runs[0], "--out", t / "r.html", "--device", "cpu"]),
        "report figures": (lambda runs, t: t / "r_files",
                           lambda runs, t: ["report", runs[0], "--out", t / "r.md", "--device", "cpu"]),
        "data --grid": (lambda runs, t: t / "g.png",
                        lambda runs, t: ["data", "--dataset", "digits", "--grid", t / "g.png"]),
        "a new run's file": (lambda runs, t: t / "new" / "config.yaml",
                             lambda runs, t: ["pretrain", "--out", t / "new", *TINY, "--epochs", "1"]),
        "a forced run's file": (lambda runs, t: _swap_in(runs, t, "metrics.json"),
                                lambda runs, t: ["pretrain", "--out", t / "run", *TINY, "--epochs", "1"]),
        "a resumed run's file": (lambda runs, t: _swap_in(runs, t, "meta.json"),
                                 lambda runs, t: ["pretrain", "--out", t / "run", "--resume", "--epochs", "2", "--quiet"]),
        "the --logger folder": (lambda runs, t: _run_dir(runs, t) / "csv",
                                lambda runs, t: ["pretrain", "--out", t / "run", *TINY, "--epochs", "1", "--logger", "csv"]),
        "the run's lock file": (lambda runs, t: t / ".new.lock",
                                lambda runs, t: ["pretrain", "--out", t / "new", *TINY, "--epochs", "1"]),
        "the cluster head": (lambda runs, t: _cluster_swap_in(runs, t),
                             lambda runs, t: ["cluster", "--run", runs[0], "--out", t / "clu", "--epochs", "1",
                                              "--device", "cpu", "--quiet"]),
    }


def _swap_in(runs, t: Path, name: str) -> Path:
    """A copy of the finished run with its file `name` taken away (where it has one: the shared run may have been
    probed by an earlier test), for a node to take its place."""
    run = _run_dir(runs, t)
    (run / name).unlink(missing_ok=True)
    return run / name


def _cluster_swap_in(runs, t: Path) -> Path:
    clu = copy_run(runs[1], t / "clu")
    (clu / "cluster_head.pt").unlink()
    return clu / "cluster_head.pt"


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("output", list(outputs()))
def test_an_output_that_is_not_a_regular_file_is_refused(runner, runs, tmp_path, output, kind, force):
    if kind == "directory" and output in ("report figures", "the --logger folder"):
        pytest.skip("these outputs are folders")
    node_at, args = outputs()[output]
    node = node_at(runs, tmp_path)
    if kind == "dangling symlink" and output == "a resumed run's file":
        pytest.skip("a resumed run reads its meta.json: a dangling one is refused as missing (test_integrity)")
    keep = make_node(node, kind)
    argv = args(runs, tmp_path)
    if force and "--resume" not in argv:
        argv = argv + ["--force"]
    before = tree(tmp_path)
    with contextlib.ExitStack() as stack:
        for s in keep:
            stack.callback(s.close)
        r = invoke(runner, *argv)
    assert_one_error_line(r)
    assert tree(tmp_path) == before
    if kind == "symlink":
        assert (node.parent / "link-target.txt").read_text() == "the user's file"


def test_a_users_folder_named_like_the_logger_is_refused_and_a_logger_folder_of_ours_is_replaced(runner, runs,
                                                                                                tmp_path):
    run = _run_dir(runs, tmp_path)
    (run / "csv").mkdir()
    (run / "csv" / "notes.txt").write_text("mine")
    r = invoke(runner, "pretrain", "--out", run, *TINY, "--epochs", "1", "--logger", "csv", "--force")
    assert_one_error_line(r)
    assert "holds files a logger did not write" in r.stderr and (run / "csv" / "notes.txt").read_text() == "mine"
    shutil.rmtree(run / "csv")
    for _ in range(2):  # the second --force replaces the first run's logger folder with its own
        r = invoke(runner, "pretrain", "--out", run, *TINY, "--epochs", "1", "--logger", "csv", "--force")
        assert r.exit_code == 0, r.output
        assert sorted(p.name for p in (run / "csv").iterdir()) == ["version_0"]
        assert (run / "csv" / "version_0" / "metrics.csv").is_file() and not (run / ".unsuprnn-new").exists()
