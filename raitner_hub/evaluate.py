"""Zero-shot evaluation on NER benchmarks (paper.md §6) in three retrieval modes, written as a report folder.

Protocol: for every test sentence and every label of the benchmark's label set (in order; a conversation
file's passage: its own questions, as UniNER scores its test files), one chat
(prefix + question, answer slot open), greedy decoding; the raw outputs are scored with both metrics of
:mod:`raitner_hub.metrics` (UniNER set-F1 and strict span F1) and unparseable answers are counted.

Modes (paper.md §4.5), demonstrations retrieved once per distinct sentence and shared by its questions:

- ``none``: no examples (the paper's main tables).
- ``out-domain``: examples from ``pool``, a :class:`~raitner_hub.retrieval.RetrievalIndex` (repo or folder)
  of the model's own training data. Default strategy ``bm25_filter.v1`` (NN top 128, kept when BM25 >= 20),
  the paper's advice for out-of-domain examples.
- ``in-domain``: an index built over the benchmark's ``train`` split (all of it, or ``in_domain_pool_size``
  rows drawn with ``random.seed(seed); random.sample``), ``nn.v1``, top 8, k = 2, gold labels under the
  benchmark's label names. Embedder: ``embedder`` (default GTE-large for English, as the paper; BM25 over
  jieba tokens for Chinese, the offline choice).

Report folder: ``results.json``, ``predictions.jsonl`` (one row per question), ``results.md``,
``results.png`` and ``manifest.json``. :func:`apply_model_index` writes the results as ``model-index``
into a model card.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raitner_hub.config import EvaluateConfig
from raitner_hub.errors import ConfigError

MODES = ("none", "out-domain", "in-domain")
DEFAULT_STRATEGY = {"out-domain": "bm25_filter.v1", "in-domain": "nn.v1"}
DEFAULT_TOP_K = {"out-domain": 128, "in-domain": 8}
MODE_TITLES = {"none": "no examples", "out-domain": "out-of-domain examples", "in-domain": "in-domain examples"}


@dataclass
class EvalReport:
    """What :func:`evaluate_model` wrote: the report folder, per-dataset scores and their average."""

    folder: Path
    scores: list  # list[metrics.DatasetScores]
    average: Any  # metrics.DatasetScores
    results: dict = field(default_factory=dict)  # the content of results.json


# ---- benchmarks ----------------------------------------------------------------------------------------


def _quietly(fn, *args, **kwargs):
    """Run ``fn`` without datasets' per-file progress bars (the CLI prints one summary line)."""
    from raitner_hub.progress import quiet_progress

    with quiet_progress():
        return fn(*args, **kwargs)


def _load_benchmarks(
    source: str | None,
    names: Sequence[str] | None,
    files: Sequence[str],
    labels,
    label_map,
    split: str,
    with_train: bool,
):
    """(benchmarks, provenance): configs of a benchmarks repo/folder, and/or benchmark files by path."""
    from raitner_hub.benchmarks import load_benchmark, read_benchmarks_meta

    loaded, provenance = [], {"source": source, "revision": None, "files": list(map(str, files))}
    if source is not None:
        from raitner_hub.hub import resolve

        patterns = ["benchmarks.json", "README.md"] + [f"data/{n}/*" for n in names or ["*"]]
        resolved = resolve(source, repo_type="dataset", allow_patterns=patterns)
        folder = Path(str(resolved.path))
        if not resolved.is_local:
            provenance["revision"] = resolved.sha
        else:
            from raitner_hub.manifest import input_fingerprint

            provenance["revision"] = "sha256:" + input_fingerprint(folder / "benchmarks.json")
        meta = read_benchmarks_meta(folder)
        unknown = [n for n in names or [] if n not in meta]
        if unknown:
            raise ConfigError(f"unknown dataset(s) {', '.join(unknown)} in {source}; it has: {', '.join(meta)}")
        for name in names or list(meta):
            bench = _quietly(load_benchmark, name, split, folder=folder)
            has_train = with_train and "train" in meta[name].get("splits", {})
            loaded.append((bench, _quietly(load_benchmark, name, "train", folder=folder) if has_train else None))
    for file in files:
        bench = _quietly(load_benchmark, str(file), split, label_map=label_map)
        if labels:
            # `--labels "person, location"`: a name with a stray space would match no gold label.
            asked = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
            if not asked:
                raise ConfigError(f"--labels names no entity type: {','.join(labels)!r}")
            bench.label_set = asked
            bench.info["labels_given"] = True
        loaded.append((bench, _train_of_hub_file(str(file), label_map) if with_train else None))
    if not loaded:
        raise ConfigError("nothing to evaluate: give --benchmarks REPO_OR_FOLDER and/or --file PATH")
    return loaded, provenance


