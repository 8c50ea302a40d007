"""The plan of a ``raitner reproduce`` run: a recipe expanded into keyed stages with their costs.

Each :class:`Stage` names the stages it reads (``deps``), the settings its library call depends on and its cost
(training steps, evaluation questions, passages). Its key is a hash of its kind, settings, the versions of
the packages that produce it and its inputs' keys (source files by content hash), so a changed training
setting changes the train and evaluation keys and nothing upstream. Planning is offline: it reads only
local files, and says what it cannot know (a Hub source's size).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from raitner_hub.errors import RaitnerError
from raitner_hub.recipe import ArmSpec, Recipe, size_label

KINDS = ("benchmarks", "build", "pool", "train", "evaluate", "table")
# The libraries whose versions change what a stage produces (part of its key).
_VERSIONED = {
    "benchmarks": ("datasets",),
    "build": ("datasets", "sentence-transformers", "faiss-cpu"),
    "pool": ("sentence-transformers", "faiss-cpu"),
    "train": ("torch", "transformers", "trl", "peft"),
    "evaluate": ("torch", "transformers", "peft"),
    "table": (),
}


@dataclasses.dataclass
class Stage:
    """One unit of work: ``id`` (``train/5k-s42-ra-it``), its kind, the stages it reads, settings, cost."""

    id: str
    kind: str
    deps: tuple[str, ...]
    settings: dict[str, Any]
    cost: dict[str, Any]
    key: str = ""
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)  # size, seed, arm, mode... (not in the key)

    @property
    def slug(self) -> str:
        return self.id.replace("/", "__")


@dataclasses.dataclass
class Plan:
    recipe: Recipe
    run_dir: Path
    stages: list[Stage]
    benchmark_info: dict[str, dict[str, Any]]
    notes: list[str]

    def by_id(self) -> dict[str, Stage]:
        return {s.id: s for s in self.stages}

    def count(self, kind: str) -> int:
        return sum(1 for s in self.stages if s.kind == kind)

    @property
    def benchmark_evaluations(self) -> int:
        return self.count("evaluate") * len(self.recipe.benchmarks.names)

    def output_dir(self, stage: Stage) -> Path:
        if stage.kind == "table":
            return self.run_dir / "results"
        return self.run_dir / stage.kind / f"{stage.id.split('/', 1)[-1].replace('/', '__')}-{stage.key[:12]}"

    def record_path(self, stage: Stage) -> Path:
        return self.run_dir / "stages" / f"{stage.slug}.json"

    def record(self, stage: Stage) -> dict[str, Any] | None:
        path = self.record_path(stage)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:  # a record is written atomically; an unreadable one is treated as absent
            return None

    def is_done(self, stage: Stage) -> bool:
        rec = self.record(stage)
        return bool(
            rec and rec.get("status") == "done" and rec.get("key") == stage.key and self.output_dir(stage).is_dir()
        )


# ---- planning -----------------------------------------------------------------------------------------


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def _versions(kind: str) -> dict[str, str]:
    from raitner_hub import __version__
    from raitner_hub.manifest import library_versions

    libs = library_versions()
    return {"raitner-hub": __version__, **{name: libs[name] for name in _VERSIONED[kind] if name in libs}}


def _source_ref(source: str, revision: str | None) -> str:
    """A local source by content hash; a Hub source by id@revision (its sha is recorded by build-data)."""
    from raitner_hub.manifest import input_fingerprint

    if Path(source).exists():
        return "sha256:" + input_fingerprint(source)
    return f"{source}@{revision or 'main'}"


def _model_ref(model: str) -> str:
    """A local model folder by its files' names, sizes and config hash (not GBs of weights); a Hub id as is."""
    from raitner_hub.manifest import file_sha256

    folder = Path(model)
    if not folder.is_dir():
        return model
    files = sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*") if p.is_file())
    config = folder / "config.json"
    return "local:" + _digest({"files": files, "config": file_sha256(config) if config.is_file() else None})


def _data_root(recipe: Recipe) -> Path:
    from raitner_hub.benchmarks import default_data_root

    return Path(recipe.benchmarks.data_root) if recipe.benchmarks.data_root else default_data_root()


