"""YAML read safely: a config file (`read_config_file`) or one `--set` value (`load_yaml`), with no aliases, no
key written twice and no value YAML cannot hold; every failure one UserError naming the file or the value."""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import UserError

MAX_CONFIG_BYTES = 1 << 20  # a config is a few hundred lines; a larger file is not one
MAX_VALUE_CHARS = 10000     # one --set value


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (by default the last one wins) and
    aliases (`*name`: a few hundred bytes of nested aliases can expand to gigabytes)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise UserError(f"the config uses a YAML alias (*{event.anchor}, line {event.start_mark.line + 1}); "
                            "write the value out instead")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise UserError(f"config key '{key}' is written twice in one section (line "
                                f"{key_node.start_mark.line + 1}); keep one of them")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_config_file(path: str | Path) -> dict:
    """The mapping in a YAML config file, or a UserError naming what is wrong with the file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {p}; pass an existing YAML file (see configs/)")
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise UserError(f"config file {p} is {p.stat().st_size:,} bytes, too large to be a config; pass a YAML "
                        "file (see configs/)")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"config file {p} is not a UTF-8 text file; pass a YAML file (see configs/)") from None
    if "\x00" in text:
        raise UserError(f"config file {p} is a binary file, not YAML text; pass a YAML file (see configs/)")
    try:
        mapping = load_yaml(text)
    except UserError as exc:
        raise UserError(f"config file {p}: {exc}") from None
    return mapping or {}


def load_yaml(text: str):
    """A YAML value read safely: no aliases, no key twice, and a value YAML cannot hold (a 100,000-digit
    number, nesting thousands deep) is one UserError."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise UserError(f"not valid YAML ({str(exc).splitlines()[0]})") from None
    except (ValueError, RecursionError, OverflowError) as exc:
        raise UserError(f"a value YAML cannot hold ({type(exc).__name__}: {str(exc)[:80]})") from None


