"""What the clusters follow (evaluate/consistency.py): clusters planted to split mirror pairs split every image
from its mirrored copy; clusters that keep the pairs together split none."""

import numpy as np
import torch

from unsuprnn.evaluate.consistency import split_by


def test_planted_clusters_that_split_mirror_pairs_split_every_copy():
    g = torch.Generator().manual_seed(0)
    shapes = torch.rand(20, 1, 8, 8, generator=g)
    shapes[:, :, :, 4:] += 2.0  # each facing right ...
    images = torch.cat([shapes, shapes.flip(-1)])  # ... and its mirror image, facing left
    emb, mirrored = images.flatten(1), images.flip(-1).flatten(1)
    by_direction = np.repeat([0, 1], 20)               # a grouping that follows which way a shape faces
    by_shape = np.tile(np.arange(20), 2)               # one that follows the shape itself
    assert split_by(by_direction, emb, mirrored).mean() == 1.0
    assert split_by(by_shape, emb, mirrored).mean() == 0.0
