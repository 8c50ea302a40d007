"""Evaluation benchmarks: registry, converters to ``AnnotatedPassage`` rows + a label set, Hub folder.

A benchmark is a dataset of ``AnnotatedPassage`` rows whose entity labels are natural-language names
(``raitner_hub/label_maps/<map>.json``: source type -> name, ``null`` = dropped, e.g. ``misc``) and a
``label_set`` (the names asked, one question each, in the map's order). Splits follow paper.md §6.1 /
RA-IT App. D.4, with substitutes where a split is not in ``../shared/data`` (each spec's ``notes``):

- A test set above ``FAR_ABOVE`` (3,000) sentences is cut to ``MAX_TEST`` (2,000) with
  ``random.seed(42); random.sample`` (MSRA's 3,442). Smaller or slightly larger sets stay whole
  (the paper keeps MIT-Movie's 2,442 and cuts 4,3xx-sentence sets).
- CLUENER and CMeEE have no public labelled test: ``random.seed(42); random.sample`` draws half of the
  dev set as test (sample order), the other half (file order) is validation.
- Not provided here: MIT-Movie test (test = 2,000 sentences held out of train by the same seeded
  sample; train = the rest), CrossNER-science, Weibo and Yidu tests (the dev file is the test split).
- The in-domain retrieval pool is the ``train`` split; MSRA and CMeEE have none here. Held-out splits
  are named ``validation`` (the Hub's name), whatever the source file is called.

Gold (``BenchmarkSpec.gold``): English test sets are scored on UniNER's own test files
(``test.uniner.json``, the files UniNER and RA-IT scored: ``gold: uniner``) where they exist, every
question kept, a sentence that occurs twice included twice. The gold derived from the BIO files is an
explicit option, the config ``<name>_bio`` (``gold: bio``); the two differ by a few mentions (UniNER's
files drop some sentence-final entities) and, for politics and restaurant, one sentence.

A spec may name a Hub source instead of local files (``hub`` = ``org/name[@revision]``, ``hub_config``;
each split's ``file`` is the Hub split name), in the token-classification layout (``tokens`` +
``ner_tags`` with ClassLabel names such as ``B-algorithm``) relabelled through the spec's label map.
"""

from __future__ import annotations

import functools
import json
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from raitner_hub.benchmark_registry import (  # noqa: F401 - the registry is part of this API
    BENCHMARKS,
    DROPPED_BY_DEFAULT,
    FAR_ABOVE,
    LABEL_MAPS,
    MAX_TEST,
    SEED,
    BenchmarkSpec,
    Split,
)
from raitner_hub.errors import ConfigError, HubError, InputError
from raitner_hub.formats import gold_answers, label_set, parse_hub_source, read_annotated
from raitner_hub.readers import relabel_annotator
from raitner_hub.records import ANNOTATED_FEATURES


@dataclass
class Benchmark:
    """One split of a benchmark, ready to query: one question per (row, label in ``label_set``)."""

    name: str
    lang: str
    label_set: list[str]
    dataset: datasets.Dataset
    split: str = "test"
    info: dict[str, Any] = field(default_factory=dict)  # source, license, redistributable, notes


def load_label_map(path_or_name: str | os.PathLike) -> dict[str, str | None]:
    """A label map from ``label_maps/<name>.json`` or a JSON file: ``{"labels": {type: name|null}}`` or flat."""
    path = Path(path_or_name)
    if not path.is_file():
        path = LABEL_MAPS / f"{path_or_name}.json"
    if not path.is_file():
        raise ConfigError(f"no label map {path_or_name!r} (a JSON file, or one of: {', '.join(available_maps())})")
    data = json.loads(path.read_text(encoding="utf-8"))
    labels = data.get("labels", data) if isinstance(data, dict) else None
    if not isinstance(labels, dict) or not all(isinstance(v, (str, type(None))) for v in labels.values()):
        raise InputError('a label map is {"labels": {source type: natural-language name or null}}', path=str(path))
    return labels


def available_maps() -> list[str]:
    return sorted(p.stem for p in LABEL_MAPS.glob("*.json"))


def label_set_of(label_map: Mapping[str, str | None]) -> list[str]:
    """The names asked, in the map's order, each once."""
    return list(dict.fromkeys(v for v in label_map.values() if v))


