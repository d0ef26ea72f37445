"""The number of clusters K, one setting wherever K is asked for (`cluster.clusters`, the probe's
`--clusters`, export's `--cluster`, the report): a number K >= 2, `auto` (chosen from the embeddings
within a k-range, `evaluate/kmeans.py`) or `classes` (one cluster per class of the dataset); and the
k-range `A:B` that `auto` chooses from.
"""

from __future__ import annotations

from ..errors import UserError
from ..plan import AUTO

CLASSES = "classes"
K_RANGE = "2:20"          # what `auto` chooses from unless --k-range says otherwise
MAX_K = 1 << 20


def spell_clusters(value, also: tuple[str, ...] = ()):
    """A number of clusters in its one spelling: K as an int ('4' -> 4), `auto`, `classes`, or a word of `also`,
    lower case; anything else comes back as it was, for the caller's check to name."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return value
    text = str(value).strip().lower()
    if text in (AUTO, CLASSES, *also):
        return text
    try:
        return int(text) if str(int(text)) == text else value
    except ValueError:
        return value


def parse_clusters(value, flag: str = "--clusters", also: tuple[str, ...] = ()) -> int | str:
    """K >= 2, `auto` or `classes` (and the words in `also`, e.g. export's `hdbscan`), else a UserError
    naming `flag` and the choices. Numbers written as text ('4') come back as int."""
    value = spell_clusters(value, also=also)
    words = ", ".join((AUTO, CLASSES, *also))
    if isinstance(value, str) and value in (AUTO, CLASSES, *also):
        return value
    k = value if isinstance(value, int) and not isinstance(value, bool) else None
    if k is None:
        raise UserError(f"{flag} {value!r} is not a number of clusters; pass K (2 or more), or one of: {words}")
    if not 2 <= k <= MAX_K:
        raise UserError(f"{flag} {k} is out of range: it must be in [2, {MAX_K}], or one of: {words}")
    return k


def parse_k_range(text, flag: str = "--k-range") -> tuple[int, int]:
    """'A:B' -> (A, B) with 2 <= A <= B, else a UserError naming the flag."""
    if isinstance(text, int) or str(text).isdigit():  # YAML 1.1 reads an unquoted 2:20 as the number 140
        raise UserError(f"{flag} {text!r} is not A:B; pass e.g. {flag} 2:20 (in a YAML file quote it: '2:20')")
    try:
        lo, hi = (int(v) for v in str(text).split(":"))
    except ValueError:
        raise UserError(f"{flag} {text!r} is not A:B; pass e.g. {flag} 2:20") from None
    if not 2 <= lo <= hi <= MAX_K:
        raise UserError(f"{flag} {text!r} must have 2 <= A <= B (a range of numbers of clusters); "
                        f"pass e.g. {flag} 2:20")
    return lo, hi


def resolve_k(setting: int | str, classes: int) -> int | str:
    """A K setting with `classes` replaced by the dataset's number of classes (`auto` stays `auto`)."""
    return classes if setting == CLASSES else setting
