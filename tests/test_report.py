"""The report reads in a minute (one table per dataset, references once, best marked, vs raw, legends,
provenance), and no probe or report loses a measured figure or an existing file."""

import base64
import io
import json
import re
from html.parser import HTMLParser

import pytest
from PIL import Image

from tests.conftest import copy_run, invoke, tiny_config
from unsuprnn.evaluate.probe_store import merge, view
from unsuprnn.train import train


@pytest.fixture(scope="module")
def runs(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("report_runs")
    copy_run(tiny_run("contrastive", epochs=2), root / "con")
    copy_run(tiny_run("autoencoder", epochs=1), root / "ae")
    copy_run(tiny_run("supervised", epochs=2), root / "sup")
    return root


class Page(HTMLParser):
    """Tables (rows of (class, text) cells, with each row's class), figures (a <figure> with its image, or a
    gallery <section> of thumbnails) and list items."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.figures, self.items, self._cell, self._li, self._in = [], [], [], None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append({"class": a.get("class", ""), "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append({"class": a.get("class", ""), "cells": []})
        elif tag in ("td", "th"):
            self._cell = [a.get("class", ""), ""]
        elif tag in ("figure", "section") and "data-kind" in a:
            self.figures.append({"kind": a["data-kind"], "legends": a["data-legends"].split("|"), "thumbs": 0,
                                 "gallery": tag == "section"})
            self._in = tag
        elif tag == "img" and self._in == "figure":
            self.figures[-1]["src"], self.figures[-1]["width"] = a["src"], int(a["width"])
        elif tag == "img" and self._in == "section":
            self.figures[-1]["thumbs"] += 1
            self.figures[-1].setdefault("thumb_width", int(a["width"]))
        elif tag == "li":
            self._li = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1]["rows"][-1]["cells"].append(tuple(self._cell))
            self._cell = None
        elif tag == "li":
            self.items.append(self._li)
            self._li = None
        elif tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        if self._li is not None:
            self._li += data


def number(text):
    m = re.match(r"\s*([-+]?\d+(\.\d+)?)", text)
    return float(m.group(1)) if m else None


def test_report_answers_are_my_embeddings_better_than_raw_pixels(runner, runs, tmp_path):
    r = invoke(runner, "report", runs / "con", runs / "ae", "--runs", runs / "sup", "--out", tmp_path / "r.html",
               "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "report: [1/3]" in r.stderr and "report: probing" in r.stderr and "\r" not in r.stderr
    page = Page((tmp_path / "r.html").read_text())
    comparison = [t for t in page.tables if t["class"] == "comparison"]
    assert len(comparison) == 1  # one dataset, one compact table
    header = [c[1] for c in comparison[0]["rows"][0]["cells"]]
    assert header == ["features", "kNN top-1", "linear top-1", "clusters: accuracy",
                      "vs raw pixels: kNN / linear / clusters"]
    body = comparison[0]["rows"][1:]
    labels = [row["cells"][0][1] for row in body]
    # each reference once, although every run measured its own raw, PCA, UMAP and random rows
    assert labels[:2] == ["con (contrastive)", "ae (autoencoder)"] and labels[2] == "raw pixels"
    assert re.fullmatch(r"PCA of raw pixels \(\d+ dims\)", labels[3]) and labels[4:] == [
        "UMAP of raw pixels", "random encoder", "sup (supervised)"]
    # the best label-free figure of every column is marked, and only it (recomputed from the cells)
    for j in (1, 2, 3):
        vals = [(number(row["cells"][j][1]), row["cells"][j][0] == "best", row["class"]) for row in body]
        ranked = [v for v, _, kind in vals if v is not None and kind != "kind-supervised"]
        for v, marked, kind in vals:
            assert marked == (kind != "kind-supervised" and v is not None and len(ranked) >= 2
                              and v >= max(ranked) - 1e-9), (header[j], vals)
    # "vs raw pixels": the encoder's kNN top-1 minus raw pixels', with its noise bound
    raw = next(row for row in body if row["cells"][0][1] == "raw pixels")
    con = body[0]
    diff = number(con["cells"][-1][1].split("/")[0])
    assert diff == pytest.approx(number(con["cells"][1][1]) - number(raw["cells"][1][1]), abs=0.051)
    assert re.match(r"[-+]\d+\.\d ±\d+\.\d / ", con["cells"][-1][1]) and raw["cells"][-1][1] == "-"
    # every figure of every probe method, in its own folded table
    details = [t for t in page.tables if t["class"] == "detail"]
    assert len(details) >= 4 and "kNN top-5" in [c[1] for c in details[0]["rows"][0]["cells"]]
    # a sentence per label-free run says where it stands against raw pixels
    said = [i for i in page.items if "against raw pixels" in i]
    assert len(said) == 2 and all(re.search(r"kNN .*(better|worse|within noise)", s) for s in said)
    # provenance: config, probe settings, versions and commit per run
    prov = next(t for t in page.tables if t["class"] == "provenance")
    text = " ".join(c[1] for row in prov["rows"] for c in row["cells"])
    assert all(w in text for w in ("lstm 1x16", "epochs", "knn: k=20", "torch", str(runs / "con")))
    # legends on every map, cluster colours matched to labels, figures sized to the page
    maps = [f for f in page.figures if f["kind"] == "embedding-map"]
    legend = "k-means of the UMAP layout, K = 10 (one per class)"
    assert len(maps) == 3 and all(f["legends"][0] == "label" and f["legends"][1] == legend for f in maps)
    kinds = [f["kind"] for f in page.figures]
    assert kinds.count("training") == 1 and kinds.count("confusion") == 3
    assert kinds.count("k-curve") == kinds.count("cluster-gallery") == kinds.count("outliers") == 3
    assert kinds.count("duplicates") == 3  # (said even where none were found)
    for f in page.figures:
        if f["gallery"]:  # thumbnails of 8 px digits, enlarged to 64 px
            assert f["kind"] == "duplicates" or (f["thumbs"] >= 8 and f["thumb_width"] == 64), f
            continue
        png = base64.b64decode(f["src"].split(",", 1)[1])
        width = Image.open(io.BytesIO(png)).size[0]
        assert width == f["width"] and width >= (1200 if f["kind"] in ("training", "embedding-map") else 600), f["kind"]
    training = next(f for f in page.figures if f["kind"] == "training")
    assert training["legends"].count("run") >= 2 and "run / reference" in training["legends"]


def test_training_figure_has_a_loss_panel_per_objective_and_reference_lines():
    from unsuprnn.report.figures import training_figure
    log = [{"epoch": 1, "loss": 5.0, "elapsed": 1.0, "knn_top1": 90.0}, {"epoch": 2, "loss": 4.0, "elapsed": 2.0}]
    ae = [{"epoch": 1, "loss": 0.8, "elapsed": 1.0}]
    fig = training_figure([{"name": "a", "objective": "contrastive", "log": log, "dim": 64},
                           {"name": "b", "objective": "autoencoder", "log": ae, "dim": 64}],
                          {"raw pixels": 95.0, "PCA": 94.0})
    assert fig.legends.count("run") == 2 and "run / reference" in fig.legends and fig.width == 1300


def test_confusion_matrix_is_row_normalised_with_accuracy_in_the_title(monkeypatch):
    import unsuprnn.report.figures as figs
    seen = {}
    real = figs._render

    def spy(fig):
        ax = fig.axes[0]
        seen["title"], seen["cells"] = fig.get_suptitle(), [t.get_text() for t in ax.texts]
        seen["ticks"] = [t.get_text() for t in ax.get_xticklabels()]
        seen["key"] = [t.get_text() for t in fig.texts if t.get_text().startswith("key")]
        return real(fig)
    monkeypatch.setattr(figs, "_render", spy)
    figs.confusion_figure([[8, 2], [1, 89]], ["a", "b"], "run")
    assert "accuracy 97.00% on 100 test images" in seen["title"]  # above the whole figure, colour bar too
    assert seen["cells"] == ["80", "20", "1", "99"]  # percent of each true class, not counts
    figs.confusion_figure([[8, 2], [1, 89]], ["hubble_deep_field", "b"], "run")
    assert seen["ticks"] == ["hubble_de.0", "b"] and seen["key"] == ["key: hubble_de.0 = hubble_deep_field"]


def test_markdown_report_and_no_overwrite_without_force(runner, runs, tmp_path):
    out = tmp_path / "r.md"
    r = invoke(runner, "report", runs / "con", "--out", out, "--device", "cpu")
    assert r.exit_code == 0, r.output
    md = out.read_text()
    assert "| con (contrastive) |" in md and "| raw pixels |" in md and "**" in md and "against raw pixels" in md
    figures = re.findall(r"\(r_files/(fig-[0-9a-f]+\.png)\)", md)
    assert figures and all((tmp_path / "r_files" / f).read_bytes()[:4] == b"\x89PNG" for f in figures)
    before = {p: p.read_bytes() for p in [out, *sorted((tmp_path / "r_files").iterdir())]}
    for args in ([runs / "con", "--out", out], [runs / "con", "--out", tmp_path / "r.pdf"],
                 [runs / "con", tmp_path / "nothing", "--out", tmp_path / "new.html"]):
        r = invoke(runner, "report", *args, "--device", "cpu")
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert {p: p.read_bytes() for p in before} == before and not (tmp_path / "new.html").exists()
    assert "--force" in invoke(runner, "report", runs / "con", "--out", out).stderr
    r = invoke(runner, "report", runs / "con", "--out", out, "--force", "--device", "cpu")
    assert r.exit_code == 0 and "every measurement is in its probe.json" in r.stderr  # nothing probed again
    left = sorted(p.name for p in (tmp_path / "r_files").iterdir())
    assert left == sorted(set(re.findall(r"\(r_files/(fig-[0-9a-f]+\.png)\)", out.read_text())))


def test_a_narrower_probe_adds_to_the_earlier_measurements(runner, runs, tmp_path):
    import shutil
    run = tmp_path / "con"
    shutil.copytree(runs / "con", run)
    (run / "probe.json").unlink(missing_ok=True)
    r = invoke(runner, "probe", "--run", run, "--baselines", "raw,pca,umap,random", "--device", "cpu")
    assert r.exit_code == 0, r.output
    full = json.loads((run / "probe.json").read_text())
    assert set(full["results"]) == {"encoder", "raw", "pca", "umap", "random"}
    assert full["results"]["pca"]["knn"]["dim"] < 64  # the components that explain 95% of the variance
    r = invoke(runner, "probe", "--run", run, "--method", "knn", "--device", "cpu")
    assert r.exit_code == 0 and "also keeps" in r.stderr
    after = json.loads((run / "probe.json").read_text())
    assert after["results"] == full["results"]  # the same kNN again, and nothing else lost
    # kNN with k=10: the table compares only what was measured with k=10; the k=20 figures are kept
    r = invoke(runner, "probe", "--run", run, "--method", "knn", "--k", "10", "--device", "cpu")
    k10 = json.loads((run / "probe.json").read_text())
    assert k10["k"] == 10 and "knn" in k10["results"]["encoder"] and "knn" not in k10["results"]["raw"]
    assert k10["results"]["raw"]["linear"] == full["results"]["raw"]["linear"]
    assert sum(e["features"] == "raw" and e["method"] == "knn" for e in k10["measurements"]) == 1
    # the report measures raw pixels at k=10 instead of mixing settings, and keeps every other figure
    r = invoke(runner, "report", run, "--out", tmp_path / "r.html", "--device", "cpu")
    assert "report: probing" in r.stderr and "knn;" in r.stderr and "linear" not in r.stderr.split("probing")[1]
    store = json.loads((run / "probe.json").read_text())
    assert {e["settings"].get("k") for e in store["measurements"] if e["features"] == "raw" and e["method"] == "knn"} \
        == {10, 20}
    back = view(store, "digits", "digits")  # back at k=20 (e.g. the next default probe): nothing to redo
    r = invoke(runner, "probe", "--run", run, "--method", "knn", "--device", "cpu")
    assert json.loads((run / "probe.json").read_text())["results"] == full["results"]
    assert back["k"] == 10


def _probe(digest, results, k=20):
    return {"run": "r", "bank": "digits", "queries": "digits", "bank_size": 10, "query_size": 5,
            "probe_settings": {"k": k, "temperature": 0.07, "index": "flat"}, "embedding_dim": 4, "encoder_sha256": digest,
            "sources": {}, "results": results}


def test_a_changed_encoder_invalidates_the_stored_measurements():
    first = merge(None, _probe("a", {"encoder": {"knn": {"weighted_top1": 50.0}}, "raw": {"knn": {"weighted_top1": 40.0}}}))
    same = merge(first, _probe("a", {"encoder": {"linear": {"accuracy": 60.0}}}))
    assert same["results"] == {"encoder": {"knn": {"weighted_top1": 50.0}, "linear": {"accuracy": 60.0}},
                               "raw": {"knn": {"weighted_top1": 40.0}}}
    changed = merge(same, _probe("b", {"encoder": {"linear": {"accuracy": 70.0}}}))
    assert changed["results"] == {"encoder": {"linear": {"accuracy": 70.0}}} and len(changed["measurements"]) == 1


def test_probe_json_and_grid_refuse_to_overwrite_without_force(runner, runs, tmp_path):
    target = tmp_path / "p.json"
    target.write_text("mine")
    r = invoke(runner, "probe", "--run", runs / "con", "--method", "knn", "--json", target, "--device", "cpu")
    assert r.exit_code == 2 and "--force" in r.stderr and target.read_text() == "mine"
    r = invoke(runner, "probe", "--run", runs / "con", "--method", "knn", "--json", target, "--force", "--device", "cpu")
    assert r.exit_code == 0 and json.loads(target.read_text())["results"]["encoder"]["knn"]
    grid = tmp_path / "g.png"
    grid.write_bytes(b"mine")
    r = invoke(runner, "data", "--grid", grid)
    assert r.exit_code == 2 and "--force" in r.stderr and grid.read_bytes() == b"mine"


def test_best_cells_rank_label_free_rows_and_mark_ties():
    from unsuprnn.report.tables import Row, best_cells, main_table, verdicts
    knn = lambda v: {"knn": {"weighted_top1": v}, "kmeans": {"accuracy": v / 2}}
    rows = [Row("a", "run", knn(90.0)), Row("b", "run", knn(95.0)), Row("raw pixels", "raw", knn(95.0)),
            Row("sup", "supervised", knn(99.0)), Row("c", "run", {})]
    cols = [("kNN top-1", ("knn", "weighted_top1")), ("cluster acc", ("kmeans", "accuracy")),
            ("linear top-1", ("linear", "accuracy"))]
    # the supervised reference is higher but not ranked; the tie between b and raw pixels marks both
    assert best_cells(rows, cols) == {(1, 0), (2, 0), (1, 1), (2, 1)}
    main = main_table(rows, 359)["rows"]  # differences from raw pixels, each with two standard errors
    assert main[0]["vs_raw"] == "-5.0 ±3.9 / - / -2.5 ±7.4" and main[2]["vs_raw"] == "-"
    assert [best for _, best in main[1]["cells"]] == [True, False, True]
    # 359 queries: 2 standard errors of a difference near 95% is about 3.2 points
    said = verdicts(rows, 359)
    assert len(said) == 2 and "kNN 90.00 vs 95.00 (-5.00, worse" in said[0] and "(+0.00, the same" in said[1]
    # a tie with no noise at all (every query right in both) is a tie, not "worse"
    perfect = [Row("a", "run", knn(100.0)), Row("raw pixels", "raw", knn(100.0))]
    assert "kNN 100.00 vs 100.00 (+0.00, the same; noise ±0.00)" in verdicts(perfect, 359)[0]


def test_the_reports_clusters_are_the_grouping_whose_accuracy_its_table_gives(runs, tmp_path):
    # the gallery and "what the clusters may follow" show k-means of the UMAP layout, as the table's k-means
    # column scores it; they once showed k-means of the embedding itself, a grouping the table never scored
    import torch
    from unsuprnn.config import ProbeSettings
    from unsuprnn.evaluate.metrics import clustering_metrics
    from unsuprnn.report.collect import collect, read_run_files
    copy_run(runs / "con", tmp_path / "con")
    info = collect(tmp_path / "con", read_run_files(tmp_path / "con"), torch.device("cpu"), ProbeSettings())
    analysis = info["analysis"]
    assert analysis["clusters_by"] == "k-means of the UMAP layout, K = 10 (one per class)"
    scored = info["probe"]["results"]["encoder"]["kmeans"]["accuracy"]
    assert clustering_metrics(info["labels"], analysis["ids"])["accuracy"] == pytest.approx(scored)


def test_report_of_an_unlabelled_run_scores_nothing_and_says_so(runner, tmp_path):
    import numpy as np
    from sklearn.datasets import load_digits
    np.savez(tmp_path / "u.npz", images=(load_digits().images[:300] * 16).clip(0, 255).astype(np.uint8))
    cfg = tiny_config("contrastive", epochs=1)
    cfg.data.dataset = f"npz:{tmp_path / 'u.npz'}"
    train(cfg, tmp_path / "run", quiet=True)
    r = invoke(runner, "report", tmp_path / "run", "--out", tmp_path / "r.html", "--device", "cpu")
    assert r.exit_code == 0, r.output
    page = Page((tmp_path / "r.html").read_text())
    assert "has no labels" in r.stderr and not (tmp_path / "run" / "probe.json").exists()
    # no labels: the map by k-means with the K chosen from the data, that K's curve, the clusters' images
    legends = [f["legends"] for f in page.figures if f["kind"] == "embedding-map"]
    assert len(legends) == 1
    assert re.fullmatch(r"k-means of the UMAP layout, K = \d+ \(chosen from the data\)", legends[0][0])
    assert {"k-curve", "cluster-gallery", "outliers"} <= {f["kind"] for f in page.figures}
    text = (tmp_path / "r.html").read_text()
    assert "no labels, so no accuracy can be scored" in text and "With labels" in text


def test_provenance_says_how_a_schedule_and_k_came_about():
    from unsuprnn.report.tables import schedule_notes
    meta = {"schedule": {"how": "budget", "budget": "5m", "steps": 636,
                         "intensity": "intensity auto: standardize (negatives 0.38, colour channels turned 0.94, ...)"},
            "resumed_at_epoch": 12}
    metrics = {"k_auto": 4, "k_chosen_by": "modularity", "k_searched": "2:15",
               "undertrained": {"why": "it trained 10 optimizer steps", "try": "--epochs 400"}}
    assert schedule_notes(meta, metrics) == ["--budget 5m (636 steps planned)", "intensity auto: standardize",
                                             "resumed at epoch 12",
                                             "K = 4 chosen by modularity over 2:15",
                                             "looks undertrained: it trained 10 optimizer steps"]
    assert schedule_notes({"schedule": {"how": "configured"}}, {"undertrained": None}) == []


def test_provenance_says_which_grouping_the_guard_kept_and_how_each_scored():
    from unsuprnn.report.tables import schedule_notes
    record = {"kept": "umap", "modularity": {"head": 0.5516, "umap": 0.5917, "kmeans": 0.5961},
              "accuracy": {"head": 52.26, "umap": 49.0, "kmeans": 48.5}}
    assert schedule_notes({}, {"guard": record}) == [
        "the guard kept k-means of the UMAP layout (modularity the SCAN head 0.552, k-means of the UMAP layout "
        "0.592, k-means 0.596); train accuracy, scored after the choice: the SCAN head 52.3, k-means of the UMAP "
        "layout 49.0, k-means 48.5"]
    del record["accuracy"]  # a run without labels, or one from before the guard scored its groupings
    assert schedule_notes({}, {"guard": record})[0].endswith("k-means 0.596)")
