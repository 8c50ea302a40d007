"""``raitner reproduce RECIPE``: a recipe's whole experiment grid as one resumable run, data to table.

A recipe (:mod:`raitner_hub.recipe`) expands into a plan of stages, each the same library call as the
matching single command (no second code path)::

    benchmarks  benchmarks.build_benchmarks_folder      (raitner push-benchmarks)
    build       build.build_data, one per size x seed    (raitner build-data --sample N --seed S)
    pool        build's seeded subset -> RetrievalIndex  (raitner index; only for out-domain modes)
    train       train.train_adapter, one per build x arm (raitner train [--num-processes N])
    evaluate    evaluate.evaluate_model, per train x mode (raitner evaluate)
    table       results.json / results.md / results.png + a dataset card, next to the paper's numbers

Every stage is keyed by a hash of everything it depends on: its inputs' keys (the stages it reads) or content
hashes (source files), its settings and the versions of the packages that produce it. Its output goes to
``<run>/<kind>/<name>-<key>/``, and a record ``<run>/stages/<name>.json`` (key, inputs, status, timings,
cost) says when it is done. The library calls write their folders atomically (a hidden staging folder renamed
into place), and a stage is done only once its record says so, so a kill never leaves a stage that looks
finished. A rerun skips done stages; a killed training resumes from its last complete checkpoint; a changed
training setting changes the train keys and hence the evaluation keys, never the data's.

Parallel hardware: ``--parallel N`` runs up to N independent stages at once, each in its own process pinned
to its own set of GPUs (``CUDA_VISIBLE_DEVICES``; the GPUs are split into N disjoint sets), never two on the
same device. Without GPUs, N > 1 is refused: CPU stages already use every core, so they run one at a time.

Example:
    >>> from raitner_hub.recipe import load_recipe
    >>> plan = make_plan(load_recipe("recipes/paper-en.yaml"), "runs/paper-en")  # doctest: +SKIP
    >>> plan.count("train"), plan.benchmark_evaluations  # doctest: +SKIP
    (12, 84)
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from raitner_hub.errors import ConfigError, RaitnerError
from raitner_hub.recipe import ArmSpec, ModeSpec, Recipe, size_label

KINDS = ("benchmarks", "build", "pool", "train", "evaluate", "table")
METRICS = ("uniner_f1", "strict_f1")
# The libraries whose versions change what a stage produces (part of its key).
_VERSIONED = {"benchmarks": ("datasets",), "build": ("datasets", "sentence-transformers", "faiss-cpu"),
              "pool": ("sentence-transformers", "faiss-cpu"), "train": ("torch", "transformers", "trl", "peft"),
              "evaluate": ("torch", "transformers", "peft"), "table": ()}


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
        return bool(rec and rec.get("status") == "done" and rec.get("key") == stage.key
                    and self.output_dir(stage).is_dir())


@dataclasses.dataclass
class ReproduceResult:
    run_dir: Path
    plan: Plan
    ran: list[str]
    skipped: list[str]
    results: dict[str, Any] | None = None
    pushed: dict[str, str] = dataclasses.field(default_factory=dict)


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
        facts[name] = {"labels": labels, "sentences": sentences, "counted_from": where,
                       "questions": None if sentences is None else sentences * labels}
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
    from raitner_hub.config import from_dict
    from raitner_hub.train import TrainConfig, load_train_config

    spec = recipe.train
    if spec.config:
        base = dataclasses.asdict(load_train_config(spec.config))
    else:
        base = {"base_model": recipe.base_model, "dataset": "(from the build stage)"}
    merged = {**base, **spec.options, "sft": {**base.get("sft", {}), **spec.sft},
              "lora": {**base.get("lora", {}), **spec.lora}}
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
    notes = [f"{name}: not built ({why})" for name, why in recipe.benchmarks.missing.items()]
    data = recipe.data
    source_ref = _source_ref(data.source, data.revision)
    local_source = Path(data.source).exists()
    source_size = data.source_size
    if source_size is None and local_source:
        source_size = _count_passages(data.source, data.format, recipe.lang)
    if source_size is None:
        notes.append(f"data source {data.source} is on the Hub: its size is not known offline (a subset size "
                     "above it trains on the whole source)")
    stages: list[Stage] = [Stage("benchmarks", "benchmarks", (), {
        "names": list(recipe.benchmarks.names), "inputs": _benchmark_inputs(recipe)},
        {"benchmarks": len(recipe.benchmarks.names)})]
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
                cfg = BuildConfig(input=data.source + (f"@{data.revision}" if data.revision else ""),
                                  lang=recipe.lang, input_format=data.format,
                                  strategies=tuple(dict.fromkeys(a.strategy for a in arms)), k=k, top_k=data.top_k,
                                  seed=seed, embedder=data.embedder, validation_fraction=data.validation_fraction,
                                  sample=size, mixed_ratio=data.mixed_ratio, bm25_threshold=data.bm25_threshold,
                                  license=data.license)
                settings = {**dataclasses.asdict(cfg), "input": source_ref, "out": None, "cache_dir": None,
                            "strategies": list(cfg.strategies)}
                stages.append(Stage(build_id, "build", (), settings, {"passages": passages},
                                    meta={"size": size, "seed": seed, "k": k, "cell": cell}))
                build_of_k[k] = build_id
            pool_id = None
            if needs_pool:
                pool_id = f"pool/{cell}"
                embedder = next((m.embedder for m in recipe.evaluation.modes if m.mode == "out-domain"
                                 and m.embedder), data.embedder)
                stages.append(Stage(pool_id, "pool", (), {"input": source_ref, "format": data.format,
                                                          "lang": recipe.lang, "sample": size, "seed": seed,
                                                          "embedder": embedder}, {"passages": passages},
                                    meta={"size": size, "seed": seed, "cell": cell}))
            for arm in recipe.arms:
                build_id = build_of_k[arm.k if arm.strategy is not None else first_k]
                dataset_config = "vanilla" if arm.strategy is None else config_name(
                    arm.strategy, arm.k, mixed_ratio=data.mixed_ratio, top_k=data.top_k,
                    bm25_threshold=data.bm25_threshold)
                base_model = recipe.base_model_of(arm)
                train_cfg = dataclasses.replace(train_base, base_model=base_model, dataset_config=dataset_config,
                                                seed=seed, base_model_repo_id=recipe.base_model_repo_id
                                                or train_base.base_model_repo_id)
                settings = {k_: v for k_, v in dataclasses.asdict(train_cfg).items()
                            if k_ not in ("dataset", "output_dir", "resume_from_checkpoint", "push", "repo_id",
                                          "private", "dataset_revision")}
                settings["base_model"] = _model_ref(base_model)
                settings["num_processes"] = recipe.train.num_processes
                steps = training_steps(train_cfg, passages, recipe.train.num_processes, data.validation_fraction)
                train_id = f"train/{cell}-{arm.name}"
                stages.append(Stage(train_id, "train", (build_id,), settings, {"steps": steps},
                                    meta={"size": size, "seed": seed, "arm": arm.name, "cell": cell,
                                          "base_model": base_model, "dataset_config": dataset_config}))
                for mode in recipe.evaluation.modes:
                    deps = (train_id, "benchmarks") + ((pool_id,) if mode.mode == "out-domain" else ())
                    ev = recipe.evaluation
                    settings = {**dataclasses.asdict(mode), "seed": seed, "limit": recipe.benchmarks.limit,
                                "names": list(recipe.benchmarks.names), "max_new_tokens": ev.max_new_tokens,
                                "backend": ev.backend, "chat_template": ev.chat_template}
                    questions = [f["questions"] for f in facts.values()]
                    stages.append(Stage(f"evaluate/{cell}-{arm.name}/{mode.name}", "evaluate", deps, settings,
                                        {"questions": None if None in questions else sum(questions)},
                                        meta={"size": size, "seed": seed, "arm": arm.name, "mode": mode.name,
                                              "cell": cell}))
    evaluations = tuple(s.id for s in stages if s.kind == "evaluate")
    stages.append(Stage("table", "table", evaluations, {"paper_table": recipe.paper_table,
                                                        "recipe": recipe.name}, {}))
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
        stage.key = _digest({"kind": stage.kind, "settings": stage.settings, "versions": _versions(stage.kind),
                             "inputs": {dep: keys[dep] for dep in stage.deps}})[:16]
        keys[stage.id] = stage.key


# ---- records ------------------------------------------------------------------------------------------

def _write_json(path: Path, obj: Any) -> None:
    """Write-then-rename: a kill never leaves half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _update_record(plan: Plan, stage: Stage, **changes: Any) -> dict[str, Any]:
    rec = plan.record(stage) or {}
    if rec.get("key") != stage.key:  # a new key is a new stage: start a fresh record
        rec = {}
    base = {"id": stage.id, "kind": stage.kind, "key": stage.key,
            "inputs": {dep: plan.by_id()[dep].key for dep in stage.deps}, "settings": stage.settings,
            "cost": stage.cost, "output": str(plan.output_dir(stage).relative_to(plan.run_dir)), "runs": 0}
    rec = {**base, **rec, **changes}
    _write_json(plan.record_path(stage), rec)
    return rec


