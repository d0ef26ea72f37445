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
