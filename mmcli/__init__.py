"""mmcli: multimodal machine-learning pipelines from the command line."""

import os

__version__ = "0.1.0"

# Arrow's default allocator (mimalloc) keeps freed pages for reuse, so every table read
# or written leaves the process larger; the system allocator gives them back, which keeps
# peak memory flat as tables grow (measured: 225 -> 194 MB preprocessing 20,000 rows).
# Set before pyarrow loads; a user's own setting wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

# OpenMP threads (torch's intra-op pool) spin while they wait for the next parallel
# region. Beside a process that holds a core, that spinning takes CPU from it and from our
# own threads. Passive waiting puts idle threads to sleep at once: e2e training beside two
# busy processes on 2 cores used 18 s of CPU against 35 s with spinning threads, for 17 s
# against 15 s of wall on a quiet machine (benchmarks/contention.py; heads train on one
# thread, stages/train.py). Set before torch loads; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