# ---- running one stage --------------------------------------------------------------------------------

def run_stage(plan: Plan, stage: Stage, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run one stage (its inputs must be done) and mark it done; returns its record."""
    missing = [dep for dep in stage.deps if not plan.is_done(plan.by_id()[dep])]
    if missing:
        raise RaitnerError(f"stage {stage.id} needs {', '.join(missing)} first")
    rec = plan.record(stage) if (plan.record(stage) or {}).get("key") == stage.key else None
    started = time.time()
    _update_record(plan, stage, status="running", started_at=_now(), pid=os.getpid(),
                   devices=os.environ.get("CUDA_VISIBLE_DEVICES"), runs=(rec or {}).get("runs", 0) + 1)
    runner = {"benchmarks": _run_benchmarks, "build": _run_build, "pool": _run_pool, "train": _run_train,
              "evaluate": _run_evaluate, "table": _run_table}[stage.kind]
    try:
        facts = runner(plan, stage, log) or {}
    except BaseException as exc:
        _update_record(plan, stage, status="failed", error=str(exc).splitlines()[0] if str(exc) else
                       type(exc).__name__, finished_at=_now())
        raise
    return _update_record(plan, stage, status="done", finished_at=_now(), seconds=round(time.time() - started, 3),
                          facts=facts, error=None, pid=None)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _dep(plan: Plan, stage: Stage, kind: str) -> Path:
    by_id = plan.by_id()
    return plan.output_dir(next(by_id[d] for d in stage.deps if by_id[d].kind == kind))


def _run_benchmarks(plan: Plan, stage: Stage, log) -> dict:
    from raitner_hub.benchmarks import build_benchmarks_folder, read_benchmarks_meta

    recipe = plan.recipe
    folder = build_benchmarks_folder(list(recipe.benchmarks.names), plan.output_dir(stage), _data_root(recipe),
                                     command=f"raitner reproduce ({recipe.name})")
    return {"splits": {n: m["splits"] for n, m in read_benchmarks_meta(folder).items()}}


def _build_config(plan: Plan, stage: Stage):
    from raitner_hub.config import BuildConfig

    data = plan.recipe.data
    s = stage.settings
    return BuildConfig(input=data.source + (f"@{data.revision}" if data.revision else ""),
                       out=str(plan.output_dir(stage)), lang=s["lang"], input_format=s["input_format"],
                       strategies=tuple(s["strategies"]), k=s["k"], top_k=s["top_k"], seed=s["seed"],
                       embedder=s["embedder"], validation_fraction=s["validation_fraction"], sample=s["sample"],
                       mixed_ratio=s["mixed_ratio"], bm25_threshold=s["bm25_threshold"], license=s["license"])


def _run_build(plan: Plan, stage: Stage, log) -> dict:
    from raitner_hub.build import build_data

    result = build_data(_build_config(plan, stage), command=f"raitner reproduce ({plan.recipe.name}: {stage.id})",
                        progress=False)
    return {"configs": result.configs}


def _run_pool(plan: Plan, stage: Stage, log) -> dict:
    """The out-domain pool: an index over the training subset, as ``raitner index`` builds it."""
    from raitner_hub.build import _subset, resolve_input
    from raitner_hub.config import BuildConfig
    from raitner_hub.formats import read_annotated
    from raitner_hub.retrieval import RetrievalIndex

    data, s = plan.recipe.data, stage.settings
    source = data.source + (f"@{data.revision}" if data.revision else "")
    resolved, ref = resolve_input(BuildConfig(input=source, lang=s["lang"]))
    pool = _subset(read_annotated(resolved.input, format=s["format"], lang=s["lang"]), s["sample"], s["seed"])
    index = RetrievalIndex.build(pool, lang=s["lang"], embedder=s["embedder"], progress=False,
                                 pool_source=f"{ref} (sample {s['sample']}, seed {s['seed']})",
                                 license=data.license)
    index.save_pretrained(plan.output_dir(stage))
    return {"passages": len(index)}


def train_config_for(plan: Plan, stage: Stage):
    """The stage's TrainConfig: the recipe's training block pointed at its build and output folder."""
    meta = stage.meta
    base = base_train_config(plan.recipe)
    out = plan.output_dir(stage) / "adapter"
    return dataclasses.replace(
        base, base_model=meta["base_model"], dataset=str(_dep(plan, stage, "build")),
        dataset_config=meta["dataset_config"], dataset_revision=None, output_dir=str(out), seed=meta["seed"],
        base_model_repo_id=plan.recipe.base_model_repo_id or base.base_model_repo_id, push=False, repo_id=None)


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint whose trainer state was written (the Trainer writes it last); a checkpoint a
    kill cut short is removed so the Trainer never loads it."""
    from transformers.trainer_utils import get_last_checkpoint

    while folder.is_dir() and (last := get_last_checkpoint(str(folder))) is not None:
        if (Path(last) / "trainer_state.json").is_file():
            return Path(last)
        shutil.rmtree(last, ignore_errors=True)
    return None


def _run_train(plan: Plan, stage: Stage, log) -> dict:
    import raitner_hub.train as training

    config = train_config_for(plan, stage)
    resume = last_complete_checkpoint(config.checkpoints_dir)
    if resume is not None:
        log(f"    resuming {stage.id} from {resume.name}")
        config = dataclasses.replace(config, resume_from_checkpoint=str(resume))
    n = plan.recipe.train.num_processes
    if n > 1:  # what `raitner train --num-processes N` does
        resolved = training.write_config(config, config.checkpoints_dir / "train-config.yaml")
        if subprocess.call(training.launch_command(resolved, n)) != 0:
            raise RaitnerError(f"accelerate launch failed for {stage.id} (config: {resolved})")
        folder = Path(config.output_dir)
    else:
        folder = training.train_adapter(config)
    manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    return {"resumed_from": resume.name if resume else None, "counts": manifest.get("counts")}


def _run_evaluate(plan: Plan, stage: Stage, log) -> dict:
    from raitner_hub.evaluate import evaluate_model

    s, ev = stage.settings, plan.recipe.evaluation
    mode = ModeSpec(**{f.name: s[f.name] for f in dataclasses.fields(ModeSpec)})
    pool = str(_dep(plan, stage, "pool")) if mode.mode == "out-domain" else None
    out = plan.output_dir(stage) / mode.name
    report = evaluate_model(str(_dep(plan, stage, "train") / "adapter"), str(_dep(plan, stage, "benchmarks")),
                            datasets=s["names"], mode=mode.mode, pool=pool, limit=s["limit"], k=mode.k,
                            strategy=mode.strategy, top_k=mode.top_k, in_domain_pool_size=mode.pool_size,
                            embedder=mode.embedder, seed=s["seed"], out=out, backend=ev.backend, device=ev.device,
                            chat_template=ev.chat_template, max_new_tokens=ev.max_new_tokens,
                            batch_size=ev.batch_size)
    return {"average": report.average.as_dict()}


def _run_table(plan: Plan, stage: Stage, log) -> dict:
    from raitner_hub.artefacts import staged_folder
    from raitner_hub.results_table import assemble, bar_chart, markdown, results_card

    by_id = plan.by_id()
    reports = []
    for dep in stage.deps:
        ev = by_id[dep]
        folder = plan.output_dir(ev) / ev.meta["mode"]
        reports.append((ev.meta, json.loads((folder / "results.json").read_text(encoding="utf-8"))))
    results = assemble(plan.recipe, reports, plan.benchmark_info, plan.notes)
    with staged_folder(plan.output_dir(stage)) as staging:
        _write_json(staging / "results.json", results)
        (staging / "results.md").write_text(markdown(results), encoding="utf-8")
        bar_chart(results, staging / "results.png")
        results_card(plan.recipe, results).save(str(staging / "README.md"))
    for name in ("results.json", "results.md", "results.png"):
        shutil.copyfile(plan.output_dir(stage) / name, plan.run_dir / name)
    return {"cells": sum(len(r["scores"]) for m in results["modes"].values() for r in m["rows"])}


# ---- the run ------------------------------------------------------------------------------------------

def _select(plan: Plan, only: Sequence[str] | None) -> list[Stage]:
    """Stages matching ``--only`` (a kind or an id glob), plus whatever they need that is not done."""
    if not only:
        return list(plan.stages)
    by_id = plan.by_id()
    chosen = {s.id for s in plan.stages if any(s.kind == o or fnmatch.fnmatch(s.id, o) for o in only)}
    if not chosen:
        raise ConfigError(f"--only {', '.join(only)} matches no stage (kinds: {', '.join(KINDS)}; ids look "
                          f"like {plan.stages[-2].id})")
    todo = list(chosen)
    while todo:
        for dep in by_id[todo.pop()].deps:
            if dep not in chosen and not plan.is_done(by_id[dep]):
                chosen.add(dep)
                todo.append(dep)
    return [s for s in plan.stages if s.id in chosen]


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
        "training steps: " + (f"{sum(steps):,} in all" if None not in steps else "unknown (source size unknown)")
        + " (" + ", ".join(dict.fromkeys(f"{size_label(s.meta['size'])}: {s.cost['steps']}" for s in plan.stages
                                         if s.kind == "train")) + " per training)",
        "questions: " + (f"{sum(questions):,} in all" if None not in questions else "unknown for some benchmarks")
        + " (" + ", ".join(f"{n} {f['sentences'] if f['sentences'] is not None else '?'} sentences x "
                           f"{f['labels']} labels" + ("" if f["counted_from"] == "local" else
                                                      f" [{f['counted_from']}]")
                           for n, f in plan.benchmark_info.items()) + " per evaluation run)",
    ]
    lines += [f"note: {note}" for note in plan.notes]
    for i, stage in enumerate(plan.stages, 1):
        if stage not in selected:
            continue
        state = "done" if plan.is_done(stage) else "todo"
        lines.append(f"  [{i:>{len(str(len(plan.stages)))}}/{len(plan.stages)}] {state:4} {stage.id:<44} "
                     f"{_cost_text(stage)}")
    return lines


