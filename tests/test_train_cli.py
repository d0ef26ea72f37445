import json

from tests.conftest import TINY, invoke

SMALL = [*TINY, "--epochs", "2"]


def test_pretrain_and_supervised_write_run_dirs(runner, tmp_path):
    r = invoke(runner, "pretrain", "--objective", "autoencoder", "--out", tmp_path / "ae", *SMALL)
    assert r.exit_code == 0, r.output
    assert "done:" in r.stdout and (tmp_path / "ae" / "encoder.pt").is_file()
    assert "epoch 2/2 loss" in r.stderr
    r = invoke(runner, "supervised", "--out", tmp_path / "sup", "--cell", "gru", *SMALL)
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "sup" / "metrics.json").read_text())
    assert set(m["test"]) >= {"accuracy", "precision", "recall", "f1", "confusion"}
    assert len(m["test"]["confusion"]) == 10 and sum(map(sum, m["test"]["confusion"])) == 359
    assert "test accuracy" in r.stdout


def test_resume_from_cli_keeps_run_config(runner, tmp_path):
    assert invoke(runner, "pretrain", "--out", tmp_path, *SMALL).exit_code == 0
    r = invoke(runner, "pretrain", "--out", tmp_path, "--resume", "--epochs", "3", "--quiet")
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["epoch"] for x in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_train_bad_inputs(runner, tmp_path):
    (tmp_path / "bad.yaml").write_text("train: {epoch: 3}\n")
    cases = [["pretrain", "--out", tmp_path / "a", "--objective", "swav"],
             ["pretrain", "--out", tmp_path / "a", "--cell", "transformer"],
             ["pretrain", "--out", tmp_path / "a", "--config", tmp_path / "bad.yaml"],
             ["pretrain", "--out", tmp_path / "a", "--config", tmp_path / "missing.yaml"],
             ["pretrain", "--out", tmp_path / "a", "--set", "train.epochs=many"],
             ["pretrain", "--out", tmp_path / "a", "--objective", "supervised"],
             ["pretrain", "--out", tmp_path / "a", "--device", "cuda:7"] ]
    for args in cases:
        r = invoke(runner, *args)
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr)
