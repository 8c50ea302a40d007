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
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from raitner_hub.errors import ConfigError, RaitnerError, first_line
from raitner_hub.recipe import ModeSpec, Recipe
from raitner_hub.reproduce_plan import (
    KINDS,
    Plan,
    Stage,
    _cost_text,
    _data_root,
    base_train_config,
    describe_plan,
    make_plan,
)


@dataclasses.dataclass
class ReproduceResult:
    run_dir: Path
    plan: Plan
    ran: list[str]
    skipped: list[str]
    results: dict[str, Any] | None = None
    pushed: dict[str, str] = dataclasses.field(default_factory=dict)


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
    base = {
        "id": stage.id,
        "kind": stage.kind,
        "key": stage.key,
        "inputs": {dep: plan.by_id()[dep].key for dep in stage.deps},
        "settings": stage.settings,
        "cost": stage.cost,
        "output": str(plan.output_dir(stage).relative_to(plan.run_dir)),
        "runs": 0,
    }
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
    _update_record(
        plan,
        stage,
        status="running",
        started_at=_now(),
        pid=os.getpid(),
        devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        runs=(rec or {}).get("runs", 0) + 1,
    )
    runner = {
        "benchmarks": _run_benchmarks,
        "build": _run_build,
        "pool": _run_pool,
        "train": _run_train,
        "evaluate": _run_evaluate,
        "table": _run_table,
    }[stage.kind]
    try:
        facts = runner(plan, stage, log) or {}
    except BaseException as exc:
        _update_record(plan, stage, status="failed", error=first_line(exc), finished_at=_now())
        raise
    return _update_record(
        plan,
        stage,
        status="done",
        finished_at=_now(),
        seconds=round(time.time() - started, 3),
        facts=facts,
        error=None,
        pid=None,
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _dep(plan: Plan, stage: Stage, kind: str) -> Path:
    by_id = plan.by_id()
    return plan.output_dir(next(by_id[d] for d in stage.deps if by_id[d].kind == kind))


def _run_benchmarks(plan: Plan, stage: Stage, log) -> dict:
    from raitner_hub.benchmarks import build_benchmarks_folder, read_benchmarks_meta

    recipe = plan.recipe
    folder = build_benchmarks_folder(
        list(recipe.benchmarks.names),
        plan.output_dir(stage),
        _data_root(recipe),
        command=f"raitner reproduce ({recipe.name})",
    )
    return {"splits": {n: m["splits"] for n, m in read_benchmarks_meta(folder).items()}}


def _build_config(plan: Plan, stage: Stage):
    from raitner_hub.config import BuildConfig

    data = plan.recipe.data
    s = stage.settings
    return BuildConfig(
        input=data.source + (f"@{data.revision}" if data.revision else ""),
        out=str(plan.output_dir(stage)),
        lang=s["lang"],
        input_format=s["input_format"],
        strategies=tuple(s["strategies"]),
        k=s["k"],
        top_k=s["top_k"],
        seed=s["seed"],
        embedder=s["embedder"],
        validation_fraction=s["validation_fraction"],
        sample=s["sample"],
        mixed_ratio=s["mixed_ratio"],
        bm25_threshold=s["bm25_threshold"],
        license=s["license"],
    )


def _run_build(plan: Plan, stage: Stage, log) -> dict:
    from raitner_hub.build import build_data

    result = build_data(
        _build_config(plan, stage), command=f"raitner reproduce ({plan.recipe.name}: {stage.id})", progress=False
    )
    return {"configs": result.configs}


def _run_pool(plan: Plan, stage: Stage, log) -> dict:
    """The out-domain pool: an index over the training subset, as ``raitner index`` builds it."""
    from raitner_hub.build import _subset_rows, resolve_input
    from raitner_hub.config import BuildConfig
    from raitner_hub.formats import read_annotated
    from raitner_hub.retrieval import RetrievalIndex

    data, s = plan.recipe.data, stage.settings
    source = data.source + (f"@{data.revision}" if data.revision else "")
    resolved, ref = resolve_input(BuildConfig(input=source, lang=s["lang"]))
    annotated = read_annotated(resolved.input, format=s["format"], lang=s["lang"])
    rows = _subset_rows(len(annotated), s["sample"], s["seed"])
    pool = annotated if rows is None else annotated.select(rows)
    index = RetrievalIndex.build(
        pool,
        lang=s["lang"],
        embedder=s["embedder"],
        progress=False,
        pool_source=f"{ref} (sample {s['sample']}, seed {s['seed']})",
        license=data.license,
    )
    index.save_pretrained(plan.output_dir(stage))
    return {"passages": len(index)}


def train_config_for(plan: Plan, stage: Stage):
    """The stage's TrainConfig: the recipe's training block pointed at its build and output folder."""
    meta = stage.meta
    base = base_train_config(plan.recipe)
    out = plan.output_dir(stage) / "adapter"
    return dataclasses.replace(
        base,
        base_model=meta["base_model"],
        dataset=str(_dep(plan, stage, "build")),
        dataset_config=meta["dataset_config"],
        dataset_revision=None,
        output_dir=str(out),
        seed=meta["seed"],
        base_model_repo_id=plan.recipe.base_model_repo_id or base.base_model_repo_id,
        push=False,
        repo_id=None,
    )


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
        if subprocess.call(training.launch_command(resolved, n, cpu=bool(config.sft.get("use_cpu")))) != 0:
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
    report = evaluate_model(
        str(_dep(plan, stage, "train") / "adapter"),
        str(_dep(plan, stage, "benchmarks")),
        datasets=s["names"],
        mode=mode.mode,
        pool=pool,
        limit=s["limit"],
        k=mode.k,
        strategy=mode.strategy,
        top_k=mode.top_k,
        in_domain_pool_size=mode.pool_size,
        embedder=mode.embedder,
        seed=s["seed"],
        out=out,
        backend=ev.backend,
        device=ev.device,
        chat_template=ev.chat_template,
        max_new_tokens=ev.max_new_tokens,
        batch_size=ev.batch_size,
    )
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
    for name in ("results.json", "results.md", "results.png"):  # copies at the run folder's top, each atomic
        tmp = plan.run_dir / f".{name}.{os.getpid()}.tmp"
        shutil.copyfile(plan.output_dir(stage) / name, tmp)
        os.replace(tmp, plan.run_dir / name)
    return {"cells": sum(len(r["scores"]) for m in results["modes"].values() for r in m["rows"])}


# ---- the run ------------------------------------------------------------------------------------------


def _select(plan: Plan, only: Sequence[str] | None) -> list[Stage]:
    """Stages matching ``--only`` (a kind or an id glob), plus whatever they need that is not done."""
    if not only:
        return list(plan.stages)
    by_id = plan.by_id()
    chosen = {s.id for s in plan.stages if any(s.kind == o or fnmatch.fnmatch(s.id, o) for o in only)}
    if not chosen:
        raise ConfigError(
            f"--only {', '.join(only)} matches no stage (kinds: {', '.join(KINDS)}; ids look like {plan.stages[-2].id})"
        )
    todo = list(chosen)
    while todo:
        for dep in by_id[todo.pop()].deps:
            if dep not in chosen and not plan.is_done(by_id[dep]):
                chosen.add(dep)
                todo.append(dep)
    return [s for s in plan.stages if s.id in chosen]


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
        return (
            f">= {_fmt_seconds(total)} (no timing yet for {kinds})" if total else f"unknown (no timing yet for {kinds})"
        )


def _fmt_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def gpu_sets(parallel: int, visible: Sequence[str] | None = None) -> list[list[str]]:
    """Split the visible GPUs into ``parallel`` disjoint sets (one per concurrent stage)."""
    if visible is None:
        visible = _visible_gpus()
    if parallel <= 1:
        return [list(visible)]
    if not visible:
        raise ConfigError(
            f"--parallel {parallel} needs GPUs (one set per concurrent stage) and none is visible; "
            "on CPU stages run one at a time (drop --parallel)"
        )
    if len(visible) < parallel:
        raise ConfigError(
            f"--parallel {parallel} needs at least {parallel} GPUs, {len(visible)} visible "
            f"({', '.join(visible)}): a GPU is never shared by two stages"
        )
    per = len(visible) // parallel
    return [list(visible[i * per : (i + 1) * per]) for i in range(parallel)]


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


def reproduce(
    recipe: Recipe,
    run_dir: str | os.PathLike | None = None,
    *,
    dry_run: bool = False,
    only: Sequence[str] | None = None,
    push: bool = False,
    parallel: int = 1,
    log: Callable[[str], None] = print,
) -> ReproduceResult:
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
    from raitner_hub.progress import quiet_progress

    quiet = quiet_progress()  # the run prints one line per stage; per-map bars would drown them
    quiet.__enter__()
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
        quiet.__exit__(None, None, None)
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
        log(
            f"[{position[stage.id]}/{total}] {stage.id} ({_cost_text(stage)}); ETA for this and the rest: "
            f"{eta.remaining(pending)}"
        )

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
            proc = subprocess.Popen(
                [sys.executable, "-m", "raitner_hub.reproduce", str(recipe_path), str(plan.run_dir), stage.id], env=env
            )
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
    from raitner_hub.benchmarks import BENCHMARKS

    # evaluation reports hold every test sentence (predictions.jsonl): a benchmark whose license forbids
    # redistribution (Boson, CMeEE...) may only go to private repos
    restricted = [n for n in recipe.benchmarks.names if not BENCHMARKS[n].redistributable]
    if restricted and not recipe.private:
        raise ConfigError(
            f"--push: {', '.join(restricted)} may not be redistributed and the evaluation reports "
            "contain their text; push privately (--set private=true) or drop them"
        )
    local = [recipe.base_model_of(a) for a in recipe.arms if Path(recipe.base_model_of(a)).is_dir()]
    if local and not recipe.base_model_repo_id:
        raise ConfigError(
            f"--push: base model {local[0]} is a local folder; set base_model_repo_id to its Hub id "
            "so the pushed adapters load elsewhere"
        )


def repo_name(recipe: Recipe, stage: Stage) -> str:
    """``<ns>/<recipe>-<size>-s<seed>-<arm>`` (adapters), ``...-data`` (builds), ``...-pool`` (pools)."""
    meta = stage.meta
    if stage.kind == "build":  # a recipe with several k has one build per k: build/5k-s42-k4
        tail = "data" + stage.id[len(f"build/{meta['cell']}") :]
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
            result = hub.push_folder(
                folder,
                repo_name(recipe, stage),
                repo_type="dataset",
                private=recipe.private,
                commit_message=f"raitner reproduce {recipe.name}: {stage.id}",
            )
            refs[stage.id] = result.ref
        elif stage.kind == "train":
            build = by_id[stage.deps[0]]
            repo = repo_name(recipe, stage)
            hub.push_adapter(
                folder / "adapter",
                repo,
                private=recipe.private,
                commit_message=f"raitner reproduce {recipe.name}: {stage.id}",
            )
            data_ref = refs[build.id]
            linked = hub.update_model_card(
                repo,
                lambda card, d=data_ref, s=stage: _link_provenance(card, d, s),
                commit_message="Link the training data (raitner reproduce)",
            )
            refs[stage.id] = linked.ref
        elif stage.kind == "evaluate":
            train = next(by_id[d] for d in stage.deps if by_id[d].kind == "train")
            report_dir = folder / stage.meta["mode"]
            results = json.loads((report_dir / "results.json").read_text(encoding="utf-8"))
            url = push_report(EvalReport(report_dir, [], None, results), refs[train.id].split("@")[0])
            refs[stage.id] = url
        elif stage.kind == "table":
            result = hub.push_folder(
                folder,
                f"{recipe.namespace}/{recipe.name}-results",
                repo_type="dataset",
                private=recipe.private,
                commit_message=f"raitner reproduce {recipe.name}",
            )
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
    section = (
        f"\n## Provenance (raitner reproduce)\n\nTrained on [`{data_ref}`](https://huggingface.co/datasets/"
        f"{repo}/tree/{data_ref.split('@')[1]}) (config `{stage.meta['dataset_config']}`), seed "
        f"{stage.meta['seed']}, stage key `{stage.key}`.\n"
    )
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
