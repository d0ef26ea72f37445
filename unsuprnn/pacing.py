"""A --budget run paced by its clock: planned before training from a few timed steps (train.plan_schedule), then
re-planned after every epoch from the epochs' measured times, so that it ends when its budget does whatever the
machine's load. The epochs, the last epoch's steps, and the learning-rate and momentum schedules follow each
re-plan (the cosine continues from where it stood and still ends with the run). The re-plans and the clock's
state are kept in the run's plan (meta.json, checkpoint.pt): a resumed run follows the very schedule it stopped
in and goes on re-planning with what was left of its budget when it stopped.

A run's time is its command's: `started` is when the process began (imports and data loading count).
"""

from __future__ import annotations

import math
import time

from .plan import fit_steps, parse_duration
from .schedules import lr_schedule, stretched

END_RESERVE = 0.5  # seconds kept for the run's end (final metrics, metrics.json) beside one epoch's overhead
MARGIN = 0.02      # of the budget, kept against epochs slower than the last two: a run that runs out of time ends
                   # with its learning rate where it stood, so the plan aims a little early


def now() -> float:
    """The clock a budget is counted on (a test may replace it)."""
    return time.monotonic()


class Pacer:
    """The clock of one --budget run (`t`: a train.Training), measuring each epoch and re-planning after it."""

    def __init__(self, t, started: float, clock=None, state: dict | None = None):
        """state: a resumed run's (`state()` at its checkpoint): its budget counts on from what it had spent."""
        self.t, self.clock = t, clock or now
        self.budget = parse_duration(t.cfg.train.budget)
        plan = t.plan
        self.step_seconds = [plan["seconds_per_step"]]
        self.pass_seconds = plan["seconds_per_monitor"]
        self.overhead = plan["seconds_per_checkpoint"]
        self.started = started
        if state is not None:
            self.step_seconds, self.pass_seconds, self.overhead = (list(state["step_seconds"]),
                                                                   state["pass_seconds"], state["overhead"])
            self.started = self.clock() - state["spent"]
        self.epoch_ended: float | None = None

    def state(self) -> dict:
        """What a resumed run needs to go on pacing as this one would have: the budget spent, the times measured."""
        return {"spent": self.clock() - self.started, "step_seconds": self.step_seconds[-2:],
                "pass_seconds": self.pass_seconds, "overhead": self.overhead}

    def measured(self, entry: dict, steps: int, monitor_seconds: float | None) -> None:
        """An epoch's times: its steps, its monitor pass (None: none ran) and, since the last epoch ended, what the
        run spent besides (writing its checkpoint)."""
        now = self.clock()
        self.step_seconds.append(entry["seconds"] / max(steps, 1))
        if monitor_seconds is not None:
            self.pass_seconds = monitor_seconds
        if self.epoch_ended is not None:
            spent = now - self.epoch_ended - entry["seconds"] - (monitor_seconds or 0.0)
            self.overhead = max(0.0, spent)

    def ended_epoch(self) -> None:
        self.epoch_ended = self.clock()

    def replan(self, done_epochs: int) -> tuple[int, int]:
        """(total steps, steps of the last epoch) that fit in what is left of the budget after `done_epochs`,
        from the last two epochs' seconds a step."""
        t = self.t
        left = self.budget * (1 - MARGIN) - (self.clock() - self.started) - self.overhead - END_RESERVE
        step = sum(self.step_seconds[-2:]) / len(self.step_seconds[-2:])
        more = fit_steps(left, step, t.spe, self.overhead, self.pass_seconds, t.monitors.every, done_epochs + 1)
        epochs = math.ceil(more / t.spe)
        return done_epochs * t.spe + more, more - (epochs - 1) * t.spe if more else 0


def apply_replan(t, done_epochs: int, total: int, last_steps: int) -> None:
    """Give `t` (a train.Training) the plan of `total` steps after `done_epochs` epochs: the epochs, the last
    epoch's steps, the monitors' last epoch, and the schedules' tails."""
    tc, done = t.cfg.train, done_epochs * t.spe
    tc.epochs = done_epochs + math.ceil((total - done) / t.spe)
    t.last_steps = last_steps or t.spe
    if done < t.warmup:  # still warming up: the warm-up as planned, then the cosine over the new length
        t.schedule = t.schedule[:done] + lr_schedule(tc.lr, total, t.warmup).tolist()[done:]
    else:
        t.schedule = stretched(t.schedule, done, total, tc.lr, 0.0, last_at_end=False)
    if t.momentum is not None:
        t.momentum = stretched(t.momentum, done, total, t.cfg.objective.momentum, 1.0, last_at_end=True)
    t.monitors.schedule(t.monitors.every, tc.epochs)
    t.plan["replans"] = t.plan.get("replans", []) + [[done_epochs, total, last_steps]]
    t.plan |= {"epochs": tc.epochs, "steps": total}


def restore_replans(t, plan: dict) -> None:
    """A resumed budget run's re-plans, applied again in order (the schedule it stopped in)."""
    replans, t.plan["replans"] = plan.get("replans", []), []
    for done_epochs, total, last_steps in replans:
        apply_replan(t, done_epochs, total, last_steps)
