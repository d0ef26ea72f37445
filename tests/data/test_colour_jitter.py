"""Colour jitter read from the images (data/invariance.py, colour_follows_shape): where images drawn alike are
coloured alike the jitter goes off, where colours vary whatever the shape it stays on, grey images keep it (it
changes nothing there); a run records the choice, resumes with it, and runs saved before it read back jittered."""

import torch

from unsuprnn.config import AugmentConfig, DataConfig
from unsuprnn.data.augment import BatchAugment
from unsuprnn.data.invariance import COLOUR_FOLLOWS, colour_follows_shape, resolve_from_data

RED, GREEN = torch.tensor([200, 30, 30]), torch.tensor([30, 160, 30])


def shapes(coloured_by_shape: bool, n: int = 80, side: int = 16) -> torch.Tensor:
    """Bars standing and bars lying, on white, each at a random place. Coloured by shape: the standing ones red,
    the lying ones green (each a little lighter or darker); else each bar a colour of its own."""
    rng = torch.Generator().manual_seed(0)
    images = torch.full((n, 3, side, side), 255, dtype=torch.uint8)
    for i in range(n):
        if coloured_by_shape:
            colour = ((RED if i % 2 else GREEN) + torch.randint(-20, 21, (1,), generator=rng)).clamp(0, 255)
        else:
            colour = torch.randint(0, 200, (3,), generator=rng)
        y, x = torch.randint(0, 6, (2,), generator=rng).tolist()
        height, width = (10, 3) if i % 2 else (3, 10)
        images[i, :, y:y + height, x:x + width] = colour.to(torch.uint8).view(3, 1, 1)
    return images


def test_colour_that_follows_the_shape_measures_low_and_colour_at_random_near_one():
    by_shape, at_random = colour_follows_shape(shapes(True)), colour_follows_shape(shapes(False))
    assert by_shape < 0.2 < COLOUR_FOLLOWS < 0.8 < at_random, (by_shape, at_random)


def test_auto_turns_the_jitter_off_only_where_colour_follows_the_shape_and_says_why():
    chosen = {}
    for name, images in (("by shape", shapes(True)), ("at random", shapes(False)),
                         ("grey", shapes(True)[:, :1])):
        augment = AugmentConfig(hflip=False)
        assert augment.colour_jitter == "auto"
        said = resolve_from_data(DataConfig(intensity="keep"), augment, images)
        chosen[name] = augment.colour_jitter
        assert said["colour"].startswith(f"colour jitter auto: {'on' if augment.colour_jitter else 'off'}"), said
    assert chosen == {"by shape": False, "at random": True, "grey": True}


def test_a_jitter_setting_given_is_kept_and_not_measured():
    for given in (True, False):
        augment = AugmentConfig(hflip=False, colour_jitter=given)
        assert "colour" not in resolve_from_data(DataConfig(intensity="keep"), augment, shapes(True))
        assert augment.colour_jitter is given


def test_without_jitter_a_view_keeps_its_colours_and_with_it_they_change():
    """Every other augmentation off: a view without jitter is the image itself; with it, hues move."""
    x = shapes(True)[:16].float() / 255
    still = dict(crop_scale=1.0, rotate=0.0, translate=0.0, shear=0.0, noise=0.0, erase_prob=0.0, brightness=0.0,
                 contrast=0.0, hflip=False)
    for jitter in (False, True):
        augment = BatchAugment(AugmentConfig(**still, colour_jitter=jitter))
        params = augment.sample(len(x), "cpu", torch.Generator().manual_seed(0), channels=3)
        assert ("hue" in params) is jitter
        view = augment.apply(x, params)
        assert torch.allclose(view, x, atol=1e-6) is not jitter


def test_a_run_records_the_choice_and_resumes_with_it(tmp_path, monkeypatch):
    import json

    from tests.conftest import straight_and_resumed_on
    straight, resumed = straight_and_resumed_on(shapes(True), 2, 32, tmp_path, monkeypatch)
    for run in ("straight", "resumed"):
        assert "colour_jitter: false" in (tmp_path / run / "config.yaml").read_text()
        schedule = json.loads((tmp_path / run / "meta.json").read_text())["schedule"]
        assert schedule["colour"].startswith("colour jitter auto: off")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_a_config_saved_before_the_setting_reads_back_jittered():
    from unsuprnn.config import Config, config_from_saved
    saved = Config().saved()
    saved["schema"] = 2
    del saved["augment"]["colour_jitter"]
    assert config_from_saved(saved).augment.colour_jitter is True
