import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from unsuprnn.config import DataConfig
from unsuprnn.data import load_dataset, stratified_split
from unsuprnn.errors import UserError


def test_digits_shape_and_split():
    ds = load_dataset(DataConfig(), seed=0)
    assert ds.images.shape == (1797, 1, 8, 8) and ds.images.dtype == torch.uint8
    assert ds.images.max() == 255
    assert len(ds.splits["train"]) + len(ds.splits["test"]) == 1797


def test_split_is_stratified_and_repeatable():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    a = stratified_split(labels, 0.2, seed=1)
    b = stratified_split(labels, 0.2, seed=1)
    c = stratified_split(labels, 0.2, seed=2)
    assert torch.equal(a["test"], b["test"]) and not torch.equal(a["test"], c["test"])
    assert labels[a["test"]].bincount().tolist() == [10, 6, 4]
    assert set(a["train"].tolist()).isdisjoint(a["test"].tolist())
    assert len(a["train"]) + len(a["test"]) == 100


def _write_idx(path, arr, gz):
    codes = {np.uint8: 0x08}
    header = struct.pack(">BBBB", 0, 0, codes[np.uint8], arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_loader(tmp_path, gz):
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    tr, te = rng.integers(0, 256, (20, 6, 6)), rng.integers(0, 256, (10, 6, 6))
    _write_idx(tmp_path / f"train-images-idx3-ubyte{ext}", tr, gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{ext}", np.arange(20) % 3, gz)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{ext}", te, gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{ext}", np.arange(10) % 3, gz)
    ds = load_dataset(DataConfig(dataset=f"idx:{tmp_path}"), seed=0)
    assert ds.images.shape == (30, 1, 6, 6)
    assert np.array_equal(ds.split("train")[0][:, 0].numpy(), tr)
    assert np.array_equal(ds.split("test")[0][:, 0].numpy(), te)
    assert ds.split_info["source"] == "own" and ds.classes == ["0", "1", "2"]


def test_idx_truncated_is_refused(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((4, 5, 5)), False)
    p = tmp_path / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-7])
    with pytest.raises(UserError, match="truncated"):
        load_dataset(DataConfig(dataset=f"idx:{tmp_path}"), seed=0)


def _png(path, value, size=(6, 6), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def test_folder_with_classes_and_splits(tmp_path, monkeypatch):
    for split in ("train", "test"):
        for cls, v in (("cat", 10), ("dog", 200)):
            for i in range(3):
                _png(tmp_path / split / cls / f"{i}.png", v)
    ds = load_dataset(DataConfig(dataset=f"folder:{tmp_path}"), seed=0)
    assert ds.classes == ["cat", "dog"] and ds.images.shape == (12, 1, 6, 6)
    x, y = ds.split("test")
    assert len(x) == 6 and y.tolist() == [0, 0, 0, 1, 1, 1]
    assert (x[y == 1] == 200).all() and ds.paths is not None
    assert len(list((tmp_path / ".unsuprnn_cache").glob("decoded-*.npy"))) == 1  # (beside it, its notes .json)
    # decoded once: a second load reads the cache and never decodes
    import unsuprnn.data.folder as sources

    def no_decode(*a):
        raise AssertionError("decoded twice")
    monkeypatch.setattr(sources, "_decode", no_decode)
    again = load_dataset(DataConfig(dataset=f"folder:{tmp_path}"), seed=0)
    assert torch.equal(again.images, ds.images)
    # a changed option is another cache entry
    monkeypatch.undo()
    load_dataset(DataConfig(dataset=f"folder:{tmp_path}", resize=4), seed=0)
    assert len(list((tmp_path / ".unsuprnn_cache").glob("decoded-*.npy"))) == 2


def test_folder_flat_is_unlabelled_and_resized(tmp_path):
    _png(tmp_path / "a.png", 5, (10, 10), "RGB")
    _png(tmp_path / "b.jpg", 5, (12, 8), "RGB")
    with pytest.raises(UserError, match="--resize"):
        load_dataset(DataConfig(dataset=f"folder:{tmp_path}"), seed=0)
    ds = load_dataset(DataConfig(dataset=f"folder:{tmp_path}", resize=8, test_fraction=0.5), seed=0)
    assert ds.images.shape == (2, 3, 8, 8) and not ds.has_labels


def test_folder_corrupt_image_is_named(tmp_path):
    _png(tmp_path / "c0" / "ok.png", 1)
    (tmp_path / "c0" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError, match="broken.png"):
        load_dataset(DataConfig(dataset=f"folder:{tmp_path}"), seed=0)


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw", "float"])
def test_npz_layouts(tmp_path, layout):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (10, 3, 5, 7)).astype(np.uint8)
    arr = {"nhw": base[:, 0], "nhwc": base.transpose(0, 2, 3, 1), "nchw": base,
           "float": base.astype(np.float32) / 255}[layout]
    np.savez(tmp_path / "x.npz", images=arr, labels=np.arange(10) % 2)
    ds = load_dataset(DataConfig(dataset=f"npz:{tmp_path / 'x.npz'}"), seed=0)
    expect = base[:, :1] if layout == "nhw" else base
    assert np.array_equal(ds.images.numpy(), expect)


def test_npz_bad_inputs(tmp_path):
    np.savez(tmp_path / "shape.npz", images=np.zeros((4, 5), np.uint8))
    np.savez(tmp_path / "len.npz", images=np.zeros((4, 5, 5), np.uint8), labels=np.zeros(3, int))
    np.savez(tmp_path / "dtype.npz", images=np.zeros((4, 5, 5), np.int32))
    np.savez(tmp_path / "none.npz", pixels=np.zeros((4, 5, 5), np.uint8))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for name, msg in [("shape", "must be"), ("len", "3 labels for 4 images"), ("dtype", "uint8 or float"),
                      ("none", "no 'images' array"), ("junk", "cannot read"), ("missing", "not found")]:
        with pytest.raises(UserError, match=msg):
            load_dataset(DataConfig(dataset=f"npz:{tmp_path / name}.npz"), seed=0)


