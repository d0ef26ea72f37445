"""`probe`: embed the bank (train split) and queries (test split) with a frozen encoder, then measure
each probe method (evaluate/methods.py) beside baselines on the very same images."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from ..config import Config, ProbeSettings
from ..data.dataset import load_dataset_matching
from ..errors import UserError
from ..names.clusters import AUTO, CLASSES
from ..runs.checkpoint import load_cluster_head, load_run_encoder
from .baselines import check_baselines, encoder_digest, feature_sets
from .embed import embed_images
from .methods import METHOD_NAMES, method
from .metrics import clustering_metrics


@dataclasses.dataclass
class ProbeData:
    """The bank (train split) and the queries (test split): uint8 image sets with the row indices
    to use, so that a memory-mapped set is read batch by batch and never copied whole."""
    bank_images: torch.Tensor
    bank_idx: torch.Tensor
    bank_y: torch.Tensor
    query_images: torch.Tensor
    query_idx: torch.Tensor
    query_y: torch.Tensor
    classes: list[str]
    bank_spec: str
    query_spec: str

    def embed(self, encoder, pipeline, device, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(bank embeddings [N, E], query embeddings [Q, E])."""
        return (embed_images(encoder, pipeline, self.bank_images, device, progress=progress, indices=self.bank_idx),
                embed_images(encoder, pipeline, self.query_images, device, progress=progress, indices=self.query_idx))

    @property
    def labelled(self) -> bool:
        """Whether the bank has labels of two classes or more and the queries labels too (what the methods that
        score against labels need: a kNN of one class is trivially right, a linear probe cannot fit)."""
        return len(self.bank_y[self.bank_y >= 0].unique()) >= 2 and bool((self.query_y >= 0).any())

    @property
    def unscored_because(self) -> str:
        """Why the labelled methods cannot score these images (where `labelled` is False)."""
        return "has one class" if (self.bank_y >= 0).any() else "has no labels"


def load_probe_data(cfg: Config, shape: tuple, dataset: str | None = None,
                    test_dataset: str | None = None) -> ProbeData:
    """The run's own data (or `dataset`) split as in training; `test_dataset` supplies the queries
    instead (its own test split where it has one, else all of it). Classes match by label index."""
    bank = load_dataset_matching(cfg.data, cfg.train.seed, shape, dataset)
    q = load_dataset_matching(cfg.data, cfg.train.seed, shape, test_dataset) if test_dataset else bank
    if test_dataset and q.split_info["source"] != "own":
        query_idx = torch.arange(len(q.images))
    else:
        query_idx = q.splits["test"]
    bank_idx = bank.splits["train"]
    for what, spec, idx, whole in (("bank (its train split)", bank.spec, bank_idx, bank),
                                   ("queries (its test split)", q.spec, query_idx, q)):
        if not len(idx):  # every feature set and method would have nothing to measure: say why, once
            raise UserError(f"{spec} has no images for the probe's {what}: {len(whole.images)} images split with "
                            f"test fraction {cfg.data.test_fraction} leave it empty; probe a larger set, or give "
                            "the queries with --test-dataset SPEC")
    return ProbeData(bank.images, bank_idx, bank.labels[bank_idx], q.images, query_idx, q.labels[query_idx],
                     bank.classes, bank.spec, q.spec)


def score_features(bank: torch.Tensor, bank_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor,
                   num_classes: int, methods: tuple[str, ...], settings: ProbeSettings, seed: int = 0,
                   device: torch.device | str = "cpu", say=lambda line: None, name: str = "") -> dict:
    """Measure each probe method in `methods` on bank features [N, E] and query features [Q, E]; a method
    that needs labels is given the labelled rows only."""
    out: dict = {}
    bank_known, query_known = bank_y >= 0, query_y >= 0
    for m_name in methods:
        m, t0 = method(m_name), time.perf_counter()
        if m.NEEDS_LABELS:
            if not (bank_known.any() and query_known.any()):
                raise UserError(f"the {m_name} probe needs labels in both the bank and the queries; this dataset "
                                "has none (k-means still works: --method kmeans --clusters K)")
            out[m_name] = m.measure(bank[bank_known], bank_y[bank_known], query[query_known], query_y[query_known],
                                    num_classes, settings, seed, device)
        else:
            out[m_name] = m.measure(bank, bank_y, query, query_y, num_classes, settings, seed, device)
        say(f"probe: {name} {m_name} ({time.perf_counter() - t0:.1f} s)")
    return out


