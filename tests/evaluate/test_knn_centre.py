"""The probe's kNN on centred features (ProbeSettings.centre): a direction every feature shares says nothing about
any image, but it bunches the cosines near 1 and flattens the weighted vote into a majority. Centred on the
bank's mean, the vote is the same whatever offset the features share. Stores written before (probe.json format 2
or older) read back as uncentred, as they were measured."""

import json

import pytest
import torch

from unsuprnn.config import ProbeSettings
from unsuprnn.evaluate import knn

# one query; the bank: its exact copy (class 0), and three images of class 1 at cosine 0.5 to it
QUERY = torch.tensor([[1.0, 0.0, 0.0]])
BANK = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.866, 0.0], [0.5, -0.866, 0.0], [0.5, 0.0, 0.866]])
BANK_Y, QUERY_Y = torch.tensor([0, 1, 1, 1]), torch.tensor([0])
OFFSET = torch.tensor([0.0, 0.0, 0.0, 30.0])  # a fourth feature every image holds alike


def top1(bank, query, centre: bool) -> float:
    settings = ProbeSettings(k=4, temperature=0.07, centre=centre)
    return knn.measure(bank, BANK_Y, query, QUERY_Y, 2, settings, 0, "cpu")["weighted_top1"]


def test_a_shared_offset_flattens_the_uncentred_vote_and_leaves_the_centred_one_as_it_was():
    pad = lambda x: torch.cat([x, torch.zeros(len(x), 1)], 1)
    bank, query = pad(BANK), pad(QUERY)
    assert top1(bank, query, centre=False) == 100.0  # the copy's vote outweighs three at cosine 0.5
    assert top1(bank + OFFSET, query + OFFSET, centre=False) == 0.0  # every cosine near 1: three votes beat one
    assert top1(bank, query, centre=True) == top1(bank + OFFSET, query + OFFSET, centre=True) == 100.0
    centred_bank, centred_query = knn.centred_on(bank + OFFSET, bank + OFFSET, query + OFFSET)
    assert torch.allclose(centred_bank.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(centred_query - centred_bank[0], torch.zeros(4), atol=1e-5)  # the copy stays a copy


def entry(method: str, settings: dict) -> dict:
    return {"features": "encoder", "method": method, "result": {"weighted_top1": 90.0}, "sizes": [8, 4],
            "settings": {"bank": "digits", "queries": "digits"} | settings, "measured": "then"}


@pytest.mark.parametrize("fmt", [2, None])
def test_figures_measured_before_centring_read_back_as_uncentred(tmp_path, fmt):
    """A format 2 store and a first-format probe.json (no `format`): their kNN figures say `centre` false, so
    that a report measures what is missing the way they were measured; other methods are unchanged."""
    from unsuprnn.evaluate.methods import probe_settings
    from unsuprnn.evaluate.probe_store import FORMAT, read_store
    (tmp_path / "encoder.pt").write_bytes(b"")
    if fmt == 2:
        store = {"format": 2, "run": "r", "encoder_sha256": "abc", "embedding_dim": 4,
                 "measurements": [entry("knn", {"k": 20, "temperature": 0.07}), entry("linear", {})]}
    else:  # the first format: one probe's table, its settings at the top
        store = {"run": "r", "bank": "digits", "queries": "digits", "bank_size": 8, "query_size": 4, "k": 20,
                 "temperature": 0.07, "embedding_dim": 4, "results": {"encoder": {"knn": {"weighted_top1": 90.0}}}}
    (tmp_path / "probe.json").write_text(json.dumps(store))
    read = read_store(tmp_path, "abc")
    knn_entries = [e for e in read["measurements"] if e["method"] == "knn"]
    assert knn_entries and all(e["settings"]["centre"] is False for e in knn_entries)
    assert all("centre" not in e["settings"] for e in read["measurements"] if e["method"] != "knn")
    assert probe_settings({"knn": knn_entries[0]["settings"]}).centre is False
    assert FORMAT == 3 and ProbeSettings().centre is True