class _Eta:
    """Seconds per unit of cost (steps, questions, passages) measured on this run's finished stages."""

    UNIT = {"train": "steps", "evaluate": "questions", "build": "passages", "pool": "passages"}

    def __init__(self, plan: Plan):
        self.rates: dict[str, list[tuple[float, float]]] = {}
        for stage in plan.stages:
            rec = plan.record(stage)
            if rec and rec.get("status") == "done" and rec.get("seconds") is not None:
                self.add(stage, rec["seconds"])

    def add(self, stage: Stage, seconds: float) -> None:
        self.rates.setdefault(stage.kind, []).append((seconds, self._units(stage)))

    def _units(self, stage: Stage) -> float:
        unit = self.UNIT.get(stage.kind)
        return float(stage.cost.get(unit) or 1) if unit else 1.0

    def remaining(self, stages: Sequence[Stage]) -> str:
        """``12m30s``, or ``>= 12m30s (no timing yet for train)`` while a kind has not finished once."""
        total, unknown = 0.0, []
        for stage in stages:
            seen = self.rates.get(stage.kind)
            if not seen:
                unknown.append(stage.kind)
                continue
            rate = sum(s for s, _ in seen) / max(sum(u for _, u in seen), 1e-9)
            total += rate * self._units(stage)
        if not unknown:
            return _fmt_seconds(total)
        kinds = ", ".join(dict.fromkeys(unknown))
        return f">= {_fmt_seconds(total)} (no timing yet for {kinds})" if total else f"unknown (no timing yet for {kinds})"


