"""Which transformations a set is closed under, read without labels (data/invariance.py): a set that holds the
mirror image of each of its images is closed under mirroring and gets mirrored views; a set of strokes that all
face one way is not, and does not."""

import torch

from unsuprnn.config import AugmentConfig, DataConfig
from unsuprnn.data.invariance import closure, invariances, resolve_from_data

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
    said = resolve_from_data(DataConfig(), augment, BOTH_WAYS)
    assert augment.hflip is True and said["augment"].startswith("augment auto: mirroring on")


def test_strokes_facing_one_way_are_not_closed_and_keep_their_side():
    assert closure(FACING_ONE_WAY, lambda x: x.flip(-1)) < 0.9
    augment = AugmentConfig()
    resolve_from_data(DataConfig(), augment, FACING_ONE_WAY)
    assert augment.hflip is False
    measured = invariances(FACING_ONE_WAY)
    assert set(measured) == {"mirror", "upside down", "shifted", "zoomed in", "turned", "negative"}
    assert not measured["mirror"]["closed"]


def test_a_setting_given_is_kept():
    augment, data = AugmentConfig(hflip=False, colour_jitter=True), DataConfig(intensity="keep")
    assert resolve_from_data(data, augment, BOTH_WAYS) == {} and augment.hflip is False and data.intensity == "keep"


def test_a_run_records_what_auto_chose_and_resumes_with_it(tmp_path, monkeypatch):
    """Pretrained on a set closed under mirroring, the run's config.yaml says mirroring on (not auto), meta.json
    says why, and a run killed after its first checkpoint and resumed ends with the same weights."""
    import json

    from tests.conftest import straight_and_resumed_on
    straight, resumed = straight_and_resumed_on(BOTH_WAYS, 4, 64, tmp_path, monkeypatch)
    for run in ("straight", "resumed"):
        assert "hflip: true" in (tmp_path / run / "config.yaml").read_text()
        assert "intensity: canonical" in (tmp_path / run / "config.yaml").read_text()  # (grey images)
        schedule = json.loads((tmp_path / run / "meta.json").read_text())["schedule"]
        assert "mirroring on" in schedule["augment"] and schedule["intensity"].startswith("intensity auto: canonical")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def palette_set(random_colours: bool, n: int = 60) -> torch.Tensor:
    """RGB shapes of two widths: red on blue (one palette: a negative, cyan on yellow, or a turned copy, blue on
    green, is like no image of the set), or each image in colours of its own (every palette occurs)."""
    rng = torch.Generator().manual_seed(0)
    images = torch.zeros(n, 3, 16, 16, dtype=torch.uint8)
    for i in range(n):
        ground, shape = (torch.randint(0, 256, (3,), generator=rng) for _ in range(2)) if random_colours else (
            torch.tensor([0, 0, 150 + int(torch.randint(0, 40, (1,), generator=rng))]), torch.tensor([220, 0, 0]))
        y, x = torch.randint(0, 8, (2,), generator=rng).tolist()
        images[i] = ground.view(3, 1, 1)
        images[i, :, y:y + 8, x:x + (8 if i % 2 else 4)] = shape.view(3, 1, 1)
    return images


def test_intensity_auto_keeps_colour_and_polarity_only_where_the_set_holds_neither_negatives_nor_turned_copies():
    one_palette, any_palette = palette_set(False), palette_set(True)
    chosen = {}
    for name, images in (("one palette", one_palette), ("any palette", any_palette), ("grey", BOTH_WAYS)):
        data = DataConfig()
        assert data.intensity == "auto"
        said = resolve_from_data(data, AugmentConfig(hflip=False), images)
        chosen[name] = data.intensity
        assert said["intensity"].startswith(f"intensity auto: {data.intensity}")
    assert chosen == {"one palette": "standardize", "any palette": "canonical", "grey": "canonical"}


def test_intensity_auto_reads_the_ratios_it_is_given():
    """Hand-given ratios decide, on either side of 0.95, without measuring again."""
    images = palette_set(False)
    for negative, turned, expect in ((0.76, 0.57, "standardize"), (0.97, 0.57, "canonical"), (0.76, 0.99, "canonical")):
        data = DataConfig()
        resolve_from_data(data, AugmentConfig(hflip=False), images,
                          measured={"negative": negative, "colour channels turned": turned})
        assert data.intensity == expect, (negative, turned)


def test_unsuprnn_data_says_what_intensity_auto_chose_on_colour_images_of_one_palette(runner, tmp_path):
    from PIL import Image

    from tests.conftest import invoke
    for i, img in enumerate(palette_set(False)):
        (tmp_path / "f" / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(tmp_path / "f" / "ab"[i % 2] / f"{i}.png")
    r = invoke(runner, "data", "--dataset", f"folder:{tmp_path / 'f'}")
    assert r.exit_code == 0 and "intensity auto: standardize" in r.stdout, r.output
    r = invoke(runner, "data", "--dataset", f"folder:{tmp_path / 'f'}", "--intensity", "canonical")
    assert r.exit_code == 0 and "intensity auto" not in r.stdout, r.output


def placed(anywhere: bool, n: int = 120, side: int = 24) -> torch.Tensor:
    """Grey glyphs (a bar with a foot, none its own shift) on black, each at a random place of the image, or all at
    its centre: only the first set holds a shifted copy of its images."""
    rng = torch.Generator().manual_seed(1)
    images = torch.zeros(n, 1, side, side, dtype=torch.uint8)
    for i in range(n):
        y, x = torch.randint(0, side - 10, (2,), generator=rng).tolist() if anywhere else (side // 2 - 5,) * 2
        length = 6 + i % 4
        images[i, 0, y:y + length, x + 4:x + 6] = 255
        images[i, 0, y + length - 2:y + length, x + 2:x + 9] = 200
    return images


def test_a_set_drawn_anywhere_is_closed_under_shifts_and_one_drawn_at_one_place_is_not():
    from unsuprnn.data.invariance import TRANSFORMS
    shift = TRANSFORMS["shifted"][0]
    anywhere, centred = placed(True), placed(False)
    moved = shift(centred)
    assert moved.shape == centred.shape and moved.dtype == torch.uint8 and not torch.equal(moved, centred)
    assert int(moved[0].sum()) == int(centred[0].sum())  # shifted whole: the black ground repeats into the gap
    assert closure(anywhere, shift) > 0.95 and closure(centred, shift) < 0.8
    measured = invariances(centred)
    assert {"shifted", "zoomed in", "turned"} <= set(measured) and not measured["shifted"]["closed"]
    assert measured["shifted"]["flag"] == "--set augment.translate=0.1"


def test_turned_and_zoomed_copies_keep_the_ground_and_the_centre():
    """A centred disc is its own turned copy; zoomed in, it grows about the same centre."""
    from unsuprnn.data.invariance import TRANSFORMS
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    disc = (((yy - 15.5) ** 2 + (xx - 15.5) ** 2 < 49) * 200 + 20).to(torch.uint8).view(1, 1, 32, 32)
    turned = TRANSFORMS["turned"][0](disc)
    assert (turned.float() - disc.float()).abs().mean() < 3 and (turned != disc).float().mean() < 0.1  # (its rim)
    assert int(turned[0, 0, 0, 0]) == 20  # corners repeat the ground, not black
    zoomed = TRANSFORMS["zoomed in"][0](disc)
    assert zoomed.float().mean() > disc.float().mean() and torch.equal(zoomed, zoomed.flip(-1).flip(-2))
