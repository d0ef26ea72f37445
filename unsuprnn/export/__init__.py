"""Export embeddings with labels, sample indices, split, file paths (folder datasets), cluster ids (k-means
with K given or chosen, HDBSCAN, or a cluster run's head with its confidence), outlier scores and
near-duplicates, and the run's config hash: gather.py builds the columns, files.py writes and reads .npz,
.npy, .parquet and .csv, clients.py lightly's CSV and TensorBoard's projector folder."""

from .files import FORMAT_NAMES, FORMATS, check_target, read_embeddings, write_embeddings
from .gather import DIAGNOSE_MAX, LazyEmbeddings, gather_embeddings, parse_cluster

__all__ = ["DIAGNOSE_MAX", "FORMATS", "FORMAT_NAMES", "LazyEmbeddings", "check_target", "gather_embeddings",
           "parse_cluster", "read_embeddings", "write_embeddings"]
