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
    c = Config()
    c.train.logger = "csv"  # where the curves are also sent changes nothing a run learns
    assert c.digest() == a.digest()


def test_every_recipe_keeps_the_intensity_it_was_measured_with():
    for path in sorted((Path(__file__).parent.parent / "configs").glob("*.yaml")):
        assert load_config(path).data.intensity == "keep", path.name


def test_flags_are_declared_beside_their_config_keys():
    """Every config option of the CLI comes from its key's declaration (flag and help), once."""
    from unsuprnn.cli_options import CLUSTER, DATA, ENCODER, PROBE, TRAIN, config_option
    for key in DATA + ENCODER + TRAIN + PROBE + CLUSTER + ("objective.name", "objective.temperature"):
        o = config_option(key)
        assert o.decls and o.decls[0].startswith("--") and o.key == key and (o.help() if callable(o.help) else o.help)


def _cluster_config(flags: dict):
    from unsuprnn.config import ClusterConfig, changed
    return changed(Config(cluster=ClusterConfig()), flags)


@pytest.mark.parametrize("given,held", [("Auto", "auto"), (" classes ", "classes"), ("7", 7), (7, 7)])
def test_the_number_of_clusters_has_one_spelling(given, held):
    """cluster.clusters: K, auto or classes, each with one spelling."""
    assert _cluster_config({"cluster.clusters": given}).cluster.clusters == held


@pytest.mark.parametrize("value,msg", [(1, "cluster.clusters = 1 is out of range"), (0, "out of range"),
                                       ("many", "cluster.clusters = 'many' is out of range"),
                                       (True, "expects")])
def test_a_bad_number_of_clusters_names_the_key(value, msg):
    with pytest.raises(UserError, match=msg):
        _cluster_config({"cluster.clusters": value})


def test_the_probe_reads_classes_and_refuses_zero():
    from unsuprnn.bounds import read_setting
    from unsuprnn.config import ProbeSettings
    assert ProbeSettings().clusters == "classes" == read_setting(ProbeSettings, "clusters", "Classes", "clusters")
    with pytest.raises(UserError, match="out of range"):
        ProbeSettings(clusters=read_setting(ProbeSettings, "clusters", "0", "clusters")).check()


def test_a_new_run_has_no_cluster_section_and_refuses_cluster_settings():
    """A pretraining run's config holds its own settings only: the clustering stage's are given to `cluster`."""
    assert "cluster" not in Config().to_dict() and "cluster" not in Config().saved()
    with pytest.raises(UserError, match="clustering stage's own"):
        load_config(None, None, ["cluster.heads=3"])


@pytest.mark.parametrize("file,flags,held", [
    ("train: {epochs: 60}\n", {"train.budget": "5m"}, ("auto", "5m")),      # --budget replaces a recipe's epochs
    ("train: {budget: 5m}\n", {"train.epochs": 7}, (7, None)),              # --epochs replaces a recipe's budget
    ("", {"train.epochs": "auto", "train.budget": "1m"}, ("auto", "1m")),
])
def test_the_run_length_given_once_per_layer(tmp_path, file, flags, held):
    f = tmp_path / "c.yaml"
    f.write_text(file)
    cfg = load_config(f, flags)
    assert (cfg.train.epochs, cfg.train.budget) == held


@pytest.mark.parametrize("file,flags", [("", {"train.epochs": 3, "train.budget": "1m"}),
                                        ("train: {epochs: 3, budget: 1m}\n", {})])
def test_epochs_beside_a_budget_is_refused_not_dropped(tmp_path, file, flags):
    f = tmp_path / "c.yaml"
    f.write_text(file)
    with pytest.raises(UserError, match="length is set twice: train.epochs 3 and train.budget 1m.*; pass one"):
        load_config(f, flags)