def _train_of_hub_file(file: str, label_map):
    """The in-domain pool of a Hub split given as ``--file org/name:config:test``: its ``train`` split."""
    from raitner_hub.benchmarks import load_benchmark
    from raitner_hub.formats import parse_hub_source

    spec = None if Path(file).exists() else parse_hub_source(file)
    if spec is None:
        return None
    at = f"@{spec['revision']}" if spec["revision"] else ""
    return _quietly(load_benchmark, f"{spec['repo']}{at}:{spec['config'] or ''}:train", "train", label_map=label_map)


# ---- demonstrations ------------------------------------------------------------------------------------


def _demos_for(
    bench,
    train,
    texts: list[str],
    *,
    mode: str,
    pool_index,
    strategy: str | None,
    k: int,
    top_k: int | None,
    seed: int,
    in_domain_pool_size: int | None,
    embedder: str | None,
) -> tuple[dict, dict]:
    from raitner_hub.augment import retrieve_demos

    if mode == "none":
        return {}, {}
    index, info = pool_index, {}
    if mode == "in-domain":
        if train is None or len(train.dataset) == 0:
            raise ConfigError(f"benchmark {bench.name!r} has no train split: in-domain retrieval needs one")
        from raitner_hub.retrieval import RetrievalIndex

        pool = train.dataset
        if in_domain_pool_size and in_domain_pool_size < len(pool):
            pool = pool.select(sorted(random.Random(seed).sample(range(len(pool)), in_domain_pool_size)))
        embedder = embedder or ("bm25" if bench.lang == "zh" else None)
        index = RetrievalIndex.build(
            pool, lang=bench.lang, embedder=embedder, progress=False, pool_source=f"{bench.name}/train"
        )
        info = {"pool_size": len(pool), "embedder": embedder or "default (GTE-large)"}
    assert strategy is not None and top_k is not None  # every retrieval mode has defaults (DEFAULT_STRATEGY/TOP_K)
    found = retrieve_demos(
        index, texts, strategy=strategy, k=min(k, len(index)), top_k=min(top_k, len(index)), seed=seed
    )
    return {text: tuple(demos) for text, demos in zip(texts, found)}, info


# ---- the run: load, run, write ----------------------------------------------------------------------------


@dataclass
class EvalInputs:
    """What :func:`load_inputs` prepared: benchmarks (with train splits for in-domain), the pool, the model."""

    loaded: list  # [(Benchmark, train Benchmark or None)]
    provenance: dict
    pool_index: Any  # RetrievalIndex or None
    ner: Any  # predict.NER
    strategy: str | None
    top_k: int | None


@dataclass
class EvalRun:
    """What :func:`run` scored: one row per question, per-dataset scores and the templates used."""

    rows: list
    scores: list
    per_dataset: dict
    templates: set


