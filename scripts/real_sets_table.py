"""The table of scripts/real_sets.sh's runs (RESULTS.md, "Images nobody here generated"): per set and variant,
kNN top-1, k-means accuracy (of the UMAP layout, the probe's default), the clustering stage's accuracy, each
beside raw pixels (and UMAP of raw pixels), and the share of test images whose mirrored copy lands in another
cluster of the stage.

    python scripts/real_sets_table.py runs/real
"""

import json
import sys
from pathlib import Path


def row(probe: Path) -> str:
    res = json.loads(probe.read_text())["results"]
    enc, raw, umap = res["encoder"], res["raw"], res["umap"]
    knn = lambda r: r.get("knn", {}).get("weighted_top1")
    km = lambda r: r.get("kmeans", {}).get("accuracy")
    fmt = lambda v: "-" if v is None else f"{v:.1f}"
    stage = enc.get("head", {}).get("accuracy")
    mirror = enc.get("consistency", {}).get("mirror", {}).get("split")
    name, variant, *seed = probe.name.removesuffix(".probe.json").split("-")  # NAME-VARIANT[-sSEED]
    return (f"| {name} | {variant} | {seed[0][1:] if seed else 0} | {fmt(knn(enc))} / {fmt(knn(raw))} | {fmt(km(enc))} / {fmt(km(raw))} / "
            f"{fmt(km(umap))} | {fmt(stage)} | {fmt(mirror)}% |")


if __name__ == "__main__":
    print("| set | variant | seed | kNN enc / raw | k-means enc / raw / UMAP-raw | stage | mirror split |")
    print("|---|---|---|---|---|---|---|")
    for p in sorted(Path(sys.argv[1]).glob("*.probe.json")):
        print(row(p))
