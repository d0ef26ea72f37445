"""A sweep over the options added since the last hardening: --budget, --clusters auto with --k-range, --method
hdbscan, export --format projector|lightly with --cluster, --logger, objective.weights, and the sequence
objectives on every encoder layout. Each command ends with exit 0, or with exit 2, one `error:` line and every
file as it was; never a traceback.

Tried: 108 commands (`CASES`): 18 budgets, 6 loggers, 9 weights, 24 sequence-objective layouts and 3 oversized
sequence settings (pretrain, each into a folder that holds a finished run, with --force), 13 probes of K and
methods, 20 exports of formats and cluster columns, 14 cluster stages of K, one report of a budget run.
One of them, the clustering stage asked to search K up to 100,000 (it searches up to half the 1,437 training
images: 717 k-means fits, about 100 s), runs with the slow tests (`-m slow`); the probe's case of the same range
runs in the default suite.
"""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import TINY, assert_one_error_line, copy_run, invoke, tree

QUICK = ["--set", "train.max_steps_per_epoch=1", "--set", "train.knn_every=0"]
BUDGETS = ["", " ", "0", "0s", "-1m", "abc", "1e9h", "nan", "inf", "10x", "1h30", "1h30x", "2", "3s", "0.05m",
           "1y", "5 s", "1_000s"]
LOGGERS = ["none", "csv", "tensorboard", "bogus", "", "CSV"]
WEIGHTS = [("contrastive+masked", "1,0.5"), ("contrastive+masked", ""), ("contrastive+masked", "1"),
           ("contrastive+masked", "-1,1"), ("contrastive+masked", "nan,1"), ("contrastive+masked", "0,0"),
           ("contrastive+masked", "a,b"), ("contrastive", "2"), ("masked", "1,1")]
LAYOUTS = list(itertools.product(("cpc", "apc", "masked"), ("1", "2"), ("joint", "separate"),
                                 ("--bidirectional", "--no-bidirectional")))
OVERSIZED = [("cpc", "objective.cpc_steps=1024"), ("apc", "objective.apc_shift=1024"),
             ("masked", "objective.mask_span=1024")]
K_RANGES = ["2:20", "2:100000", "20:2", "1:5", "a:b", "", "3", "2:3"]


def pretrain_cases():
    out = [("pretrain", ["--budget", b]) for b in BUDGETS]
    out += [("pretrain", ["--logger", lg, "--epochs", "1", *QUICK]) for lg in LOGGERS]
    out += [("pretrain", ["--objective", o, "--set", f"objective.weights={w}", "--epochs", "1", *QUICK])
            for o, w in WEIGHTS]
    out += [("pretrain", ["--objective", o, "--layers", n, "--stacks", s, d, "--epochs", "1", *QUICK])
            for o, n, s, d in LAYOUTS]
    out += [("pretrain", ["--objective", o, "--stacks", "separate", "--set", kv, "--epochs", "1", *QUICK])
            for o, kv in OVERSIZED]
    return out


def probe_cases():
    out = [("probe", ["--method", "kmeans", "--clusters", "auto", "--k-range", r]) for r in K_RANGES]
    out += [("probe", ["--method", m, "--clusters", k]) for m, k in
            (("hdbscan", "classes"), ("kmeans", "classes"), ("kmeans", "0"), ("kmeans", "1"), ("kmeans", "none"))]
    return out


def export_cases():
    return [("export", ["--format", f, "--cluster", c]) for f in ("projector", "lightly")
            for c in ("auto", "hdbscan", "classes", "0", "1", "3", "x", "2000000", "AUTO", "")]


def cluster_cases():
    out = [("cluster", ["--clusters", "auto", "--k-range", r]) for r in K_RANGES]
    out += [("cluster", ["--clusters", k]) for k in ("classes", "0", "1", "x", "5000", "Auto")]
    return out


CASES = pretrain_cases() + probe_cases() + export_cases() + cluster_cases() + [("report", ["--budget-run"])]
SLOW_CASES = {("cluster", ("--clusters", "auto", "--k-range", "2:100000"))}


def marked(command: str, args: list[str]):
    """The case as a pytest parameter, marked slow where it is in SLOW_CASES."""
    marks = [pytest.mark.slow] if (command, tuple(args)) in SLOW_CASES else []
    return pytest.param(command, args, marks=marks, id=f"{command}:{' '.join(args)}")


def test_the_docstring_counts_the_cases():
    assert len(CASES) == 108 and SLOW_CASES <= {(c, tuple(a)) for c, a in CASES}


@pytest.fixture(scope="module")
def source(tiny_run):
    return tiny_run()


@pytest.mark.parametrize("command,args", [marked(c, a) for c, a in CASES])
def test_an_option_ends_in_a_result_or_one_error_line_that_changes_nothing(runner, source, tmp_path, command, args):
    run = copy_run(source, tmp_path / "run")
    if command == "pretrain":
        argv = ["pretrain", "--out", run, "--force", *TINY, *args]
    elif command == "probe":
        argv = ["probe", "--run", run, "--device", "cpu", *args]
    elif command == "export":
        out = tmp_path / ("proj" if "projector" in args else "e.csv")
        argv = ["export", "--run", run, "--out", out, "--device", "cpu", "--quiet", *args]
    elif command == "cluster":
        argv = ["cluster", "--run", run, "--out", tmp_path / "clu", "--epochs", "1", "--selflabel-epochs", "0",
                "--device", "cpu", "--quiet", *args]
    else:  # a report of a --budget run names its budget
        r = invoke(runner, "pretrain", "--out", tmp_path / "b", *TINY, "--budget", "3s", "--force")
        assert r.exit_code == 0, r.output
        argv = ["report", tmp_path / "b", "--out", tmp_path / "r.md", "--device", "cpu", "--quiet"]
    before = tree(tmp_path)
    r = invoke(runner, *argv)
    assert "Traceback" not in r.output
    if r.exit_code != 0:
        assert_one_error_line(r)
        assert tree(tmp_path) == before
    if command == "report":
        assert r.exit_code == 0 and "--budget 3s" in (tmp_path / "r.md").read_text()