def settings_from(
    model_or_adapter=None, benchmarks: str | None = None, *, config: EvaluateConfig | None = None, **settings: Any
) -> EvaluateConfig:
    """An ``EvaluateConfig`` from a config and/or keyword settings (keywords win); keywords that are not
    ``EvaluateConfig`` fields are ``NER.from_pretrained`` options (``predictor``)."""
    names = {f.name for f in dataclasses.fields(EvaluateConfig)}
    given = {k: v for k, v in settings.items() if k in names}
    predictor = {k: v for k, v in settings.items() if k not in names}
    if model_or_adapter is not None:
        given["model"] = (
            model_or_adapter
            if isinstance(model_or_adapter, (str, Path))
            else getattr(model_or_adapter, "model_id", "model")
        )
        given["model"] = str(given["model"])
    if benchmarks is not None:
        given["benchmarks"] = str(benchmarks)
    for key in ("files", "datasets", "labels"):
        if given.get(key) is not None:
            given[key] = tuple(str(v) for v in given[key])
    if "out" in given:
        given["out"] = str(given["out"])
    if config is None:
        config = EvaluateConfig(**given)
    else:
        config = dataclasses.replace(config, **given)
    return dataclasses.replace(config, predictor={**config.predictor, **predictor}) if predictor else config


def load_inputs(config: EvaluateConfig, model=None) -> EvalInputs:
    """Check the settings, then load the benchmarks, the out-domain pool and the model (or use ``model``)."""
    from raitner_hub.predict import NER

    if config.mode not in MODES:
        raise ConfigError(f"unknown mode {config.mode!r}; choose one of {', '.join(MODES)}")
    if config.mode == "out-domain" and config.pool is None:
        raise ConfigError("--mode out-domain needs --pool (a retrieval index repo or folder of the training data)")
    loaded, provenance = _load_benchmarks(
        config.benchmarks,
        config.datasets,
        config.files,
        config.labels,
        config.label_map,
        config.split,
        with_train=config.mode == "in-domain",
    )
    pool_index = None
    if config.mode == "out-domain":
        from raitner_hub.retrieval import RetrievalIndex

        pool = config.pool
        pool_index = pool if isinstance(pool, RetrievalIndex) else RetrievalIndex.from_pretrained(str(pool))
    # a loaded predictor (NER, or the GLiNER backend's GLiNERPredictor) is used as is
    ner = (
        model
        if model is not None
        else NER.from_pretrained(
            config.model,
            revision=config.revision,
            backend=config.backend,
            device=config.device,
            chat_template=config.chat_template,
            max_new_tokens=config.max_new_tokens,
            batch_size=config.batch_size,
            **config.predictor,
        )
    )
    return EvalInputs(
        loaded,
        provenance,
        pool_index,
        ner,
        config.strategy or DEFAULT_STRATEGY.get(config.mode),
        config.top_k or DEFAULT_TOP_K.get(config.mode),
    )


def run(inputs: EvalInputs, config: EvaluateConfig, *, progress: bool = False) -> EvalRun:
    """Retrieve demonstrations, generate every answer and score each benchmark with both metrics."""
    from raitner_hub import metrics
    from raitner_hub.predict import Query

    ner, out = inputs.ner, EvalRun([], [], {}, set())
    for bench, train in _progress(inputs.loaded, progress):
        ds = (
            bench.dataset
            if config.limit is None
            else bench.dataset.select(range(min(config.limit, len(bench.dataset))))
        )
        passages = list(ds)
        texts = [p["text"] for p in passages]
        demos, pool_info = _demos_for(
            bench,
            train,
            list(dict.fromkeys(texts)),
            mode=config.mode,
            pool_index=inputs.pool_index,
            strategy=inputs.strategy,
            k=config.k,
            top_k=inputs.top_k,
            seed=config.seed,
            in_domain_pool_size=config.in_domain_pool_size,
            embedder=config.embedder,
        )
        # the benchmark's language picks the templates, passed with every question (no predictor state)
        conv, demo_tmpl = ner.templates_for(texts[0] if texts else "", bench.lang)
        out.templates.add((conv.name, demo_tmpl.name))
        asked = [_questions(p, bench) for p in passages]
        queries = [
            Query(p["text"], label, demos.get(p["text"], ()), bench.lang)
            for p, labels in zip(passages, asked)
            for label in labels
        ]
        outputs = ner.generate_answers(queries)
        uniner, strict = metrics.Counts(), metrics.Counts()
        for query, output, passage in zip(queries, outputs, (p for p, labels in zip(passages, asked) for _ in labels)):
            row = question_row(bench.name, passage, query.label, output, [d.id for d in query.demos])
            uniner = uniner + metrics.uniner_counts([output], [row["gold"]])
            strict = strict + _strict(row)
            out.rows.append(row)
        score = metrics.DatasetScores.from_counts(bench.name, uniner, strict, n=len(queries))
        out.scores.append(score)
        out.per_dataset[bench.name] = {
            **score.as_dict(),
            "lang": bench.lang,
            "split": bench.split,
            "sentences": len(passages),
            "split_size": len(bench.dataset),
            "label_set": bench.label_set,
            "pool": pool_info,
            "source": bench.info.get("source"),
        }
    return out


