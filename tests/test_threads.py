"""The thread count and wait policy every command chooses before torch starts (unsuprnn/threads.py)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import TINY, assert_one_error_line, invoke
from unsuprnn.threads import quota_cpus

CHOOSE = "import json, os; {pin}from unsuprnn.threads import choose; print(json.dumps(choose({n})))"


def chosen_in_fresh_process(n=None, cpus=None, env=None) -> dict:
    pin = f"os.sched_setaffinity(0, {set(cpus)!r}); " if cpus else ""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "OPENBLAS_", "NUMBA_"))}
    out = subprocess.run([sys.executable, "-c", CHOOSE.format(pin=pin, n=n)], env=clean | (env or {}),
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this system")
def test_an_affinity_of_one_cpu_gives_one_thread_and_a_passive_wait():
    got = chosen_in_fresh_process(cpus=[sorted(os.sched_getaffinity(0))[0]])
    assert got["threads"] == 1 == got["usable_cpus"] and got["wait_policy"] == "PASSIVE"


def test_the_user_s_own_settings_are_kept_and_threads_wins():
    assert chosen_in_fresh_process(env={"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "ACTIVE"}) == {
        "threads": 3, "why": "OMP_NUM_THREADS", "usable_cpus": len(os.sched_getaffinity(0)), "wait_policy": "ACTIVE"}
    assert chosen_in_fresh_process(n=2, env={"OMP_NUM_THREADS": "3"})["threads"] == 2


@pytest.mark.parametrize("v2,v1,cpus", [("max 100000\n", None, None), ("150000 100000\n", None, 1.5),
                                        (None, ("-1", "100000"), None), (None, ("200000", "100000"), 2.0),
                                        ("garbage", None, None)])
def test_a_cgroup_quota_caps_the_cpus(v2, v1, cpus):
    assert quota_cpus(v2, v1) == cpus


def test_every_command_takes_threads_and_a_run_records_them(runner, tmp_path):
    r = invoke(runner, "pretrain", "--out", tmp_path / "r", *TINY, "--epochs", "1", "--threads", "1")
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["threads"]["threads"] == 1 == meta["threads"]["torch_threads"] and meta["threads"]["why"] == "--threads"
    r = invoke(runner, "probe", "--run", tmp_path / "r", "--threads", "0")
    assert_one_error_line(r)
    assert "--threads 0 is out of range" in r.stderr