def _fmt_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def gpu_sets(parallel: int, visible: Sequence[str] | None = None) -> list[list[str]]:
    """Split the visible GPUs into ``parallel`` disjoint sets (one per concurrent stage)."""
    if visible is None:
        visible = _visible_gpus()
    if parallel <= 1:
        return [list(visible)]
    if not visible:
        raise ConfigError(f"--parallel {parallel} needs GPUs (one set per concurrent stage) and none is visible; "
                          "on CPU stages run one at a time (drop --parallel)")
    if len(visible) < parallel:
        raise ConfigError(f"--parallel {parallel} needs at least {parallel} GPUs, {len(visible)} visible "
                          f"({', '.join(visible)}): a GPU is never shared by two stages")
    per = len(visible) // parallel
    return [list(visible[i * per:(i + 1) * per]) for i in range(parallel)]


def _visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d for d in env.split(",") if d.strip() and d.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no torch / no driver: no GPUs
        return []


def _save_recipe(plan: Plan) -> Path:
    from raitner_hub.recipe import to_dict

    path = plan.run_dir / "recipe.json"
    _write_json(path, to_dict(plan.recipe))
    return path


def _lock(run_dir: Path) -> Path:
    """One reproduce per run folder; a lock left by a killed run (dead pid) is taken over."""
    lock = run_dir / ".lock"
    if lock.is_file():
        try:
            pid = int(lock.read_text().strip())
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError, PermissionError):
            pass
        else:
            if pid != os.getpid():
                raise ConfigError(f"{run_dir} is in use by another raitner reproduce (pid {pid})")
    run_dir.mkdir(parents=True, exist_ok=True)
    lock.write_text(str(os.getpid()))
    return lock


