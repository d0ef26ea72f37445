import pytest
import torch

from unsuprnn.config import DataConfig
from unsuprnn.data.views import make_view, resolve_view
from unsuprnn.errors import UserError

SHAPES = [(1, 8, 8), (3, 12, 8)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["rows", "columns", "snake", "patches"])
def test_round_trip_is_exact(name, shape):
    x = torch.rand(5, *shape)
    v = make_view(name, shape, patch=4)
    s = v.to_sequence(x)
    t, d = v.seq_shape()
    assert s.shape == (5, t, d)
    assert torch.equal(v.to_image(s), x)


def test_shapes_by_view():
    shape = (3, 12, 8)
    assert make_view("rows", shape).seq_shape() == (12, 24)
    assert make_view("columns", shape).seq_shape() == (8, 36)
    assert make_view("snake", shape).seq_shape() == (12, 24)
    assert make_view("patches", shape, patch=4).seq_shape() == (6, 48)


def test_rows_columns_content():
    x = torch.arange(6.).view(1, 1, 2, 3)  # [[0,1,2],[3,4,5]]
    assert make_view("rows", (1, 2, 3)).to_sequence(x).tolist() == [[[0, 1, 2], [3, 4, 5]]]
    assert make_view("columns", (1, 2, 3)).to_sequence(x).tolist() == [[[0, 3], [1, 4], [2, 5]]]
    assert make_view("snake", (1, 2, 3)).to_sequence(x).tolist() == [[[0, 1, 2], [5, 4, 3]]]


def test_patch_order_on_hand_made_image():
    # 4x4 image, 2x2 patches: raster order of patches, raster order inside each patch
    x = torch.arange(16.).view(1, 1, 4, 4)
    s = make_view("patches", (1, 4, 4), patch=2).to_sequence(x)
    assert s.tolist() == [[[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]]


def test_patch_with_channels_is_channel_major():
    x = torch.stack([torch.zeros(2, 2), torch.ones(2, 2)]).unsqueeze(0)  # [1, 2, 2, 2]
    s = make_view("patches", (2, 2, 2), patch=2).to_sequence(x)
    assert s.tolist() == [[[0, 0, 0, 0, 1, 1, 1, 1]]]


def test_bad_patch_and_unknown_view():
    with pytest.raises(UserError, match="does not divide"):
        make_view("patches", (1, 8, 8), patch=3)
    with pytest.raises(UserError, match="unknown view"):
        make_view("spiral", (1, 8, 8))


@pytest.mark.parametrize("shape, view, patch", [
    ((1, 28, 28), "rows", 4),        # up to 32 px a side: rows, grey or colour
    ((3, 32, 32), "rows", 4),        # (8 x 8 patches of 4 px: measured on icons, not adopted; RESULTS.md)
    ((1, 64, 64), "patches", 8),     # larger: about 6 x 6 patches
    ((3, 96, 96), "patches", 16),
    ((1, 37, 37), "rows", 4),        # no patch side cuts 37 px into a grid
])
def test_view_auto_by_size(shape, view, patch):
    data = DataConfig()
    said = resolve_view(data, shape)
    assert (data.view, data.patch) == (view, patch)
    assert said.startswith(f"view auto: {view}" if view == "rows" else "view auto: about")


def test_view_given_is_kept():
    data = DataConfig(view="patches", patch=4)
    assert resolve_view(data, (3, 32, 32)) is None
    assert (data.view, data.patch) == ("patches", 4)