def relabel(
    ds: datasets.Dataset, label_map: Mapping[str, str | None], *, where: str, strict: bool = True
) -> datasets.Dataset:
    """Rename entity labels (and a conversation's recorded questions) through ``label_map`` (``None`` drops
    the entity / question). Unknown labels are an error when ``strict`` (a registry map must be complete),
    else kept as they are."""
    unknown = sorted({e["label"] for row in ds["entities"] for e in row} - set(label_map))
    if unknown and strict:
        raise InputError(f"labels not in the label map: {', '.join(unknown)}", path=where)

    rows = ds.to_list()
    for row in rows:
        row["entities"] = [
            {**ent, "label": label_map.get(ent["label"], ent["label"])}
            for ent in row["entities"]
            if label_map.get(ent["label"], ent["label"]) is not None
        ]
        row["annotator"] = relabel_annotator(row["annotator"], dict(label_map))
    return datasets.Dataset.from_list(rows, features=ANNOTATED_FEATURES)


def _seeded_sample(n: int, k: int) -> list[int]:
    """``random.seed(42); random.sample(range(n), k)`` without touching the global generator."""
    return random.Random(SEED).sample(range(n), k)


def _take(ds: datasets.Dataset, part: str) -> datasets.Dataset:
    n = len(ds)
    if part == "all":
        return ds
    if part in ("half_a", "half_b"):
        first = _seeded_sample(n, n // 2)
        chosen = set(first)
        return ds.select(first if part == "half_a" else [i for i in range(n) if i not in chosen])
    if part in ("holdout", "rest"):
        held = _seeded_sample(n, min(MAX_TEST, n))
        chosen = set(held)
        return ds.select(held if part == "holdout" else [i for i in range(n) if i not in chosen])
    raise ValueError(f"unknown split part {part!r}")


def cut_test(ds: datasets.Dataset) -> datasets.Dataset:
    """Paper App. D.4: a test set far above 2,000 sentences is cut to 2,000 (seed 42), else kept."""
    return ds.select(_seeded_sample(len(ds), MAX_TEST)) if len(ds) > FAR_ABOVE else ds


def default_data_root() -> Path:
    """``$RAITNER_DATA_ROOT``. There is no built-in default: the benchmark files live wherever the user
    unpacked them, and a development-tree path would only work inside this repository's checkout."""
    root = os.environ.get("RAITNER_DATA_ROOT")
    if not root:
        raise ConfigError(
            "no benchmark data folder: pass --data-root DIR (the folder holding en/crossner_ai/, "
            "zh/weibo/, ...) or set RAITNER_DATA_ROOT"
        )
    return Path(root)


def read_split(spec: BenchmarkSpec, split: str, data_root: str | os.PathLike | None = None) -> datasets.Dataset:
    """One split of a registry benchmark (or of a spec naming a Hub source), relabelled, sampled as documented."""
    if split not in spec.splits:
        raise ConfigError(f"benchmark {spec.name!r} has no {split!r} split (it has: {', '.join(spec.splits)})")
    source = spec.splits[split]
    if spec.hub:
        repo, _, revision = spec.hub.partition("@")
        ref = f"{repo}{'@' + revision if revision else ''}:{spec.hub_config or ''}:{source.file}"
        ds = _take(_relabelled(ref, None, spec, source.format or "token_classification"), source.part)
        return cut_test(ds) if split == "test" and source.part == "all" else ds
    path = Path(data_root or default_data_root()) / spec.folder / source.file
    if not path.is_file():
        raise InputError("benchmark file missing (set --data-root or RAITNER_DATA_ROOT)", path=str(path))
    fmt = source.format or spec.format
    ds = _take(_relabelled(str(path.resolve()), path.stat().st_mtime_ns, spec, fmt), source.part)
    return cut_test(ds) if split == "test" and source.part == "all" else ds


def _relabelled(path: str, mtime_ns: int | None, spec: BenchmarkSpec, fmt: str) -> datasets.Dataset:
    return _read_relabelled(path, mtime_ns, spec.lang, str(spec.label_map_path()), fmt)


@functools.lru_cache(maxsize=8)
def _read_relabelled(path: str, mtime_ns: int | None, lang: str, label_map: str, fmt: str) -> datasets.Dataset:
    """A source read and relabelled once per process (splits such as halves share one file).

    UniNER's test files already use the natural-language names: they are checked against the label set
    (names only, nothing renamed); source tags go through the label map."""
    ds = read_annotated(path, format=fmt, lang=lang)
    mapping = load_label_map(label_map)
    if fmt == "uniner":
        mapping = {name: name for name in label_set_of(mapping)}
        asked = set(label_set(ds))
        if asked - set(mapping):
            raise InputError(f"types not in the label set: {', '.join(sorted(asked - set(mapping)))}", path=path)
    return relabel(ds, mapping, where=path)


def gold_mentions(ds: datasets.Dataset, labels: Sequence[str]) -> int:
    """Gold mentions of a split: distinct answer strings per question (passage x label), summed."""
    total = 0
    for row in ds:
        answers = gold_answers(row)
        total += sum(len(dict.fromkeys(answers.get(label, []))) for label in labels)
    return total


def benchmark_info(spec: BenchmarkSpec) -> dict[str, Any]:
    return {
        "source": spec.source,
        "license": spec.license,
        "redistributable": spec.redistributable,
        "license_note": spec.license_note,
        "notes": spec.notes,
        "lang": spec.lang,
        "gold": spec.gold,
        "label_map": f"raitner_hub/label_maps/{spec.label_map_path().name}"
        if spec.label_map_path().parent == LABEL_MAPS
        else spec.label_map_path().name,
    }


def load_benchmark(
    name_or_path: str | os.PathLike,
    split: str = "test",
    data_root: str | os.PathLike | None = None,
    *,
    folder: str | os.PathLike | None = None,
    label_map: str | os.PathLike | Mapping | None = None,
    lang: str | None = None,
    format: str = "auto",
) -> Benchmark:
    """Load a benchmark split: a registry name, a benchmark file, or a config of a built benchmarks folder.

    Args:
        name_or_path: a ``BENCHMARKS`` name or a :class:`BenchmarkSpec`, a benchmark file in any ``formats``
            format, or a Hub source ``org/name[@revision]:config:split`` in the token-classification layout.
        split: ``test`` (default), ``train`` (the in-domain pool) or ``validation``.
        data_root: where the registry's source files live (default ``$RAITNER_DATA_ROOT``; one of them is required).
        folder: a folder written by :func:`build_benchmarks_folder` (or a downloaded snapshot of its Hub repo):
            read the config ``name_or_path`` from its parquet files and ``benchmarks.json``.
        label_map: for a file: a map name (e.g. ``crossner_ai``), a JSON path or a dict; without one the
            file's labels are used as they are, except ``misc``, which is dropped.

    Example:
        >>> bench = load_benchmark("crossner_ai", data_root="../shared/data")
        >>> bench.label_set[:3], len(bench.dataset)
        (['organization', 'university', 'location'], 431)
    """
    if folder is not None:
        return _load_from_folder(Path(folder), str(name_or_path), split)
    if isinstance(name_or_path, BenchmarkSpec) or str(name_or_path) in BENCHMARKS:
        spec = name_or_path if isinstance(name_or_path, BenchmarkSpec) else BENCHMARKS[str(name_or_path)]
        ds = read_split(spec, split, data_root)
        return Benchmark(
            spec.name, spec.lang, label_set_of(load_label_map(spec.label_map_path())), ds, split, benchmark_info(spec)
        )
    name = str(name_or_path)
    path = Path(name)
    if not path.exists() and parse_hub_source(name) is None:
        from raitner_hub.hub import locate

        try:
            locate(name)  # a path that is not there says so ("no such file or folder"), not "unknown benchmark"
        except HubError:
            pass  # not a repo id either: an unknown benchmark name
        raise ConfigError(
            f"unknown benchmark {name!r}: not a file, not a Hub source org/name:config:split, "
            f"and not one of: {', '.join(BENCHMARKS)}"
        )
    return _load_file(path, label_map=label_map, lang=lang, format=format, split=split)


def _load_file(path: Path, *, label_map, lang: str | None, format: str, split: str) -> Benchmark:
    ds = read_annotated(path, format=format, lang=lang)
    user_map = (
        {} if label_map is None else (dict(label_map) if isinstance(label_map, Mapping) else load_label_map(label_map))
    )
    mapping = {**{label: None for label in DROPPED_BY_DEFAULT}, **user_map}
    # labels the map does not name are kept as they are (and asked); misc is dropped unless mapped
    asked = label_set_of(user_map) + [mapping.get(label, label) for label in label_set(ds)]
    labels = [label for label in dict.fromkeys(asked) if label]
    ds = relabel(ds, mapping, where=str(path), strict=False)
    if not labels:
        raise InputError("the benchmark has an empty label set (no entity types; pass a label map)", path=str(path))
    hub_source = None if path.exists() else parse_hub_source(str(path))
    name = (
        path.name.split(".")[0]
        if hub_source is None
        else "_".join(
            x for x in (str(hub_source["repo"]).split("/")[1], hub_source["config"], hub_source["split"]) if x
        )
    )
    return Benchmark(
        name,
        ds[0]["lang"],
        labels,
        ds,
        split,
        {
            "source": str(path),
            "license": "unknown",
            "redistributable": False,
            "license_note": "A local file: its terms are unknown.",
            "notes": "",
        },
    )


def read_benchmarks_meta(folder: str | os.PathLike) -> dict[str, dict]:
    """``benchmarks.json`` of a built folder: per benchmark lang, label_set, splits, source, license..."""
    meta_path = Path(folder) / "benchmarks.json"
    if not meta_path.is_file():
        raise InputError("not a benchmarks folder (no benchmarks.json)", path=str(folder))
    return json.loads(meta_path.read_text(encoding="utf-8"))


def _load_from_folder(folder: Path, name: str, split: str) -> Benchmark:
    meta = read_benchmarks_meta(folder)
    if name not in meta:
        raise ConfigError(f"unknown benchmark {name!r} in {folder}; it has: {', '.join(meta)}")
    entry = meta[name]
    file = folder / "data" / name / f"{split}-00000-of-00001.parquet"
    if not file.is_file():
        raise ConfigError(
            f"benchmark {name!r} has no {split!r} split in {folder} (it has: {', '.join(entry['splits'])})"
        )
    ds = datasets.Dataset.from_parquet(str(file), features=ANNOTATED_FEATURES)
    return Benchmark(
        name,
        entry["lang"],
        list(entry["label_set"]),
        ds,
        split,
        {k: entry.get(k) for k in ("source", "license", "redistributable", "license_note", "notes")},
    )


def available_benchmarks(data_root: str | os.PathLike | None = None, *, variants: bool = False) -> list[str]:
    """Registry names whose test file is present under ``data_root`` (the ``_bio`` gold variants only
    with ``variants``)."""
    root = Path(data_root or default_data_root())
    return [
        name
        for name, spec in BENCHMARKS.items()
        if (variants or spec.default) and (root / spec.folder / spec.splits["test"].file).is_file()
    ]


def load_benchmark_specs(path: str | os.PathLike) -> list[BenchmarkSpec]:
    """Benchmark specs from a YAML/JSON file: a list of ``BenchmarkSpec.from_dict`` mappings (or ``{benchmarks:
    [...]}``), e.g. a Hub source in the token-classification layout with its label map."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"benchmark spec file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    items = data.get("benchmarks") if isinstance(data, dict) else data
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ConfigError(f"{path}: expected a list of benchmark specs (mappings)")
    return [BenchmarkSpec.from_dict(item) for item in items]


# ---- the benchmarks dataset repo (local folder in Hub layout) --------------------------------------------

CITATIONS = {
    "crossner": "Liu et al., CrossNER: Evaluating Cross-Domain Named Entity Recognition, AAAI 2021",
    "mit": "Liu et al., Asgard: A portable architecture for multilingual dialogue systems, ICASSP 2013",
    "weibo": "Peng and Dredze, EMNLP 2015; He and Sun, 2016 (revised annotation)",
    "msra": "Levow, The Third International Chinese Language Processing Bakeoff, SIGHAN 2006",
    "boson": "BosonNLP NER data; split of Xie et al., RA-IT, 2024",
    "cluener": "Xu et al., CLUENER2020: Fine-grained Named Entity Recognition Dataset and Benchmark for Chinese, 2020",
    "cmeee": "Zhang et al., CBLUE: A Chinese Biomedical Language Understanding Evaluation Benchmark, ACL 2022",
    "yidu": "CCKS 2019 Yidu-S4K clinical NER evaluation",
}


def _citation(name: str) -> str:
    return next((text for key, text in CITATIONS.items() if name.startswith(key)), "see the source")


def build_benchmarks_folder(
    names: Sequence[str] | None,
    out: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    *,
    repo_id: str | None = None,
    command: str | None = None,
    specs: Sequence[BenchmarkSpec] = (),
) -> Path:
    """Write registry benchmarks as a Hub dataset folder: one config per benchmark, all its splits.

    ``specs`` adds benchmarks not in the registry (e.g. ``BenchmarkSpec.from_dict`` with a Hub source;
    a Hub source is read pinned to the commit its revision resolves to now). The first config is the
    card's default: ``load_dataset(repo)`` needs no config name.

    Layout: ``data/<name>/<split>-00000-of-00001.parquet`` (AnnotatedPassage rows), ``benchmarks.json``
    (per benchmark: lang, label_set, label_map, splits, source, license, redistributable, notes),
    ``README.md`` (``dataset_cards/benchmark.md.j2``; label sets also in the YAML under ``raitner``) and
    ``manifest.json`` (``redistributable`` is false when any included benchmark forbids it).

    Example:
        >>> folder = build_benchmarks_folder(["crossner_ai"], "out/benchmarks", "../shared/data")  # doctest: +SKIP
        >>> datasets.load_dataset(str(folder), "crossner_ai", split="test")  # doctest: +SKIP
    """
    from raitner_hub import __version__
    from raitner_hub.artefacts import staged_folder
    from raitner_hub.cards import render_dataset_card, size_category
    from raitner_hub.manifest import build_manifest, input_fingerprint, write_manifest

    started = time.time()
    root = Path(data_root or default_data_root())
    names = list(names or ([] if specs else available_benchmarks(root)))
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown or not (names or specs):
        raise ConfigError(
            f"unknown benchmark(s) {', '.join(unknown) or '(none given)'}; choose from: {', '.join(BENCHMARKS)}"
        )
    chosen = [BENCHMARKS[n] for n in names] + [_pinned(spec) for spec in specs]
    names = [spec.name for spec in chosen]
    if len(set(names)) != len(names):
        raise ConfigError(f"benchmark names must be unique, got: {', '.join(names)}")
    meta: dict[str, dict] = {}
    inputs: dict[str, str] = {}
    with staged_folder(out) as staging:
        for spec in chosen:
            name = spec.name
            label_map = load_label_map(spec.label_map_path())
            counts, gold = {}, {}
            for split in spec.splits:
                ds = read_split(spec, split, root)
                target = staging / "data" / name / f"{split}-00000-of-00001.parquet"
                target.parent.mkdir(parents=True, exist_ok=True)
                _to_parquet_quietly(ds, target)
                counts[split] = len(ds)
                gold[split] = gold_mentions(ds, label_set_of(label_map))
            if spec.hub:
                inputs[name] = spec.hub
            else:
                for file in {s.file for s in spec.splits.values()}:
                    inputs[f"{spec.folder}/{file}"] = "sha256:" + input_fingerprint(root / spec.folder / file)
            meta[name] = {
                **benchmark_info(spec),
                "label_set": label_set_of(label_map),
                "label_map_entries": label_map,
                "splits": counts,
                "gold_mentions": gold,
                "in_domain_pool": "train" if "train" in counts else None,
            }
        (staging / "benchmarks.json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        restricted = [n for n in names if not meta[n]["redistributable"]]
        note = "; ".join(f"{n}: {meta[n]['license_note']}" for n in restricted)
        manifest = build_manifest(
            "benchmarks",
            settings={"benchmarks": names, "seed": SEED, "max_test": MAX_TEST, "far_above": FAR_ABOVE},
            inputs=inputs,
            counts={n: meta[n]["splits"] for n in names},
            started=started,
            extra={
                "redistributable": not restricted,
                "license_note": note or None,
                "benchmarks": {
                    n: {
                        k: meta[n][k]
                        for k in (
                            "source",
                            "license",
                            "redistributable",
                            "license_note",
                            "label_set",
                            "gold",
                            "gold_mentions",
                        )
                    }
                    for n in names
                },
            },
        )
        write_manifest(staging, manifest)
        _card(meta, names, repo_id, command, __version__, render_dataset_card, size_category).save(
            str(staging / "README.md")
        )
    return Path(out).resolve()


def _pinned(spec: BenchmarkSpec) -> BenchmarkSpec:
    """A Hub-sourced spec pinned to the commit its revision resolves to now (recorded as ``repo@sha``)."""
    if not spec.hub:
        return spec
    import dataclasses

    from raitner_hub import hub

    repo, _, revision = spec.hub.partition("@")
    sha = hub.resolve_revision(repo, "dataset", revision or None)
    return dataclasses.replace(spec, hub=f"{repo}@{sha}", source=spec.source or repo)


def _to_parquet_quietly(ds: datasets.Dataset, path: Path) -> None:
    from raitner_hub.progress import quiet_progress

    with quiet_progress():  # one bar per tiny file is noise; the CLI prints one summary line
        ds.to_parquet(str(path))


def _source_and_revision(source: str) -> dict[str, str | None]:
    """``owner/repo@commit path (note)`` -> card fields ``source`` (owner/repo `path` (note)), ``source_revision``."""
    repo, at, rest = source.partition("@")
    if not at:
        return {"source": source, "source_revision": None}
    revision, _, where = rest.partition(" ")
    path, _, note = where.partition(" ")
    return {"source": f"{repo} `{path}`" + (f" {note}" if note else ""), "source_revision": revision}


def _card(meta, names, repo_id, command, version, render_dataset_card, size_category):
    licenses = {meta[n]["license"] for n in names}
    from raitner_hub.cards import NER_TASK
    from raitner_hub.cards import card_data as build_card_data

    card_data = build_card_data(
        license=licenses.pop() if len(licenses) == 1 else "other",
        language=sorted({meta[n]["lang"] for n in names}),
        rows=sum(sum(meta[n]["splits"].values()) for n in names),
        **NER_TASK,
        tags=["ner", "open-ner", "benchmark", "raitner-hub"],
        pretty_name="Open NER benchmarks (raitner-hub)",
        # the first config is the default: load_dataset(repo) works without a config name
        configs=[
            {
                "config_name": n,
                "data_files": [{"split": s, "path": f"data/{n}/{s}-*.parquet"} for s in meta[n]["splits"]],
                **({"default": True} if i == 0 else {}),
            }
            for i, n in enumerate(names)
        ],
        raitner={
            "label_sets": {n: meta[n]["label_set"] for n in names},
            "seed": SEED,
            "gold": {n: {"source": meta[n]["gold"], "mentions": meta[n]["gold_mentions"]} for n in names},
        },
    )
    rows = [
        {
            "name": n,
            "lang": meta[n]["lang"],
            "splits": list(meta[n]["splits"]),
            "rows": sum(meta[n]["splits"].values()),
            "labels": meta[n]["label_set"],
            "license": meta[n]["license"],
            "gold": meta[n]["gold"],
            "gold_mentions": meta[n]["gold_mentions"].get("test", "—"),
            **_source_and_revision(meta[n]["source"]),
            "license_note": " ".join(x for x in (meta[n]["license_note"], meta[n]["notes"]) if x),
            "citation": _citation(n),
        }
        for n in names
    ]
    return render_dataset_card(
        "benchmark",
        card_data,
        pretty_name=card_data["pretty_name"],
        benchmarks=rows,
        repo_id=repo_id or "<namespace>/<benchmarks>",
        command=command or "raitner push-benchmarks",
        version=version,
    )


__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "BenchmarkSpec",
    "Split",
    "available_benchmarks",
    "build_benchmarks_folder",
    "cut_test",
    "gold_mentions",
    "label_set_of",
    "load_benchmark",
    "load_benchmark_specs",
    "load_label_map",
    "read_benchmarks_meta",
    "read_split",
    "relabel",
]
