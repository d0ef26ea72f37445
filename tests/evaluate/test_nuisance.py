"""Which nuisance the embedding and its clusters follow, read without labels (evaluate/nuisance.py)."""

import numpy as np
import torch

from unsuprnn.evaluate.nuisance import explained_share, followed, nuisances, pixel_properties


def spots(n: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """n grey 8 x 8 images, each a 2 x 2 spot at a random place: light on dark (polarity 1) or the reverse (0)."""
    rng = np.random.default_rng(seed)
    pol = rng.integers(0, 2, n)
    x = np.full((n, 1, 8, 8), 40, np.uint8)
    for i, (r, c) in enumerate(rng.integers(0, 6, (n, 2))):
        x[i, 0, r:r + 2, c:c + 2] = 220
    x[pol == 0] = 255 - x[pol == 0]
    return torch.from_numpy(x), pol


def test_pixel_properties_of_hand_made_images():
    x, pol = spots(6)
    props = pixel_properties(x)
    assert np.array_equal(props["polarity"] > 0, pol == 1)
    light = (40 * 60 + 220 * 4) / 64 / 255
    assert np.allclose(props["brightness"], np.where(pol == 1, light, 1 - light), atol=1e-6)
    assert "colour" not in props
    rgb = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    rgb[0, 0], rgb[1, 2] = 255, 255
    assert np.allclose(pixel_properties(rgb)["colour"], [[1, 0, 0], [0, 0, 1]])


def test_object_size_and_place_of_hand_made_images():
    x = np.full((3, 1, 8, 8), 40, np.uint8)
    x[0, 0, 1:3, 4:6] = 220          # a 2 x 2 spot, rows 1-2, columns 4-5
    x[1, 0, 2:6, 0:4] = 0            # a dark 4 x 4 block on the left: the object is what differs from the ground
    props = pixel_properties(torch.from_numpy(x))  # (the third image: ground only)
    assert np.allclose(props["size"], [4 / 64, 16 / 64, 0])
    assert np.allclose(props["place across"], [4.5 / 7, 1.5 / 7, 0.5])
    assert np.allclose(props["place down"], [1.5 / 7, 3.5 / 7, 0.5])
    rgb = np.full((1, 3, 6, 6), 255, np.uint8)
    rgb[0, 0, 3:, 3:] = 200          # only the red channel differs, by 55 / 255 (more than OBJECT_LEVEL)
    rgb[0, 1, :3, :3] = 240          # a difference of 15 / 255 is ground
    props = pixel_properties(torch.from_numpy(rgb))
    assert np.allclose(props["size"], [9 / 36]) and np.allclose(props["place across"], [4 / 5])


def test_clusters_that_split_by_object_size_are_said_to_follow_it():
    rng = np.random.default_rng(0)
    sides = rng.choice([2, 6], 300)  # small or large squares; the class is something else
    x = np.zeros((300, 1, 12, 12), np.uint8)
    for i, side in enumerate(sides):
        x[i, 0, 3:3 + side, 3:3 + side] = 200
    labels = rng.integers(0, 3, 300)
    ids = (sides == 6).astype(int)
    rows = {r["property"]: r for r in nuisances(rng.normal(size=(300, 4)), torch.from_numpy(x), ids, labels)}
    assert rows["size"]["cluster_nmi"] > 0.9 and rows["size"]["label_nmi"] < 0.05
    assert "size" in followed(list(rows.values()))


def test_explained_share_is_one_for_a_function_of_the_property_and_near_zero_for_noise():
    rng = np.random.default_rng(0)
    prop = rng.normal(size=500)
    # a large common direction (as a recurrent encoder's features have) and a part that moves with the property
    follows = np.stack([100 + 0 * prop, prop, -2 * prop], 1)
    assert explained_share(follows, prop) > 0.99
    assert explained_share(rng.normal(size=(500, 16)), prop) < 0.02


def test_clusters_that_split_by_polarity_are_said_to_follow_it():
    x, pol = spots(400)
    rng = np.random.default_rng(1)
    emb = np.stack([pol * 5.0 + rng.normal(0, 0.1, 400), rng.normal(0, 1, 400) + 10], 1)
    labels = rng.integers(0, 3, 400)  # the class has nothing to do with polarity
    rows = {r["property"]: r for r in nuisances(emb, x, pol, labels)}
    assert rows["polarity"]["cluster_nmi"] == 1.0 and rows["polarity"]["label_nmi"] < 0.05
    assert rows["polarity"]["variance_share"] > 0.8
    assert "polarity" in followed(list(rows.values()))
    rows = nuisances(emb, x, labels, labels)  # clusters that follow the class follow no nuisance
    assert followed(rows) == []


def test_remedies_name_each_setting_once_for_the_properties_followed():
    from unsuprnn.evaluate.nuisance import remedies
    assert remedies(["brightness", "polarity"]) == ["`--intensity canonical`"]
    assert remedies(["place across", "place down", "size"]) == [
        "views that shift further (a higher `--set augment.translate=...`)",
        "views that zoom further (a lower `--set augment.crop_scale=...`)"]