def test_preprocessing_options():
    ds = load_dataset(DataConfig(resize=16, binarize=0.5, blur=0.5), seed=0)
    assert ds.images.shape[-2:] == (16, 16)
    assert set(ds.images.unique().tolist()) <= {0, 255}


def test_missing_torchvision_dataset_says_how_to_fetch(tmp_path):
    with pytest.raises(UserError, match="--download"):
        load_dataset(DataConfig(dataset="fashion-mnist", data_dir=str(tmp_path)), seed=0)


def test_large_folder_decodes_with_workers_into_a_memory_map(tmp_path):
    for i in range(2000):
        _png(tmp_path / f"c{i % 2}" / f"{i}.png", i % 251, (4, 4))
    ds = load_dataset(DataConfig(dataset=f"folder:{tmp_path}"), seed=0)
    assert ds.images.shape == (2000, 1, 4, 4)
    first = [p for p in ds.paths if p.endswith("/7.png")][0]
    assert int(ds.images[ds.paths.index(first), 0, 0, 0]) == 7
    (cache,) = (tmp_path / ".unsuprnn_cache").glob("*.npy")
    assert np.array_equal(np.load(cache, mmap_mode="r"), ds.images.numpy())
    (tmp_path / "c1" / "1999.png").write_bytes(b"garbage")  # a worker meets a corrupt file
    with pytest.raises(UserError, match="1999.png"):
        load_dataset(DataConfig(dataset=f"folder:{tmp_path}"), seed=0)


def mapped_from(t: torch.Tensor, file_name: str) -> bool:
    """Whether the tensor's data lies inside a memory mapping of a file called `file_name`."""
    ptr = t.data_ptr()
    maps = [ln.split() for ln in open("/proc/self/maps") if ln.rstrip().endswith(file_name)]
    return any(int(m[0].split("-")[0], 16) <= ptr < int(m[0].split("-")[1], 16) for m in maps)


def test_npy_source_is_memory_mapped_with_sidecar_labels(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (50, 6, 6, 3)).astype(np.uint8)
    np.save(tmp_path / "x.npy", arr)
    np.save(tmp_path / "x.labels.npy", np.arange(50) % 5)
    ds = load_dataset(DataConfig(dataset=f"npy:{tmp_path / 'x.npy'}"), seed=0)
    assert ds.images.shape == (50, 3, 6, 6) and ds.classes == ["0", "1", "2", "3", "4"]
    assert np.array_equal(ds.images.numpy(), arr.transpose(0, 3, 1, 2))
    assert mapped_from(ds.images, "x.npy")  # not copied into memory
    np.save(tmp_path / "x.labels.npy", np.arange(49))
    with pytest.raises(UserError, match="49 labels for 50 images"):
        load_dataset(DataConfig(dataset=f"npy:{tmp_path / 'x.npy'}"), seed=0)


def test_channel_stats_sample_windows_of_large_sets(monkeypatch):
    import importlib
    pre = importlib.import_module("unsuprnn.data.preprocess")  # the package re-exports a function of that name
    monkeypatch.setattr(pre, "STATS_SAMPLE", 640)
    x = torch.randint(0, 256, (10000, 1, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    mean, std = pre.channel_stats(x, torch.arange(10000), seed=0)   # 64 windows of 10 rows
    monkeypatch.setattr(pre, "STATS_SAMPLE", 10**9)
    exact_mean, exact_std = pre.channel_stats(x, torch.arange(10000))
    assert mean[0] == pytest.approx(exact_mean[0], rel=0.02) and std[0] == pytest.approx(exact_std[0], rel=0.02)
    assert mean != exact_mean  # it did sample


def test_uncompressed_npz_is_memory_mapped_compressed_is_read(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (30, 5, 5)).astype(np.uint8)
    np.savez(tmp_path / "plain.npz", images=arr, labels=np.arange(30) % 3)
    np.savez_compressed(tmp_path / "packed.npz", images=arr, labels=np.arange(30) % 3)
    for name, mapped in (("plain.npz", True), ("packed.npz", False)):
        ds = load_dataset(DataConfig(dataset=f"npz:{tmp_path / name}"), seed=0)
        assert np.array_equal(ds.images[:, 0].numpy(), arr) and ds.classes == ["0", "1", "2"]
        assert mapped_from(ds.images, name) == mapped


def test_a_label_far_above_the_image_count_is_refused_before_allocating(tmp_path, runner):
    from tests.conftest import invoke
    labels = np.zeros(20, np.int64)
    labels[3] = 10**9
    np.savez(tmp_path / "huge.npz", images=np.zeros((20, 5, 5), np.uint8), labels=labels)
    r = invoke(runner, "data", "--dataset", f"npz:{tmp_path / 'huge.npz'}")
    assert r.exit_code == 2 and r.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'huge.npz'}: label 1000000000 is far above the 20 images (class ids must be below "
        "1000); renumber the classes 0..C-1"]
    labels[3] = 999  # sparse ids within room are kept as they are
    np.savez(tmp_path / "sparse.npz", images=np.zeros((20, 5, 5), np.uint8), labels=labels)
    assert len(load_dataset(DataConfig(dataset=f"npz:{tmp_path / 'sparse.npz'}"), seed=0).classes) == 1000