def reproduce(recipe: Recipe, run_dir: str | os.PathLike | None = None, *, dry_run: bool = False,
              only: Sequence[str] | None = None, push: bool = False, parallel: int = 1,
              log: Callable[[str], None] = print) -> ReproduceResult:
    """Plan, then run what is not done, then (``push``) publish; ``dry_run`` stops after printing the plan.

    Example:
        >>> from raitner_hub.recipe import load_recipe
        >>> result = reproduce(load_recipe("recipes/smoke.yaml"))  # doctest: +SKIP
        >>> (result.run_dir / "results.md").is_file()  # doctest: +SKIP
        True
    """
    run_dir = Path(run_dir or Path("runs") / recipe.name)
    plan = make_plan(recipe, run_dir)
    selected = _select(plan, only)
    for line in describe_plan(plan, selected):
        log(line)
    if push:
        _check_push(recipe)
    if dry_run:
        return ReproduceResult(run_dir, plan, [], [])
    sets = gpu_sets(parallel)
    lock = _lock(run_dir)
    import datasets

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the run prints one line per stage; per-map bars would drown them
    try:
        _save_recipe(plan)
        ran, skipped = _execute(plan, selected, parallel, sets, log)
        results = None
        if (run_dir / "results.json").is_file() and plan.is_done(plan.stages[-1]):
            results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
            log(f"results: {run_dir / 'results.md'}")
        pushed = push_run(plan, log) if push else {}
    finally:
        lock.unlink(missing_ok=True)
        if bars:
            datasets.enable_progress_bars()
    return ReproduceResult(run_dir, plan, ran, skipped, results, pushed)


