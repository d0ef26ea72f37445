import dataclasses

import torch

from unsuprnn.config import AugmentConfig
from unsuprnn.data.augment import BatchAugment


def test_parameters_differ_per_sample_and_repeat_under_seed():
    aug = BatchAugment(AugmentConfig())
    p1 = aug.sample(64, "cpu", torch.Generator().manual_seed(3))
    p2 = aug.sample(64, "cpu", torch.Generator().manual_seed(3))
    p3 = aug.sample(64, "cpu", torch.Generator().manual_seed(4))
    for key in ("scale", "angle", "tx", "ty", "shear", "noise", "brightness"):
        assert p1[key].unique().numel() == 64, key      # every sample its own draw
        assert torch.equal(p1[key], p2[key]), key       # same seed, same draws
        assert not torch.equal(p1[key], p3[key]), key   # other seed, other draws
    assert 0 < p1["erase"].sum() < 64


def test_outputs_reproducible_and_per_sample():
    aug = BatchAugment(AugmentConfig())
    x = torch.rand(1, 1, 16, 16).repeat(8, 1, 1, 1)   # eight copies of one image
    a = aug(x, torch.Generator().manual_seed(0))
    b = aug(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    flat = a.flatten(1)
    assert all(not torch.equal(flat[0], flat[i]) for i in range(1, 8))


def test_disabled_augmentation_is_identity():
    off = AugmentConfig(crop_scale=1.0, rotate=0, translate=0, shear=0, noise=0, erase_prob=0,
                        brightness=0, contrast=0, hflip=False, saturation=0, hue=0, grayscale=0)
    x = torch.rand(4, 3, 8, 8)
    assert torch.allclose(BatchAugment(off)(x, torch.Generator().manual_seed(0)), x)


def test_pure_translation_moves_content():
    cfg = dataclasses.replace(AugmentConfig(), crop_scale=1.0, rotate=0, shear=0, noise=0, erase_prob=0,
                              brightness=0, contrast=0)
    aug = BatchAugment(cfg)
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3, 3] = 1
    p = aug.sample(1, "cpu", None)
    p["tx"][:] = 0.25  # a quarter of the width: sample from 2 pixels to the right
    p["ty"][:] = 0.0
    y = aug.apply(x, p)
    assert y[0, 0, 3, 1] == 1 and y.sum() == 1


def test_erasing_band_covers_whole_rows():
    cfg = dataclasses.replace(AugmentConfig(), crop_scale=1.0, rotate=0, translate=0, shear=0, noise=0,
                              brightness=0, contrast=0, erase_prob=1.0, erase_max=0.5)
    aug = BatchAugment(cfg)
    x = torch.ones(2, 1, 10, 10)
    p = aug.sample(2, "cpu", torch.Generator().manual_seed(0))
    p["erase_band"] = torch.tensor([True, False])
    y = aug.apply(x, p)
    rows_zero = (y[0, 0] == 0).all(1)
    assert rows_zero.any() and ((y[0, 0] == 0).sum(1)[rows_zero] == 10).all()
    block = y[1, 0] == 0
    assert block.sum() > 0 and not block.all(1).any()  # a block narrower than the image


def test_colour_augmentation_keeps_grey_grey_and_luma_and_leaves_one_channel_alone():
    cfg = dataclasses.replace(AugmentConfig(), crop_scale=1.0, rotate=0, translate=0, shear=0, noise=0,
                              erase_prob=0, brightness=0, contrast=0, saturation=0.8, hue=0.5, grayscale=0.5)
    aug = BatchAugment(cfg)
    grey = torch.full((16, 3, 4, 4), 0.5)
    assert torch.allclose(aug(grey, torch.Generator().manual_seed(0)), grey, atol=1e-5)  # no colour to move
    x = torch.tensor([0.45, 0.5, 0.55]).view(1, 3, 1, 1).repeat(64, 1, 4, 4)  # a muted colour: in gamut after turns
    p = aug.sample(64, "cpu", torch.Generator().manual_seed(1), channels=3)
    p["saturation"][:] = 1.0
    y = aug.apply(x, p)
    luma = lambda t: (t * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)
    assert torch.allclose(luma(y), luma(x), atol=1e-4)  # a hue turn keeps the brightness
    assert torch.allclose(y[p["gray"]][:, 0], y[p["gray"]][:, 1]) and p["gray"].any() and not p["gray"].all()
    one = BatchAugment(dataclasses.replace(cfg, hue=0.3))
    assert "hue" not in one.sample(4, "cpu", None, channels=1)  # grayscale images draw no colour parameters