def benchmark_facts(recipe: Recipe) -> dict[str, dict[str, Any]]:
    """Per benchmark: label count, test sentences (local files, else paper.md §6.1, else unknown)."""
    from raitner_hub.benchmarks import BENCHMARKS, label_set_of, load_label_map, read_split
    from raitner_hub.paper_results import PAPER_TEST_SENTENCES

    root = _data_root(recipe)
    facts = {}
    for name in recipe.benchmarks.names:
        spec = BENCHMARKS[name]
        labels = len(label_set_of(load_label_map(spec.label_map_path())))
        test = spec.splits["test"]
        if (root / spec.folder / test.file).is_file():
            sentences, where = len(read_split(spec, "test", root)), "local"
        elif name in PAPER_TEST_SENTENCES:
            sentences, where = PAPER_TEST_SENTENCES[name], "paper"
        else:
            sentences, where = None, "unknown"
        if sentences is not None and recipe.benchmarks.limit is not None:
            sentences = min(sentences, recipe.benchmarks.limit)
        facts[name] = {
            "labels": labels,
            "sentences": sentences,
            "counted_from": where,
            "questions": None if sentences is None else sentences * labels,
        }
    return facts


def _benchmark_inputs(recipe: Recipe) -> dict[str, str]:
    from raitner_hub.benchmarks import BENCHMARKS
    from raitner_hub.manifest import input_fingerprint

    root, inputs = _data_root(recipe), {}
    for name in recipe.benchmarks.names:
        spec = BENCHMARKS[name]
        for file in sorted({s.file for s in spec.splits.values()}):
            path = root / spec.folder / file
            inputs[f"{spec.folder}/{file}"] = "sha256:" + input_fingerprint(path) if path.is_file() else "missing"
    return inputs


def base_train_config(recipe: Recipe):
    """The recipe's training block as a TrainConfig (file, then inline blocks); unknown keys fail here."""
    from raitner_hub.config import TrainConfig, from_dict
    from raitner_hub.train import load_train_config

    spec = recipe.train
    if spec.config:
        base = dataclasses.asdict(load_train_config(spec.config))
    else:
        base = {"base_model": recipe.base_model, "dataset": "(from the build stage)"}
    merged = {
        **base,
        **spec.options,
        "sft": {**base.get("sft", {}), **spec.sft},
        "lora": {**base.get("lora", {}), **spec.lora},
    }
    config = from_dict(TrainConfig, merged, where=f"recipe {recipe.name}: train")
    _check_train_blocks(config)
    return config


def _check_train_blocks(config) -> None:
    """Unknown sft/lora keys are an error before any work (the full check runs in the training stage)."""
    from peft import LoraConfig
    from trl import SFTConfig

    from raitner_hub.train import _check_known_keys

    _check_known_keys(config.sft, SFTConfig, "train.sft")
    _check_known_keys(config.lora, LoraConfig, "train.lora")


