"""How many threads the numeric libraries use, chosen before any of them starts (torch, faiss and numba read
their thread settings when they load), and how their idle threads wait.

OpenMP's default wait policy makes idle worker threads spin. On a machine where anything else runs, a worker
the OS has parked keeps the others spinning: one training step of the default encoder, timed with one other
busy process on 2 cores, ran at 47-67 views/s with torch's defaults, 721-1,011 with OMP_WAIT_POLICY=PASSIVE
and 1,002-1,159 with one thread (BENCHMARKS.md, "Threads"). So every command sets a passive wait policy
unless the user set one, and as many threads as the CPUs this process may use (its affinity mask, capped by
a cgroup CPU quota), or `--threads N`. A user's own OMP_NUM_THREADS (or the others below) is kept.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

COUNT_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
WAIT_VARS = {"OMP_WAIT_POLICY": "PASSIVE"}
CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))

MAX_THREADS = 4096
_chosen: dict = {}


def quota_cpus(v2: str | None = None, v1: tuple[str, str] | None = None) -> float | None:
    """CPUs a cgroup quota allows (v2 `cpu.max`: "QUOTA PERIOD" or "max PERIOD"; v1: cfs quota and period, -1 =
    none), or None where no quota is set. Reads this machine's files unless given their text."""
    def read(path: Path) -> str | None:
        try:
            return path.read_text()
        except OSError:
            return None
    if v2 is None and v1 is None:
        v2, q, p = read(CGROUP_V2), read(CGROUP_V1[0]), read(CGROUP_V1[1])
        v1 = (q, p) if q is not None and p is not None else None
    try:
        if v2:
            quota, period = v2.split()[:2]
            if quota != "max":
                return int(quota) / int(period)
        if v1:
            quota, period = int(v1[0]), int(v1[1])
            if quota > 0 and period > 0:
                return quota / period
    except (ValueError, IndexError):
        return None
    return None


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (rounded up), at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = quota_cpus()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def choose(threads: int | None = None) -> dict:
    """Set the thread count and wait policy of the numeric libraries for this process (call before torch,
    faiss or numba is imported; torch's own count is set again if it already is). threads: --threads N, or
    None: a count the user set in OMP_NUM_THREADS, else `usable_cpus()`. Returns what was chosen and why
    (recorded in meta.json)."""
    if threads is not None:
        count, why = int(threads), "--threads"
    elif os.environ.get("OMP_NUM_THREADS", "").strip().isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        count, why = int(os.environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
    else:
        count, why = usable_cpus(), "the CPUs this process may use"
    for var in COUNT_VARS:
        if threads is not None or var not in os.environ:
            os.environ[var] = str(count)
    for var, value in WAIT_VARS.items():
        os.environ.setdefault(var, value)
    _chosen.clear()
    _chosen.update({"threads": count, "why": why, "usable_cpus": usable_cpus(),
                    "wait_policy": os.environ["OMP_WAIT_POLICY"]})
    import sys
    if "torch" in sys.modules:  # (imported already, e.g. by a Python caller: the count still applies)
        sys.modules["torch"].set_num_threads(count)
    return dict(_chosen)


def record() -> dict:
    """What `choose` set for this process (empty if it was not called), with the count torch runs with."""
    import sys
    out = dict(_chosen)
    if "torch" in sys.modules:
        out["torch_threads"] = sys.modules["torch"].get_num_threads()
    return out
