"""``raitner build-data``: annotated passages -> vanilla and RA-IT instruction datasets, as a Hub repo folder.

The pipeline, one direction::

    read_annotated -> build_conversations on the whole input (negatives: kept or drawn; question order)
                   -> (seeded subset of passages, with their questions)
                   -> RetrievalIndex.build (pool = the whole set, as in the paper)
                   -> augment per strategy (query set = pool: the query and identical texts excluded)
                   -> one split by passage id shared by every config -> parquet + card + manifest

Every config asks exactly the same questions about the same passages; configs differ only by their
demonstrations, so a vanilla/RA-IT comparison isolates retrieval augmentation.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from raitner_hub.artefacts import staged_folder
from raitner_hub.config import BuildConfig
from raitner_hub.embedder import DEFAULT_EMBEDDERS
from raitner_hub.errors import ConfigError, InputError
from raitner_hub.instruct import build_conversations, split_train_validation
from raitner_hub.manifest import build_manifest, input_fingerprint, write_manifest
from raitner_hub.prompts import conversation_template, demo_template, template_hash

VANILLA = "vanilla"


@dataclass
class BuildResult:
    out: Path
    configs: dict[str, dict[str, int]]  # config -> split -> rows
    manifest: dict[str, Any]
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)  # negatives, dropped_conversations, ...


def _check_config(config: BuildConfig, n_passages: int) -> None:
    """Fail on impossible settings before anything is embedded (the same checks ``augment`` applies)."""
    from raitner_hub.augment import check_settings, get_strategy

    for strategy in config.strategies:
        check_settings(
            get_strategy(strategy),
            config.k,
            config.top_k,
            n_passages,
            excluding_self=True,
            mixed_ratio=config.mixed_ratio,
        )
    if config.top_k < config.k:
        raise ConfigError(f"need k <= top_k, got k={config.k}, top_k={config.top_k}")
    if not 0.0 <= config.validation_fraction < 1.0:
        raise ConfigError(f"validation_fraction must be in [0, 1), got {config.validation_fraction}")


def _subset_rows(total: int, n: int | None, seed: int) -> list[int] | None:
    """The paper's subsets: ``random.seed(s); random.sample(full, n)`` (paper.md §2.4); None = all rows."""
    if n is None or n >= total:
        return None
    return random.Random(seed).sample(range(total), n)


def build_datasets(config: BuildConfig, *, progress: bool = True) -> tuple[dict[str, datasets.Dataset], dict]:
    """Build every config in memory: ``{config_name: Dataset[ITExample]}`` and facts for the card/manifest."""
    from raitner_hub.formats import ReadReport, pool_language, read_annotated
    from raitner_hub.instruct import resolve_negatives

    report = ReadReport()
    annotated = read_annotated(config.input, format=config.input_format, lang=config.lang, report=report)
    if len(annotated) == 0:
        raise InputError("no passages", path=config.input)
    rows = _subset_rows(len(annotated), config.sample, config.seed)
    # The language of the rows that are built (a subset may hold one language of a mixed file).
    lang = pool_language(annotated if rows is None else annotated.select(rows), config.lang, where=config.input)
    negatives = resolve_negatives(config.negatives, annotated)
    _check_config(config, len(annotated) if rows is None else len(rows))

    # Negatives are drawn on the whole input, then the subset inherits them (paper.md §2.4).
    vanilla = build_conversations(
        annotated, seed=config.seed, template=conversation_template(lang).name, negatives=negatives
    )
    if rows is not None:
        annotated, vanilla = annotated.select(rows), vanilla.select(rows)
    variants = {VANILLA: vanilla}
    facts: dict[str, Any] = {
        "lang": lang,
        "passages": len(annotated),
        "negatives": negatives,
        "dropped_conversations": report.dropped,
        "entities": sum(len(e) for e in annotated["entities"][:]),
    }
    if config.strategies:
        from raitner_hub.augment import augment_dataset, config_name
        from raitner_hub.retrieval import RetrievalIndex

        embedder = config.embedder or DEFAULT_EMBEDDERS[lang]
        index = RetrievalIndex.build(
            annotated, lang=lang, embedder=embedder, cache_dir=config.cache_dir, progress=progress
        )
        facts["embedder"] = embedder
        facts["retrieval"] = index.describe()
        fallbacks = {}
        for strategy in config.strategies:
            # config_name encodes each parameter only where the strategy uses it and it is not the default.
            name = config_name(
                strategy,
                config.k,
                mixed_ratio=config.mixed_ratio,
                top_k=config.top_k,
                bm25_threshold=config.bm25_threshold,
            )
            ds = augment_dataset(
                vanilla,
                index,
                strategy=strategy,
                k=config.k,
                top_k=config.top_k,
                seed=config.seed,
                bm25_threshold=config.bm25_threshold,
                mixed_ratio=config.mixed_ratio,
                query_is_pool=True,
                progress=progress,
            )
            variants[name] = ds
            fallbacks[name] = sum(1 for d in ds["demos"][:] if not d)
        facts["rows_without_demos"] = fallbacks
    return variants, facts


