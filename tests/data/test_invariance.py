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
