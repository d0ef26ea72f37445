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
                                      ("train: {epochs: three}", "'train.epochs' expects int"),
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
