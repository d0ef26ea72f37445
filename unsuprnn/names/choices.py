"""The fixed lists of words that settings take, declared once: the config offers them (config.py) and the code
that acts on them reads the same names (tests/test_contracts.py builds every one)."""

VIEWS = ("rows", "columns", "patches", "snake")                 # data/views.py
INTENSITIES = ("keep", "standardize", "canonical")               # data/pipeline.py
CELLS = ("lstm", "gru", "rnn")                                   # torch.nn's LSTM, GRU and RNN
POOLS = ("last", "mean", "max", "meanmax")                       # how steps become one embedding
STACKS = ("joint", "separate")                                   # models/encoders/rnn.py
# precision setting -> what Lightning Fabric is given (devices.py; auto: bf16 on a GPU that has it)
PRECISIONS = {"auto": "32-true", "32": "32-true", "32-true": "32-true", "bf16-mixed": "bf16-mixed",
              "16-mixed": "16-mixed"}