def _execute(plan: Plan, selected: list[Stage], parallel: int, sets: list[list[str]], log) -> tuple[list, list]:
    total = len(plan.stages)
    position = {s.id: i for i, s in enumerate(plan.stages, 1)}
    skipped = [s.id for s in selected if plan.is_done(s)]
    todo = [s for s in selected if not plan.is_done(s)]
    eta = _Eta(plan)
    ran: list[str] = []
    if not todo:
        log("nothing to do: every stage is done")
        return ran, skipped

    def announce(stage: Stage, pending: list[Stage]) -> None:
        log(f"[{position[stage.id]}/{total}] {stage.id} ({_cost_text(stage)}); ETA for this and the rest: "
            f"{eta.remaining(pending)}")

    if parallel <= 1:
        for i, stage in enumerate(todo):
            announce(stage, todo[i:])
            started = time.time()
            run_stage(plan, stage, log)
            eta.add(stage, time.time() - started)
            ran.append(stage.id)
        return ran, skipped
    return _execute_parallel(plan, todo, sets, log, announce, eta), skipped


def _execute_parallel(plan: Plan, todo: list[Stage], sets: list[list[str]], log, announce, eta) -> list[str]:
    """Up to len(sets) stages at once, each a worker process pinned to its own GPU set."""
    by_id = plan.by_id()
    pending = list(todo)
    running: dict[int, tuple[subprocess.Popen, Stage, float]] = {}  # set index -> worker
    ran: list[str] = []
    recipe_path = plan.run_dir / "recipe.json"
    failed: list[str] = []
    while pending or running:
        for slot, (proc, stage, started) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[slot]
            if proc.returncode != 0:
                failed.append(stage.id)
            else:
                eta.add(stage, time.time() - started)
                ran.append(stage.id)
        if failed and not running:
            raise RaitnerError(f"stage(s) failed: {', '.join(failed)} (see {plan.run_dir / 'stages'})")
        free = [i for i in range(len(sets)) if i not in running]
        ready = [s for s in pending if all(plan.is_done(by_id[d]) for d in s.deps)] if not failed else []
        for slot, stage in zip(free, ready):
            pending.remove(stage)
            announce(stage, [stage, *pending])
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(sets[slot])}
            proc = subprocess.Popen([sys.executable, "-m", "raitner_hub.reproduce", str(recipe_path),
                                     str(plan.run_dir), stage.id], env=env)
            running[slot] = (proc, stage, time.time())
        if not running and pending and not ready:
            raise RaitnerError(f"stages cannot start (inputs not done): {', '.join(s.id for s in pending)}")
        time.sleep(0.5)
    return ran


