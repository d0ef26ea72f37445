"""Progress of long work: a bar with its rate and ETA on a terminal, and lines in a redirected log (no
carriage-return frames there), so that nothing runs a minute silent.

- `progress_bar`: a tqdm bar, drawn only on a terminal (the training loops' own bars).
- `tracked(items, total, desc)`: a loop with progress: a bar on a terminal; elsewhere a line every
  LINE_EVERY seconds (done, rate, ETA) and one at the end where the loop took more than a few seconds.
- `stage(desc)`: one opaque step (a UMAP fit, a k-means): a line every HEARTBEAT seconds while it runs and one
  at its end where it took more than a few seconds.
Where the lines go is set once by the command line (`configure`: stderr, or nowhere with --quiet); called
from Python the library is silent unless told otherwise.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Callable, Iterable, Iterator

from tqdm import tqdm

LINE_EVERY = 10.0   # seconds between a loop's lines in a log
HEARTBEAT = 20.0    # seconds between a running stage's lines
SHOW_FROM = 3.0     # a loop or stage that took longer gets a line at its end

_say: Callable[[str], None] | None = None
_bars = True


def configure(say: Callable[[str], None] | None, bars: bool = True) -> None:
    """Where step lines go (None: nowhere: probe, export and report --quiet) and whether loops draw bars on a
    terminal (not with a training command's --quiet, which keeps its lines)."""
    global _say, _bars
    _say, _bars = say, bars


def on_terminal() -> bool:
    """True when stderr, where bars are drawn, is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def progress_bar(enabled: bool = True, **kwargs) -> tqdm:
    """A tqdm bar on stderr, disabled unless `enabled` and stderr is a terminal."""
    kwargs.setdefault("leave", False)
    return tqdm(file=sys.stderr, disable=not (enabled and on_terminal()), **kwargs)


def _line(text: str) -> None:
    if _say is not None:
        _say(text)


def tracked(items: Iterable, total: int | None = None, desc: str = "", unit: str = "steps") -> Iterator:
    """`items` with progress (see the module docstring); total: their number where `items` has no len(); unit:
    what they are, in the plural."""
    total = len(items) if total is None and hasattr(items, "__len__") else total
    started = last = time.perf_counter()
    bar = progress_bar(_bars and _say is not None, total=total, desc=desc, unit=unit)
    done = 0
    try:
        for item in items:
            yield item
            done += 1
            bar.update(1)
            now = time.perf_counter()
            if bar.disable and now - last >= LINE_EVERY:
                rate = done / (now - started)
                eta = f", about {(total - done) / rate:.0f} s left" if total else ""
                _line(f"{desc}: {done}{f'/{total}' if total else ''} {unit}, {rate:.3g}/s{eta}")
                last = now
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    if seconds >= SHOW_FROM:
        _line(f"{desc}: {done} {unit} in {seconds:.1f} s")


@contextlib.contextmanager
def stage(desc: str):
    """One step whose progress cannot be counted: a line every HEARTBEAT seconds while it runs, one at its end
    where it took longer than SHOW_FROM seconds."""
    started, finished = time.perf_counter(), threading.Event()

    def heartbeat():
        while not finished.wait(HEARTBEAT):
            _line(f"{desc}: running, {time.perf_counter() - started:.0f} s so far")
    beat = threading.Thread(target=heartbeat, daemon=True) if _say is not None else None
    if beat is not None:
        beat.start()
    try:
        yield
    finally:
        finished.set()
        if beat is not None:
            beat.join()
    seconds = time.perf_counter() - started
    if seconds >= SHOW_FROM:
        _line(f"{desc}: done in {seconds:.1f} s")
