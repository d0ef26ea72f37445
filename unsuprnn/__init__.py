"""unsuprnn: unsupervised representation learning with recurrent encoders over image sequences."""

__version__ = "0.1.0"
