"""How long a run trains: auto batch size and epochs from the size of the set, a wall-clock --budget, and
the line that says a run was still improving when it ended."""

import json

import pytest
import torch

from tests.conftest import TINY, assert_one_error_line, invoke
from unsuprnn.errors import UserError
from unsuprnn.plan import (auto_batch_size, auto_epochs, budget_epochs, monitor_passes, parse_duration,
                           still_improving)


@pytest.mark.parametrize("n,batch,epochs", [(100, 32, 667), (800, 64, 167), (1438, 128, 182), (1600, 128, 167),
                                            (4000, 256, 134), (8000, 256, 65), (48000, 256, 11)])
def test_auto_schedule_gives_the_steps_whatever_the_size(n, batch, epochs):
    b = auto_batch_size(n)
    assert b == batch and auto_epochs(2000, n // b) == epochs and epochs * (n // b) >= 2000


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("10m", 600), ("2h", 7200), ("1h30m", 5400), ("45", 45),
                                          ("0.5m", 30)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0m", "-1h", "abc", "10x", "", "nan", "inf", "1e9h"])
def test_bad_durations_are_refused(text):
    with pytest.raises(UserError, match="--budget"):
        parse_duration(text)


@pytest.mark.parametrize("bad", ["0m", "-1h", "abc"])
def test_bad_budget_is_one_error_line_and_writes_nothing(runner, tmp_path, bad):
    r = invoke(runner, "pretrain", "--out", tmp_path / "run", *TINY, "--budget", bad)
    assert_one_error_line(r)
    assert "--budget" in r.stderr and not (tmp_path / "run").exists()


def test_epochs_beside_a_budget_is_one_error_line_and_writes_nothing(runner, tmp_path):
    r = invoke(runner, "pretrain", "--out", tmp_path / "run", *TINY, "--budget", "1m", "--epochs", "3")
    assert_one_error_line(r)
    assert "train.epochs 3 and train.budget 1m" in r.stderr and not (tmp_path / "run").exists()


def test_budget_epochs_fill_the_time():
    assert budget_epochs(100.0, 0.1, 10, 1.0) == (50, 10)      # 2 s an epoch
    assert budget_epochs(0.5, 0.1, 10, 0.0) == (1, 5)          # one epoch does not fit: part of one


def test_monitor_passes_are_every_few_epochs_and_after_the_last():
    assert [monitor_passes(e, 1) for e in (1, 5)] == [1, 5]
    assert [monitor_passes(e, 4) for e in (3, 4, 5, 8, 9)] == [1, 1, 2, 2, 3]


def test_a_budget_counts_the_monitor_passes_the_run_will_make():
    # 1 s an epoch, 1 s a pass, one pass more kept for the end. Auto: 20 epochs make 20 passes (41 s), 79 epochs
    # make a pass every 4 (20 passes: 79 + 21 = 100 s), 80 epochs 20 passes (101 s).
    assert budget_epochs(100.0, 0.1, 10, 0.0, 1.0, None, 20) == (79, 10)
    assert budget_epochs(41.0, 0.1, 10, 0.0, 1.0, None, 20) == (20, 10)
    # every 5 epochs: 82 epochs make 17 passes (82 + 18 = 100 s), 83 epochs 17 (101 s)
    assert budget_epochs(100.0, 0.1, 10, 0.0, 1.0, 5) == (82, 10)
    # not one epoch with its pass and the end's: the steps that fit beside two passes
    assert budget_epochs(2.5, 0.1, 10, 0.0, 1.0, None, 20) == (1, 5)


def test_a_year_with_a_monitor_every_epoch_is_planned_exactly_and_at_once():
    # 1 ms an epoch and a 1 s pass after each: e epochs cost e * 1.001 + 1 s; the largest that fits a year
    year = 365 * 86400.0
    epochs, _ = budget_epochs(year, 0.001, 1, 0.0, 1.0, 1)
    assert epochs * 1.001 + 1 <= year < (epochs + 1) * 1.001 + 1
    # bisection finds what a walk over every epoch count finds
    for seconds, every in ((100.0, 3), (57.5, 2), (1000.0, 7)):
        walked = max(e for e in range(1, 2000) if e * 1.0 + (monitor_passes(e, every) + 1) * 1.0 <= seconds)
        assert budget_epochs(seconds, 0.1, 10, 0.0, 1.0, every) == (walked, 10)


def test_a_budget_run_plans_epochs_and_its_schedules_end(runner, tmp_path):
    r = invoke(runner, "pretrain", "--out", tmp_path / "run", *[a for a in TINY if a != "--quiet"], "--budget", "20s")
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    plan, log = meta["schedule"], [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert plan["how"] == "budget" and plan["epochs"] >= 1 and len(log) == plan["epochs"]
    assert plan["seconds_per_step"] > 0 and meta["wall_seconds"] > 0
    assert log[-1]["step"] == plan["steps"] and log[-1]["lr"] < 0.05 * 2e-3  # the cosine ran to its end
    assert "plan: --budget 20s:" in r.stderr
    cfg = (tmp_path / "run" / "config.yaml").read_text()
    assert f"epochs: {plan['epochs']}" in cfg and "budget: 20s" in cfg  # a resumed run keeps the plan
    r = invoke(runner, "pretrain", "--out", tmp_path / "run", "--resume", "--quiet")
    assert r.exit_code == 0 and len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == plan["epochs"]


def test_auto_epochs_make_train_steps(runner, tmp_path):
    args = [a for a in TINY if a not in ("--batch-size", "256")] + ["--set", "train.steps=30"]
    r = invoke(runner, "pretrain", "--out", tmp_path / "run", *args)
    assert r.exit_code == 0, r.output
    plan = json.loads((tmp_path / "run" / "meta.json").read_text())["schedule"]
    assert {k: plan[k] for k in ("batch_size", "steps_per_epoch", "how", "epochs", "steps")} == \
        {"batch_size": 128, "steps_per_epoch": 11, "how": "auto", "epochs": 3, "steps": 33}


def knn_log(values):
    return [{"epoch": i + 1, "loss": 1.0, "knn_top1": v} for i, v in enumerate(values)]


def test_still_improving_by_the_knn_monitor():
    rising = knn_log([80, 84, 87, 89, 91, 93, 94, 95, 96, 97])
    flat = knn_log([80, 90, 94, 96, 96.5, 96.6, 96.4, 96.7, 96.5, 96.6])
    assert "kNN monitor rose" in still_improving(rising, queries=2000)
    assert still_improving(flat, queries=2000) is None
    assert still_improving(knn_log([90, 91.5]), queries=359) is None  # 1.5 points is within the noise of 359


def test_still_improving_by_the_loss_without_labels():
    falling = [{"epoch": i + 1, "loss": 5 - 0.4 * i} for i in range(10)]
    converged = [{"epoch": i + 1, "loss": 5 * 0.5 ** i + 1} for i in range(20)]
    assert "loss fell" in still_improving(falling)
    assert still_improving(converged) is None


def test_an_early_stopped_run_says_it_is_undertrained(runner, tmp_path):
    # a plan of 15 steps, trained in full (3 epochs x 5 steps): the curve decides
    r = invoke(runner, "pretrain", "--out", tmp_path / "run", *TINY, "--epochs", "3", "--set", "train.knn_every=0",
               "--set", "train.steps=15")
    assert r.exit_code == 0, r.output
    assert "note: the run looks undertrained: its loss fell" in r.stderr and "--epochs 6" in r.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["undertrained"]["try"] == "--epochs 6"


def test_a_run_cut_far_below_the_default_plan_says_so_whatever_its_curve(runner, tmp_path):
    # 2 epochs x 5 steps of 256 images, where the default plan gives 2,000 steps (400 epochs of 5)
    r = invoke(runner, "pretrain", "--out", tmp_path / "run", *TINY, "--epochs", "2")
    assert r.exit_code == 0, r.output
    said = json.loads((tmp_path / "run" / "metrics.json").read_text())["undertrained"]
    assert said["why"] == "it trained 10 optimizer steps, under a fifth of the 2,000 of the default plan (train.steps)"
    assert said["try"] == "--epochs 400 (the default plan), or no --epochs" and said["why"] in r.stderr


def test_short_of_plan_is_under_a_fifth_of_the_plans_steps():
    from unsuprnn.plan import short_of_plan
    assert short_of_plan(399, 2000) and short_of_plan(22, 2000).startswith("it trained 22 optimizer steps")
    assert short_of_plan(400, 2000) is None and short_of_plan(2000, 2000) is None and short_of_plan(5000, 2000) is None


@pytest.mark.parametrize("n,neighbors", [(300, 5), (800, 5), (1438, 7), (1600, 8), (4000, 20), (48000, 20)])
def test_auto_neighbours_follow_the_size_of_the_set(n, neighbors):
    from unsuprnn.plan import auto_neighbors
    assert auto_neighbors(n) == neighbors


def test_fit_steps_counts_whole_epochs_then_part_of_one():
    from unsuprnn.plan import fit_steps
    assert fit_steps(10.0, 0.1, 10, 0.0, 0.0, 1, 1) == 100          # 10 epochs of 1 s
    assert fit_steps(10.5, 0.1, 10, 0.0, 0.0, 1, 1) == 105          # and half of one more
    assert fit_steps(10.0, 0.1, 10, 0.5, 0.0, 1, 1) == 65           # 6 epochs of 1.5 s, then 0.5 s overhead + 5 steps
    assert fit_steps(10.0, 0.1, 10, 0.0, 1.0, 2, 3) == 60  # epochs 3-8 and passes after 4, 6, 8: 9 s (part of 9: a pass more)
    assert fit_steps(0.05, 0.1, 10, 0.0, 0.0, 1, 1) == 0 and fit_steps(-1.0, 0.1, 10, 0.0, 0.0, 1, 1) == 0


def fake_clock(monkeypatch, seconds_a_step):
    """A --budget run on a fake clock: the timing before training says 0.01 s a step, and each epoch then takes
    `seconds_a_step(epoch)` a step (monitors and checkpoints take no time). Returns the clock ({"now": s})."""
    import unsuprnn.pacing as pacing
    import unsuprnn.train as training
    clock, real_epoch = {"now": 0.0}, training.train_one_epoch
    monkeypatch.setattr(pacing, "now", lambda: clock["now"])
    monkeypatch.setattr(training, "time_training", lambda t: {"step": 0.01, "checkpoint": 0.0, "monitors": 0.0})

    def epoch_on_the_fake_clock(t, epoch, bar):
        entry = real_epoch(t, epoch, bar)
        entry["seconds"] = (entry["step"] - epoch * t.spe) * seconds_a_step(epoch)
        clock["now"] += entry["seconds"]
        return entry
    monkeypatch.setattr(training, "train_one_epoch", epoch_on_the_fake_clock)
    return clock


def budget_config(budget: str):
    from tests.conftest import tiny_config
    cfg = tiny_config(epochs="auto")
    cfg.train.budget, cfg.train.knn_every = budget, 0
    return cfg


def test_a_budget_run_re_plans_when_its_steps_slow_down_and_ends_in_its_budget(tmp_path, monkeypatch):
    """The timed steps say 0.01 s, the first epochs take 0.1 s a step and, from the fourth on, 0.2 s (the machine
    got busy). The run re-plans after each epoch, ends within its budget (not under 90% of it), and its learning
    rate still ends near 0."""
    import unsuprnn.train as training
    clock = fake_clock(monkeypatch, lambda epoch: 0.1 if epoch < 3 else 0.2)
    training.train(budget_config("10s"), tmp_path / "run", quiet=True, started=0.0)
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    plan = meta["schedule"]
    assert plan["first_epochs"] > 50 and len(log) == plan["epochs"] < 20  # 0.01 s a step planned; 0.1-0.2 s came
    assert 9.0 <= clock["now"] <= 10.0, clock["now"]
    assert log[-1]["step"] == plan["steps"] and log[-1]["lr"] < 0.05 * 2e-3
    assert any("planned_epochs" in e for e in log) and plan["replans"]
    assert f"epochs: {plan['epochs']}" in (tmp_path / "run" / "config.yaml").read_text()  # the run as it ended


def test_a_resumed_budget_run_follows_the_schedule_it_stopped_in(tmp_path, monkeypatch):
    """Killed after its third checkpoint and resumed, a --budget run (re-planned on a fake clock) ends with the
    weights of the run that was not interrupted: the re-plans travel in its checkpoint."""
    import unsuprnn.runs.lifecycle as lifecycle
    import unsuprnn.train as training
    from tests.conftest import die_after_checkpoint
    from unsuprnn.runs.checkpoint import load_checkpoint
    clock, real_end = fake_clock(monkeypatch, lambda epoch: 0.1), lifecycle.RunRecorder.end_epoch
    cfg = budget_config("5s")
    training.train(cfg, tmp_path / "straight", quiet=True, started=0.0)
    clock["now"] = 0.0
    die_after_checkpoint(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        training.train(cfg, tmp_path / "resumed", quiet=True, started=0.0)
    monkeypatch.setattr(lifecycle.RunRecorder, "end_epoch", real_end)
    training.train(cfg, tmp_path / "resumed", resume=True, quiet=True)
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert a["plan"]["replans"] and a["plan"] == b["plan"] and a["epoch"] == b["epoch"]  # (the same fake times)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_a_budget_run_with_no_time_left_after_an_epoch_measures_it_as_its_last(tmp_path, monkeypatch):
    """The machine turns 100x slower after the first epoch: the re-plan after the second finds no time for more,
    so that epoch becomes the last one, and a run's last epoch carries the collapse monitor metrics.json reads
    (CI once saw `--budget 0.05m` end without it)."""
    import unsuprnn.train as training
    fake_clock(monkeypatch, lambda epoch: 0.1 if epoch < 1 else 10.0)
    metrics = training.train(budget_config("10s"), tmp_path / "run", quiet=True, started=0.0)
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and "embedding_std" in log[-1]
    assert metrics["embedding_std"] == log[-1]["embedding_std"] and metrics["collapsed"] in (True, False)
