"""The objectives' registry: what each objective file (`objectives/NAME.py`) declares, read as literals
without importing it, so that the config, the CLI's help and every check that asks whether an objective
uses labels know the objectives before torch is imported. The form of an objective file is described in
`objectives/__init__.py`; building one is `objectives.build_objective`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
from pathlib import Path

from ..errors import UserError

HERE = Path(__file__).parent.parent / "objectives"  # the objective files


@dataclasses.dataclass(frozen=True)
class ObjectiveSpec:
    """What the registry knows of an objective without importing its file."""
    name: str
    summary: str
    keys: dict
    uses_labels: bool
    min_batch: int = 2
    causal: bool = False
    combines: bool = False


def read_spec(path: Path) -> ObjectiveSpec:
    """The method's name (its docstring up to the first colon), `KEYS`, `USES_LABELS` and `MIN_BATCH` of an
    objective file, read as literals."""
    tree = ast.parse(path.read_text(), str(path))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("KEYS", "USES_LABELS", "MIN_BATCH", "CAUSAL", "COMBINES"):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                raise TypeError(f"{path}: {node.targets[0].id} must be a literal (it is read without importing "
                                "the file)") from None
    summary = (ast.get_docstring(tree) or path.stem).split(":")[0].strip()
    return ObjectiveSpec(path.stem, summary, found.get("KEYS", {}), bool(found.get("USES_LABELS", False)),
                         int(found.get("MIN_BATCH", 2)), bool(found.get("CAUSAL", False)),
                         bool(found.get("COMBINES", False)))


@functools.cache
def specs() -> dict[str, ObjectiveSpec]:
    """name -> spec of every objective file, in name order."""
    return {p.stem: read_spec(p) for p in sorted(HERE.glob("*.py")) if not p.stem.startswith("_")}


def names(uses_labels: bool | None = None) -> list[str]:
    """Objective names; `uses_labels` False: the label-free ones (what `pretrain` offers). A mix's own file
    is not one."""
    return [n for n, s in specs().items() if not s.combines and (uses_labels is None or s.uses_labels == uses_labels)]


def parts_of(name: str) -> list[str]:
    """The objectives of `name`: itself, or the parts of a mix `A+B`, each checked (one line naming the fix)."""
    parts = str(name).split("+")
    known = names()
    for part in parts:
        if part not in known:
            raise UserError(f"unknown objective '{part}'; use one of: {', '.join(known)}, or a mix of label-free "
                            "ones joined by + (e.g. contrastive+cpc)")
    if len(parts) > 1:
        if len(set(parts)) < len(parts):
            raise UserError(f"objective '{name}' names a part twice; a mix takes each objective once")
        labelled = [p for p in parts if specs()[p].uses_labels]
        if labelled:
            raise UserError(f"objective '{name}' mixes in {', '.join(labelled)}, which trains with labels; a mix is "
                            "of label-free objectives")
    return parts


def spec_of(name: str) -> ObjectiveSpec:
    """The spec of an objective or of a mix (its parts' largest MIN_BATCH; causal if any part is)."""
    parts = [specs()[p] for p in parts_of(name)]
    if len(parts) == 1:
        return parts[0]
    return ObjectiveSpec(name, " + ".join(p.summary for p in parts), {}, False, max(p.min_batch for p in parts),
                         any(p.causal for p in parts))


@functools.cache
def objective_keys() -> dict[str, dict]:
    """Every `objective.KEY` declaration: the shared ones first, then each objective's own in name order.
    Two files declaring one key is an error (a shared key belongs in `_shared.py`)."""
    keys = dict(read_spec(HERE / "_shared.py").keys)
    owner = dict.fromkeys(keys, "_shared")
    for name, spec in specs().items():
        for key, decl in spec.keys.items():
            if key in keys or key == "name":
                raise TypeError(f"objective key '{key}' is declared by both {owner.get(key, 'config')}.py and "
                                f"{name}.py; declare a shared key once, in objectives/_shared.py")
            keys[key], owner[key] = decl, name
    return keys
