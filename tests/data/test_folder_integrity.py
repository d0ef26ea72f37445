"""A folder's pixels are the ones on disk: cache fingerprints, 16-bit images, symlinked class folders,
EXIF orientation, empty images."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from unsuprnn.config import DataConfig
from unsuprnn.data import load_dataset
from unsuprnn.errors import UserError


def png(path, value, size=(6, 6)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, np.uint8)).save(path)


def load(root, **kw):
    return load_dataset(DataConfig(dataset=f"folder:{root}", **kw), seed=0)


def test_a_file_replaced_with_the_same_size_and_mtime_is_decoded_again(tmp_path):
    for i, v in enumerate((10, 20, 30, 40)):
        png(tmp_path / "a" / f"{i}.png", v)
    first = load(tmp_path)
    target = tmp_path / "a" / "0.png"
    st = target.stat()
    png(tmp_path / "other.png", 250)
    assert (tmp_path / "other.png").stat().st_size == st.st_size  # same byte size, other pixels
    shutil.copyfile(tmp_path / "other.png", target)
    (tmp_path / "other.png").unlink()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # as cp -p, rsync -a, tar, unzip do
    again = load(tmp_path)
    row = first.paths.index(str(target))
    assert int(first.images[row].max()) == 10 and int(again.images[row].max()) == 250
    assert len(list((tmp_path / ".unsuprnn_cache").glob("decoded-*.npy"))) == 1  # the stale cache is gone


def test_two_folders_alike_in_names_sizes_and_mtimes_share_no_cache(tmp_path):
    cache = tmp_path / "cache"
    for name, v in (("A", 60), ("B", 180)):
        for i in range(3):
            png(tmp_path / name / "c" / f"{i}.png", v)
            os.utime(tmp_path / name / "c" / f"{i}.png", ns=(10**18, 10**18))
    a = load(tmp_path / "A", cache_dir=str(cache))
    b = load(tmp_path / "B", cache_dir=str(cache))
    assert int(a.images.max()) == 60 and int(b.images.max()) == 180
    assert len(list(cache.glob("decoded-*.npy"))) == 2


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    a = (np.arange(64, dtype=np.uint32).reshape(8, 8) * 1024).astype(np.uint16)  # 0 .. 64512
    (tmp_path / "c").mkdir()
    Image.fromarray(a).save(tmp_path / "c" / "x.png")
    png(tmp_path / "c" / "y.png", 0, (8, 8))
    ds = load(tmp_path)
    got = ds.images[ds.paths.index(str(tmp_path / "c" / "x.png"))][0].numpy()
    assert np.array_equal(got, np.rint(a / 257.0).astype(np.uint8))
    assert got.mean() < 130  # Pillow's clipping made it 254 on average


def test_symlinked_class_folders_are_followed_once(tmp_path):
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    for i in range(2):
        png(data / "cat" / f"{i}.png", 10)
        png(elsewhere / "dogs" / f"{i}.png", 200)
    (data / "dog").symlink_to(elsewhere / "dogs", target_is_directory=True)
    (data / "loop").symlink_to(data, target_is_directory=True)  # a link to the root itself
    ds = load(data)
    assert ds.classes == ["cat", "dog"] and len(ds.images) == 4
    assert sorted(ds.labels.tolist()) == [0, 0, 1, 1] and int(ds.images[ds.labels == 1].min()) == 200


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((4, 8), np.uint8)
    a[0, :] = 255  # a bright top row, 8 wide
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    (tmp_path / "c").mkdir()
    im.save(tmp_path / "c" / "x.jpg", exif=exif, quality=100)
    ds = load(tmp_path)
    assert tuple(ds.images.shape[2:]) == (8, 4)  # shown upright: 4 wide, 8 tall
    assert ds.images[0, 0, :, -1].float().mean() > 200  # the bright row is now the right column


def test_empty_images_are_refused_at_load(tmp_path):
    np.savez(tmp_path / "empty.npz", images=np.zeros((5, 0, 7), np.uint8))
    with pytest.raises(UserError, match="0x7 pixels .* which is empty"):
        load_dataset(DataConfig(dataset=f"npz:{tmp_path / 'empty.npz'}"), seed=0)
