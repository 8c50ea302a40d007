"""Local artefact folders are written atomically: all of it, or nothing.

Every command that produces a folder (a dataset repo layout, an index, an adapter, a report) builds it in
a hidden sibling staging folder and renames it into place only when everything, manifest included, is
written. A failure anywhere removes the staging folder and leaves any previous output untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from raitner_hub.errors import ConfigError


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``out``, on error it vanishes."""
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path exists and is not a folder: {out}")
    # Replacing a folder deletes it: never the working directory, the home folder, one holding either, or a
    # git checkout (an ``--out .`` or ``--out ~`` typo must not wipe them).
    protected = (Path.cwd().resolve(), Path.home().resolve())
    if out.exists() and (any(out == p or out in p.parents for p in protected) or (out / ".git").exists()):
        raise ConfigError(
            f"refusing to replace {out}: it is the working directory, a home folder or a git "
            "checkout (or holds one); choose a new --out folder"
        )
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"output folder is not empty: {out} (use --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    backup = None
    if out.exists():
        backup = out.with_name(f".{out.name}.old-{os.getpid()}")
        shutil.rmtree(backup, ignore_errors=True)
        out.rename(backup)
    staging.rename(out)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
