"""Notes on what the tool did to a user's images, and on a set it can train on but not score, said where the
images are read (`data`, `pretrain`), recorded in meta.json (`data_notes`) and shown by the report."""

from __future__ import annotations

from .images import Images


def data_notes(ds: Images) -> list[str]:
    """One sentence per kind of change loading made to the images (a folder's: resized, grey copied to three
    channels, colour made grey, alpha dropped), and one where the labels hold a single class."""
    c, out = ds.changes, []
    if "resize_auto" in c:
        h, w = c["resize_auto"]["from"]
        to = c["resize_auto"]["to"]
        out.append(f"images of {h}x{w} px resized to {to}x{to} (--resize auto: larger images train slowly and read no "
                   "better; --resize none keeps them)")
    if "resized" in c:
        r = c["resized"]
        w, h = r["smallest"]
        out.append(f"{r['count']} image(s) resized to {r['to']}x{r['to']} (--resize), {r['enlarged']} of them "
                   f"enlarged; the smallest was {w}x{h}, enlarged {r['largest_factor']:g}x")
    if "grey_to_rgb" in c:
        out.append(f"{c['grey_to_rgb']} greyscale image(s) copied to three channels (the folder's first image is "
                   "in colour; --grayscale reads every image as grey)")
    if "colour_to_grey" in c:
        out.append(f"{c['colour_to_grey']} colour image(s) made grey (the folder's first image is grey, or "
                   "--grayscale)")
    if "alpha_dropped" in c:
        out.append(f"{c['alpha_dropped']} image(s) had an alpha (transparency) channel, dropped: transparent pixels "
                   "read as their stored colour")
    known = ds.labels[ds.labels >= 0]
    if len(known) and len(known.unique()) == 1:
        out.append(f"one class ('{ds.classes[int(known[0])]}'): the encoder trains and clusters still run, but kNN, "
                   "the linear probe and cluster accuracy need two or more classes and are not measured")
    return out
