"""The clustering analysis's figures (report/analysis.py computes what they show): the number of clusters
the data chooses (a plot), and, as galleries of thumbnails with text captions, each cluster's typical and least
typical images, the odd ones out and the near-copies."""

from __future__ import annotations

import dataclasses

import numpy as np

from .figures import PAGE_INCHES, Figure, _plt, _render

GALLERY_STRIP = 8      # images per strip: the most and the least typical of each cluster
GALLERY_CLUSTERS = 30  # clusters shown, largest first


def k_curve_figure(analysis: dict, n_classes: int, title: str) -> Figure:
    """Modularity of the k-means partition into K clusters on the kNN graph, against K, for the embeddings
    and for raw pixels, each with its chosen K marked (and the number of classes, where labels give one)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(PAGE_INCHES * 0.6, 3.6), layout="constrained")
    for name, curve, k, colour in (("encoder", analysis["k_curve"], analysis["k_auto"], "tab:blue"),
                                   ("raw pixels", analysis["raw_k_curve"], analysis["raw_k_auto"], "tab:grey")):
        ks = sorted(curve)
        ax.plot(ks, [curve[i] for i in ks], marker=".", color=colour, label=f"{name}: K = {k}")
        ax.plot([k], [curve[k]], marker="o", ms=11, mfc="none", mec=colour, mew=2)
    if n_classes >= 2:
        ax.axvline(n_classes, color="green", ls="--", lw=0.8, label=f"classes: {n_classes}")
    ax.set(xlabel="K (number of k-means clusters)", ylabel="modularity on the kNN graph",
           title=f"{title}: the number of clusters chosen from the test embeddings (circled)")
    ax.set_xticks(sorted(analysis["k_curve"]))
    ax.legend(title="chosen K", fontsize=9, frameon=False)
    return _render(fig)


@dataclasses.dataclass
class Gallery:
    """Images shown as a page of thumbnails, each group with its caption in text (HTML: above its images, never
    over them; Markdown: a line, then a strip of the group's images as one PNG)."""
    groups: list[dict]      # {"caption": str, "strips": [(title, [uint8 [C, H, W] images], [captions])]}
    legends: list[str] = dataclasses.field(default_factory=list)


def _major(labels: np.ndarray, classes: list[str]) -> tuple[str, float] | None:
    known = labels >= 0
    if not known.any():
        return None
    counts = np.bincount(labels[known])
    major = int(counts.argmax())
    return (classes[major] if major < len(classes) else str(major)), 100 * counts[major] / known.sum()


def cluster_gallery(images: np.ndarray, analysis: dict, labels: np.ndarray, classes: list[str],
                    title: str) -> Gallery:
    """One group per cluster (largest first): its size, mean score (the head's confidence or the silhouette),
    where labels exist its majority label and purity and the label the map matches it to, its most typical
    images and its least typical ones. images: uint8 [N, C, H, W]; labels: [N] (-1 = unknown)."""
    from .figures import matched_colours
    shown, what = analysis["summary"][:GALLERY_CLUSTERS], analysis["score_name"]
    ids = analysis["ids"]
    known = (labels >= 0) & (ids >= 0)
    match = matched_colours(ids[known], labels[known]) if known.any() and len(classes) > 1 else {}
    groups = []
    for c in shown:
        idx = np.flatnonzero(ids == c["cluster"])
        caption = f"cluster {c['cluster']}: {c['size']} images, mean {what} {c['score']:.2f}"
        major = _major(labels[idx], classes)
        if major is not None:
            caption += f"; majority '{major[0]}', purity {major[1]:.0f}%"
            matched = match.get(int(c["cluster"]))
            if matched is not None and matched < len(classes) and classes[matched] != major[0]:
                caption += f"; the map matches it to '{classes[matched]}' (one label per cluster, Hungarian)"
        atypical = [i for i in c["atypical"] if i not in c["typical"]]
        groups.append({"caption": caption, "strips": [
            (f"most typical (highest {what})", [images[i] for i in c["typical"][:GALLERY_STRIP]], []),
            (f"least typical (lowest {what})", [images[i] for i in atypical[:GALLERY_STRIP]], [])]})
    return Gallery(groups, [f"{title}: clusters of the test split ({analysis['clusters_by']})"])


def consistency_gallery(images: np.ndarray, moved: dict, title: str, augment=None) -> Gallery:
    """For each transformation, test images whose transformed copy fell in another cluster: each beside its copy;
    the caption names the flag that trains the encoder to ignore it, or says the run's views (`augment`, its
    AugmentConfig) already did."""
    from ..data.invariance import TRANSFORMS, flag_setting, trains_with
    import torch
    groups = []
    for name, v in moved.items():
        if not v["examples"]:
            continue
        transform = TRANSFORMS[name][0]
        strips = [(f"test image #{i} and its copy", [images[i], transform(torch.from_numpy(images[i][None]))[0].numpy()],
                   []) for i in v["examples"]]
        if augment is not None and trains_with(v["flag"], augment):
            key = flag_setting(v["flag"])
            advice = f"; the run's views already train with it (augment.{key}: {getattr(augment, key)})"
        else:
            advice = f"; {v['flag']} makes the encoder ignore it" if v["flag"] else ""
        groups.append({"caption": f"{name}: {v['split']:.1f}% of the test images land in another cluster than "
                                  f"their copy" + advice,
                       "strips": strips})
    return Gallery(groups, [title])


def outlier_gallery(images: np.ndarray, analysis: dict, title: str) -> Gallery:
    """The test images with the highest outlier scores, oddest first, each captioned with its test position and
    score."""
    shown = analysis["outliers"]
    return Gallery([{"caption": "the odd ones out: test position and outlier score (one less the mean similarity "
                                "to the nearest neighbours), oddest first",
                     "strips": [("", [images[i] for i in shown], [f"#{i}: {analysis['outlier'][i]:.3f}"
                                                                   for i in shown])]}], [title])


def duplicates_gallery(images: np.ndarray, analysis: dict, title: str) -> Gallery:
    """Near-duplicate pairs, each pair side by side (the earlier image first) with its cosine similarity; or the
    line that none were found at the threshold."""
    pairs, threshold = analysis["pairs"], analysis.get("duplicate_threshold", 0.995)
    if not pairs:
        return Gallery([{"caption": f"no near-duplicates found in the test split (cosine similarity of centred "
                                    f"embeddings at or above {threshold}, or a checked pixel match)", "strips": []}],
                       [title])
    return Gallery([{"caption": f"{analysis['pair_count']} near-duplicate pair(s) in the test split (threshold "
                                f"{threshold}); the earlier image first",
                     "strips": [(f"#{j} = #{i}, cosine {sim:.3f}", [images[j], images[i]], [])
                                for i, j, sim in pairs]}], [title])
