"""The one cache root: ``$RAITNER_CACHE``, else ``$XDG_CACHE_HOME/raitner-hub`` (``~/.cache/raitner-hub``).

Each kind of cached thing has its own sub-folder (``embeddings/``, ``teacher/``, ``tiktoken/``), so one
variable moves, and one ``rm -rf`` clears, everything raitner-hub keeps between runs.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "RAITNER_CACHE"
FOLDER_NAME = "raitner-hub"


def cache_root() -> Path:
    """Where raitner-hub caches live (read at call time, so tests and users can set the variable late)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / FOLDER_NAME


def cache_dir(kind: str) -> Path:
    """The sub-folder for one kind of cache, e.g. ``cache_dir("embeddings")`` (not created here)."""
    return cache_root() / kind