# ---- pushing ------------------------------------------------------------------------------------------

def _check_push(recipe: Recipe) -> None:
    from raitner_hub.hub import validate_repo_id

    if not recipe.namespace:
        raise ConfigError("--push needs a namespace: set `namespace:` in the recipe or --set namespace=me")
    validate_repo_id(f"{recipe.namespace}/{recipe.name}-results", namespaced=True)
    local = [recipe.base_model_of(a) for a in recipe.arms if Path(recipe.base_model_of(a)).is_dir()]
    if local and not recipe.base_model_repo_id:
        raise ConfigError(f"--push: base model {local[0]} is a local folder; set base_model_repo_id to its Hub id "
                          "so the pushed adapters load elsewhere")


def repo_name(recipe: Recipe, stage: Stage) -> str:
    """``<ns>/<recipe>-<size>-s<seed>-<arm>`` (adapters), ``...-data`` (builds), ``...-pool`` (pools)."""
    meta = stage.meta
    if stage.kind == "build":  # a recipe with several k has one build per k: build/5k-s42-k4
        tail = "data" + stage.id[len(f"build/{meta['cell']}"):]
    else:
        tail = {"pool": "pool", "train": meta.get("arm")}[stage.kind]
    return f"{recipe.namespace}/{recipe.name}-{meta['cell']}-{tail}"


