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


def test_without_a_head_the_consistency_judges_the_grouping_the_k_means_probe_scored(tiny_run):
    """A run without a cluster head: the clusters whose consistency the probe reports are the k-means probe's own
    (the same features, seed and restarts), so scoring them against the labels gives the k-means figure."""
    from unsuprnn.config import ProbeSettings
    from unsuprnn.evaluate.baselines import feature_sets
    from unsuprnn.evaluate.metrics import clustering_metrics
    from unsuprnn.evaluate.probe import cluster_ids, load_probe_data, run_probe
    from unsuprnn.runs.checkpoint import load_run_encoder
    run = tiny_run("contrastive", 2, 0)
    for reduce in ("none", "umap"):
        settings = ProbeSettings(reduce=reduce)
        loaded = load_run_encoder(run, "cpu")
        data = load_probe_data(loaded[2], tuple(loaded[3]["shape"]))
        figure = run_probe(run, ("kmeans",), settings=settings, loaded=loaded, data=data)["results"]["encoder"]["kmeans"]
        bank, query = feature_sets(loaded, data, [], torch.device("cpu"))["encoder"]
        ids = cluster_ids(None, bank, query, figure["k"], settings, loaded[2].train.seed, "cpu")
        assert clustering_metrics(data.query_y.numpy(), ids)["accuracy"] == figure["accuracy"]


def test_the_caption_says_when_the_run_s_views_already_train_with_a_transformation():
    """A split under a copy the views already make (a shift of 0.1 with translate 0.12) is what training left, not
    a flag to turn on; a negative with no inverted views is."""
    import numpy as np

    from unsuprnn.config import AugmentConfig
    from unsuprnn.data.invariance import TRANSFORMS, trains_with
    from unsuprnn.report.cluster_figures import consistency_gallery
    default = AugmentConfig()
    assert [trains_with(TRANSFORMS[n][1], default) for n in ("shifted", "zoomed in", "turned", "negative", "mirror")] \
        == [True, True, True, False, False]
    assert trains_with("--hflip true", AugmentConfig(hflip=True))
    assert not trains_with(TRANSFORMS["shifted"][1], AugmentConfig(translate=0.0))
    assert not trains_with(TRANSFORMS["zoomed in"][1], AugmentConfig(crop_scale=1.0))
    images = np.zeros((4, 1, 8, 8), dtype=np.uint8)
    moved = {name: {"split": 25.0, "flag": TRANSFORMS[name][1], "examples": [1]} for name in ("shifted", "negative")}
    captions = [g["caption"] for g in consistency_gallery(images, moved, "run", default).groups]
    assert "the run's views already train with it (augment.translate: 0.12)" in captions[0]
    assert "--set augment.invert=0.5 makes the encoder ignore it" in captions[1]
    plain = [g["caption"] for g in consistency_gallery(images, moved, "run").groups]
    assert "--set augment.translate=0.1 makes the encoder ignore it" in plain[0]
