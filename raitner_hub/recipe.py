"""Experiment recipes for ``raitner reproduce``: one typed YAML file that names a whole experiment grid.

A recipe says where the annotated data comes from, the subset sizes and seeds, the arms (vanilla and RA-IT
strategies with their ``k``), the base model and training block, the benchmarks and evaluation modes, and the
Hub namespace for pushes. Unknown keys anywhere are a :class:`~raitner_hub.errors.ConfigError` before any
work starts. Relative paths in the file are relative to the file's folder (so ``recipes/smoke.yaml`` can name
``../examples/...``); paths given with ``--set`` are relative to the working directory.

``--set a.b=c`` overrides one value (``c`` is read as a YAML scalar: ``1e-4``, ``true``, ``null``, ``[1, 2]``);
list items are addressed by position (``arms.1.k=4``). ``--set base_model=X`` replaces the base model of every
arm (an arm may name its own ``base_model``).

Example:
    >>> recipe = load_recipe("recipes/smoke.yaml", ["train.sft.max_steps=2"])  # doctest: +SKIP
    >>> recipe.train.sft["max_steps"]  # doctest: +SKIP
    2
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from raitner_hub.errors import ConfigError

MODES = ("none", "out-domain", "in-domain")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataSpec:
    """Where the training passages come from and how they are cut.

    Attributes:
        source: annotated passages: a file or folder (any ``formats`` format), or a Hub dataset id.
        revision: Hub branch/tag/commit of ``source`` (Hub only; recorded as ``repo@sha`` by build-data).
        format: the ``formats`` reader (``auto`` for local files).
        sizes: subset sizes (``random.seed(seed); random.sample``, paper.md §2.4); ``null`` = all passages.
        seeds: one subset, build and training per seed (paper: 42 and 67).
        source_size: the number of passages in ``source`` when known (for the plan of a Hub source offline).
        embedder: the RA-IT retrieval embedder (None = GTE-large for the language, as the paper).
        top_k, bm25_threshold, mixed_ratio: build-data's strategy settings (paper: 128, 20, 0.5).
        validation_fraction: held-out share of each build (paper: 0.1).
        license: the data license recorded in the dataset cards.
    """

    source: str
    revision: str | None = None
    format: str = "auto"
    sizes: tuple[int | None, ...] = (None,)
    seeds: tuple[int, ...] = (42,)
    source_size: int | None = None
    embedder: str | None = None
    top_k: int = 128
    bm25_threshold: float = 20.0
    mixed_ratio: float = 0.5
    validation_fraction: float = 0.1
    license: str = "unknown"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ArmSpec:
    """One training arm: vanilla (``strategy: null``) or an RA-IT strategy with ``k`` demonstrations.

    Attributes:
        name: used in stage ids and Hub repo names (``<ns>/<recipe>-<size>-s<seed>-<name>``).
        strategy: an ``augment.STRATEGIES`` name, or None for vanilla.
        k: demonstrations per conversation (paper: 2).
        paper: the paper row this arm reproduces (``Vanilla`` or ``RA-IT``), shown side by side.
        base_model: this arm's base model (default: the recipe's).
    """

    name: str
    strategy: str | None = None
    k: int = 2
    paper: str | None = None
    base_model: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainSpec:
    """The training block: a shipped train YAML and/or inline settings, merged (inline wins).

    Attributes:
        config: a ``raitner train`` YAML (``examples/train_*.yaml``) to start from.
        sft, lora: merged over that file's ``sft:`` / ``lora:`` blocks (TRL / PEFT options).
        options: other ``TrainConfig`` keys (``chat_template``, ``quantization``, ``license``...).
        num_processes: N > 1 trains with ``accelerate launch`` on N processes (as ``raitner train``).
    """

    config: str | None = None
    sft: dict[str, Any] = dataclasses.field(default_factory=dict)
    lora: dict[str, Any] = dataclasses.field(default_factory=dict)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    num_processes: int = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchmarksSpec:
    """Registry benchmarks, converted once by the same call as ``raitner push-benchmarks``.

    Attributes:
        names: ``benchmarks.BENCHMARKS`` names, in the order tables show them.
        data_root: their source files (default ``$RAITNER_DATA_ROOT`` or ``../shared/data``).
        limit: only the first N test sentences of each (a smoke setting; None = the whole test split).
        missing: paper benchmarks this recipe cannot build, with the reason (shown in the plan and table).
    """

    names: tuple[str, ...]
    data_root: str | None = None
    limit: int | None = None
    missing: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModeSpec:
    """One evaluation mode (paper.md §4.5).

    Attributes:
        mode: ``none``, ``out-domain`` (pool: an index over the arm's own training subset) or ``in-domain``.
        strategy, k, top_k: retrieval settings (defaults as ``raitner evaluate``).
        pool_size: in-domain pool drawn from the benchmark's train split (None = all of it).
        embedder: the retrieval embedder (out-domain pool / in-domain index).
    """

    mode: str = "none"
    strategy: str | None = None
    k: int = 2
    top_k: int | None = None
    pool_size: int | None = None
    embedder: str | None = None

    @property
    def name(self) -> str:
        if self.mode == "none":
            return "none"
        parts = [self.mode, self.strategy or "default"]
        if self.k != 2:
            parts.append(f"k{self.k}")
        if self.mode == "in-domain":
            parts.append(f"pool{self.pool_size}" if self.pool_size else "poolall")
        return "-".join(parts)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluationSpec:
    """How every adapter is evaluated (the options of ``raitner evaluate``)."""

    modes: tuple[ModeSpec, ...] = (ModeSpec(),)
    max_new_tokens: int = 1024
    batch_size: int = 32
    backend: str = "auto"
    device: str | None = None
    chat_template: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recipe:
    """A whole experiment (see the module docstring). ``paper_table``: ``table1`` or ``table2``, the paper
    numbers the results are shown next to (None: none)."""

    name: str
    lang: str
    base_model: str
    data: DataSpec
    arms: tuple[ArmSpec, ...]
    benchmarks: BenchmarksSpec
    train: TrainSpec = TrainSpec()
    evaluation: EvaluationSpec = EvaluationSpec()
    description: str = ""
    paper_table: str | None = None
    base_model_repo_id: str | None = None
    namespace: str | None = None
    private: bool = False

    def base_model_of(self, arm: ArmSpec) -> str:
        return arm.base_model or self.base_model


def size_label(size: int | None) -> str:
    """``5000`` -> ``5k`` (stage ids, Hub repo names, tables); None (all passages) -> ``all``."""
    if size is None:
        return "all"
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)


# ---- loading ----

_NESTED = {"data": DataSpec, "train": TrainSpec, "benchmarks": BenchmarksSpec, "evaluation": EvaluationSpec}
_TUPLES = {"sizes", "seeds", "names", "modes", "arms"}


def _typed(cls: type, data: Any, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(fields))}")
    values = {}
    for key, value in data.items():
        here = f"{where}.{key}"
        if cls is Recipe and key in _NESTED:
            value = _typed(_NESTED[key], value, here)
        elif cls is Recipe and key == "arms":
            value = tuple(_typed(ArmSpec, item, f"{here}[{i}]") for i, item in enumerate(_as_list(value, here)))
        elif cls is EvaluationSpec and key == "modes":
            value = tuple(_typed(ModeSpec, item, f"{here}[{i}]") for i, item in enumerate(_as_list(value, here)))
        elif key in _TUPLES:
            value = tuple(_as_list(value, here))
        values[key] = value
    try:
        return cls(**values)
    except TypeError as exc:  # a missing required key
        missing = str(exc).split("argument", 1)[-1].strip(": ")
        raise ConfigError(f"{where}: missing required key {missing}") from None


def _as_list(value: Any, where: str) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=c`` -> (["a", "b"], yaml value of c)."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.sft.learning_rate=1e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):
        try:  # YAML 1.1 reads `1e-4` (no dot) as a string; on the command line it means the number
            value = float(value) if value.strip().lower() not in ("nan", "inf", "-inf", "infinity") else value
        except ValueError:
            pass
    return [part for part in path.strip().split(".")], value


def apply_override(data: dict, keys: list[str], value: Any, text: str) -> None:
    node: Any = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(f"--set {text}: {'.'.join(keys[:i]) or 'recipe'} has no item {key}")
            key = int(key)
        elif not isinstance(node, dict):
            raise ConfigError(f"--set {text}: {'.'.join(keys[:i])} is not a mapping")
        if last:
            node[key] = value
        else:
            if isinstance(node, dict) and node.get(key) is None:
                node[key] = {}
            node = node[key]


def _resolve_relative(data: dict, base: Path) -> None:
    """Paths written in the recipe are relative to its folder (only where that path exists)."""

    def fix(block: dict, key: str) -> None:
        value = block.get(key) if isinstance(block, dict) else None
        if isinstance(value, str) and not os.path.isabs(value) and (base / value).exists():
            block[key] = os.path.relpath(base / value)

    fix(data.get("data") or {}, "source")
    fix(data.get("train") or {}, "config")
    fix(data.get("benchmarks") or {}, "data_root")
    fix(data, "base_model")
    for arm in data.get("arms") or []:
        fix(arm, "base_model")


def load_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe file, apply ``--set`` overrides, check it; every error names the file or the key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"{path}{f':{mark.line + 1}' if mark else ''}: invalid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    _resolve_relative(data, path.parent)
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(data, keys, value, text)
        if keys == ["base_model"]:  # replaces the base model of every arm
            for arm in data.get("arms") or []:
                if isinstance(arm, dict):
                    arm.pop("base_model", None)
    recipe = _typed(Recipe, data, str(path))
    check_recipe(recipe, str(path))
    return recipe


def check_recipe(recipe: Recipe, where: str) -> None:
    """Settings that cannot work, found before any work (strategies, modes, benchmarks, sizes)."""
    from raitner_hub.augment import get_strategy
    from raitner_hub.benchmarks import BENCHMARKS

    if recipe.lang not in ("en", "zh"):
        raise ConfigError(f"{where}: lang must be en or zh, got {recipe.lang!r}")
    if not recipe.arms:
        raise ConfigError(f"{where}: arms: at least one arm is needed")
    names = [arm.name for arm in recipe.arms]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: arms: names must be unique, got {names}")
    for arm in recipe.arms:
        if not arm.name or not all(c.isalnum() or c in "-_." for c in arm.name):
            raise ConfigError(f"{where}: arms: name {arm.name!r} must be letters, digits, '-', '_' or '.'")
        if arm.strategy is not None:
            get_strategy(arm.strategy)
        if arm.k < 1:
            raise ConfigError(f"{where}: arms.{arm.name}.k must be >= 1")
    for size in recipe.data.sizes:
        if size is not None and (not isinstance(size, int) or size < 1):
            raise ConfigError(f"{where}: data.sizes: {size!r} is not a positive integer (or null for all)")
    if not recipe.data.seeds or not all(isinstance(s, int) for s in recipe.data.seeds):
        raise ConfigError(f"{where}: data.seeds must be a non-empty list of integers")
    unknown = [n for n in recipe.benchmarks.names if n not in BENCHMARKS]
    if unknown or not recipe.benchmarks.names:
        raise ConfigError(
            f"{where}: benchmarks.names: unknown {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(BENCHMARKS)}"
        )
    wrong_lang = [n for n in recipe.benchmarks.names if BENCHMARKS[n].lang != recipe.lang]
    if wrong_lang:
        raise ConfigError(f"{where}: benchmarks.names: {', '.join(wrong_lang)} are not {recipe.lang} benchmarks")
    modes = [m.name for m in recipe.evaluation.modes]
    for mode in recipe.evaluation.modes:
        if mode.mode not in MODES:
            raise ConfigError(f"{where}: evaluation.modes: unknown mode {mode.mode!r}; choose {', '.join(MODES)}")
        if mode.strategy is not None:
            get_strategy(mode.strategy)
    if len(set(modes)) != len(modes) or not modes:
        raise ConfigError(f"{where}: evaluation.modes: need distinct modes, got {modes}")
    if recipe.train.num_processes < 1:
        raise ConfigError(f"{where}: train.num_processes must be >= 1")
    if recipe.paper_table not in (None, "table1", "table2"):
        raise ConfigError(f"{where}: paper_table must be table1, table2 or null")
    if recipe.namespace is not None and ("/" in recipe.namespace or not recipe.namespace):
        raise ConfigError(f"{where}: namespace is a Hub user or organisation name (no '/'), got {recipe.namespace!r}")


def to_dict(recipe: Recipe) -> dict[str, Any]:
    """A YAML/JSON-ready dict (tuples as lists) that :func:`load_recipe` reads back unchanged."""

    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(recipe))
