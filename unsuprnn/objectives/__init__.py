"""Training objectives, one file each: `objectives/NAME.py` is the objective NAME. Adding one is adding
its file (and its recipe, tests and README line): the registry, the config's list of objectives and
the CLI's help read the files themselves.

An objective file holds
- a docstring that starts with the method's name and a colon (`"SimCLR: two augmented views ..."`; the
  CLI's help lists the name);
- `KEYS`: the config keys (`objective.KEY`) that it alone reads, a literal dict
  `{key: {"default": ..., "lo": ..., "hi": ..., "choices": [...], "note": ..., "help": ...}}` (the
  arguments of `bounds.opt`). It is read without importing the file, so the CLI starts without torch:
  keep it a literal. Keys that several objectives read are declared once, in `_shared.py`;
- `USES_LABELS = True` if it trains with labels (the supervised reference; `pretrain` refuses it);
- `MIN_BATCH = N` if it needs other than 2 images a batch (a contrastive loss needs negatives, a batch
  norm two images; an autoencoder trains on one);
- `CAUSAL = True` if it predicts ahead along the sequence (its encoder must be causal: models/encoder.py);
- `OBJECTIVE`: its `nn.Module` class, built as `OBJECTIVE(encoder, pipeline, cfg, num_classes, **options)`
  (options: `binarized`, `gather_distributed`); `forward(x_uint8, y, generator)` returns
  `(loss, stats)`; an objective with a momentum teacher also has `update_teacher(momentum)`, which the
  training loop calls after every optimizer step. Files whose names start with `_` are helpers.

`A+B` (e.g. `contrastive+cpc`) is a mix of objectives: `mix.py` (which declares `COMBINES = True` and is
not an objective on its own) sums their losses on the same batch, weighted by `objective.weights`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
from pathlib import Path

from ..errors import UserError

HERE = Path(__file__).parent


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


def build_objective(name: str, encoder, pipeline, cfg, num_classes: int, **options):
    """The objective `name` (or the mix `A+B`) as an nn.Module around `encoder` (see the module docstring).
    An objective that predicts ahead (CAUSAL, or a mix with one) is refused an encoder whose outputs see ahead."""
    parts = parts_of(name)
    if spec_of(name).causal:
        from ._sequence import require_causal
        require_causal(encoder, name)
    if len(parts) > 1:
        return importlib.import_module(f"{__name__}.mix").OBJECTIVE(encoder, pipeline, cfg, num_classes, parts=parts,
                                                                   **options)
    return importlib.import_module(f"{__name__}.{name}").OBJECTIVE(encoder, pipeline, cfg, num_classes, **options)
