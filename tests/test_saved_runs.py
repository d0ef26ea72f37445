"""A saved run reads back as it ran: golden runs saved by earlier commits (tests/golden/, made by
tests/golden/make_golden.py) give the settings they ran with and the digest their own code recorded, an old RGB
run resumes to the very weights its own code's resume ended with, and a config of any schema version reads into
one complete Config (unsuprnn/schema.py)."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from unsuprnn.config import Config, config_from_saved
from unsuprnn.errors import UserError
from unsuprnn.runs.files import saved_config
from unsuprnn.schema import SCHEMA

GOLDEN = Path(__file__).parent / "golden"
COMMITS = sorted(p.name for p in GOLDEN.iterdir() if (p / "recorded.json").is_file())

# what each golden run ran with, where today's defaults differ: (section, key) -> value, per commit (every one
# jittered colours as its saturation, hue and grayscale said: augment.colour_jitter true)
JITTERED = {("augment", "colour_jitter"): True}
RAN_WITH = {
    "675eac4": JITTERED | {("augment", "saturation"): 0.0, ("augment", "hue"): 0.0, ("augment", "grayscale"): 0.0,
                           ("data", "intensity"): "keep", ("encoder", "kind"): "rnn", ("encoder", "stacks"): "joint",
                           ("augment", "invert"): 0.0, ("cluster", "init"): "random", ("cluster", "guard"): False,
                           ("cluster", "selflabel_encoder_lr"): 0.0, ("cluster", "neighbors"): 20},
    "8b7b369": JITTERED | {("augment", "saturation"): 0.8, ("data", "intensity"): "keep", ("cluster", "init"): "random",
                           ("cluster", "guard"): False},
    "90a1326": JITTERED | {("data", "intensity"): "keep", ("cluster", "init"): "umap", ("cluster", "guard"): True},
    "a11e74f": JITTERED | {("data", "intensity"): "canonical", ("cluster", "init"): "umap"},
    "9f7c2ac": JITTERED | {("data", "intensity"): "canonical", ("cluster", "init"): "umap"},
}


def test_every_golden_commit_is_checked():
    assert set(RAN_WITH) <= set(COMMITS) and len(COMMITS) >= 4


@pytest.mark.parametrize("commit", COMMITS)
def test_a_golden_run_reads_back_with_its_settings_and_recorded_digest(commit):
    recorded = json.loads((GOLDEN / commit / "recorded.json").read_text())
    runs = [r for r in ("pretrain", "cluster", "rgb") if f"{r}_digest" in recorded]
    for run in runs:
        cfg = saved_config(GOLDEN / commit / run)
        assert cfg.digest() == recorded[f"{run}_digest"], run
        assert (cfg.cluster is not None) == (run == "cluster"), run  # a pretraining run's config is its own
        for (section, key), value in RAN_WITH.get(commit, {}).items():
            if getattr(cfg, section) is not None:
                assert getattr(getattr(cfg, section), key) == value, (run, section, key)
        assert cfg.saved()["schema"] == SCHEMA
        again = config_from_saved(cfg.saved(), "cluster" if run == "cluster" else "pretrain")
        assert again == cfg and again.digest() == cfg.digest()  # the saved form round-trips, digest and all


@pytest.mark.parametrize("commit", [c for c in COMMITS if (GOLDEN / c / "pretrain" / "encoder.pt").is_file()])
def test_a_golden_run_s_settings_read_back_train_the_weights_its_own_code_trained(commit, tmp_path):
    """Today's code, given the settings a run of `commit` reads back with, trains that run's very encoder (and
    records the digest that run recorded): nothing it did was left to today's defaults."""
    from unsuprnn.train import train
    run = GOLDEN / commit / "pretrain"
    train(saved_config(run), tmp_path / "again", quiet=True)
    got = torch.load(tmp_path / "again" / "encoder.pt", weights_only=True)
    want = torch.load(run / "encoder.pt", weights_only=True)["state_dict"]
    worst = max((got["state_dict"][k] - want[k]).abs().max().item() for k in want)
    assert worst < 1e-5, worst
    assert got["config"]["digest"] == json.loads((GOLDEN / commit / "recorded.json").read_text())["pretrain_digest"]


@pytest.mark.parametrize("commit", [c for c in COMMITS if (GOLDEN / c / "rgb-epoch3-encoder.pt").is_file()])
def test_an_old_rgb_run_resumes_to_the_weights_its_own_code_ended_with(commit, tmp_path, monkeypatch):
    """Resumed for a third epoch, a run saved by `commit` ends with the encoder that commit's own resume ended with
    (a run saved before colour augmentation existed must not be resumed with today's colour defaults)."""
    from unsuprnn.config import changed
    from unsuprnn.train import train
    shutil.copytree(GOLDEN / commit / "rgb", tmp_path / "rgb")
    shutil.copy(GOLDEN / "rgb.npz", tmp_path / "rgb.npz")
    monkeypatch.chdir(tmp_path)  # the run's dataset is npz:rgb.npz
    train(changed(saved_config(Path("rgb")), {"train.epochs": 3}), "rgb", resume=True, quiet=True)
    got = torch.load("rgb/encoder.pt", weights_only=True)["state_dict"]
    want = torch.load(GOLDEN / commit / "rgb-epoch3-encoder.pt", weights_only=True)["state_dict"]
    worst = max((got[k] - want[k]).abs().max().item() for k in want)
    assert got.keys() == want.keys() and worst < 1e-5, worst


def test_the_clustering_stage_on_an_old_run_uses_the_run_s_own_augmentation():
    from unsuprnn.cluster.stage import source_config
    cfg = source_config(GOLDEN / "675eac4" / "rgb")
    assert (cfg.augment.saturation, cfg.augment.hue, cfg.augment.grayscale) == (0.0, 0.0, 0.0)
    assert cfg.data.intensity == "keep" and cfg.cluster is not None


def _saved_default() -> dict:
    return Config().saved()


def test_the_digest_is_read_back_not_recomputed():
    """A run keeps the digest it was made with, even where the digest rule would give another today (a key added
    since); a config changed after it was read is another config, with a digest of its own."""
    saved = _saved_default() | {"digest": "0123456789ab"}
    cfg = config_from_saved(saved)
    assert cfg.digest() == "0123456789ab"
    cfg.train.seed = 1
    assert cfg.digest() not in ("0123456789ab", Config().digest())


def test_a_config_from_a_newer_unsuprnn_is_one_line_naming_the_fix():
    with pytest.raises(UserError, match=f"newer unsuprnn .config schema {SCHEMA + 1}.*upgrade unsuprnn"):
        config_from_saved(_saved_default() | {"schema": SCHEMA + 1})


def test_a_versioned_config_lacking_a_key_is_refused_not_filled_with_today_s_default():
    saved = _saved_default()
    del saved["augment"]["saturation"]
    with pytest.raises(UserError, match="lacks augment.saturation"):
        config_from_saved(saved)
    del saved["augment"]
    with pytest.raises(UserError, match="lacks its augment section"):
        config_from_saved(saved)


def test_a_run_writes_its_schema_and_digest_and_a_pretrain_config_has_no_cluster_section(tiny_run):
    run = tiny_run("contrastive", 1)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["schema"] == SCHEMA and "cluster" not in saved
    assert saved["digest"] == saved_config(run).digest()


def test_a_run_s_saved_config_is_a_recipe(tiny_run, tmp_path):
    """`--config RUN/config.yaml` starts a run with every setting of that run."""
    from unsuprnn.config import load_config
    run = tiny_run("contrastive", 1)
    assert load_config(run / "config.yaml") == saved_config(run)
