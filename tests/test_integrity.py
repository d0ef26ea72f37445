"""What the tool reads is what is on disk: run files from elsewhere or damaged are refused with one line."""

import hashlib
import io
import shutil

import pytest
import torch

from tests.conftest import TINY, assert_one_error_line, copy_run, invoke, snapshot
from unsuprnn.runs.checkpoint import MAGIC


@pytest.fixture(scope="module")
def two_runs(tiny_run, tmp_path_factory):
    """Two finished one-epoch runs of the same architecture, seeds 0 and 1."""
    root = tmp_path_factory.mktemp("two")
    return copy_run(tiny_run(seed=0), root / "s0"), copy_run(tiny_run(seed=1), root / "s1")


@pytest.fixture
def run_copy(two_runs, tmp_path):
    return copy_run(two_runs[0], tmp_path / "run")


def resume(runner, out):
    return invoke(runner, "pretrain", "--out", out, "--resume", "--epochs", "2", "--quiet")


def write_checkpoint_payload(path, payload: bytes):
    path.write_bytes(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


def test_a_checkpoint_copied_from_another_run_is_not_resumed(runner, two_runs, run_copy):
    shutil.copy(two_runs[1] / "checkpoint.pt", run_copy / "checkpoint.pt")
    before = snapshot(run_copy)
    r = resume(runner, run_copy)
    assert_one_error_line(r)
    assert "was written by another run (its config differs in train.seed)" in r.stderr
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("payload,msg", [(b"not a torch file at all", "valid header but unreadable content"),
                                         (None, "lacks epoch, elapsed, model, optimizer, rng")])
def test_a_checkpoint_with_a_valid_header_and_foreign_content_is_refused(runner, run_copy, payload, msg):
    if payload is None:
        buf = io.BytesIO()
        torch.save({"config": {}, "weights": torch.zeros(3)}, buf)
        payload = buf.getvalue()
    write_checkpoint_payload(run_copy / "checkpoint.pt", payload)
    r = resume(runner, run_copy)
    assert_one_error_line(r)
    assert msg in r.stderr


def test_damaged_log_and_config_are_named(runner, run_copy, tmp_path):
    log = run_copy / "log.jsonl"
    log.write_text(log.read_text()[:-20])  # truncated mid-line
    r = resume(runner, run_copy)
    assert_one_error_line(r)
    assert "log.jsonl line 1 is damaged" in r.stderr
    r = invoke(runner, "report", "--runs", run_copy, "--out", tmp_path / "r.html", "--device", "cpu")
    assert_one_error_line(r)
    assert "log.jsonl line 1 is damaged" in r.stderr
    (run_copy / "config.yaml").write_text("train: {epochs: [\n")
    r = resume(runner, run_copy)
    assert_one_error_line(r)
    assert "config.yaml is damaged" in r.stderr


# ---- a full disk: a small tmpfs where the test may mount one ----

@pytest.fixture
def small_disk(tmp_path):
    """A directory on a tiny filesystem (tmpfs); skipped where this process cannot mount one."""
    import subprocess

    def mount(kib: int):
        d = tmp_path / f"disk{kib}"
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(d)], capture_output=True)
        if r.returncode != 0:
            pytest.skip("cannot mount a small tmpfs here (needs root)")
        mounted.append(d)
        return d
    mounted = []
    yield mount
    for d in mounted:
        subprocess.run(["umount", str(d)], capture_output=True)


def cli(*args):
    """The CLI in a subprocess: a SIGBUS there fails the test instead of killing the test session."""
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "unsuprnn.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_export_onto_a_full_disk_is_one_line_and_keeps_the_older_pair(two_runs, small_disk):
    from unsuprnn.export import read_embeddings
    disk = small_disk(300)
    out = disk / "emb.npy"
    r = cli("export", "--run", two_runs[0], "--split", "test", "--out", out, "--device", "cpu", "--quiet")
    assert r.returncode == 0, r.stderr
    older = {p.name: p.read_bytes() for p in disk.iterdir()}
    r = cli("export", "--run", two_runs[0], "--split", "all", "--out", out, "--force", "--device", "cpu", "--quiet")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "no space left on the device to write" in lines[0], r.stderr
    assert {p.name: p.read_bytes() for p in disk.iterdir()} == older  # no temp file, the pair unchanged
    assert len(read_embeddings(out)["embeddings"]) == 359


def test_a_mismatched_npy_and_sidecar_pair_is_refused(two_runs, tmp_path, runner):
    from unsuprnn.errors import UserError
    from unsuprnn.export import read_embeddings
    for split in ("test", "train"):
        r = invoke(runner, "export", "--run", two_runs[0], "--split", split, "--out", tmp_path / f"{split}.npy",
                   "--device", "cpu", "--quiet")
        assert r.exit_code == 0, r.output
    shutil.copy(tmp_path / "train.json", tmp_path / "test.json")  # a sidecar from another export
    with pytest.raises(UserError, match="come from different exports"):
        read_embeddings(tmp_path / "test.npy")


def test_pretrain_onto_a_full_disk_is_one_line(small_disk, runner):
    disk = small_disk(64)
    r = invoke(runner, "pretrain", "--out", disk / "run", *TINY, "--epochs", "1")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.stderr.strip().splitlines()[-1].startswith("error: no space left on the device to write")
    assert not [p for p in (disk / "run").iterdir() if ".tmp" in p.name]


def test_folder_cache_on_a_full_disk_decodes_into_memory(small_disk, tmp_path):
    import numpy as np
    from PIL import Image

    from unsuprnn.config import DataConfig
    from unsuprnn.data import load_dataset
    for i in range(40):
        (tmp_path / "imgs" / "c").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((64, 64), i, np.uint8)).save(tmp_path / "imgs" / "c" / f"{i:02d}.png")
    disk = small_disk(64)  # 40 x 64 x 64 bytes do not fit
    r = cli("data", "--dataset", f"folder:{tmp_path / 'imgs'}", "--set", f"data.cache_dir={disk}")
    assert r.returncode == 0 and "decoding into memory instead" in r.stderr, r.stderr
    assert list(disk.iterdir()) == []  # the temporary cache file is gone
    ds = load_dataset(DataConfig(dataset=f"folder:{tmp_path / 'imgs'}", cache_dir=str(disk)), seed=0)
    assert sorted(int(ds.images[i].max()) for i in range(40)) == list(range(40))


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    from unsuprnn.atomic import write_text
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()  # a pid that is no longer running
    stale = tmp_path / f".emb.npy.{p.pid}.abcd1234.tmp.npy"
    stale.write_bytes(b"half")
    mine = tmp_path / f".emb.npy.{__import__('os').getpid()}.abcd1234.tmp.npy"
    mine.write_bytes(b"in progress")  # a live writer's (this process): kept
    write_text(tmp_path / "other.txt", "x")
    assert not stale.exists() and mine.exists()


def test_probing_a_run_that_is_being_written_says_so(runner, run_copy):
    from unsuprnn.runs.writer import claim_run
    with claim_run(run_copy, resume=True, force=False):
        r = invoke(runner, "probe", "--run", run_copy, "--method", "knn", "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    assert "is still being written (pid" in r.stderr
    r = invoke(runner, "probe", "--run", run_copy, "--method", "knn", "--device", "cpu", "--quiet")
    assert "still being written" not in r.stderr
