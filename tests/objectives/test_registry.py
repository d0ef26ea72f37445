"""Objectives are found by their files: name, keys and class come from objectives/NAME.py alone."""

import dataclasses

import pytest

import unsuprnn.names.objectives as registry
from unsuprnn.config import Config
from unsuprnn.errors import UserError
from unsuprnn.objectives import build_objective


def test_every_objective_file_is_registered_with_its_keys_in_the_config():
    files = {p.stem for p in registry.HERE.glob("*.py") if not p.stem.startswith("_")}
    assert set(registry.specs()) == files and "supervised" not in registry.names(uses_labels=False)
    fields = {f.name for f in dataclasses.fields(Config().objective)}
    for spec in registry.specs().values():
        assert set(spec.keys) <= fields and spec.summary
    assert {"temperature", "proj_hidden", "decoder_hidden", "denoise"} <= fields


def test_a_new_objective_file_declares_its_keys_as_a_literal(tmp_path, monkeypatch):
    (tmp_path / "_shared.py").write_text('KEYS = {"temperature": {"default": 0.2}}\n')
    (tmp_path / "newloss.py").write_text('"""NewLoss: a test objective."""\nimport torch\n'
                                         'KEYS = {"width": {"default": 8, "lo": 1, "hi": 64}}\nOBJECTIVE = None\n')
    monkeypatch.setattr(registry, "HERE", tmp_path)
    registry.specs.cache_clear(), registry.objective_keys.cache_clear()
    try:
        spec = registry.specs()["newloss"]
        assert spec.summary == "NewLoss" and spec.keys == {"width": {"default": 8, "lo": 1, "hi": 64}}
        assert list(registry.objective_keys()) == ["temperature", "width"]
        (tmp_path / "other.py").write_text('"""Other: declares a key twice."""\nKEYS = {"width": {"default": 4}}\n')
        registry.specs.cache_clear(), registry.objective_keys.cache_clear()
        with pytest.raises(TypeError, match="declared by both newloss.py and other.py"):
            registry.objective_keys()
        (tmp_path / "other.py").write_text('KEYS = {"w": 2 ** 3}\n')  # not a literal
        registry.specs.cache_clear()
        with pytest.raises(TypeError, match="must be a literal"):
            registry.specs()
    finally:
        registry.specs.cache_clear(), registry.objective_keys.cache_clear()


def test_an_unknown_objective_is_refused():
    with pytest.raises(UserError, match="unknown objective 'swav'"):
        build_objective("swav", None, None, None, 10)
