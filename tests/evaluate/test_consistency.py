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


def test_a_cluster_run_keeps_its_own_consistency_when_it_takes_its_sources_figures(tmp_path):
    """A frozen cluster run takes its source run's encoder figures (probe_store.adopt), but not what depends on
    its own clusters: its head's consistency stays its own, the source's k-means one is not copied over it."""
    import json

    from unsuprnn.evaluate.probe_store import adopt, read_store

    def store(split_of_mirror, methods):
        entry = lambda method, result: {"features": "encoder", "method": method, "result": result, "sizes": [8, 4],
                                        "settings": {"bank": "digits", "queries": "digits"}, "measured": "then"}
        return {"format": 2, "run": "r", "encoder_sha256": "abc", "embedding_dim": 4,
                "measurements": [entry(m, {"mirror": {"split": split_of_mirror}} if m == "consistency" else {"x": 1})
                                 for m in methods]}
    source = store(60.0, ("knn", "consistency"))
    (tmp_path / "probe.json").write_text(json.dumps(store(5.0, ("head", "consistency"))))
    adopt(tmp_path, "abc", source)
    kept = {e["method"]: e["result"] for e in read_store(tmp_path, "abc")["measurements"]}
    assert set(kept) == {"knn", "head", "consistency"} and kept["consistency"]["mirror"]["split"] == 5.0
