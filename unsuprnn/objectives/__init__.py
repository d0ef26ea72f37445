"""Training objectives, one file each: `objectives/NAME.py` is the objective NAME. Adding one is adding
its file (and its recipe, tests and README line): the registry (`names/objectives.py`), the config's list
of objectives and the CLI's help read the files themselves.

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
- `CAUSAL = True` if it predicts ahead along the sequence (its encoder must be causal: `why_not_causal` in names/encoders.py);
- `OBJECTIVE`: its `nn.Module` class, built as `OBJECTIVE(encoder, pipeline, cfg, num_classes, **options)`
  (options: `binarized`, `gather_distributed`); `forward(x_uint8, y, generator)` returns
  `(loss, stats)`; an objective with a momentum teacher also has `update_teacher(momentum)`, which the
  training loop calls after every optimizer step. Files whose names start with `_` are helpers.

`A+B` (e.g. `contrastive+cpc`) is a mix of objectives: `mix.py` (which declares `COMBINES = True` and is
not an objective on its own) sums their losses on the same batch, weighted by `objective.weights`.
"""

from __future__ import annotations

import importlib

from ..names.objectives import parts_of, spec_of


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
