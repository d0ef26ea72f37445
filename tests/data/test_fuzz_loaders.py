"""Malformed inputs to every loader end in exit code 2 and one `error: ...` line: never a traceback."""

import io
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from unsuprnn.cli import app

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_clean_error(spec: str):
    r = CliRunner().invoke(app, ["data", "--dataset", spec], catch_exceptions=False)
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (spec, r.output)


@SETTINGS
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=3), st.sampled_from([".png", ".jpg", ".bmp"]))
def test_random_bytes_as_images(blobs, ext):
    with tempfile.TemporaryDirectory() as d:
        for i, b in enumerate(blobs):
            (Path(d) / "cls").mkdir(exist_ok=True)
            (Path(d) / "cls" / f"{i}{ext}").write_bytes(b)
        assert_clean_error(f"folder:{d}")


@SETTINGS
@given(st.lists(st.sampled_from(["notes.txt", "data.csv", ".hidden.png"]), max_size=3))
def test_empty_folders(names):
    with tempfile.TemporaryDirectory() as d:
        for n in names:
            (Path(d) / n).write_bytes(b"x")
        assert_clean_error(f"folder:{d}")


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@SETTINGS
@given(st.data())
def test_truncated_npz(data):
    blob = _npz_bytes(images=np.zeros((4, 6, 6), np.uint8), labels=np.arange(4))
    cut = data.draw(st.integers(0, len(blob) - 1))
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "x.npz").write_bytes(blob[:cut])
        assert_clean_error(f"npz:{d}/x.npz")


BAD_DTYPES = st.sampled_from([np.int32, np.int64, np.bool_, np.complex64, np.uint16])


@SETTINGS
@given(BAD_DTYPES, st.integers(1, 5))
def test_wrong_dtypes(dtype, n):
    with tempfile.TemporaryDirectory() as d:
        np.savez(Path(d) / "x.npz", images=np.ones((n, 4, 4), dtype))
        assert_clean_error(f"npz:{d}/x.npz")


@SETTINGS
@given(st.floats(1.01, 1e6) | st.floats(-1e6, -0.01) | st.just(float("nan")))
def test_floats_outside_unit_range(v):
    with tempfile.TemporaryDirectory() as d:
        np.savez(Path(d) / "x.npz", images=np.full((2, 4, 4), v, np.float32))
        assert_clean_error(f"npz:{d}/x.npz")


@SETTINGS
@given(st.sampled_from([(5,), (5, 4), (2, 3, 4, 5, 6), (3, 5, 4, 2), (0, 4, 4)]), st.sampled_from(["npz", "npy"]))
def test_wrong_shapes(shape, kind):
    with tempfile.TemporaryDirectory() as d:
        arr = np.zeros(shape, np.uint8)
        if kind == "npz":
            np.savez(Path(d) / "x.npz", images=arr)
        else:
            np.save(Path(d) / "x.npy", arr)
        assert_clean_error(f"{kind}:{d}/x.{kind}")


@SETTINGS
@given(st.integers(1, 6), st.one_of(st.integers(-1000, -2).map(lambda v: ("value", v)),
                                   st.integers(0, 12).map(lambda n: ("length", n)),
                                   st.just(("float", 0))))
def test_bad_labels(n, bad):
    kind, v = bad
    if kind == "length" and v == n:
        v = n + 1
    labels = {"value": lambda: np.full(n, v), "length": lambda: np.zeros(v, np.int64),
              "float": lambda: np.full(n, 0.5)}[kind]()
    with tempfile.TemporaryDirectory() as d:
        np.savez(Path(d) / "x.npz", images=np.zeros((n, 4, 4), np.uint8), labels=labels)
        assert_clean_error(f"npz:{d}/x.npz")


@SETTINGS
@given(st.binary(min_size=0, max_size=64), st.booleans())
def test_random_idx_files(blob, gz):
    import gzip
    blob = b"\x01" + blob  # a non-zero first byte: never a valid idx header
    with tempfile.TemporaryDirectory() as d:
        name = "t10k-images-idx3-ubyte" + (".gz" if gz else "")
        (Path(d) / name).write_bytes(gzip.compress(blob) if gz else blob)
        assert_clean_error(f"idx:{d}")
