"""What is checked before any Hub call: repo ids, names meant as paths, folders fit to publish, the files a push sends.

Pure checks (no network), used by :mod:`raitner_hub.hub` (which re-exports them) and the stages.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from raitner_hub.errors import HubError
from raitner_hub.hub_errors import one_line

_TEXT_SUFFIXES = {".md", ".json", ".yaml", ".yml", ".txt", ".py", ".jinja", ".cfg", ".toml", ".csv", ".jsonl"}


def validate_repo_id(repo_id: str, *, namespaced: bool = False) -> str:
    """Check a repo id with the Hub's own rules; ``namespaced`` also requires ``owner/name``.

    Example:
        >>> validate_repo_id("me/sky-ner-it")
        'me/sky-ner-it'
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id as hf_validate

    try:
        hf_validate(repo_id)
    except HFValidationError as exc:
        raise HubError(f"invalid repo id '{repo_id}': {one_line(exc)}") from None
    if namespaced and "/" not in repo_id:
        raise HubError(f"invalid repo id '{repo_id}': expected 'owner/name', e.g. me/{repo_id}")
    return repo_id


def check_redistributable(folder: str | os.PathLike, *, private: bool, repo_id: str) -> None:
    """Refuse a public push of data whose manifest says it may not be redistributed."""
    manifest_path = Path(folder) / "manifest.json"
    if not manifest_path.is_file():
        return
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HubError(f"{manifest_path}: not valid JSON ({exc})") from None
    if isinstance(manifest, dict) and manifest.get("redistributable") is False and not private:
        note = manifest.get("license_note") or "its license forbids redistribution"
        raise HubError(
            f"refusing a public push of {Path(folder).name} to '{repo_id}': {note}; "
            "use --private (private=True) to keep it in a private repo"
        )


def check_no_token(files: dict[str, Path]) -> None:
    """Never upload a file that contains the Hub token (a card or manifest that captured it by mistake):
    ``HF_TOKEN``, ``--token`` or the token ``hf auth login`` saved."""
    from raitner_hub.hub_errors import known_tokens

    needles = [token.encode() for token in known_tokens()]
    if not needles:
        return
    for path_in_repo, path in files.items():
        if path.suffix.lower() in _TEXT_SUFFIXES and path.stat().st_size < 20_000_000:
            data = path.read_bytes()
            if any(needle in data for needle in needles):
                raise HubError(
                    f"refusing to push: {path_in_repo} contains the Hub token (HF_TOKEN or the "
                    "`hf auth login` token); remove it first"
                )


# Names ending like a data file are paths, even when missing (never a Hub id like "me/data.jsonl").
DATA_SUFFIXES = (
    ".jsonl",
    ".json",
    ".parquet",
    ".txt",
    ".csv",
    ".tsv",
    ".arrow",
    ".yaml",
    ".yml",
    ".jinja",
    ".safetensors",
    ".bin",
    ".conll",
    ".bio",
)


@dataclass(frozen=True)
class Source:
    """What a user-given name resolved to: a local file/folder, or a Hub repo pinned to a commit.

    ``path`` is the local file/folder (a Hub download once fetched; None when only the sha was resolved);
    ``ref`` is ``repo@sha`` for a Hub source and None for a local one.
    """

    name: str
    path: Path | None
    repo_id: str | None = None
    revision: str | None = None
    sha: str | None = None

    @property
    def is_local(self) -> bool:
        return self.repo_id is None

    @property
    def ref(self) -> str | None:
        return f"{self.repo_id}@{self.sha}" if self.repo_id and self.sha else None


def looks_like_path(name: str | os.PathLike) -> bool:
    """Whether ``name`` is meant as a local path (so a missing one is an error, never a Hub lookup)."""
    text = os.fspath(name)
    if text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1:
        return True
    if text.lower().endswith(DATA_SUFFIXES):
        return True
    return os.sep in text and Path(text.split(os.sep)[0]).exists()


# ---- the local side of a push: which files it sends, and whether a remote file already holds one ----


# Folders never uploaded: huggingface_hub's local-dir metadata, VCS and bytecode caches.
_SKIP_PARTS = {".cache", ".git", "__pycache__", ".ipynb_checkpoints"}


def local_files(folder: Path, allow_patterns, ignore_patterns, path_in_repo: str) -> dict[str, Path]:
    from huggingface_hub.utils import filter_repo_objects

    rel_paths = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not _SKIP_PARTS.intersection(p.relative_to(folder).parts)
    )
    rel_paths = list(filter_repo_objects(rel_paths, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns))
    prefix = f"{path_in_repo.strip('/')}/" if path_in_repo.strip("/") else ""
    return {prefix + rel: folder / rel for rel in rel_paths}


def file_ids(path: Path) -> tuple[str, str]:
    """(git blob sha1, sha256): the ids the Hub reports for regular and LFS files."""
    sha1, sha256 = hashlib.sha1(), hashlib.sha256()
    sha1.update(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            sha1.update(block)
            sha256.update(block)
    return sha1.hexdigest(), sha256.hexdigest()


def unchanged(local: Path, remote) -> bool:
    if remote.size != local.stat().st_size:
        return False
    blob_sha1, sha256 = file_ids(local)
    return remote.lfs.sha256 == sha256 if remote.lfs is not None else remote.blob_id == blob_sha1


def in_scope(path: str, path_in_repo: str, allow_patterns, ignore_patterns) -> bool:
    """Whether a remote file belongs to what this push mirrors (so it may be deleted)."""
    prefix = f"{path_in_repo.strip('/')}/" if path_in_repo.strip("/") else ""
    if path == ".gitattributes" or not path.startswith(prefix):
        return False
    from huggingface_hub.utils import filter_repo_objects

    # The same pattern semantics as the local file list (_local_files), e.g. for "dir/" patterns.
    rel = path[len(prefix) :]
    return bool(list(filter_repo_objects([rel], allow_patterns=allow_patterns, ignore_patterns=ignore_patterns)))
