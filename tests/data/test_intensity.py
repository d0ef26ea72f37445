"""`data.intensity`: each image's own standardization, and its polarity made canonical."""

import pytest
import torch

from unsuprnn.config import AugmentConfig
from unsuprnn.data.pipeline import SequencePipeline, standardize_images


def spot(light_on_dark: bool = True) -> torch.Tensor:
    """A 1 x 8 x 8 image: a 2 x 2 square of 0.9 on a ground of 0.2, or the reverse."""
    x = torch.full((1, 8, 8), 0.2)
    x[:, 3:5, 3:5] = 0.9
    return x if light_on_dark else 1.1 - x


def test_standardized_images_have_zero_mean_and_unit_std():
    g = torch.Generator().manual_seed(0)
    # contrasts of 0.2 to 1.2: well above eps, where a flat image is meant to map to zeros instead
    contrast = 0.2 + torch.rand(5, 1, 1, 1, generator=g)
    x = torch.rand(5, 3, 6, 7, generator=g) * contrast + torch.rand(5, 1, 1, 1, generator=g)
    z = standardize_images(x)
    assert torch.allclose(z.mean((1, 2, 3)), torch.zeros(5), atol=1e-6)
    assert torch.allclose(z.pow(2).mean((1, 2, 3)), torch.ones(5), atol=1e-5)


def test_brightness_and_contrast_are_gone_and_polarity_only_when_canonical():
    x = spot()[None]
    brighter = 0.5 * x + 0.3
    assert torch.allclose(standardize_images(brighter), standardize_images(x), atol=1e-5)
    negative = spot(light_on_dark=False)[None]
    assert torch.allclose(standardize_images(negative), -standardize_images(x), atol=1e-5)
    canon = standardize_images(x, polarity=True)
    assert torch.allclose(standardize_images(negative, polarity=True), canon, atol=1e-5)
    assert canon[0, 0, 3, 3] > 0 > canon[0, 0, 0, 0]  # the small square is the bright part


def test_a_flat_image_maps_to_zeros():
    z = standardize_images(torch.full((2, 1, 4, 4), 0.7), polarity=True)
    assert torch.allclose(z, torch.zeros(2, 1, 4, 4), atol=1e-4)


@pytest.mark.parametrize("intensity", ["keep", "standardize", "canonical"])
def test_the_pipeline_reads_what_the_setting_says(intensity):
    pipe = SequencePipeline((1, 8, 8), "rows", 4, [0.3], [0.2], AugmentConfig(), intensity)
    x = (torch.stack([spot(), spot(False)]) * 255).to(torch.uint8)
    seq = pipe.clean(x)
    if intensity == "keep":
        assert torch.allclose(seq, ((x.float() / 255 - 0.3) / 0.2).reshape(2, 8, 8))
    elif intensity == "standardize":
        assert torch.allclose(seq[0], -seq[1], atol=1e-2)  # the two differ by polarity only
    else:
        assert torch.allclose(seq[0], seq[1], atol=1e-2)


def test_canonical_colour_reads_a_red_shape_on_blue_as_a_blue_shape_on_red():
    red_on_blue = torch.zeros(1, 3, 8, 8)
    red_on_blue[:, 2] = 0.8
    red_on_blue[:, 0, 3:5, 3:5], red_on_blue[:, 2, 3:5, 3:5] = 0.9, 0.0
    blue_on_red = red_on_blue[:, [2, 1, 0]]
    a = standardize_images(red_on_blue, polarity=True, per_channel=True)
    b = standardize_images(blue_on_red, polarity=True, per_channel=True)
    assert torch.allclose(a, b, atol=1e-5)  # every channel: the square bright where it departs from the ground
    assert torch.equal(a[0, 1], torch.zeros(8, 8))  # green never varies
    assert not torch.allclose(standardize_images(red_on_blue), standardize_images(blue_on_red), atol=0.1)