def training_steps(config, passages: int | None, num_processes: int, validation_fraction: float) -> int | None:
    """Optimizer steps of one training, as the Trainer counts them (``max_steps`` wins when set)."""
    sft = config.sft
    if (sft.get("max_steps") or -1) > 0:
        return int(sft["max_steps"])
    if passages is None:
        return None
    train_rows = passages - int(round(passages * validation_fraction))
    per_step = int(sft.get("per_device_train_batch_size", 8)) * max(1, num_processes)
    accumulation = int(sft.get("gradient_accumulation_steps", 1))
    per_epoch = max(1, math.ceil(train_rows / per_step) // accumulation)
    return int(math.ceil(float(sft.get("num_train_epochs", 3)) * per_epoch))


def _build_groups(recipe: Recipe) -> dict[int, list[ArmSpec]]:
    """RA-IT arms grouped by k: build-data has one k per build, so each k is its own build."""
    groups: dict[int, list[ArmSpec]] = {}
    for arm in recipe.arms:
        if arm.strategy is not None:
            groups.setdefault(arm.k, []).append(arm)
    return groups or {2: []}


def make_plan(recipe: Recipe, run_dir: str | os.PathLike) -> Plan:
    """Expand a recipe into its stages with keys and costs (offline: reads only local files)."""
    from raitner_hub.augment import config_name
    from raitner_hub.config import BuildConfig

    run_dir = Path(run_dir)
    train_base = base_train_config(recipe)
    facts = benchmark_facts(recipe)
    notes = [f"{name} is not built: {why}" for name, why in recipe.benchmarks.missing.items()]
    data = recipe.data
    source_ref = _source_ref(data.source, data.revision)
    local_source = Path(data.source).exists()
    source_size = data.source_size
    if source_size is None and local_source:
        source_size = _count_passages(data.source, data.format, recipe.lang)
    if source_size is None:
        notes.append(
            f"data source {data.source} is on the Hub: its size is not known offline (a subset size "
            "above it trains on the whole source)"
        )
    stages: list[Stage] = [
        Stage(
            "benchmarks",
            "benchmarks",
            (),
            {"names": list(recipe.benchmarks.names), "inputs": _benchmark_inputs(recipe)},
            {"benchmarks": len(recipe.benchmarks.names)},
        )
    ]
    groups = _build_groups(recipe)
    first_k = next(iter(groups))
    needs_pool = any(m.mode == "out-domain" for m in recipe.evaluation.modes)
    for size in data.sizes:
        passages = size if source_size is None else (source_size if size is None else min(size, source_size))
        for seed in data.seeds:
            cell = f"{size_label(size)}-s{seed}"
            build_of_k = {}
            for k, arms in groups.items():
                build_id = f"build/{cell}" + ("" if len(groups) == 1 else f"-k{k}")
                cfg = BuildConfig(
                    input=data.source + (f"@{data.revision}" if data.revision else ""),
                    lang=recipe.lang,
                    input_format=data.format,
                    strategies=tuple(dict.fromkeys(a.strategy for a in arms)),
                    k=k,
                    top_k=data.top_k,
                    seed=seed,
                    embedder=data.embedder,
                    validation_fraction=data.validation_fraction,
                    sample=size,
                    mixed_ratio=data.mixed_ratio,
                    bm25_threshold=data.bm25_threshold,
                    license=data.license,
                )
                settings = {
                    **dataclasses.asdict(cfg),
                    "input": source_ref,
                    "out": None,
                    "cache_dir": None,
                    "strategies": list(cfg.strategies),
                }
                stages.append(
                    Stage(
                        build_id,
                        "build",
                        (),
                        settings,
                        {"passages": passages},
                        meta={"size": size, "seed": seed, "k": k, "cell": cell},
                    )
                )
                build_of_k[k] = build_id
            pool_id = None
            if needs_pool:
                pool_id = f"pool/{cell}"
                embedder = next(
                    (m.embedder for m in recipe.evaluation.modes if m.mode == "out-domain" and m.embedder),
                    data.embedder,
                )
                stages.append(
                    Stage(
                        pool_id,
                        "pool",
                        (),
                        {
                            "input": source_ref,
                            "format": data.format,
                            "lang": recipe.lang,
                            "sample": size,
                            "seed": seed,
                            "embedder": embedder,
                        },
                        {"passages": passages},
                        meta={"size": size, "seed": seed, "cell": cell},
                    )
                )
            for arm in recipe.arms:
                build_id = build_of_k[arm.k if arm.strategy is not None else first_k]
                dataset_config = (
                    "vanilla"
                    if arm.strategy is None
                    else config_name(
                        arm.strategy,
                        arm.k,
                        mixed_ratio=data.mixed_ratio,
                        top_k=data.top_k,
                        bm25_threshold=data.bm25_threshold,
                    )
                )
                base_model = recipe.base_model_of(arm)
                train_cfg = dataclasses.replace(
                    train_base,
                    base_model=base_model,
                    dataset_config=dataset_config,
                    seed=seed,
                    base_model_repo_id=recipe.base_model_repo_id or train_base.base_model_repo_id,
                )
                settings = {
                    k_: v
                    for k_, v in dataclasses.asdict(train_cfg).items()
                    if k_
                    not in (
                        "dataset",
                        "output_dir",
                        "resume_from_checkpoint",
                        "push",
                        "repo_id",
                        "private",
                        "dataset_revision",
                    )
                }
                settings["base_model"] = _model_ref(base_model)
                settings["num_processes"] = recipe.train.num_processes
                steps = training_steps(train_cfg, passages, recipe.train.num_processes, data.validation_fraction)
                train_id = f"train/{cell}-{arm.name}"
                stages.append(
                    Stage(
                        train_id,
                        "train",
                        (build_id,),
                        settings,
                        {"steps": steps},
                        meta={
                            "size": size,
                            "seed": seed,
                            "arm": arm.name,
                            "cell": cell,
                            "base_model": base_model,
                            "dataset_config": dataset_config,
                        },
                    )
                )
                for mode in recipe.evaluation.modes:
                    deps = (train_id, "benchmarks") + ((pool_id,) if mode.mode == "out-domain" else ())
                    ev = recipe.evaluation
                    # device and batch size change speed, not answers (greedy decoding; batched decoding is
                    # token-identical to one question per call), so they are not part of the key
                    settings = {
                        **dataclasses.asdict(mode),
                        "seed": seed,
                        "limit": recipe.benchmarks.limit,
                        "names": list(recipe.benchmarks.names),
                        "max_new_tokens": ev.max_new_tokens,
                        "backend": ev.backend,
                        "chat_template": ev.chat_template,
                    }
                    questions = [f["questions"] for f in facts.values()]
                    stages.append(
                        Stage(
                            f"evaluate/{cell}-{arm.name}/{mode.name}",
                            "evaluate",
                            deps,
                            settings,
                            {"questions": None if None in questions else sum(questions)},
                            meta={"size": size, "seed": seed, "arm": arm.name, "mode": mode.name, "cell": cell},
                        )
                    )
    evaluations = tuple(s.id for s in stages if s.kind == "evaluate")
    stages.append(Stage("table", "table", evaluations, {"paper_table": recipe.paper_table, "recipe": recipe.name}, {}))
    _assign_keys(stages)
    return Plan(recipe, run_dir, stages, facts, notes)


def _count_passages(source: str, fmt: str, lang: str) -> int | None:
    from raitner_hub.formats import read_annotated

    try:
        return len(read_annotated(source, format=fmt, lang=lang))
    except RaitnerError:
        return None


def _assign_keys(stages: list[Stage]) -> None:
    keys: dict[str, str] = {}
    for stage in stages:  # stages are listed after everything they read
        stage.key = _digest(
            {
                "kind": stage.kind,
                "settings": stage.settings,
                "versions": _versions(stage.kind),
                "inputs": {dep: keys[dep] for dep in stage.deps},
            }
        )[:16]
        keys[stage.id] = stage.key


def _cost_text(stage: Stage) -> str:
    c = stage.cost
    if stage.kind == "train":
        return f"{c['steps']} steps" if c.get("steps") is not None else "steps unknown"
    if stage.kind == "evaluate":
        return f"{c['questions']} questions" if c.get("questions") is not None else "questions unknown"
    if stage.kind in ("build", "pool"):
        return f"{c['passages']} passages" if c.get("passages") is not None else "passages unknown (Hub source)"
    if stage.kind == "benchmarks":
        return f"{c['benchmarks']} benchmarks"
    return ""


def describe_plan(plan: Plan, selected: Sequence[Stage] | None = None) -> list[str]:
    """The plan as text: totals, then one line per stage with its state and cost."""
    recipe = plan.recipe
    selected = list(plan.stages if selected is None else selected)
    steps = [s.cost.get("steps") for s in plan.stages if s.kind == "train"]
    questions = [s.cost.get("questions") for s in plan.stages if s.kind == "evaluate"]
    done = sum(1 for s in plan.stages if plan.is_done(s))
    sizes = ", ".join(size_label(s) for s in recipe.data.sizes)
    lines = [
        f"recipe {recipe.name}: sizes {sizes} x seeds {', '.join(map(str, recipe.data.seeds))} x arms "
        f"{', '.join(a.name for a in recipe.arms)}; base model {recipe.base_model}",
        f"plan: {len(plan.stages)} stages ({done} done): {plan.count('build')} builds, {plan.count('train')} "
        f"trainings, {plan.count('evaluate')} evaluation runs = {plan.benchmark_evaluations} benchmark "
        f"evaluations ({len(recipe.benchmarks.names)} benchmarks x {len(recipe.evaluation.modes)} mode(s) x "
        f"{plan.count('train')} trainings)",
        "training steps: "
        + (f"{sum(steps):,} in all" if None not in steps else "unknown (source size unknown)")
        + " ("
        + ", ".join(
            dict.fromkeys(f"{size_label(s.meta['size'])}: {s.cost['steps']}" for s in plan.stages if s.kind == "train")
        )
        + " per training)",
        "questions: "
        + (f"{sum(questions):,} in all" if None not in questions else "unknown for some benchmarks")
        + " ("
        + ", ".join(
            f"{n} {f['sentences'] if f['sentences'] is not None else '?'} sentences x "
            f"{f['labels']} labels" + ("" if f["counted_from"] == "local" else f" [{f['counted_from']}]")
            for n, f in plan.benchmark_info.items()
        )
        + " per evaluation run)",
    ]
    lines += [f"note: {note}" for note in plan.notes]
    for i, stage in enumerate(plan.stages, 1):
        if stage not in selected:
            continue
        state = "done" if plan.is_done(stage) else "todo"
        lines.append(
            f"  [{i:>{len(str(len(plan.stages)))}}/{len(plan.stages)}] {state:4} {stage.id:<44} {_cost_text(stage)}"
        )
    return lines
