"""RUN/probe.json: every measurement the probes made of one run's encoder, kept across probes.

A measurement is keyed by (feature set, method, settings). A narrower probe (`--method knn`) adds
to what an earlier one measured; measuring the same thing again with the same settings replaces it;
a measurement under other settings (another k, another dataset) sits beside it. A changed encoder
(resumed training, `--force`) invalidates them all: the file records the encoder's weight digest.

`results` in the file is the table view of the latest probe's data: for each method, the settings
of the encoder's latest measurement and every feature set measured under exactly those settings,
so that a row is never compared with another measured differently.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..atomic import refuse_unless_file, write_text
from ..runs.files import read_json
from ..runs.writer import file_lock
from .methods import METHOD_NAMES, recorded, settings_from

FORMAT = 3  # 3: kNN figures record `centre` (a store of format 2 or older holds uncentred ones: `_as_they_ran`)
PROBE_FILE = "probe.json"
LOCK_FILE = ".probe.json.lock"  # held while probe.json is read, merged and written
# measured on a cluster run's head, not on its encoder alone: never taken from the run it was trained from
# (its source's `consistency` is of k-means clusters)
OWN_CLUSTERS = ("head", "consistency")


def method_settings(probe: dict, method_name: str, result: dict) -> dict:
    """What a measurement depends on besides the encoder: the data, and the settings the method declares
    (methods.recorded; a cluster run's `head` has none). A probe gives its settings as `probe_settings` (a
    probe.json of the first format, at its top level)."""
    s = {"bank": probe["bank"], "queries": probe["queries"]}
    if method_name not in METHOD_NAMES:
        return s
    return s | recorded(method_name, settings_from(probe.get("probe_settings") or probe), result)


def measurements(probe: dict) -> list[dict]:
    """The entries of one `run_probe` result (every feature set x method it measured)."""
    when = probe.get("measured") or time.strftime("%Y-%m-%dT%H:%M:%S%z")
    sources = probe.get("sources", {})
    out = []
    for features, methods in probe["results"].items():
        for name, result in methods.items():
            settings = method_settings(probe, name, result)
            if features in sources:  # e.g. which supervised run a `supervised` row comes from
                settings["source"] = sources[features]
            out.append({"features": features, "method": name, "settings": settings, "result": result,
                        "sizes": [probe["bank_size"], probe["query_size"]], "measured": when})
    return out


def _key(entry: dict) -> tuple:
    return entry["features"], entry["method"], json.dumps(entry["settings"], sort_keys=True)


def _same(a: dict, b: dict) -> bool:
    """Settings equal, apart from where a feature set came from."""
    drop = lambda s: {k: v for k, v in s.items() if k != "source"}
    return drop(a) == drop(b)


def merge(stored: dict | None, probe: dict) -> dict:
    """The store after `probe` (a `run_probe` result carrying `encoder_sha256`): stored measurements of
    the same encoder are kept unless measured again; those of another encoder are dropped."""
    kept = stored["measurements"] if stored and stored.get("encoder_sha256") == probe["encoder_sha256"] else []
    new = measurements(probe)
    fresh = {_key(e) for e in new}
    entries = [e for e in kept if _key(e) not in fresh] + new
    store = {"format": FORMAT, "run": probe["run"], "encoder_sha256": probe["encoder_sha256"],
             "embedding_dim": probe["embedding_dim"], "measurements": entries}
    return store | view(store, probe["bank"], probe["queries"])


def view(store: dict, bank: str, queries: str) -> dict:
    """The probe-shaped table of the store's measurements on (bank, queries): `results`
    {features: {method: result}} and the settings they share (`k`, `temperature`, ...)."""
    on_data = [e for e in store["measurements"] if e["settings"]["bank"] == bank and e["settings"]["queries"] == queries]
    chosen = {}  # method -> settings of the encoder's latest measurement (the file's order is time order)
    for e in on_data:
        if e["features"] == "encoder":
            chosen[e["method"]] = e["settings"]
    results: dict[str, dict] = {}
    sizes, sources = None, {}
    for e in on_data:
        if e["method"] in chosen and _same(e["settings"], chosen[e["method"]]):
            results.setdefault(e["features"], {})[e["method"]] = e["result"]
            sizes = e["sizes"]
            if "source" in e["settings"]:
                sources[e["features"]] = e["settings"]["source"]
    if "encoder" in results:  # the run's own row first
        results = {"encoder": results.pop("encoder")} | results
    knn = chosen.get("knn", {})
    out = {"bank": bank, "queries": queries, "bank_size": sizes[0] if sizes else None,
           "query_size": sizes[1] if sizes else None, "embedding_dim": store.get("embedding_dim"),
           "results": results, "sources": sources, "settings": {m: {k: v for k, v in s.items() if k not in ("bank", "queries")}
                                            for m, s in chosen.items()}}
    for k in ("k", "temperature", "index"):
        if k in knn:
            out[k] = knn[k]
    return out


def read_store(run: Path, encoder_sha256: str) -> dict | None:
    """The run's probe store if it describes this encoder, else None. A probe.json written before
    measurements were kept (no digest) is trusted only if it is newer than the run's encoder.pt."""
    path = Path(run) / PROBE_FILE
    if not path.is_file():
        return None
    stored = read_json(path)
    if stored.get("format") == 2:
        stored = _as_they_ran(stored)
    if stored.get("format") != FORMAT:
        if "results" not in stored or path.stat().st_mtime < (Path(run) / "encoder.pt").stat().st_mtime:
            return None
        legacy = {"measured": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(path.stat().st_mtime))}
        # (kNN was uncentred before format 3; the first format kept its settings at the top, as method_settings reads)
        legacy["probe_settings"] = (stored.get("probe_settings") or stored) | {"centre": False}
        return {"encoder_sha256": encoder_sha256, "measurements": measurements(stored | legacy),
                "embedding_dim": stored.get("embedding_dim")}
    return stored if stored.get("encoder_sha256") == encoder_sha256 else None


