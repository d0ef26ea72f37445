"""A setting's declaration: its default and, beside it, the values it accepts (`opt`, `Bounds`);
turning text or YAML values into the declared type (`coerce`); and checking a whole settings object
against its declarations (`check_fields`). Used by the run config and by the probe settings."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import UserError

INF = float("inf")
BIG = 1 << 20  # a generous ceiling for sizes, so that a typo fails here and not as an allocation


@dataclass(frozen=True)
class Bounds:
    """The values a setting accepts: a numeric interval (NaN and infinity never pass), a set of
    choices, or both (`also`: values allowed outside the interval, e.g. 0 = off)."""
    lo: float = -INF
    hi: float = INF
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    also: tuple = ()
    note: str = ""

    def allows(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        if value in self.also:
            return True
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        lo, hi = _number(self.lo), _number(self.hi)
        if self.lo > -INF and self.hi < INF:
            text = f"in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        elif self.lo > -INF:
            text = f"{'>' if self.lo_open else '>='} {lo}"
        else:
            text = f"{'<' if self.hi_open else '<='} {hi}"
        text = " or ".join([str(a) for a in self.also] + [text])
        return text + (f" ({self.note})" if self.note else "")


def _number(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) else f"{x:g}"


def opt(default: Any, lo: float = -INF, hi: float = INF, *, gt: float | None = None, lt: float | None = None,
        choices: tuple = (), also: tuple = (), note: str = "", flag: str | tuple[str, ...] = (), help: str = "",
        parse: Callable[[Any], Any] | None = None, spelling: Callable[[Any], Any] | None = None):
    """A settings field: its default, the values it accepts (`gt`/`lt` for open ends; none given: any
    value of its type; `parse`: a check that raises a UserError for a value it cannot read, e.g. a
    duration; `spelling`: a function that returns a value's one spelling, which is what the setting
    holds, e.g. 'auto' for ' Auto'; the bounds then judge it), and where a command-line flag sets it, the flag
    and its help text."""
    metadata = {"flag": (flag,) if isinstance(flag, str) else tuple(flag), "help": help,
                "parse": parse, "spelling": spelling}
    if lo > -INF or hi < INF or gt is not None or lt is not None or choices or also:
        metadata["bounds"] = Bounds(lo=lo if gt is None else gt, hi=hi if lt is None else lt, lo_open=gt is not None,
                                    hi_open=lt is not None, choices=tuple(choices), also=tuple(also), note=note)
    return field(default=default, metadata=metadata)


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert `value` to the annotated type `tp`, or raise a UserError naming `key`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        # none/null (or YAML's empty value) mean "not set"; an empty text is a value, checked as any other
        # (--budget '' is refused as --budget ' ' is, not taken for no budget)
        if type(None) in typing.get_args(tp) and (
                value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null"))):
            return None
        for arg in args[:-1]:  # `int | str` (a number or `auto`): the first type that takes the value
            try:
                return coerce(value, arg, key)
            except UserError:
                pass
        return coerce(value, args[-1], key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
    elif tp in (int, float):
        if isinstance(value, (float, int) if tp is float else int) and not isinstance(value, bool):
            return tp(value)
        if isinstance(value, str):
            try:
                return tp(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise UserError(f"config key '{key}' expects {getattr(tp, '__name__', tp)}, got {value!r}; fix the value")


def read_setting(obj: Any, name: str, value: Any, key: str) -> Any:
    """`value` for the field `name` of a settings dataclass (instance or class): converted to its declared
    type, then to the field's one spelling where it declares one; a UserError naming `key` otherwise."""
    value = coerce(value, typing.get_type_hints(obj if isinstance(obj, type) else type(obj))[name], key)
    spelling = next(f for f in dataclasses.fields(obj) if f.name == name).metadata.get("spelling")
    return spelling(value) if spelling and value is not None else value


def field_bounds(obj: Any) -> dict[str, Bounds]:
    """name -> Bounds of each declared field of a settings dataclass (instance or class)."""
    return {f.name: f.metadata["bounds"] for f in dataclasses.fields(obj) if "bounds" in f.metadata}


def check_fields(obj: Any, complaint: Callable[[str, Any, Bounds], str]) -> None:
    """Every declared field of `obj` within its bounds (None = not set, always allowed), else a UserError
    with the text `complaint(name, value, bounds)`."""
    for name, bounds in field_bounds(obj).items():
        value = getattr(obj, name)
        if value is not None and not bounds.allows(value):
            raise UserError(complaint(name, value, bounds))
    for f in dataclasses.fields(obj):
        if f.metadata.get("parse") and getattr(obj, f.name) is not None:
            f.metadata["parse"](getattr(obj, f.name))
