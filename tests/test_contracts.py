"""Contracts every registered kind keeps, found from the registries (a new objective, encoder kind, probe method
or view is covered the moment it is registered): it builds from a config, runs one step with the shapes its
docstring promises, and its settings round-trip (through a saved config, or a probe record). Part of the fast
tier: `python -m pytest tests -m fast`."""

import dataclasses

import numpy as np
import pytest
import torch

from unsuprnn.config import Config, ProbeSettings, config_from_saved
from unsuprnn.data.pipeline import build_pipeline
from unsuprnn.evaluate.methods import METHOD_NAMES, method, probe_settings, recorded
from unsuprnn.models.encoders import activation_floats, build_encoder, describe_encoder, rnn_class
from unsuprnn.names.choices import CELLS, INTENSITIES, POOLS, VIEWS
from unsuprnn.names.encoders import specs as encoder_specs
from unsuprnn.names.objectives import names as objective_names
from unsuprnn.names.objectives import specs as objective_specs
from unsuprnn.objectives import build_objective

pytestmark = pytest.mark.fast

IMAGES = torch.randint(0, 256, (8, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
LABELS = torch.arange(8) % 2


def small_config(objective: str = "contrastive", kind: str = "rnn") -> Config:
    cfg = Config()
    cfg.objective.name = objective
    cfg.encoder.kind, cfg.encoder.hidden, cfg.encoder.layers = kind, 4, 1
    cfg.objective.proj_hidden = cfg.objective.pred_hidden = cfg.objective.decoder_hidden = 8
    cfg.objective.proj_out, cfg.objective.code_dim, cfg.objective.bank_size = 4, 4, 16
    cfg.data.view, cfg.data.patch = ("patches", 4) if encoder_specs()[kind].views == ("patches",) else ("rows", 4)
    if objective_specs()[objective].causal:
        cfg.encoder.stacks = "separate"
    return cfg


def built(cfg: Config):
    pipeline = build_pipeline(cfg.data, cfg.augment, (1, 8, 8), [0.5], [0.25])
    encoder = build_encoder(cfg.encoder, pipeline.seq_shape[1], pipeline.grid)
    return pipeline, encoder


@pytest.mark.parametrize("name", objective_names())
def test_every_objective_builds_steps_and_round_trips(name):
    cfg = small_config(name)
    pipeline, encoder = built(cfg)
    objective = build_objective(name, encoder, pipeline, cfg.objective, 2)
    loss, stats = objective(IMAGES, LABELS, torch.Generator().manual_seed(0))
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss) and isinstance(stats, dict)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())
    assert config_from_saved(cfg.saved()) == cfg


@pytest.mark.parametrize("kind", list(encoder_specs()))
def test_every_encoder_kind_builds_encodes_and_round_trips(kind):
    cfg = small_config(kind=kind)
    pipeline, encoder = built(cfg)
    x = pipeline.clean(IMAGES)
    embedding, steps = encoder.encode(x)
    assert embedding.shape == (8, encoder.out_dim) and torch.equal(encoder(x), embedding)
    assert all(s.shape[:2] == x.shape[:2] for s in steps) and sum(s.shape[-1] for s in steps) == encoder.step_dim
    assert activation_floats(cfg.encoder, pipeline.seq_shape) > 0 and describe_encoder(cfg.encoder, cfg.data)
    why = encoder.why_not_causal()
    assert why is None or isinstance(why, str) and why
    assert config_from_saved(cfg.saved()) == cfg


def blobs(n: int = 40, seed: int = 0):
    """Two separable blobs in 4 dimensions: bank and queries with their labels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 4, generator=g) * 0.1 + torch.stack([y * 3.0, 1 - y * 3.0, y * 0.0, y * 0.0], 1)
    return x[: n // 2], y[: n // 2], x[n // 2:], y[n // 2:]


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_every_probe_method_measures_separable_blobs_and_its_settings_round_trip(name):
    bank, bank_y, query, query_y = blobs()
    settings = ProbeSettings(k=3, temperature=0.5, clusters=2, reduce="none", restarts=2)
    result = method(name).measure(bank, bank_y, query, query_y, 2, settings, 0, "cpu")
    scores = [v for k, v in result.items() if k in ("weighted_top1", "accuracy")]
    assert scores and all(v == 100.0 for v in scores), result
    record = recorded(name, settings, result)
    fields = {f.name for f in dataclasses.fields(ProbeSettings)}
    assert set(record) <= fields | set(getattr(method(name), "RESULT_KEYS", ()))
    back = probe_settings({name: record})
    assert all(getattr(back, f) == v for f, v in record.items() if f in fields), (record, back)
    assert recorded(name, back, result) == record  # read back, the settings record the same figure


def test_a_setting_read_only_under_another_is_recorded_only_there():
    flat, ivf = ProbeSettings(nlist=7), ProbeSettings(index="ivf", nlist=7)
    assert "nlist" not in recorded("knn", flat, {}) and recorded("knn", ivf, {})["nlist"] == 7
    assert recorded("kmeans", ProbeSettings(clusters="classes"), {"k": 10})["clusters"] == 10  # K as used
    assert recorded("kmeans", ProbeSettings(clusters="auto"), {"k": 4})["k_range"] == "2:20"


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("intensity", INTENSITIES)
def test_every_view_and_intensity_reads_an_image(view, intensity):
    cfg = Config()
    cfg.data.view, cfg.data.intensity = view, intensity
    pipeline = build_pipeline(cfg.data, cfg.augment, (1, 8, 8), [0.5], [0.25])
    seq = pipeline.clean(IMAGES)
    assert seq.shape == (8, *pipeline.seq_shape) and torch.isfinite(seq).all()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("pool", POOLS)
def test_every_cell_and_pool_builds(cell, pool):
    cfg = small_config()
    cfg.encoder.cell, cfg.encoder.pool = cell, pool
    pipeline, encoder = built(cfg)
    assert isinstance(encoder.rnn, rnn_class(cell)) and encoder(pipeline.clean(IMAGES)).shape == (8, encoder.out_dim)
    assert np.isfinite(encoder(pipeline.clean(IMAGES)).detach().numpy()).all()