def _as_they_ran(stored: dict) -> dict:
    """A format 2 store as format 3: its kNN figures were measured on the features as they were (`centre`
    false), and now say so; nothing else changed."""
    entries = [e | {"settings": e["settings"] | {"centre": False}} if e["method"] == "knn" else e
               for e in stored.get("measurements", [])]
    return stored | {"format": FORMAT, "measurements": entries}


def check_store(run: Path) -> None:
    """Before any probing: RUN/probe.json and its lock file are absent or regular files (what `record_probe`
    replaces and locks)."""
    for name in (PROBE_FILE, LOCK_FILE):
        refuse_unless_file(Path(run) / name, "the probe store's file")


def record_probe(run: Path, probe: dict) -> dict:
    """Add a probe's measurements to RUN/probe.json (atomically, and under a lock: two probes of one run at
    once both keep their figures) and return the new store."""
    with file_lock(Path(run) / LOCK_FILE):
        store = merge(read_store(run, probe["encoder_sha256"]), probe)
        write_text(Path(run) / PROBE_FILE, json.dumps(store, indent=2) + "\n")
    return store


def adopt(run: Path, encoder_sha256: str, source: dict) -> dict:
    """Copy the encoder-level measurements of `source` (the probe store of the run a frozen cluster run was
    trained from: the same encoder) into RUN/probe.json under this run's digest, so that they are not
    measured again; what depends on the run's own clusters (OWN_CLUSTERS) stays this run's. Returns the new store."""
    with file_lock(Path(run) / LOCK_FILE):
        own = read_store(run, encoder_sha256)
        entries = [e for e in source["measurements"] if e["method"] not in OWN_CLUSTERS]
        kept = [e for e in (own or {}).get("measurements", []) if _key(e) not in {_key(x) for x in entries}]
        store = {"format": FORMAT, "run": str(run), "encoder_sha256": encoder_sha256,
                 "embedding_dim": source.get("embedding_dim"), "measurements": entries + kept}
        write_text(Path(run) / PROBE_FILE, json.dumps(store, indent=2) + "\n")
    return store