def plan_methods(methods: tuple[str, ...], explicit: bool, settings: ProbeSettings, data: ProbeData,
                 head_k: int | None) -> tuple[tuple[str, ...], ProbeSettings, list[str]]:
    """(methods to run, settings, notes): without labels, the methods that need them are left out (an error
    where the user named one), and k-means takes its K from --clusters or a cluster run's head."""
    bad = [m for m in methods if m not in METHOD_NAMES]
    if bad:
        raise UserError(f"unknown probe method '{bad[0]}'; use {', '.join(METHOD_NAMES)} or all")
    settings.check()
    notes = []
    if not data.labelled:
        needing = [m for m in methods if method(m).NEEDS_LABELS]
        if needing and explicit:
            raise UserError(f"{data.bank_spec} {data.unscored_because}, so {', '.join(needing)} cannot be measured; "
                            "probe with --method kmeans --clusters K, or give a --dataset labelled with two classes "
                            "or more")
        methods = tuple(m for m in methods if m not in needing)
        notes += [f"{data.bank_spec} {data.unscored_because}: {', '.join(needing)} need labels of two classes or "
                  "more and were not measured"] if needing else []
        if settings.clusters == CLASSES:  # no classes to count: a cluster run's K, else one chosen from the data
            settings = dataclasses.replace(settings, clusters=head_k or AUTO)
    n_bank = int((data.bank_y >= 0).sum())
    if "knn" in methods and settings.k > n_bank:
        raise UserError(f"k={settings.k} is larger than the labelled bank of {n_bank} vectors; "
                        f"pass --k at most {n_bank}")
    if isinstance(settings.clusters, int) and not 1 <= settings.clusters <= len(data.query_idx):
        raise UserError(f"--clusters {settings.clusters} must be between 1 and the {len(data.query_idx)} queries")
    return methods, settings, notes