def _card(
    config: BuildConfig,
    counts: dict[str, dict[str, int]],
    facts: dict,
    command: str | None,
    input_ref: str,
    repo_id: str | None,
) -> Any:
    from raitner_hub.cards import card_data as build_card_data
    from raitner_hub.cards import render_dataset_card

    configs = [
        {
            "config_name": name,
            "data_files": [{"split": split, "path": f"data/{name}/{split}-*.parquet"} for split in splits],
            **({"default": True} if name == VANILLA else {}),
        }
        for name, splits in counts.items()
    ]
    total = max((sum(s.values()) for s in counts.values()), default=0)
    lang = facts["lang"]
    card_data = build_card_data(
        license=config.license,
        language=[lang],
        rows=total,
        task_categories=["token-classification", "text-generation"],
        task_ids=["named-entity-recognition"],
        tags=["ner", "open-ner", "instruction-tuning", "ra-it", "retrieval-augmented", "raitner-hub"],
        pretty_name=f"RA-IT open-NER instruction data ({lang})",
        configs=configs,
        # a Hub input: the bare id (the Hub links it); the pinned sha is in raitner.input
        source_datasets=[input_ref.split(":")[0].split("@")[0]] if "@" in input_ref else None,
        # Machine-readable provenance (the Hub keeps unknown YAML keys): what a trainer must know.
        raitner={
            "conversation_template": conversation_template(lang).name,
            "demonstration_template": demo_template(lang).name,
            "strategies": list(config.strategies),
            "negatives": facts.get("negatives"),
            "k": config.k,
            "top_k": config.top_k,
            "embedder": facts.get("embedder"),
            "seed": config.seed,
            "bm25_threshold": config.bm25_threshold,
            "input": input_ref,
        },
    )
    conv, demo = conversation_template(lang), demo_template(lang)
    return render_dataset_card(
        "it_dataset",
        card_data,
        pretty_name=card_data["pretty_name"],
        repo_id=repo_id,
        lang=lang,
        counts=counts,
        facts=facts,
        config=dataclasses.asdict(config),
        command=command,
        input_ref=input_ref,
        conversation_template=conv.name,
        conversation_hash=template_hash(conv),
        demo_template=demo.name,
        demo_hash=template_hash(demo),
        vanilla=VANILLA,
        example_config=next((c for c in counts if c != VANILLA), VANILLA),
    )


def resolve_input(config: BuildConfig) -> tuple[BuildConfig, str]:
    """A local input is fingerprinted (``path#sha256:...``); a Hub dataset id (``user/name[@revision]``) is
    pulled pinned to the commit its revision resolves to, recorded as ``user/name@sha``; a Hub split in the
    token-classification layout (``org/name[@revision]:config:split``) is read pinned the same way."""
    from raitner_hub.formats import parse_hub_source

    spec = None if Path(config.input).exists() else parse_hub_source(config.input)
    if spec is not None:  # one split of a Hub dataset in the token-classification layout: read pinned
        from raitner_hub import hub

        sha = hub.resolve_revision(str(spec["repo"]), "dataset", spec["revision"])
        pinned = f"{spec['repo']}@{sha}:{spec['config'] or ''}:{spec['split'] or 'train'}"
        return dataclasses.replace(config, input=pinned), pinned
    from raitner_hub import hub

    source = hub.resolve(config.input, repo_type="dataset")
    if source.is_local:
        return config, f"{config.input}#sha256:{input_fingerprint(config.input)}"
    return dataclasses.replace(config, input=str(source.path)), str(source.ref)


