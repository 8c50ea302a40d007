"""Typed, frozen configs per stage and a YAML loader that rejects unknown keys.

Each stage has one keyword-only ``<Stage>Config`` dataclass; fields are documented once, in the class
docstring. Upstream options are not re-declared: e.g. ``TrainConfig.sft`` and ``.lora`` are plain
mappings handed to ``trl.SFTConfig`` and ``peft.LoraConfig``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml

from raitner_hub.errors import ConfigError

C = TypeVar("C")


def from_dict(cls: type[C], data: dict[str, Any], *, where: str = "config") -> C:
    """Build ``cls`` from a mapping; unknown keys are an error that names them and the valid ones."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  # C is always a dataclass
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}")
    try:
        return cls(**data)
    except TypeError as exc:  # a missing required field
        raise ConfigError(f"{where}: {exc}") from None


def load_config(path: str | os.PathLike[str], cls: type[C], **overrides: Any) -> C:
    """Read a YAML file into ``cls``; non-None ``overrides`` (e.g. CLI flags) win over the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(cls, data, where=str(path))


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config (for manifests and cards)."""
    return dataclasses.asdict(config)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """Settings of ``raitner build-data`` (annotated passages -> vanilla + RA-IT datasets).

    Attributes:
        input: annotated data: a file in any format ``formats.read_annotated`` reads, a dataset folder, or
            a Hub dataset id ``user/name[@revision]`` (pulled pinned to a commit, recorded as ``repo@sha``).
        out: output folder, laid out as a Hub dataset repo.
        lang: ``en`` or ``zh``; inferred from the data when None.
        input_format: a ``formats`` format name, or ``auto``.
        strategies: RA-IT strategies (``augment.STRATEGIES`` names), one dataset config each; the
            ``vanilla`` config is always built.
        k: demonstrations per conversation (paper: 2).
        top_k: candidates K for diverse strategies and the BM25 filter (paper: 128).
        seed: seeds negatives, question order, the split, sampling and every strategy draw.
        embedder: sentence-transformers id or path, ``minilm`` (offline English) or ``bm25``
            (no dense model); None = the paper's GTE-large for the language.
        validation_fraction: held-out share (paper: 0.1).
        sample: build from a seeded random subset of this many passages (paper: 5K, 10K, ...).
        mixed_ratio: share of NN rows for ``mixed.v1``.
        bm25_threshold: minimum BM25 score for the BM25-filter strategies (paper: 20).
        license: the data license recorded in the card (a Hub license id).
        cache_dir: embedding cache; None = the default user cache.
    """

    input: str
    out: str = "outputs/it-data"
    lang: str | None = None
    input_format: str = "auto"
    strategies: tuple[str, ...] = ("diverse_nn.v1",)
    k: int = 2
    top_k: int = 128
    seed: int = 42
    embedder: str | None = None
    validation_fraction: float = 0.1
    sample: int | None = None
    mixed_ratio: float = 0.5
    bm25_threshold: float = 20.0
    license: str = "unknown"
    cache_dir: str | None = None
