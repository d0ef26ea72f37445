"""Which transformations a set is closed under, read without labels (data/invariance.py): a set that holds the
mirror image of each of its images is closed under mirroring and gets mirrored views; a set of strokes that all
face one way is not, and does not."""

import torch

from unsuprnn.config import AugmentConfig
from unsuprnn.data.invariance import closure, invariances, resolve_augment

g = torch.Generator().manual_seed(0)
BASE = (torch.rand(100, 1, 16, 16, generator=g) > 0.8).float()
BASE[:, :, :, :8] *= 0.2  # every pattern heavier on its right half: none is its own mirror image


def jittered(x, seed):
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) * 0.15
    return ((x + noise).clamp(0, 1) * 255).round().to(torch.uint8)


FACING_ONE_WAY = torch.cat([jittered(BASE, 1), jittered(BASE, 2)])                       # each with a near copy
BOTH_WAYS = torch.cat([FACING_ONE_WAY, jittered(BASE.flip(-1), 3), jittered(BASE.flip(-1), 4)])


def test_a_set_holding_mirror_images_is_closed_and_gets_mirrored_views():
    assert closure(BOTH_WAYS, lambda x: x.flip(-1)) > 0.95
    augment = AugmentConfig()
    assert augment.hflip == "auto"
    said = resolve_augment(augment, BOTH_WAYS)
    assert augment.hflip is True and said.startswith("augment auto: mirroring on")


def test_strokes_facing_one_way_are_not_closed_and_keep_their_side():
    assert closure(FACING_ONE_WAY, lambda x: x.flip(-1)) < 0.9
    augment = AugmentConfig()
    resolve_augment(augment, FACING_ONE_WAY)
    assert augment.hflip is False
    measured = invariances(FACING_ONE_WAY)
    assert set(measured) == {"mirror", "upside down", "negative"} and not measured["mirror"]["closed"]


def test_a_setting_given_is_kept():
    augment = AugmentConfig(hflip=False)
    assert resolve_augment(augment, BOTH_WAYS) is None and augment.hflip is False


def test_a_run_records_what_auto_chose_and_resumes_with_it(tmp_path, monkeypatch):
    """Pretrained on a set closed under mirroring, the run's config.yaml says mirroring on (not auto), meta.json
    says why, and a run killed after its first checkpoint and resumed ends with the same weights."""
    import json

    import numpy as np

    from tests.conftest import straight_and_resumed, tiny_config
    np.savez(tmp_path / "both.npz", images=BOTH_WAYS.numpy(), labels=np.arange(len(BOTH_WAYS)) % 4)
    cfg = tiny_config(epochs=2)
    cfg.data.dataset, cfg.train.batch_size = f"npz:{tmp_path / 'both.npz'}", 64
    straight, resumed = straight_and_resumed(cfg, tmp_path, monkeypatch, kill_after=1)
    for run in ("straight", "resumed"):
        assert "hflip: true" in (tmp_path / run / "config.yaml").read_text()
        assert "mirroring on" in json.loads((tmp_path / run / "meta.json").read_text())["schedule"]["augment"]
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_a_colour_set_that_keeps_its_colours_and_polarity_is_told_to_keep_them():
    """Hand-built measurements: only an RGB set closed neither under negatives nor under turned channels, read with
    canonical intensities, gets the hint; a grey set, a set closed under either, or another intensity does not."""
    from unsuprnn.data.invariance import intensity_hint
    m = lambda neg, col: {"mirror": {"ratio": 1.0, "closed": True}, "negative": {"ratio": neg, "closed": neg >= 0.95},
                          **({} if col is None else {"colour channels turned": {"ratio": col, "closed": col >= 0.95}})}
    assert "--intensity standardize" in intensity_hint(m(0.76, 0.57), "canonical")
    assert intensity_hint(m(0.76, None), "canonical") is None        # grey: nothing to say of colour
    assert intensity_hint(m(0.97, 0.57), "canonical") is None        # polarity varies: canonical's job
    assert intensity_hint(m(0.76, 0.99), "canonical") is None        # colours vary: canonical's job
    assert intensity_hint(m(0.76, 0.57), "standardize") is None


def test_unsuprnn_data_gives_the_hint_on_colour_photographs_of_one_palette(runner, tmp_path):
    """Red shapes on blue: a negative (cyan on yellow) or a turned copy (blue on green) is like no image of it."""
    import numpy as np
    from PIL import Image

    from tests.conftest import invoke
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "f" / c).mkdir(parents=True)
        for i in range(30):
            img = np.zeros((16, 16, 3), np.uint8)
            img[..., 2] = 150 + rng.integers(0, 40)
            y, x = rng.integers(0, 8, 2)
            img[y:y + 8, x:x + (8 if c == "a" else 4), 0] = 220
            Image.fromarray(img).save(tmp_path / "f" / c / f"{i}.png")
    r = invoke(runner, "data", "--dataset", f"folder:{tmp_path / 'f'}")
    assert r.exit_code == 0 and "try --intensity standardize" in r.stdout, r.output
