"""unsuprnn: unsupervised representation learning with recurrent encoders over image sequences."""

import time

__version__ = "0.1.0"
STARTED = time.monotonic()  # when the process began its work: a --budget counts from here
