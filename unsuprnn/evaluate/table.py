"""The probe's comparison table: one row per feature set, one column per score of each probe method
(and a cluster run's head), as plain text; `cell_text` is shared with the report."""

from __future__ import annotations

from .methods import METHOD_NAMES, method

HEAD_COLUMNS = [("head K", ("head", "k")), ("head conf.", ("head", "mean_confidence")), ("head NMI", ("head", "nmi")),
                ("head ARI", ("head", "ari")), ("head acc", ("head", "accuracy"))]
UNRANKED = {("head", "k"), ("head", "mean_confidence"), ("kmeans", "k_auto"), ("hdbscan", "clusters"),
            ("hdbscan", "noise")}  # what a head is, not how good it is: never marked best


def method_columns() -> list[tuple[str, tuple[str, str]]]:
    """(title, (method, result key)) of every probe method's columns, in table order."""
    return [(title, (name, key)) for name in METHOD_NAMES for title, key in method(name).COLUMNS]


def columns(reports: list[dict]) -> list[tuple[str, tuple[str, str]]]:
    """The table's columns: each probe method's and a cluster head's, where any row has a figure."""
    results = [res for r in reports for res in r["results"].values()]
    cols = method_columns() + HEAD_COLUMNS
    # a column only where some row has a figure: no head columns without a cluster run, no top-5 with <= 5 classes
    return [c for c in cols if any(res.get(c[1][0], {}).get(c[1][1]) is not None for res in results)]


def cell_text(result: dict, method_name: str, key: str) -> str:
    """One table cell: the figure (NMI and ARI to 3 places, percentages to 2) and, for k-means, ± the
    standard deviation over restarts; '-' where it was not measured."""
    v = result.get(method_name, {}).get(key)
    fmt = {"nmi": lambda x: f"{x:.3f}", "ari": lambda x: f"{x:.3f}", "mean_confidence": lambda x: f"{x:.3f}",
           "k": lambda x: f"{x:d}", "k_auto": lambda x: f"{x:d}", "clusters": lambda x: f"{x:d}"}.get(
        key, lambda x: f"{x:.2f}")
    spread = result.get(method_name, {}).get("spread", {}).get(key)
    return "-" if v is None else fmt(v) + (f" ±{fmt(spread['std'])}" if spread else "")


def row_label(name: str, result: dict) -> str:
    """A feature set's name in the table, with its size where the data chose it (PCA: `pca (28 dims)`)."""
    dim = next((r["dim"] for r in result.values() if isinstance(r, dict) and "dim" in r), None)
    return name if dim is None else f"{name} ({dim} dims)"


def summary_rows(report: dict, cols: list | None = None) -> list[tuple[str, list[str]]]:
    return [(row_label(name, res), [cell_text(res, m, key) for _, (m, key) in cols or columns([report])])
            for name, res in report["results"].items()]


def format_table(report: dict) -> str:
    """Plain-text comparison table: one row per feature set, one column per score (k-means: the
    restart with the lowest objective, ± the standard deviation over restarts)."""
    if not columns([report]):
        return "nothing was measured (see below)" if report.get("notes") else "nothing was measured"
    header = ["features"] + [c for c, _ in columns([report])]
    rows = [[n] + c for n, c in summary_rows(report)]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])
