"""Progress bars on a terminal, and nothing (callers print one line per step) anywhere else: a
redirected log gets no carriage-return frames."""

from __future__ import annotations

import sys

from tqdm import tqdm


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
