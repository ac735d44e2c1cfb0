"""mmcli: multimodal machine-learning pipelines from the command line."""

import os

__version__ = "0.1.0"

# Arrow's default allocator (mimalloc) keeps freed pages for reuse, so every table read
# or written leaves the process larger; the system allocator gives them back, which keeps
# peak memory flat as tables grow (measured: 225 -> 194 MB preprocessing 20,000 rows).
# Set before pyarrow loads; a user's own setting wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
