"""Run manifests: what produced an artefact, recorded next to it (``manifest.json``).

Every artefact folder carries one: package and library versions, git revision of the checkout if any,
seeds, template/strategy names, inputs as ``repo@revision`` or ``path#sha256``, counts and wall time.
Secrets never enter: values are copied from the caller's explicit ``settings``, and any key that looks
like a credential is refused.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import time
from pathlib import Path
from typing import Any

_LIBRARIES = (
    "torch",
    "transformers",
    "datasets",
    "huggingface_hub",
    "peft",
    "trl",
    "accelerate",
    "sentence-transformers",
    "faiss-cpu",
    "rank-bm25",
    "jieba",
)
# Credential keys by exact name (case and -/_ insensitive). Not substrings: "max_new_tokens" and "eos_token"
# are settings, and a substring rule hid them from manifests and adapter cards.
SECRET_KEYS = frozenset(
    {
        "token",
        "hf_token",
        "hub_token",
        "push_to_hub_token",
        "use_auth_token",
        "auth_token",
        "access_token",
        "api_key",
        "apikey",
        "openai_api_key",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "secret_key",
    }
)


def is_secret_key(key: object) -> bool:
    """Whether a settings key names a credential (``hf_token``, ``api_key``...), by exact name."""
    return str(key).lower().replace("-", "_") in SECRET_KEYS


def library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def git_revision() -> str | None:
    """The checkout's commit (with ``-dirty`` when modified), or None outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def input_fingerprint(path: str | os.PathLike) -> str:
    """``sha256`` of a file, or of a folder's files (relative paths + contents, sorted)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts):
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file_sha256(file).encode())
    return digest.hexdigest()


# An absolute local path inside free text: "/" or "~/" not preceded by a word character, ".", ":" or "/"
# (so "me/repo", "./rel", "http://host/x" and "a/b" are left alone).
_ABS_PATH_RE = re.compile(r"(?<![\w.:/~-])(?:~(?=/)|/(?=[^\s/]))[^\s'\"`()\[\]<>{},;|]*")


def public_path(path: str) -> str:
    """A local path as it may be published: relative when under the working directory, else its basename
    (``<local>`` when it has none). The user's home and filesystem layout never reach a card or manifest."""
    expanded = Path(os.path.expanduser(path))
    try:
        relative = expanded.resolve().relative_to(Path.cwd().resolve())
        return relative.as_posix() if str(relative) != "." else "."
    except (ValueError, OSError):
        return expanded.name or "<local>"


def scrub_paths(obj: Any) -> Any:
    """``obj`` (str, or dicts/lists of them) with every absolute local path replaced by :func:`public_path`.

    The one scrubber for everything published: manifests (:func:`build_manifest`), cards
    (:mod:`raitner_hub.cards`) and report files.
    """
    if isinstance(obj, str):
        return _ABS_PATH_RE.sub(lambda m: public_path(m.group(0)), obj)
    if isinstance(obj, os.PathLike):
        return scrub_paths(os.fspath(obj))
    if isinstance(obj, dict):
        return {key: scrub_paths(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub_paths(item) for item in obj]
    return obj


def _redacted(obj: Any, tokens: list[str] | None = None) -> Any:
    """``obj`` with every Hub token this process knows (HF_TOKEN, --token, `hf auth login`) replaced by ***."""
    if tokens is None:
        from raitner_hub.hub_errors import known_tokens

        tokens = known_tokens()
    if isinstance(obj, str):
        for token in tokens:
            obj = obj.replace(token, "***")
        return obj
    if isinstance(obj, dict):
        return {key: _redacted(value, tokens) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_redacted(item, tokens) for item in obj]
    return obj


def _check_no_secrets(obj: Any, where: str = "") -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if is_secret_key(key) and value not in (None, False):
                raise ValueError(f"refusing to record a credential-like key in a manifest: {where}{key}")
            _check_no_secrets(value, f"{where}{key}.")
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _check_no_secrets(item, where)


def build_manifest(
    kind: str,
    *,
    settings: dict[str, Any],
    inputs: dict[str, Any],
    counts: dict[str, Any],
    started: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a manifest. ``started`` is a ``time.time()`` taken when the run began."""
    from raitner_hub import __version__

    manifest = {
        "artefact": kind,
        "raitner_hub_version": __version__,
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "settings": settings,
        "inputs": inputs,
        "counts": counts,
        "wall_time_s": round(time.time() - started, 3),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    manifest = _redacted(scrub_paths(manifest))  # no local absolute path, no Hub token (e.g. a recorded --token)
    _check_no_secrets(manifest)
    return manifest


# Facts of a run that differ between two runs producing the same artefact: not a change worth a commit.
VOLATILE_KEYS = ("created_at", "wall_time_s")


def same_artefact(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two manifests describe the same artefact (equal once :data:`VOLATILE_KEYS` are ignored)."""

    def strip(m: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in m.items() if k not in VOLATILE_KEYS}

    return isinstance(a, dict) and isinstance(b, dict) and strip(a) == strip(b)


def write_manifest(folder: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    path = Path(folder) / "manifest.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
