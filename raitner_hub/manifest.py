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
import subprocess
import time
from pathlib import Path
from typing import Any

_LIBRARIES = (
    "torch", "transformers", "datasets", "huggingface_hub", "peft", "trl", "accelerate",
    "sentence-transformers", "faiss-cpu", "rank-bm25", "jieba",
)
# Credential keys by exact name (case and -/_ insensitive). Not substrings: "max_new_tokens" and "eos_token"
# are settings, and a substring rule hid them from manifests and adapter cards.
SECRET_KEYS = frozenset({
    "token", "hf_token", "hub_token", "push_to_hub_token", "use_auth_token", "auth_token", "access_token",
    "api_key", "apikey", "openai_api_key", "password", "passwd", "secret", "client_secret", "secret_key",
})


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
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
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


def _check_no_secrets(obj: Any, where: str = "") -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if is_secret_key(key) and value not in (None, False):
                raise ValueError(f"refusing to record a credential-like key in a manifest: {where}{key}")
            _check_no_secrets(value, f"{where}{key}.")
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _check_no_secrets(item, where)


def build_manifest(kind: str, *, settings: dict[str, Any], inputs: dict[str, Any], counts: dict[str, Any],
                   started: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
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
    _check_no_secrets(manifest)
    return manifest


def write_manifest(folder: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    path = Path(folder) / "manifest.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
