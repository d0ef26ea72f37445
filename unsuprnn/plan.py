"""How long a run trains. `auto` settings resolved from the size of the training split (a batch size
that gives small sets enough steps, and the epochs that make `train.steps` optimizer steps), or the
epochs that fit a wall-clock `--budget` (timed on a few steps first, so that the schedules still run to
their end); and, once a run has ended, whether it was still improving (undertrained).

Defaults written in epochs starve small sets and overspend on large ones: counted in optimizer steps, a
1,600-image set at 30 epochs of 256 made 180 steps where digits needed 660 (RESULTS.md).
"""

from __future__ import annotations

import math
import re

from .errors import UserError

AUTO = "auto"
# what `auto` settings read from the images chose, and why (data/invariance.py resolve_from_data's keys): kept
# in meta.json `schedule` under these names, read back on resume and by the report
CHOSEN_FROM_IMAGES = ("augment", "colour", "intensity")
MIN_BATCH, MAX_BATCH = 32, 256
BATCHES_PER_EPOCH = 12   # auto batch: about this many steps per epoch, within [MIN_BATCH, MAX_BATCH]


def auto_batch_size(n_train: int) -> int:
    """A power of two near n_train / BATCHES_PER_EPOCH, within [MIN_BATCH, MAX_BATCH]: 128 for digits'
    1,438 training images, 64 for 800, 256 from about 3,000 images."""
    target = max(n_train, 1) / BATCHES_PER_EPOCH
    return int(min(MAX_BATCH, max(MIN_BATCH, 2 ** round(math.log2(max(target, 1))))))


def auto_epochs(steps: int, steps_per_epoch: int) -> int:
    """The epochs that give at least `steps` optimizer steps."""
    return max(1, math.ceil(steps / max(steps_per_epoch, 1)))


