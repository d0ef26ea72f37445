import json

import pytest
import torch

from tests.conftest import straight_and_resumed, tiny_config
from unsuprnn.runs.checkpoint import load_checkpoint, load_run_encoder
from unsuprnn.data import load_dataset
from unsuprnn.errors import UserError
from unsuprnn.evaluate.embed import embed_images
from unsuprnn.schedules import lr_schedule
from unsuprnn.train import train


def test_schedule_warmup_then_cosine():
    s = lr_schedule(1.0, 10, 2)
    assert s[0] == pytest.approx(0.5) and s[1] == pytest.approx(1.0)
    assert s[2] == pytest.approx(1.0) and s[-1] < 0.05 and all(s[i] >= s[i + 1] for i in range(2, 9))


def test_run_directory_contents(tmp_path):
    metrics = train(tiny_config(), tmp_path / "run", quiet=True)
    run = tmp_path / "run"
    for name in ("config.yaml", "log.jsonl", "meta.json", "metrics.json", "checkpoint.pt", "encoder.pt"):
        assert (run / name).is_file(), name
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]
    assert {"loss", "lr", "images_per_s", "seconds", "knn_top1"} <= set(log[0])
    meta = json.loads((run / "meta.json").read_text())
    assert meta["seed"] == 0 and meta["dataset"] == "digits" and meta["split"]["sizes"]["test"] == 359
    assert meta["versions"]["torch"] == torch.__version__
    assert json.loads((run / "metrics.json").read_text())["final_loss"] == pytest.approx(metrics["final_loss"])


def test_checkpoint_round_trip_gives_identical_embeddings(tmp_path):
    train(tiny_config(epochs=1), tmp_path, quiet=True)
    enc, pipe, cfg, info = load_run_encoder(tmp_path)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    enc2, _, _, _ = load_run_encoder(tmp_path)
    enc2.load_state_dict({k[len("encoder."):]: v for k, v in ckpt["model"].items() if k.startswith("encoder.")})
    x = load_dataset(cfg.data, 0).images[:50]
    assert torch.equal(embed_images(enc, pipe, x, "cpu"), embed_images(enc2, pipe, x, "cpu"))
    assert info["shape"] == [1, 8, 8] and cfg.encoder.hidden == 16


def test_resume_equals_uninterrupted(tmp_path, monkeypatch):
    cfg = tiny_config("autoencoder", epochs=3)
    a, b = straight_and_resumed(cfg, tmp_path, monkeypatch, kill_after=2)  # killed right after that checkpoint
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log_a = (tmp_path / "straight" / "log.jsonl").read_text().splitlines()
    log_b = (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["loss"] for x in log_a] == [json.loads(x)["loss"] for x in log_b]


def test_out_dir_guard(tmp_path):
    cfg = tiny_config(epochs=1)
    train(cfg, tmp_path, quiet=True)
    with pytest.raises(UserError, match="already holds a run"):
        train(cfg, tmp_path, quiet=True)
    cfg.encoder.hidden = 8
    with pytest.raises(UserError, match="different config.*encoder.hidden"):
        train(cfg, tmp_path, resume=True, quiet=True)
    train(cfg, tmp_path, force=True, quiet=True)  # --force starts over
    with pytest.raises(UserError, match="nothing to resume"):
        train(cfg, tmp_path / "empty", resume=True, quiet=True)


def test_corrupt_and_foreign_checkpoints(tmp_path):
    train(tiny_config(epochs=1), tmp_path, quiet=True)
    ck = tmp_path / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[:-100])
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_checkpoint(ck)
    torch.save({"weights": torch.zeros(2)}, ck)
    with pytest.raises(UserError, match="not an unsuprnn checkpoint"):
        load_checkpoint(ck)
    enc = tmp_path / "encoder.pt"
    enc.write_bytes(enc.read_bytes()[:50])
    with pytest.raises(UserError, match="corrupt"):
        load_run_encoder(tmp_path)
    torch.save({"weights": torch.zeros(2)}, enc)
    with pytest.raises(UserError, match="not an unsuprnn encoder"):
        load_run_encoder(tmp_path)


def test_non_finite_loss_stops_with_advice(tmp_path, monkeypatch):
    from unsuprnn.objectives.contrastive import ContrastiveObjective
    forward = ContrastiveObjective.forward
    monkeypatch.setattr(ContrastiveObjective, "forward",
                        lambda self, *a: (lambda loss, stats: (loss * float("nan"), stats))(*forward(self, *a)))
    cfg = tiny_config(epochs=1)
    with pytest.raises(UserError, match="non-finite at epoch 1.*lower --lr"):
        train(cfg, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_max_steps_per_epoch_caps_an_epoch(tmp_path):
    cfg = tiny_config(epochs=2)
    cfg.train.batch_size, cfg.train.max_steps_per_epoch = 64, 3
    train(cfg, tmp_path, quiet=True)
    log = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [3, 6]
