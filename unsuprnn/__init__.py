"""unsuprnn: unsupervised representation learning with recurrent encoders over image sequences.

The package is built in floors, lowest first (`FLOORS`). A room is a top-level module or a folder of
modules; each room stands on one floor. The rule: a module imports only from its own floor or below,
and no rooms import each other in a circle, so each floor can be read knowing only the floors beneath it.
tests/test_layout.py derives the import graph with `ast` and holds the code to this.

1. ground: the names a user types and pure pieces that need nothing of the package but each other:
   errors, setting declarations (`bounds`), durations and automatic plans (`plan`), learning-rate
   schedules, progress bars, timing, devices, atomic file writes, safe YAML, and `names/` (dataset specs,
   the objectives' and encoders' registries, the words settings take, logger names, the number of clusters
   and its k-range).
2. settings: `config`, every default and bound, and `schema`, the saved form of a config and its versions.
3. data and models: `data/` (sources to sequence views), `models/` (encoders and heads), and the
   memory checks in `budget`.
4. training parts and run files: `objectives/` (one loss each), `runs/` (run directories, checkpoints,
   the per-epoch lifecycle).
5. evaluation: `evaluate/` (kNN, linear, k-means, HDBSCAN, baselines, the probe and its store).
6. training stages: `train` with its `monitors`, and the clustering stage `cluster/`.
7. outputs: `export/` and `report/`.
8. the command line: `cli_options`, `cli`.
"""

import time

__version__ = "0.1.0"
STARTED = time.monotonic()  # when the process began its work: a --budget counts from here

FLOORS = (
    ("ground", ("__init__", "errors", "bounds", "plan", "schedules", "progress", "calibrate", "devices", "atomic",
                "safe_yaml", "threads", "names")),
    ("settings", ("config", "schema")),
    ("data and models", ("budget", "data", "models")),
    ("training parts and run files", ("objectives", "runs")),
    ("evaluation", ("evaluate",)),
    ("training stages", ("monitors", "pacing", "train", "cluster")),
    ("outputs", ("export", "report")),
    ("command line", ("cli_options", "cli")),
)