def auto_neighbors(n_train: int) -> int:
    """Neighbours mined per image for the clustering stage: one per 200 training images, from 5 to 20.
    On small sets 20 neighbours reach far into other classes (on 800 MNIST images 82% of 20 share their
    image's label, 91% of 5); RESULTS.md."""
    return int(min(20, max(5, n_train // 200)))


def auto_every(epochs: int, points: int = 20) -> int:
    """Run a monitor every this many epochs, for about `points` measurements over the run."""
    return max(1, round(epochs / points))


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*([smhd]))+\s*$")


def parse_duration(text: str) -> float:
    """'90s', '10m', '2h', '1h30m' (or a number of seconds) -> seconds > 0, else a UserError."""
    value = str(text).strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        if not DURATION.match(value):
            raise UserError(f"--budget {text!r} is not a duration; pass e.g. 90s, 10m, 2h or 1h30m") from None
        seconds = sum(float(n) * UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", value))
    if not (math.isfinite(seconds) and 0 < seconds <= 366 * 86400):
        raise UserError(f"--budget {text!r} must be more than 0 seconds and at most a year; pass e.g. 10m")
    return seconds


def monitor_passes(epochs: int, every: int) -> int:
    """How many monitor passes a run of `epochs` makes: every `every` epochs and after the last."""
    return epochs // every + (1 if epochs % every else 0)


def budget_epochs(seconds: float, step_seconds: float, steps_per_epoch: int, epoch_overhead: float,
                  pass_seconds: float = 0.0, every: int | None = None, points: int = 20) -> tuple[int, int]:
    """(epochs, steps per epoch) that fit in `seconds`: as many whole epochs as fit, at least one; where one full
    epoch does not fit, one epoch of the steps that do. Monitor passes of `pass_seconds` each are counted as the
    run will make them (every `every` epochs, or None: about `points` over the run, `auto_every`), with one pass's
    time more kept for the end."""
    epoch = steps_per_epoch * step_seconds + epoch_overhead

    def cost(e: int) -> float:
        return e * epoch + (monitor_passes(e, every or auto_every(e, points)) + 1) * pass_seconds

    if seconds < cost(1):  # one epoch of the steps that fit beside that epoch's other costs
        room = seconds - (cost(1) - steps_per_epoch * step_seconds)
        return 1, max(1, min(steps_per_epoch, int(room / max(step_seconds, 1e-9) + 1e-9)))
    upper = max(1, int(seconds / epoch + 1e-9))  # what fits without monitors
    if every:  # a fixed frequency: the cost grows with the epochs, so bisect (a year's budget is many epochs)
        lo, hi = 1, upper
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if cost(mid) <= seconds else (lo, mid - 1)
        return lo, steps_per_epoch
    # about `points` passes however many epochs (at most 2 points + 1): a short walk down from the upper bound,
    # exact where the rounding of auto_every makes the cost dip and rise again
    e = upper
    while e > 1 and cost(e) > seconds:
        e -= 1
    return e, steps_per_epoch


def fit_steps(seconds: float, step_seconds: float, steps_per_epoch: int, epoch_overhead: float,
              pass_seconds: float, every: int, first_epoch: int) -> int:
    """Optimizer steps that fit in `seconds` from epoch `first_epoch` (1-based) on: whole epochs of
    `steps_per_epoch` steps, each with `epoch_overhead` more and a monitor pass of `pass_seconds` every `every`
    epochs and after the last; then part of one more epoch where room is left. 0 where not one step fits.

    A --budget run plans with it before training (from timed steps) and again after every epoch (from the epochs'
    measured times), so that it ends when its budget does whatever the machine's load."""
    s, spe, every = max(step_seconds, 1e-9), max(steps_per_epoch, 1), max(every, 1)

    def passes(epochs: int) -> int:  # monitor passes after epochs first_epoch .. first_epoch + epochs - 1
        if epochs <= 0:
            return 0
        last = first_epoch + epochs - 1
        counted = last // every - (first_epoch - 1) // every
        return counted + (0 if last % every == 0 else 1)

    def cost(whole: int, part: int = 0) -> float:
        epochs = whole + (1 if part else 0)
        return (whole * spe + part) * s + epochs * epoch_overhead + passes(epochs) * pass_seconds

    whole = max(0, int(seconds / (spe * s + epoch_overhead + pass_seconds / every)) + 1)
    while whole > 0 and cost(whole) > seconds:
        whole -= 1
    room = seconds - cost(whole) - epoch_overhead - (passes(whole + 1) - passes(whole)) * pass_seconds
    part = max(0, min(spe - 1, int(room / s + 1e-9)))
    return whole * spe + part


# --- undertrained: still improving over the last fifth of the run
KNN_GAIN = 1.0     # kNN points gained over the last fifth that say "still improving" (with the noise bound)
LOSS_SHARE = 0.1   # share of the run's loss decrease made in its last fifth that says the same


def _last_fifth(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The measurements of the last fifth of the epochs (at least the last three)."""
    if not points:
        return []
    last = points[-1][0]
    window = [p for p in points if p[0] > last - max(last / 5, 1)]
    return window if len(window) >= 3 else points[-3:]


def _slope_gain(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of value against epoch, times the span of the epochs (the trend's gain)."""
    n = len(points)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return 0.0 if sxx == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx * (xs[-1] - xs[0])


SHORT_SHARE = 0.2  # a run of fewer steps than this share of the default plan is cut short, whatever its curve


def short_of_plan(steps: int, plan_steps: int) -> str | None:
    """Why a run whose schedule was set by hand (--epochs, --budget) is too short to judge by its curve, or
    None: it trained fewer than SHORT_SHARE of the `plan_steps` optimizer steps the default plan gives."""
    if steps < SHORT_SHARE * plan_steps:
        return (f"it trained {steps:,} optimizer steps, under a fifth of the {plan_steps:,} of the default plan "
                "(train.steps)")
    return None


def still_improving(log: list[dict], queries: int | None = None) -> str | None:
    """Why a finished run looks undertrained (one clause), or None. With a kNN monitor: its trend over the
    last fifth of the run gained at least KNN_GAIN points and two standard errors; without one: the
    last fifth made at least LOSS_SHARE of the run's whole loss decrease."""
    knn = [(e["epoch"], e["knn_top1"]) for e in log if "knn_top1" in e]
    if len(knn) >= 2:
        window = _last_fifth(knn)
        gain = _slope_gain(window)
        p = window[-1][1] / 100
        noise = 200 * math.sqrt(max(p * (1 - p), 1e-4) / queries) if queries else 0.0
        if gain >= max(KNN_GAIN, noise):
            return f"its kNN monitor rose {gain:.1f} points over the last {len(window)} measurements"
        return None
    loss = [(e["epoch"], e["loss"]) for e in log if isinstance(e.get("loss"), (int, float))]
    if len(loss) < 2:
        return None
    total = loss[0][1] - min(v for _, v in loss)
    gain = -_slope_gain(_last_fifth(loss))
    if total > 0 and gain >= LOSS_SHARE * total:
        return f"its loss fell {gain:.3g} over the last fifth of the run ({100 * gain / total:.0f}% of its whole decrease)"
    return None