def run_probe(run: str | Path, methods: tuple[str, ...] = METHOD_NAMES, baselines: list[str] | None = None,
              dataset: str | None = None, test_dataset: str | None = None, settings: ProbeSettings | None = None,
              device: torch.device | str = "cpu", progress: bool = False, loaded: tuple | None = None,
              data: ProbeData | None = None, explicit: bool = False, say=lambda line: None) -> dict:
    """Score the run's encoder (and baselines) with each method. Returns a JSON-ready dict.

    loaded, data: the run's `load_run_encoder` result and `load_probe_data` for it, where the caller
    has them already (they are loaded here otherwise). explicit: the user named the methods (a method
    the data cannot serve is then an error, not a note). say: one line per step."""
    run, settings, t0 = Path(run), settings or ProbeSettings(), time.perf_counter()
    device = torch.device(device)
    loaded = loaded or load_run_encoder(run, device)
    _, _, cfg, info = loaded
    data = data or load_probe_data(cfg, tuple(info["shape"]), dataset, test_dataset)
    head = load_cluster_head(run) if run.is_dir() else None
    methods, settings, notes = plan_methods(methods, explicit, settings, data, head[-1].out_features if head else None)
    check_baselines(baselines or [], info)
    if settings.reduce != "none" and {"kmeans", "hdbscan"} & set(methods):
        notes.append(f"k-means and HDBSCAN grouped each feature set's {settings.reduce.upper()} layout (--reduce "
                     f"{settings.reduce}), fitted on the bank and queries together")
    say(f"probe: {data.bank_spec}: {len(data.bank_idx)} bank and {len(data.query_idx)} query images "
        f"({time.perf_counter() - t0:.1f} s)")
    dims: dict = {}
    sets = feature_sets(loaded, data, baselines or [], device, progress, dims, say=say)
    # labels of one class score nothing (every clustering is "right"): the methods see the images as unlabelled
    bank_y, query_y = (data.bank_y, data.query_y) if data.labelled or not (data.bank_y >= 0).any() else \
        (torch.full_like(data.bank_y, -1), torch.full_like(data.query_y, -1))
    results = {name: score_features(b, bank_y, q, query_y, len(data.classes), methods, settings,
                                    cfg.train.seed, device, say, name)
               for name, (b, q) in sets.items()}
    for name, dim in dims.items():  # what a feature set's size depends on the data for (the PCA baseline's)
        for res in results[name].values():
            res["dim"] = dim
    if head is not None:  # a cluster run: its own head's clusters, beside k-means on the same embeddings
        results["encoder"]["head"] = head_scores(head, sets["encoder"][1], query_y)
    ids = cluster_ids(head, *sets["encoder"], results["encoder"].get("kmeans", {}).get("k"), settings, cfg.train.seed,
                      device)
    if ids is not None:  # what the clusters follow: how often a transformed image lands in another cluster
        from .consistency import consistency
        say("probe: encoder consistency of the clusters under mirroring, shifts, zooms, turns, negatives")
        results["encoder"]["consistency"] = consistency(loaded[0], loaded[1], data.query_images[data.query_idx],
                                                        sets["encoder"][1], ids, device)
    sources = {"supervised": str(Path(b.partition("=")[2])) for b in baselines or [] if b.startswith("supervised=")}
    return {"run": str(run), "bank": data.bank_spec, "queries": data.query_spec,
            "bank_size": len(data.bank_idx), "query_size": len(data.query_idx),
            "probe_settings": dataclasses.asdict(settings), "embedding_dim": int(sets["encoder"][0].shape[1]), "encoder_sha256": encoder_digest(loaded[0], head),
            "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "sources": sources, "results": results,
            "notes": notes}


def cluster_ids(head, bank: torch.Tensor, query: torch.Tensor, k: int | None, settings: ProbeSettings, seed: int,
                device) -> "np.ndarray | None":
    """The queries' clusters [Q]: a cluster run's head's, else the very grouping the k-means probe scored (k-means
    into its K of the same features: the UMAP layout under --reduce umap, whose fit is shared; the same seed and
    restarts). None where k-means was not measured."""
    from ..models.heads import confident_clusters
    if head is not None:
        with torch.no_grad():
            return confident_clusters(head.eval()(query.float()))[0].numpy()
    if not k:
        return None
    from .kmeans import default_restarts, kmeans
    from .reduce import kmeans_features
    x = kmeans_features(bank, query, settings.reduce, seed)
    return kmeans(x, k, seed=seed, restarts=settings.restarts or default_restarts(len(x)), device=device)[0]


def head_scores(head: torch.nn.Module, query: torch.Tensor, query_y: torch.Tensor) -> dict:
    """A cluster run's head on query embeddings [Q, E]: cluster sizes, mean confidence and, where
    labels exist, NMI, ARI and Hungarian accuracy (labels score only)."""
    from ..models.heads import confident_clusters
    with torch.no_grad():
        ids, conf = confident_clusters(head.eval()(query.float()))
    k = head[-1].out_features
    out = {"k": k, "sizes": torch.bincount(ids, minlength=k).tolist(), "mean_confidence": float(conf.mean())}
    known = query_y >= 0
    if not known.any():
        return out | {"note": "no labels: clusters computed but not scored"}
    return out | clustering_metrics(query_y[known].numpy(), ids[known].numpy())
