"""The local Hub cache: offline mode, and the revision -> commit refs that let a pinned pull load offline.

huggingface_hub keeps ``refs/<revision>`` files next to its snapshots; pulls pinned to a commit sha do
not write them, so :mod:`raitner_hub.hub` records them (``remember_ref``) and resolves a revision from them
when ``HF_HUB_OFFLINE=1`` (``cached_revision``).
"""

from __future__ import annotations

import os
from pathlib import Path

from raitner_hub.errors import HubError


def offline() -> bool:
    """``HF_HUB_OFFLINE=1``: every read comes from the local cache, no request is made (as huggingface_hub)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def cached_revision(
    repo_id: str, repo_type: str = "dataset", revision: str | None = None, cache_dir: str | os.PathLike | None = None
) -> str | None:
    """The commit sha the local cache holds for ``revision`` (a sha is itself), or None if it holds none."""
    from huggingface_hub import constants

    folder = Path(cache_dir or constants.HF_HUB_CACHE) / f"{repo_type}s--{repo_id.replace('/', '--')}"
    rev = revision or "main"
    if len(rev) == 40 and all(c in "0123456789abcdef" for c in rev):
        return rev if (folder / "snapshots" / rev).is_dir() else None
    ref = folder / "refs" / rev
    return ref.read_text(encoding="utf-8").strip() if ref.is_file() else None


def offline_error(repo_id: str, repo_type: str, revision: str | None) -> HubError:
    return HubError(
        f"HF_HUB_OFFLINE=1 and {repo_type} repo '{repo_id}'@{revision or 'main'} is not in the local "
        "cache: download it once online (or unset HF_HUB_OFFLINE)"
    )


def remember_ref(repo_id: str, repo_type: str, revision: str | None, sha: str, cache_dir) -> None:
    """Record ``revision -> sha`` in the cache's ``refs/`` as huggingface_hub does for a branch download.

    Pulls fetch by sha (pinned), which leaves ``refs/main`` unwritten; without it an offline run
    (``HF_HUB_OFFLINE=1``) could not tell which cached snapshot ``main`` is.
    """
    from huggingface_hub import constants

    rev = revision or "main"
    if rev == sha:
        return
    ref = Path(cache_dir or constants.HF_HUB_CACHE) / f"{repo_type}s--{repo_id.replace('/', '--')}" / "refs" / rev
    try:
        if not ref.is_file() or ref.read_text(encoding="utf-8").strip() != sha:
            ref.parent.mkdir(parents=True, exist_ok=True)
            ref.write_text(sha, encoding="utf-8")
    except OSError:  # a read-only cache: offline use then needs the sha, nothing else breaks
        pass
