"""The encoders' registry: what each encoder file (`models/encoders/KIND.py`) declares, read as literals without
importing it, so that the config, the CLI's help and the config's checks know the kinds before torch is imported.
Building one is `models.encoders.build_encoder`.

An encoder file holds
- a docstring that starts with its kind and a colon, then a one-line summary (the CLI's help lists it);
- `VIEWS`: the views it can read (a literal tuple; absent: every view);
- `FIXED`: encoder settings it cannot change, {key: the value it needs} (a literal dict; absent: none);
- `NEEDS`: why, in a few words (`--encoder KIND NEEDS`), where it declares VIEWS or FIXED;
- `build(cfg, input_dim, grid) -> nn.Module`: the encoder for steps of `input_dim` features (`grid`: the patch
  view's rows and columns, else None). The module has `encode(x) -> (embedding [B, E], per-step outputs)`,
  `out_dim`, `step_dim`, `bidirectional`, `layers`, and `why_not_causal()`: None where its forward outputs
  at a step see no later step (what objectives that predict ahead need), else why not;
- `activation_floats(cfg, sequence_shape) -> int`: about how many floats one image's pass keeps for the
  backward pass (the memory check before a run);
- `input_proj(cfg, patches) -> int`: encoder.input_proj with `auto` resolved, for a patch view or another;
- `describe(cfg, data_cfg) -> str`: the encoder in a few words (the report's provenance table).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
from pathlib import Path

from ..errors import UserError

HERE = Path(__file__).parent.parent / "models" / "encoders"  # the encoder files


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """What the registry knows of an encoder kind without importing its file."""
    kind: str
    summary: str
    views: tuple = ()
    fixed: dict = dataclasses.field(default_factory=dict)
    needs: str = ""


def read_spec(path: Path) -> EncoderSpec:
    tree = ast.parse(path.read_text(), str(path))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("VIEWS", "FIXED", "NEEDS"):
            try:
                found[node.targets[0].id.lower()] = ast.literal_eval(node.value)
            except ValueError:
                raise TypeError(f"{path}: {node.targets[0].id} must be a literal (it is read without importing "
                                "the file)") from None
    summary = (ast.get_docstring(tree) or path.stem).split("\n")[0].partition(":")[2].strip().rstrip(".") or path.stem
    return EncoderSpec(path.stem, summary, tuple(found.get("views", ())), dict(found.get("fixed", {})),
                       found.get("needs", ""))


@functools.cache
def specs() -> dict[str, EncoderSpec]:
    """kind -> spec of every encoder file, `rnn` (the default) first."""
    found = {p.stem: read_spec(p) for p in sorted(HERE.glob("*.py")) if not p.stem.startswith("_")}
    return dict(sorted(found.items(), key=lambda item: item[0] != "rnn"))


def kinds() -> tuple[str, ...]:
    return tuple(specs())


def kinds_help() -> str:
    return "; ".join(f"{k}: {s.summary}" + (f" (needs --view {' or '.join(s.views)})" if s.views else "")
                     for k, s in specs().items())


def check_kind_settings(kind: str, view: str, encoder_settings: dict) -> None:
    """Refuse settings that an encoder kind cannot honour (a view it cannot read, a setting it needs fixed),
    rather than ignore them: one line naming the fix."""
    spec = specs().get(kind)
    if spec is None:
        raise UserError(f"unknown encoder '{kind}'; use one of: {', '.join(kinds())}")
    if spec.views and view not in spec.views and view != "auto":  # (auto resolves to a view the kind reads)
        raise UserError(f"--encoder {kind} {spec.needs}, not as {view}; pass --view {spec.views[0]}"
                        + (" (--patch P sets their side)" if spec.views[0] == "patches" else ""))
    for key, value in spec.fixed.items():
        if encoder_settings.get(key) != value:
            raise UserError(f"--encoder {kind} {spec.needs}, so encoder.{key} must be {value}, not "
                            f"{encoder_settings.get(key)}; drop --{key.replace('_', '-')}, or use another --encoder")