def build_data(
    config: BuildConfig, *, command: str | None = None, repo_id: str | None = None, progress: bool = True
) -> BuildResult:
    """Build vanilla + RA-IT datasets and write them as a Hub dataset repo folder.

    Args:
        config: what to build (see :class:`~raitner_hub.config.BuildConfig`).
        command: the command line that ran this, recorded in the card ("how it was built").
        repo_id: the Hub repo this folder is meant for (used in the card's loading snippet).
        progress: show progress bars.

    Example:
        >>> from raitner_hub.config import BuildConfig
        >>> result = build_data(BuildConfig(input="examples/data/pile_ner_sample.en.jsonl",
        ...                                 out="outputs/pile-it", embedder="minilm"))
        >>> datasets.load_dataset(str(result.out), "ra-nn-k2")["train"][0]["demos"]
        ['pilener_43490', 'pilener_42352']
    """
    from raitner_hub.progress import quiet_progress

    with quiet_progress(not progress):  # --quiet also silences the bars datasets draws for map / to_parquet
        return _build_data(config, command=command, repo_id=repo_id, progress=progress)


def _build_data(config: BuildConfig, *, command: str | None, repo_id: str | None, progress: bool) -> BuildResult:
    from raitner_hub.licenses import check_license

    started = time.time()
    check_license(config.license)  # before anything is read or embedded
    config, input_ref = resolve_input(config)
    variants, facts = build_datasets(config, progress=progress)
    ids = variants[VANILLA]["id"][:]  # [:] reads the whole column (iterating a Column goes row by row)
    train_ids, val_ids = split_train_validation(ids, fraction=config.validation_fraction, seed=config.seed)
    split_ids = {"train": train_ids, "validation": val_ids}
    counts: dict[str, dict[str, int]] = {}
    with staged_folder(config.out) as staging:
        for name, ds in variants.items():
            counts[name] = {}
            row_ids = ds["id"][:]
            for split, keep in split_ids.items():
                if not keep:
                    continue
                part = ds.select([i for i, row_id in enumerate(row_ids) if row_id in keep])
                path = staging / "data" / name / f"{split}-00000-of-00001.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                part.to_parquet(str(path))
                counts[name][split] = len(part)
        card = _card(config, counts, facts, command, input_ref, repo_id)
        card.save(staging / "README.md")
        manifest = build_manifest(
            "it_dataset",
            settings={
                **dataclasses.asdict(config),
                "strategies": list(config.strategies),
                "negatives": facts["negatives"],
            },
            inputs={"annotated": input_ref},
            counts={
                "configs": counts,
                **{
                    k: v
                    for k, v in facts.items()
                    if k in ("passages", "entities", "rows_without_demos", "dropped_conversations")
                },
            },
            started=started,
            extra={
                "templates": {
                    "conversation": conversation_template(facts["lang"]).name,
                    "demonstrations": demo_template(facts["lang"]).name,
                },
                "retrieval": facts.get("retrieval"),
                "command": command,
            },
        )
        write_manifest(staging, manifest)
    return BuildResult(out=Path(config.out).resolve(), configs=counts, manifest=manifest, facts=facts)


def render_example(out: str | Path, config_name: str, split: str = "train", row: int = 0) -> str:
    """One conversation of a built folder as readable text (for the demo and quick checks)."""
    path = Path(out) / "data" / config_name / f"{split}-00000-of-00001.parquet"
    ds = datasets.Dataset.from_parquet(str(path))
    example = ds[row]
    lines = [f"# {config_name} / {split} / {example['id']}  (demos: {json.dumps(example['demos'])})"]
    for message in example["messages"]:
        lines.append(f"[{message['role']}] {message['content']}")
    return "\n".join(lines)
