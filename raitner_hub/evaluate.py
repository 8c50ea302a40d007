"""Zero-shot evaluation on NER benchmarks (paper.md §6) in three retrieval modes, written as a report folder.

Protocol: for every test sentence and every label of the benchmark's label set (in order), one chat
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

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from raitner_hub.errors import ConfigError
from raitner_hub.records import mentions_by_label

MODES = ("none", "out-domain", "in-domain")
DEFAULT_STRATEGY = {"out-domain": "bm25_filter.v1", "in-domain": "nn.v1"}
DEFAULT_TOP_K = {"out-domain": 128, "in-domain": 8}
MODE_TITLES = {"none": "no examples", "out-domain": "out-of-domain examples", "in-domain": "in-domain examples"}
MAX_NEW_TOKENS = 1024  # RA-IT's evaluation scripts (paper.md §6.2; UniNER used 256)


@dataclass
class EvalReport:
    """What :func:`evaluate` wrote: the report folder, per-dataset scores and their average."""

    folder: Path
    scores: list  # list[metrics.DatasetScores]
    average: Any  # metrics.DatasetScores
    results: dict = field(default_factory=dict)  # the content of results.json


# ---- benchmarks ----------------------------------------------------------------------------------------

def _quietly(fn, *args, **kwargs):
    """Run ``fn`` without datasets' per-file progress bars (the CLI prints one summary line)."""
    import datasets

    enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        return fn(*args, **kwargs)
    finally:
        if enabled:
            datasets.enable_progress_bars()


def _load_benchmarks(source: str | None, names: Sequence[str] | None, files: Sequence[str], labels, label_map,
                     split: str, with_train: bool):
    """(benchmarks, provenance): configs of a benchmarks repo/folder, and/or benchmark files by path."""
    from raitner_hub.benchmarks import load_benchmark, read_benchmarks_meta

    loaded, provenance = [], {"source": source, "revision": None, "files": list(map(str, files))}
    if source is not None:
        folder = Path(source)
        if not folder.is_dir():
            from raitner_hub.hub import pull_artefact

            patterns = ["benchmarks.json", "README.md"] + [f"data/{n}/*" for n in names or ["*"]]
            pulled = pull_artefact(source, repo_type="dataset", allow_patterns=patterns)
            folder, provenance["revision"] = pulled.path, pulled.sha
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
        loaded.append((bench, None))
    if not loaded:
        raise ConfigError("nothing to evaluate: give --benchmarks REPO_OR_FOLDER and/or --file PATH")
    return loaded, provenance


# ---- demonstrations ------------------------------------------------------------------------------------

def _demos_for(bench, train, texts: list[str], *, mode: str, pool_index, strategy: str, k: int, top_k: int,
               seed: int, in_domain_pool_size: int | None, embedder: str | None) -> tuple[dict, dict]:
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
        index = RetrievalIndex.build(pool, lang=bench.lang, embedder=embedder, progress=False,
                                     pool_source=f"{bench.name}/train")
        info = {"pool_size": len(pool), "embedder": embedder or "default (GTE-large)"}
    found = retrieve_demos(index, texts, strategy=strategy, k=min(k, len(index)), top_k=min(top_k, len(index)),
                           seed=seed)
    return {text: tuple(demos) for text, demos in zip(texts, found)}, info


# ---- the run -------------------------------------------------------------------------------------------

