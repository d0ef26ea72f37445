"""Every command's options driven through the CLI with values of every type and extreme (hypothesis):
whatever is given, no traceback, exit 0 or 2 (or a kill at the time limit), and a command that fails
leaves every file that was there before byte-identical. A slow run, outside the default test command:

    python -m pytest tests/test_hostile_cli.py -m slow -p no:cacheprovider    # EXAMPLES=300 per command
"""

import os
import subprocess
import sys

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import copy_run, snapshot
from unsuprnn.cli import app

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("EXAMPLES", "300"))
TIME_LIMIT = 20  # seconds a command may run; a valid but long run is killed there (a kill must be safe too)
COMMANDS = ("data", "pretrain", "supervised", "cluster", "probe", "export", "report")


def options(name: str) -> list:
    """(flag, kind, secondary flags) of every option of command `name`, read from the CLI itself (kind from
    its help's metavar: int, float, path or text; flag for an on/off switch)."""
    group = typer.main.get_command(app)
    parent = typer.Context(group, info_name="unsuprnn")
    cmd = group.get_command(parent, name)
    ctx = typer.Context(cmd, info_name=name, parent=parent)
    out = []
    for p in cmd.params:
        if p.name == "help" or not getattr(p, "opts", None) or not p.opts[0].startswith("--"):
            continue
        shown = (p.get_help_record(ctx) or ("",))[0].lower()
        kind = "flag" if p.is_flag else next((k for k in ("int", "float", "path") if f"<{k}" in shown), "text")
        out.append((p.opts[0], kind, p.secondary_opts))
    return out


NUMBERS = ["0", "-1", "1", "2", "3", "1e-300", "1e300", "nan", "inf", "-inf", "0.5", "2147483648",
           "9" * 40, "1_000", "0x10", "", " ", "abc", "auto", "10m", "-0"]
TEXTS = ["", " ", "digits", "nosuch", "folder:/nonexistent", "npz:/etc/passwd", "idx:/proc", "a\nb", "é" * 300,
         "x" * 5000, "../../etc", "/proc/x", "--help", "-1", "all", "raw,pca", "supervised=/tmp", "knn,nosuch",
         "cuda:7", "cpu", "rows", "patches", "lstm", "train", "test", "none"]


def value(kind: str, tmp: str):
    paths = [tmp + "/out", tmp + "/run", tmp, "/proc/x", tmp + "/" + "a" * 300, tmp + "/e.npz", tmp + "/e.npy",
             tmp + "/r.html", tmp + "/r.md", tmp + "/c.yaml", "/etc/passwd", ""]
    if kind in ("int", "float"):
        return st.sampled_from(NUMBERS)
    if kind == "path":
        return st.sampled_from(paths)
    return st.sampled_from(TEXTS + paths)


def arguments(name: str, tmp: str):
    opts = options(name)

    def build(chosen):
        args = []
        for flag, kind, secondary in chosen:
            if kind == "flag":
                args.append(flag if not secondary else flag)
            else:
                args.append((flag, kind))
        return args
    subset = st.lists(st.sampled_from(opts), max_size=6, unique_by=lambda o: o[0])
    return subset.flatmap(lambda chosen: st.tuples(*[
        st.just([o[0]]) if o[1] == "flag" else value(o[1], tmp).map(lambda v, f=o[0]: [f, v]) for o in chosen]))


@pytest.fixture(scope="module")
def stage(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    run = copy_run(tiny_run(), root / "run")
    (root / "c.yaml").write_text("train: {epochs: 1}\nencoder: {hidden: 8, layers: 1}\n")
    (run / "notes.txt").write_text("mine\n")
    return root


@pytest.mark.parametrize("name", COMMANDS)
def test_any_options_no_traceback_and_failures_change_nothing(stage, name):
    seen = {"n": 0, "ok": 0, "refused": 0, "killed": 0}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(arguments(name, str(stage)))
    def check(chosen):
        args = [a for pair in chosen for a in pair]
        before = snapshot(stage / "run")
        base = {"pretrain": ["--device", "cpu"], "supervised": ["--device", "cpu"],
                "cluster": ["--device", "cpu"], "probe": ["--run", stage / "run", "--device", "cpu"],
                "export": ["--run", stage / "run", "--device", "cpu"],
                "report": [stage / "run", "--device", "cpu"], "data": []}[name]
        try:
            r = subprocess.run([sys.executable, "-m", "unsuprnn.cli", name, *map(str, base), *map(str, args)],
                               capture_output=True, text=True, timeout=TIME_LIMIT, cwd=stage)
        except subprocess.TimeoutExpired as exc:
            seen["killed"] += 1
            assert "Traceback" not in (exc.stderr or b"").decode(errors="replace"), args
            return
        seen["n"] += 1
        assert "Traceback" not in r.stderr + r.stdout, (args, r.stderr[-3000:])
        assert r.returncode in (0, 2), (args, r.returncode, r.stderr[-2000:])
        if r.returncode == 2:
            seen["refused"] += 1
            errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1 and r.stderr.strip().splitlines()[-1] == errors[0], (args, r.stderr)
            after = snapshot(stage / "run")
            assert after == before, (args, set(after.items()) ^ set(before.items()))
        else:
            seen["ok"] += 1
    check()
    print(f"{name}: {seen['n'] + seen['killed']} examples: {seen['ok']} ran, {seen['refused']} refused with one "
          f"line, {seen['killed']} killed at {TIME_LIMIT} s")
