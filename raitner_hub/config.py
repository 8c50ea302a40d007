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
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}")
    try:
        return cls(**data)
    except TypeError as exc:  # a missing required field
        raise ConfigError(f"{where}: {exc}") from None


def load_config(path: str | os.PathLike, cls: type[C], **overrides: Any) -> C:
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
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(cls, data, where=str(path))


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config (for manifests and cards)."""
    return dataclasses.asdict(config)
