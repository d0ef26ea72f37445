"""Which label-free criterion should the clustering stage's guard use? A diagnostic, not a benchmark.

    python scripts/guard_criteria.py dump OUT.npz cluster --run R --out R-cluster --device cpu --force
    python scripts/guard_criteria.py score A.npz B.npz ...

`dump` runs `unsuprnn cluster` with the given arguments and, where the stage reaches its guard, saves the
training images' embeddings (clean, and two augmented views drawn by the run's own augmentation), the
candidates (the head's clusters, UMAP's grouping) and the training labels. `score` adds k-means, then scores
each candidate with the labels (Hungarian accuracy) and by its modularity on three kNN graphs, none of which
uses labels: `clean` (the guard's: clean embeddings' neighbours), `cross` (each image linked to the clean
embeddings nearest its augmented view), `aug` (augmented views' neighbours among themselves); and prints what
a guard on each graph would keep (the head, unless another beats it by more than MARGIN).
"""

from __future__ import annotations

import sys

import numpy as np
import torch


def dump(out: str, argv: list[str]) -> None:
    import unsuprnn.cluster.stage as stage
    from unsuprnn.cli import main
    from unsuprnn.evaluate.embed import embed_images
    from unsuprnn.models.heads import confident_clusters
    real = stage.guarded_head

    def recorded(t, head):
        z = embed_images(t.encoder, t.pipeline, t.ds.images, t.device, indices=t.train_idx)
        ids, _ = confident_clusters(head.eval()(z.to(t.device)).cpu())
        gen = torch.Generator(device=t.device).manual_seed(123)
        views = []
        t.encoder.eval()
        with torch.no_grad():
            for _ in range(2):
                views.append(torch.cat([t.encoder(t.pipeline.augmented(
                    t.ds.images[t.train_idx[s:s + 512]].to(t.device), gen)).float().cpu()
                    for s in range(0, len(t.train_idx), 512)]).numpy())
        np.savez(out, z=z.numpy(), head=ids.numpy(), umap=t.seed_ids.numpy(), aug0=views[0], aug1=views[1],
                 labels=t.ds.labels[t.train_idx].numpy())
        return real(t, head)

    stage.guarded_head = recorded
    sys.argv = ["unsuprnn", *argv]
    main()


def cross_graph(query: torch.Tensor, bank: torch.Tensor, neighbors: int = 10):
    """Image i linked to the `neighbors` bank points nearest query i, i itself left out; symmetric 0/1."""
    import scipy.sparse as sp

    from unsuprnn.evaluate.knn import knn_search
    n = len(bank)
    _, idx = knn_search(query, bank, neighbors + 1)
    rows, cols = [], []
    for i, found in enumerate(idx.numpy()):
        kept = [j for j in found if j != i][:neighbors]
        rows += [i] * len(kept)
        cols += kept
    w = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return ((w + w.T) > 0).astype(np.float64)


def score(paths: list[str]) -> None:
    from unsuprnn.cluster.guard import MARGIN
    from unsuprnn.evaluate.kmeans import default_restarts, kmeans, knn_graph, modularity
    from unsuprnn.evaluate.metrics import clustering_metrics

    def unit(a):
        return torch.nn.functional.normalize(torch.as_tensor(a).float(), dim=1)

    for path in paths:
        d = np.load(path)
        z, aug0, aug1, y = unit(d["z"]), unit(d["aug0"]), unit(d["aug1"]), d["labels"]
        k = len(np.unique(y))
        candidates = {"head": d["head"], "umap": d["umap"],
                      "kmeans": np.asarray(kmeans(z, k, seed=0, restarts=default_restarts(len(z)))[0])}
        graphs = {"clean": knn_graph(z), "cross": cross_graph(aug0, z), "aug": knn_graph(aug0)}
        q = {g: {c: modularity(w, ids) for c, ids in candidates.items()} for g, w in graphs.items()}
        acc = {c: clustering_metrics(y, ids)["accuracy"] for c, ids in candidates.items()}
        print(f"== {path} (K={k}, {len(z)} training images)")
        print("candidate   acc  " + "  ".join(f"{g:>6}" for g in graphs))
        for c in candidates:
            print(f"{c:9} {acc[c]:6.2f}  " + "  ".join(f"{q[g][c]:6.3f}" for g in graphs))
        for g in graphs:
            best = max(q[g], key=q[g].get)
            kept = best if q[g][best] > q[g]["head"] + MARGIN else "head"
            print(f"a guard on {g:5} keeps {kept} ({acc[kept]:.2f})")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "dump":
        dump(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) > 2 and sys.argv[1] == "score":
        score(sys.argv[2:])
    else:
        sys.exit(__doc__)