def push_run(plan: Plan, log) -> dict[str, str]:
    """Push every artefact of a finished run, each card linking what it came from; returns name -> ref."""
    from raitner_hub import hub
    from raitner_hub.evaluate import EvalReport, push_report

    recipe, by_id, pushed = plan.recipe, plan.by_id(), {}
    unfinished = [s.id for s in plan.stages if not plan.is_done(s)]
    if unfinished:
        raise RaitnerError(f"--push: the run is not finished ({len(unfinished)} stages left, e.g. {unfinished[0]})")
    refs: dict[str, str] = {}
    for stage in plan.stages:
        folder = plan.output_dir(stage)
        if stage.kind in ("build", "pool"):
            result = hub.push_folder(folder, repo_name(recipe, stage), repo_type="dataset", private=recipe.private,
                                     commit_message=f"raitner reproduce {recipe.name}: {stage.id}")
            refs[stage.id] = result.ref
        elif stage.kind == "train":
            build = by_id[stage.deps[0]]
            repo = repo_name(recipe, stage)
            hub.push_adapter(folder / "adapter", repo, private=recipe.private,
                             commit_message=f"raitner reproduce {recipe.name}: {stage.id}")
            data_ref = refs[build.id]
            linked = hub.update_model_card(repo, lambda card, d=data_ref, s=stage: _link_provenance(card, d, s),
                                           commit_message="Link the training data (raitner reproduce)")
            refs[stage.id] = linked.ref
        elif stage.kind == "evaluate":
            train = next(by_id[d] for d in stage.deps if by_id[d].kind == "train")
            report_dir = folder / stage.meta["mode"]
            results = json.loads((report_dir / "results.json").read_text(encoding="utf-8"))
            url = push_report(EvalReport(report_dir, [], None, results), refs[train.id].split("@")[0])
            refs[stage.id] = url
        elif stage.kind == "table":
            result = hub.push_folder(folder, f"{recipe.namespace}/{recipe.name}-results", repo_type="dataset",
                                     private=recipe.private, commit_message=f"raitner reproduce {recipe.name}")
            refs[stage.id] = result.ref
        if stage.id in refs:
            log(f"pushed {stage.id} -> {refs[stage.id]}")
    pushed.update(refs)
    _write_json(plan.run_dir / "pushed.json", pushed)
    return pushed


def _link_provenance(card, data_ref: str, stage: Stage) -> None:
    """Add the dataset repo@sha and base model to the adapter card (YAML ``datasets`` and a text section)."""
    repo = data_ref.split("@")[0]
    card.data.datasets = [repo]
    section = (f"\n## Provenance (raitner reproduce)\n\nTrained on [`{data_ref}`](https://huggingface.co/datasets/"
               f"{repo}/tree/{data_ref.split('@')[1]}) (config `{stage.meta['dataset_config']}`), seed "
               f"{stage.meta['seed']}, stage key `{stage.key}`.\n")
    text = card.text.split("\n## Provenance (raitner reproduce)")[0]
    card.text = text.rstrip("\n") + "\n" + section


# ---- worker entry point (--parallel) -------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """``python -m raitner_hub.reproduce RECIPE.json RUN_DIR STAGE_ID``: run one stage (a --parallel worker)."""
    from raitner_hub.recipe import _typed, check_recipe

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m raitner_hub.reproduce RECIPE.json RUN_DIR STAGE_ID", file=sys.stderr)
        return 2
    try:
        recipe = _typed(Recipe, json.loads(Path(argv[0]).read_text(encoding="utf-8")), argv[0])
        check_recipe(recipe, argv[0])
        plan = make_plan(recipe, argv[1])
        stage = plan.by_id().get(argv[2])
        if stage is None:
            raise ConfigError(f"no stage {argv[2]!r} in the plan")
        run_stage(plan, stage, lambda line: print(line, flush=True))
    except RaitnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
