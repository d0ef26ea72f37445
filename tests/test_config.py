from pathlib import Path

import pytest

from unsuprnn.config import Config, load_config
from unsuprnn.errors import UserError

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


def test_layering_defaults_file_flags_set(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train: {epochs: 7, lr: 0.01}\nencoder: {cell: gru}\n")
    cfg = load_config(f, {"train.epochs": 9, "train.lr": None}, ["encoder.hidden=64", "data.resize=null"])
    assert cfg.train.epochs == 9 and cfg.train.lr == 0.01 and cfg.encoder.cell == "gru"
    assert cfg.encoder.hidden == 64 and cfg.data.resize is None and cfg.train.batch_size == Config().train.batch_size


@pytest.mark.parametrize("text,msg", [("train: {epoch: 3}", "unknown config key 'train.epoch'"),
                                      ("trainer: {epochs: 3}", "unknown config section 'trainer'"),
                                      ("train: {seed: three}", "'train.seed' expects int"),
                                      ("encoder: {bidirectional: maybe}", "expects bool"),
                                      ("[1, 2]", "mapping")])
def test_bad_config_names_the_key(tmp_path, text, msg):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(UserError, match=msg):
        load_config(f)


def test_set_needs_section_and_value():
    with pytest.raises(UserError, match="section.key"):
        load_config(None, None, ["epochs=3"])
    with pytest.raises(UserError, match="section.key=value"):
        load_config(None, None, ["train.epochs"])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    load_config(path)


def test_digest_changes_with_config():
    a, b = Config(), Config()
    b.train.seed = 1
    assert a.digest() == Config().digest() != b.digest()


def test_the_digest_rule_keeps_the_digests_runs_were_made_with():
    """Digests of configs written before keys were added to the config (values printed by the code of
    that time): a key added later counts only where it differs from its default."""
    cfg = load_config(Path(__file__).parent.parent / "configs" / "digits.yaml")
    assert cfg.digest() == "91aaef1a0daa"
    cfg.cluster.neighbors, cfg.cluster.heads = 20, 3  # (as recorded then) the cluster section counts where it differs
    assert cfg.digest() == "53e91c55cbc9"
    cfg = load_config(Path(__file__).parent.parent / "configs" / "digits.yaml")
    cfg.objective.momentum = 0.9  # a key added after the first digests, set away from its default
    assert cfg.digest() == "1f64cdc532b5"


def test_a_saved_config_without_a_key_whose_default_changed_reads_as_it_ran():
    """Runs saved before data.intensity (and the stage's init and guard) existed ran with `keep` (and SCAN's own
    start, no guard): read back, they must say so, or an old encoder would be fed canonical images."""
    from unsuprnn.config import config_from_dict
    saved = Config().to_dict()
    for section, key in (("data", "intensity"), ("cluster", "init"), ("cluster", "guard")):
        del saved[section][key]
    old = config_from_dict(saved)
    assert (old.data.intensity, old.cluster.init, old.cluster.guard) == ("keep", "random", False)
    new = config_from_dict(Config().to_dict())
    assert (new.data.intensity, new.cluster.init, new.cluster.guard) == ("canonical", "umap", True)
    assert Config().digest() != old.digest()  # a default run now reads other images than one of before


def test_every_recipe_keeps_the_intensity_it_was_measured_with():
    for path in sorted((Path(__file__).parent.parent / "configs").glob("*.yaml")):
        assert load_config(path).data.intensity == "keep", path.name


def test_flags_are_declared_beside_their_config_keys():
    """Every config option of the CLI comes from its key's declaration (flag and help), once."""
    from unsuprnn.cli_options import CLUSTER, DATA, ENCODER, PROBE, TRAIN, config_option
    for key in DATA + ENCODER + TRAIN + PROBE + CLUSTER + ("objective.name", "objective.temperature"):
        o = config_option(key)
        assert o.decls and o.decls[0].startswith("--") and o.key == key and (o.help() if callable(o.help) else o.help)


@pytest.mark.parametrize("given,held", [("Auto", "auto"), (" classes ", "classes"), ("7", 7), (7, 7),
                                        ("0", "classes"), (0, "classes")])
def test_the_number_of_clusters_has_one_spelling(given, held):
    """cluster.clusters: K, auto or classes; 0, the stage's older spelling of classes, is read as classes."""
    assert load_config(None, {"cluster.clusters": given}).cluster.clusters == held


def test_the_probe_reads_its_old_none_as_classes_and_refuses_zero():
    from unsuprnn.bounds import read_setting
    from unsuprnn.config import ProbeSettings
    assert ProbeSettings().clusters == "classes" == read_setting(ProbeSettings, "clusters", "none", "clusters")
    with pytest.raises(UserError, match="out of range"):
        ProbeSettings(clusters=read_setting(ProbeSettings, "clusters", "0", "clusters")).check()


@pytest.mark.parametrize("value,msg", [(1, "cluster.clusters = 1 is out of range"),
                                       ("many", "cluster.clusters = 'many' is out of range"),
                                       (True, "expects")])
def test_a_bad_number_of_clusters_names_the_key(value, msg):
    with pytest.raises(UserError, match=msg):
        load_config(None, {"cluster.clusters": value})