def evaluate_model(model_or_adapter, benchmarks: str | None = None, *, datasets: Sequence[str] | None = None,
             files: Sequence[str] = (), labels: Sequence[str] | None = None, label_map=None,
             mode: str = "none", pool=None, limit: int | None = None,
             k: int = 2, strategy: str | None = None, top_k: int | None = None,
             in_domain_pool_size: int | None = None, embedder: str | None = None, seed: int = 42,
             split: str = "test", out: str | Path = "eval_report", revision: str | None = None,
             **predictor_options: Any) -> EvalReport:
    """Evaluate a model or adapter on benchmarks and write a report folder.

    Args:
        model_or_adapter: a Hub id or folder (loaded with :meth:`NER.from_pretrained`; ``backend="gliner"``
            for a GLiNER checkpoint), or a loaded predictor (``NER``, ``GLiNERPredictor``).
        benchmarks: a benchmarks dataset repo or folder (``raitner push-benchmarks``); ``datasets`` picks
            configs (default: all). ``files`` adds benchmark files by path (``label_map``: a map name,
            JSON path or dict for their tags; ``labels``: the labels to ask, default all found).
        mode: ``none`` | ``out-domain`` (needs ``pool``) | ``in-domain``.
        limit: the first N sentences of each test split only.

    Example:
        >>> report = evaluate_model("me/ra-it-lora", "me/ner-benchmarks", datasets=["crossner_ai"],
        ...                   mode="none", out="eval/none")  # doctest: +SKIP
        >>> report.average.uniner_f1  # doctest: +SKIP
    """
    from raitner_hub import metrics
    from raitner_hub.artefacts import staged_folder
    from raitner_hub.manifest import build_manifest, write_manifest
    from raitner_hub.predict import NER, Query

    started = time.time()
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "out-domain" and pool is None:
        raise ConfigError("--mode out-domain needs --pool (a retrieval index repo or folder of the training data)")
    strategy = strategy or DEFAULT_STRATEGY.get(mode)
    top_k = top_k or DEFAULT_TOP_K.get(mode)
    loaded, provenance = _load_benchmarks(benchmarks, datasets, files, labels, label_map, split,
                                          with_train=mode == "in-domain")
    pool_index = None
    if mode == "out-domain":
        from raitner_hub.retrieval import RetrievalIndex

        pool_index = pool if isinstance(pool, RetrievalIndex) else RetrievalIndex.from_pretrained(str(pool))
    ner = model_or_adapter if not isinstance(model_or_adapter, (str, Path)) else NER.from_pretrained(
        model_or_adapter, revision=revision, **{"max_new_tokens": MAX_NEW_TOKENS, **predictor_options})

    scores, rows, per_dataset, templates, user_lang = [], [], {}, set(), ner.lang
    for bench, train in loaded:
        ds = bench.dataset if limit is None else bench.dataset.select(range(min(limit, len(bench.dataset))))
        passages = list(ds)
        texts = [p["text"] for p in passages]
        demos, pool_info = _demos_for(bench, train, list(dict.fromkeys(texts)), mode=mode, pool_index=pool_index,
                                      strategy=strategy, k=k, top_k=top_k, seed=seed,
                                      in_domain_pool_size=in_domain_pool_size, embedder=embedder)
        ner.lang = bench.lang  # the benchmark's language picks the templates
        conv, demo_tmpl = ner.templates_for(texts[0] if texts else "")
        templates.add((conv.name, demo_tmpl.name))
        queries = [Query(p["text"], label, demos.get(p["text"], ())) for p in passages for label in bench.label_set]
        outputs = ner.generate_answers(queries)
        uniner, strict = metrics.Counts(), metrics.Counts()
        for query, output, passage in zip(queries, outputs, (p for p in passages for _ in bench.label_set)):
            row = question_row(bench.name, passage, query.label, output, [d.id for d in query.demos])
            uniner = uniner + metrics.uniner_counts([output], [row["gold"]])
            strict = strict + _strict(row)
            rows.append(row)
        score = metrics.DatasetScores.from_counts(bench.name, uniner, strict, n=len(queries))
        scores.append(score)
        per_dataset[bench.name] = {**score.as_dict(), "lang": bench.lang, "split": bench.split,
                                   "sentences": len(passages), "label_set": bench.label_set,
                                   "pool": pool_info, "source": bench.info.get("source")}
    ner.lang = user_lang
    average = metrics.average(scores)
    results = {
        "model": {"id": ner.model_id, "revision": ner.revision, "backend": ner.backend},
        "benchmarks": provenance, "mode": mode, "strategy": strategy if mode != "none" else None,
        "k": k if mode != "none" else 0, "top_k": top_k if mode != "none" else None, "seed": seed,
        "pool": str(pool) if mode == "out-domain" else None, "limit": limit,
        "templates": sorted({name for pair in templates for name in pair}),
        "max_new_tokens": ner.max_new_tokens, "datasets": per_dataset, "average": average.as_dict(),
        "unparsed": sum(s.unparsed for s in scores), "predictor_stats": dict(ner.stats),
    }
    with staged_folder(out) as stage:
        (stage / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        with open(stage / "predictions.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        (stage / "results.md").write_text(markdown_table(results), encoding="utf-8")
        bar_chart(results, stage / "results.png")
        write_manifest(stage, build_manifest(
            "eval_report", started=started,
            # (the manifest refuses keys containing "token": the generation limit is recorded as max_new)
            settings={**{k_: results[k_] for k_ in ("mode", "strategy", "k", "top_k", "seed", "limit", "templates")},
                      "max_new": ner.max_new_tokens},
            inputs={"model": f"{ner.model_id}@{ner.revision or 'main'}", "benchmarks": provenance,
                    "pool": results["pool"]},
            counts={"questions": len(rows), "datasets": len(scores), "unparsed": results["unparsed"]}))
    return EvalReport(Path(out).resolve(), scores, average, results)


def question_row(dataset: str, passage: dict, label: str, output: str, demo_ids: list[str]) -> dict:
    """One ``predictions.jsonl`` row: everything both metrics need to be recomputed from the file."""
    from raitner_hub.metrics import answers_to_entities, parse_answer

    parsed = parse_answer(output)
    entities, unfound = answers_to_entities(passage["text"], {label: parsed or []})
    if getattr(output, "entities", None) is not None:  # the backend located its entities itself (GLiNER)
        entities, unfound = list(output.entities), {}
    return {"dataset": dataset, "id": passage["id"], "label": label, "output": output, "parsed": parsed,
            "gold": mentions_by_label(passage["entities"]).get(label, []),
            "gold_entities": [dict(e) for e in passage["entities"] if e["label"] == label],
            "entities": [dict(e) for e in entities], "unfound": unfound.get(label, 0), "demos": demo_ids}


def _strict(row: dict):
    from raitner_hub.metrics import strict_span_counts

    return strict_span_counts(row["entities"], row["gold_entities"], labels=[row["label"]],
                              unfound={row["label"]: row["unfound"]}).total


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
    head = (f"# Evaluation: {results['model']['id']} ({MODE_TITLES[results['mode']]})\n\n"
            "| dataset | UniNER P | UniNER R | UniNER F1 | strict P | strict R | strict F1 | questions | unparsed |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for s in [*results["datasets"].values(), results["average"]]:
        name = s["dataset"] if s["dataset"] != "average" else "**average**"
        lines.append(f"| {name} | {s['uniner_p']:.2f} | {s['uniner_r']:.2f} | {s['uniner_f1']:.2f} | "
                     f"{s['strict_p']:.2f} | {s['strict_r']:.2f} | {s['strict_f1']:.2f} | {s['n']} | {s['unparsed']} |")
    notes = (f"\nTemplates: {', '.join(results['templates'])}. Strategy: {results['strategy'] or '-'}, "
             f"k = {results['k']}. Average = unweighted mean over datasets.\n")
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

def eval_results(results: dict, source_url: str | None = None) -> list:
    """``huggingface_hub.EvalResult`` entries (token-classification) for every dataset and metric.

    ``source_url`` (e.g. the pushed report folder) is linked as the results' source when given.
    """
    from huggingface_hub import EvalResult

    source = results["benchmarks"]["source"] or "local-files"
    dataset_type = source if "/" in source and not Path(source).exists() else Path(source).name
    suffix = "" if results["mode"] == "none" else f" ({MODE_TITLES[results['mode']]})"
    out = []
    for name, s in results["datasets"].items():
        for metric_type, key, metric in (("f1", "uniner_f1", "UniNER micro-F1"),
                                         ("precision", "uniner_p", "UniNER micro-precision"),
                                         ("recall", "uniner_r", "UniNER micro-recall"),
                                         ("f1", "strict_f1", "Strict span micro-F1")):
            out.append(EvalResult(task_type="token-classification", task_name="Named Entity Recognition",
                                  dataset_type=dataset_type, dataset_name=name, dataset_config=name,
                                  dataset_split=s["split"], dataset_revision=results["benchmarks"]["revision"],
                                  metric_type=metric_type, metric_value=s[key], metric_name=metric + suffix,
                                  source_name="raitner-hub evaluate" if source_url else None,
                                  source_url=source_url))
    return out


def apply_model_index(card, results: dict, model_name: str, source_url: str | None = None) -> None:
    """Merge ``results`` into ``card.data.eval_results`` (same dataset/config/split/metric name replaced)."""
    new = eval_results(results, source_url)
    keys = {(r.dataset_type, r.dataset_config, r.dataset_split, r.metric_name) for r in new}
    kept = [r for r in (card.data.eval_results or [])
            if (r.dataset_type, r.dataset_config, r.dataset_split, r.metric_name) not in keys]
    card.data.eval_results = kept + new
    card.data.model_name = card.data.model_name or model_name


def push_report(report: EvalReport, repo_id: str, *, revision: str | None = None) -> str:
    """Upload the report under ``eval_results/<folder>/`` of the model repo and merge ``model-index`` into
    its card (the rest of the card is kept). Returns the URL of the pushed report folder."""
    from raitner_hub import hub

    pushed = hub.push_results(report.folder, repo_id, revision=revision)
    url = f"{pushed.url}/tree/{revision or 'main'}/eval_results/{report.folder.name}"
    hub.update_model_card(repo_id, lambda card: apply_model_index(card, report.results, repo_id.split("/")[-1], url),
                          revision=revision, commit_message=f"Add model-index results ({report.results['mode']})")
    return url
