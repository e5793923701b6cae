"""Suite-wide settings: one torch thread per pytest-xdist worker.

`make test` runs two workers on two cores; each torch using two OpenMP threads would put four
spinning threads on two cores, which slows every test several-fold.
"""

from __future__ import annotations

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by subprocesses (torchrun, CLI)