def _progress(items: list, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(items, desc="evaluating", unit="benchmark", disable=not enabled or len(items) < 2, leave=False)


def write_report(scored: EvalRun, inputs: EvalInputs, config: EvaluateConfig, *, started: float) -> EvalReport:
    """Write results.json, predictions.jsonl, results.md, results.png and manifest.json atomically."""
    from raitner_hub import metrics
    from raitner_hub.artefacts import staged_folder
    from raitner_hub.manifest import build_manifest, scrub_paths, write_manifest

    ner, mode = inputs.ner, config.mode
    average = metrics.average(scored.scores)
    results = {
        "model": {"id": ner.model_id, "revision": ner.revision, "backend": ner.backend},
        "benchmarks": inputs.provenance,
        "mode": mode,
        "strategy": inputs.strategy if mode != "none" else None,
        "k": config.k if mode != "none" else 0,
        "top_k": inputs.top_k if mode != "none" else None,
        "seed": config.seed,
        "pool": str(config.pool) if mode == "out-domain" else None,
        "limit": config.limit,
        "templates": sorted({name for pair in scored.templates for name in pair}),
        "max_new_tokens": ner.max_new_tokens,
        "datasets": scored.per_dataset,
        "average": average.as_dict(),
        "unparsed": sum(s.unparsed for s in scored.scores),
        "predictor_stats": dict(ner.stats),
    }
    with staged_folder(config.out) as stage:
        # published as is by push_report: local paths (model folder, benchmark files) made relative/basenames
        (stage / "results.json").write_text(
            json.dumps(scrub_paths(results), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        with open(stage / "predictions.jsonl", "w", encoding="utf-8") as fh:
            for row in scored.rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        (stage / "results.md").write_text(markdown_table(results), encoding="utf-8")
        bar_chart(results, stage / "results.png")
        write_manifest(
            stage,
            build_manifest(
                "eval_report",
                started=started,
                settings={
                    **{k_: results[k_] for k_ in ("mode", "strategy", "k", "top_k", "seed", "limit", "templates")},
                    "max_new_tokens": ner.max_new_tokens,
                },
                inputs={
                    "model": f"{ner.model_id}@{ner.revision or 'main'}",
                    "benchmarks": inputs.provenance,
                    "pool": results["pool"],
                },
                counts={"questions": len(scored.rows), "datasets": len(scored.scores), "unparsed": results["unparsed"]},
            ),
        )
    return EvalReport(Path(config.out).resolve(), scored.scores, average, results)


def evaluate_model(
    model_or_adapter=None,
    benchmarks: str | None = None,
    *,
    config: EvaluateConfig | None = None,
    progress: bool = False,
    **settings: Any,
) -> EvalReport:
    """Evaluate a model or adapter on benchmarks and write a report folder: load, run, write.

    Args:
        model_or_adapter: a Hub id or folder (loaded with :meth:`NER.from_pretrained`), or an ``NER``;
            None = ``config.model``.
        benchmarks: a benchmarks dataset repo or folder (``raitner push-benchmarks``).
        config: an :class:`~raitner_hub.config.EvaluateConfig`; ``settings`` (its field names, e.g.
            ``datasets``, ``files``, ``mode``, ``pool``, ``limit``, ``out``) override it. Other keywords are
            ``NER.from_pretrained`` options.
        progress: a bar over benchmarks.

    Example:
        >>> report = evaluate_model("me/ra-it-lora", "me/ner-benchmarks", datasets=["crossner_ai"],
        ...                         mode="none", out="eval/none")  # doctest: +SKIP
        >>> report.average.uniner_f1  # doctest: +SKIP
    """
    started = time.time()
    cfg = settings_from(model_or_adapter, benchmarks, config=config, **settings)
    inputs = load_inputs(cfg, model_or_adapter if not isinstance(model_or_adapter, (str, Path)) else None)
    return write_report(run(inputs, cfg, progress=progress), inputs, cfg, started=started)


def _questions(passage: dict, bench) -> list[str]:
    """The types asked about a passage: a conversation file's own questions, in its order (UniNER scores
    every item of its test files), unless ``--labels`` chose them; else the benchmark's label set."""
    from raitner_hub.readers import input_questions

    qa = None if bench.info.get("labels_given") else input_questions(passage)  # type: ignore[arg-type]
    return bench.label_set if qa is None else list(dict.fromkeys(label for label, _ in qa))


def question_row(dataset: str, passage: dict, label: str, output: str, demo_ids: list[str]) -> dict:
    """One ``predictions.jsonl`` row: everything both metrics need to be recomputed from the file.

    Gold is the passage's own answer where the benchmark file asked questions (UniNER's test files: their
    answer lists, as UniNER scores them), else the distinct mentions of its entities of that type."""
    from raitner_hub.metrics import answers_to_entities, parse_answer
    from raitner_hub.readers import gold_answers

    parsed = parse_answer(output)
    entities, unfound = answers_to_entities(passage["text"], {label: parsed or []})
    located = getattr(output, "entities", None)
    if located is not None:  # the backend located its entities itself (GLiNER)
        entities, unfound = list(located), {}
    return {
        "dataset": dataset,
        "id": passage["id"],
        "label": label,
        "output": output,
        "parsed": parsed,
        "gold": gold_answers(passage).get(label, []),  # type: ignore[arg-type]
        "gold_entities": [dict(e) for e in passage["entities"] if e["label"] == label],
        "entities": [dict(e) for e in entities],
        "unfound": unfound.get(label, 0),
        "demos": demo_ids,
    }


def _strict(row: dict):
    from raitner_hub.metrics import strict_span_counts

    return strict_span_counts(
        row["entities"], row["gold_entities"], labels=[row["label"]], unfound={row["label"]: row["unfound"]}
    ).total


def scores_from_predictions(path: str | Path) -> dict[str, Any]:
    """Recompute per-dataset scores from a ``predictions.jsonl`` (what the report's numbers must equal)."""
    from raitner_hub import metrics

    by_dataset: dict[str, list[dict]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_dataset.setdefault(row["dataset"], []).append(row)
    out = {}
    for name, rows in by_dataset.items():
        uniner = metrics.uniner_counts([r["output"] for r in rows], [r["gold"] for r in rows])
        strict = sum((_strict(r) for r in rows), metrics.Counts())
        out[name] = metrics.DatasetScores.from_counts(name, uniner, strict, n=len(rows))
    return out


# ---- rendering -----------------------------------------------------------------------------------------


def markdown_table(results: dict) -> str:
    head = (
        f"# Evaluation: {results['model']['id']} ({MODE_TITLES[results['mode']]})\n\n"
        "| dataset | UniNER P | UniNER R | UniNER F1 | strict P | strict R | strict F1 | questions | unparsed |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for s in [*results["datasets"].values(), results["average"]]:
        name = s["dataset"] if s["dataset"] != "average" else "**average**"
        lines.append(
            f"| {name} | {s['uniner_p']:.2f} | {s['uniner_r']:.2f} | {s['uniner_f1']:.2f} | "
            f"{s['strict_p']:.2f} | {s['strict_r']:.2f} | {s['strict_f1']:.2f} | {s['n']} | {s['unparsed']} |"
        )
    notes = (
        f"\nTemplates: {', '.join(results['templates'])}. Strategy: {results['strategy'] or '-'}, "
        f"k = {results['k']}. Average = unweighted mean over datasets.\n"
    )
    return head + "\n".join(lines) + "\n" + notes


def bar_chart(results: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [*results["datasets"].values(), results["average"]]
    names = [r["dataset"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(rows) + 1.5), 3.2), dpi=100)
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["uniner_f1"] for r in rows], width=0.4, label="UniNER micro-F1")
    ax.bar([x + 0.2 for x in xs], [r["strict_f1"] for r in rows], width=0.4, label="strict span micro-F1")
    ax.set_xticks(list(xs), names, rotation=30, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("F1 (%)")
    ax.set_title(f"{results['model']['id']}: {MODE_TITLES[results['mode']]}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# ---- model-index ---------------------------------------------------------------------------------------

# Display names of the paper's benchmarks (model-index ``dataset.name``; the config name stays the id).
DATASET_NAMES = {
    "crossner_ai": "CrossNER AI",
    "crossner_literature": "CrossNER Literature",
    "crossner_music": "CrossNER Music",
    "crossner_politics": "CrossNER Politics",
    "crossner_science": "CrossNER Science",
    "mit_movie": "MIT Movie",
    "mit_restaurant": "MIT Restaurant",
    "weibo": "Weibo NER",
    "msra": "MSRA NER",
    "boson": "Boson NER",
    "cluener": "CLUENER",
    "cmeee": "CMeEE",
    "yidu": "Yidu-S4K",
}
# (metric type, results key, metric name): the paper's UniNER metric under the conventional ``f1`` /
# ``precision`` / ``recall`` types, the strict span metric under its own type so the two never collide.
METRICS = (
    ("f1", "uniner_f1", "UniNER micro-F1"),
    ("precision", "uniner_p", "UniNER micro-precision"),
    ("recall", "uniner_r", "UniNER micro-recall"),
    ("span_f1", "strict_f1", "Strict span micro-F1"),
)


def dataset_display_name(name: str) -> str:
    """``crossner_ai`` -> ``CrossNER AI``; an unknown name is title-cased."""
    return DATASET_NAMES.get(name) or name.replace("_", " ").strip().title()


def scored_split(split: str, sentences: int, split_size: int | None) -> str:
    """The split as scored: ``test`` when whole, ``test[:N]`` (datasets' slice syntax) when ``--limit`` cut it."""
    return split if split_size is not None and sentences >= split_size else f"{split}[:{sentences}]"


def eval_results(results: dict, source_url: str | None = None) -> list:
    """``huggingface_hub.EvalResult`` entries (token-classification) for every dataset and metric.

    ``dataset.type`` is the benchmarks repo id, ``dataset.config`` the benchmark, ``dataset.split`` what
    was scored (``test[:N]`` for a ``--limit`` run: a subset is never published as the whole split).
    ``source_url`` (e.g. the pushed report folder) is linked as the results' source when given.
    """
    from huggingface_hub import EvalResult

    source = results["benchmarks"]["source"] or "local-files"
    dataset_type = source if "/" in source and not Path(source).exists() else Path(source).name
    suffix = "" if results["mode"] == "none" else f" ({MODE_TITLES[results['mode']]})"
    out = []
    for name, s in results["datasets"].items():
        split = scored_split(
            s["split"], s["sentences"], s.get("split_size", s["sentences"] if results.get("limit") is None else None)
        )
        for metric_type, key, metric in METRICS:
            out.append(
                EvalResult(
                    task_type="token-classification",
                    task_name="Named Entity Recognition",
                    dataset_type=dataset_type,
                    dataset_name=dataset_display_name(name),
                    dataset_config=name,
                    dataset_split=split,
                    dataset_revision=results["benchmarks"]["revision"],
                    metric_type=metric_type,
                    metric_value=s[key],
                    metric_name=metric + suffix,
                    source_name="raitner-hub evaluate" if source_url else None,
                    source_url=source_url,
                )
            )
    return out


def apply_model_index(card, results: dict, model_name: str, source_url: str | None = None) -> None:
    """Merge ``results`` into ``card.data.eval_results`` (same dataset/config/split/metric name replaced)."""
    new = eval_results(results, source_url)
    keys = {(r.dataset_type, r.dataset_config, r.dataset_split, r.metric_name) for r in new}
    kept = [
        r
        for r in (card.data.eval_results or [])
        if (r.dataset_type, r.dataset_config, r.dataset_split, r.metric_name) not in keys
    ]
    card.data.eval_results = kept + new
    card.data.model_name = card.data.model_name or model_name


def hub_eval_results(results: dict, source_url: str | None = None) -> dict[str, bytes]:
    """The Hub's own ``.eval_results/*.yaml`` files (hub-docs ``eval-results.md``), next to ``model-index``.

    One file per mode and metric (the Hub shows one value per benchmark task and file): an entry per
    benchmark, ``dataset.id`` the benchmarks repo, ``task_id`` the benchmark config, ``notes`` what was
    scored (metric, mode, split or subset). Empty when the benchmarks are not a Hub repo (the format
    needs a Hub dataset id).
    """
    import yaml

    source = results["benchmarks"]["source"] or ""
    if "/" not in source or Path(source).exists():
        return {}
    files = {}
    for metric_type, key, metric in (METRICS[0], METRICS[3]):
        entries = []
        for name, s in results["datasets"].items():
            split = scored_split(
                s["split"],
                s["sentences"],
                s.get("split_size", s["sentences"] if results.get("limit") is None else None),
            )
            dataset = {"id": source, "task_id": name}
            if results["benchmarks"].get("revision"):
                dataset["revision"] = results["benchmarks"]["revision"]
            entry = {"dataset": dataset, "value": s[key]}
            if source_url:
                entry["source"] = {"url": source_url, "name": "raitner-hub evaluation report"}
            entry["notes"] = f"{metric}, {MODE_TITLES[results['mode']]}, split {split}"
            entries.append(entry)
        path = f".eval_results/raitner-{results['mode']}-{metric_type}.yaml"
        files[path] = yaml.safe_dump(entries, sort_keys=False, allow_unicode=True).encode("utf-8")
    return files


def push_report(
    report: EvalReport,
    repo_id: str,
    *,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
):
    """Upload the report under ``eval_results/<folder>/`` of the model repo, merge ``model-index`` into its
    card (the rest of the card is kept) and write the Hub's ``.eval_results/`` files, all in ONE commit.

    ``create_pr`` opens a pull request instead (contributing results to somebody else's model).
    Returns the :class:`~raitner_hub.hub.PushResult`; ``report_url(result, report)`` is the folder's URL.
    """
    from raitner_hub import hub

    url = report_url(hub.repo_url(repo_id), report.folder.name, revision)
    return hub.push_results(
        report.folder,
        repo_id,
        revision=revision,
        create_pr=create_pr,
        commit_message=commit_message or f"Add evaluation results and model-index ({report.results['mode']})",
        card_mutate=lambda card: apply_model_index(card, report.results, repo_id.split("/")[-1], url),
        files=hub_eval_results(report.results, url),
    )


def report_url(repo_url: str, folder_name: str, revision: str | None = None) -> str:
    return f"{repo_url}/tree/{revision or 'main'}/eval_results/{folder_name}"
