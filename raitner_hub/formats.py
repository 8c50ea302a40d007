"""Every NER data format we meet, read as ``AnnotatedPassage`` rows; UniNER and jsonl writers; IT export.

``read_annotated(path)`` is the one entry point (auto-detects the format, returns a Dataset). The
third-party readers (``read_<format>``, lazy generators) live in ``raitner_hub.readers`` and are
re-exported here. Formats (``FORMATS``):

=================  ===============================================================================
``bio``            ``token<TAB>tag`` lines, blank line between sentences (CrossNER, MSRA)
``bio_tag_first``  ``tag<TAB>token`` lines (MIT Movie / Restaurant)
``weibo``          Weibo conll: ``<char><segmentation position><TAB>tag``; the trailing digits go
``cluener``        jsonl ``{"text", "label": {type: {mention: [[start, end_inclusive], ...]}}}``
``cmeee``          JSON array ``{"text", "entities": [{"start_idx", "end_idx" (inclusive), "type", "entity"}]}``
``yidu``           jsonl ``{"text", "entity_list": [{"entity_index": {"begin", "end"}, "entity_type", "entity"}]}``
``boson``          jsonl ``{"id", "sentence", "label": {mention: type}}`` (no offsets: aligned)
``sky_ner``        jsonl ``{"id", "text", "entities": [{"mention", "type"}]}`` (no offsets: aligned)
``slimer``         SLIMER Pile-NER jsonl, one row per (passage, type): grouped into one passage
``uniner``         UniNER/ShareGPT conversation JSON (en or zh), one or many types per item: one passage per
                   sentence (items grouped by text until a type repeats), its questions kept in ``qa``
``annotated``      our own ``AnnotatedPassage`` rows (jsonl or parquet), or a Hub-layout dataset folder
``token_classification``  the Hub's NER layout: ``tokens`` + ``ner_tags`` (``Sequence(ClassLabel)``
                   names in the features; IOB1 or IOB2), as parquet, arrow, jsonl (string tags), a
                   ``save_to_disk`` folder, a Hub-layout folder, or a Hub id ``org/name:config:split``
=================  ===============================================================================

Auto-detection (``detect_format``): a parquet or arrow file, or a folder, whose data has ``tokens`` and
``ner_tags`` columns is ``token_classification``; any other folder or ``*.parquet`` is ``annotated``. Otherwise the content
decides: a file starting with ``[`` (or named ``*.json``) is a JSON array and its first item's keys
decide; a file starting with ``{`` is jsonl and its first rows' keys decide (``tokens`` + ``ner_tags`` ->
token_classification, ``conversations`` ->
uniner, ``doc_question_pairID`` -> slimer, ``entity_list`` -> yidu, ``sentence`` + ``label`` -> boson,
``label`` -> cluener, ``entities`` with ``start_idx`` -> cmeee, with ``mention`` -> sky_ner, else
annotated). Anything else is BIO: tag-first when the first column holds the tags, ``weibo`` when every
token is one or two characters followed by digits, else ``bio``.

Conventions:
- English BIO text is the tokens joined by single spaces; Chinese (character) BIO joins with "". The
  language comes from ``lang`` or from the share of CJK characters (``detect_lang``).
- BIO: an ``I-X`` after ``O`` or after another type starts a new entity (the conlleval rule; Weibo has
  10 such tags). Any other tag than ``O``/``B-X``/``I-X`` is an error.
- Mentions without offsets (Boson, Sky-NER, SLIMER, UniNER) are aligned to **every** occurrence with
  ``records.align_mentions``, in the file's order, one (mention, type) pair once. Pairs not found in the
  text are listed under ``unaligned`` in the ``annotator`` JSON.
- ``annotator`` is JSON: ``{"format", "source"}`` plus ``labels_queried`` (the types a conversation or
  SLIMER asked, negatives included) and ``unaligned`` where relevant; our own rows keep theirs.
- Ids: the file's own id when it has one, else ``<source>_<n>`` (n counts passages from 0); ``source``
  is ``<folder>_<file stem>``, e.g. ``crossner_ai_test``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import datasets

from raitner_hub.errors import ConfigError, InputError, first_line
from raitner_hub.readers import (
    BIO_TAG,
    TOKEN_COLUMNS,
    WEIBO_TOKEN,
    PathLike,
    ReadReport,
    annotator_json,
    bio_to_entities,
    default_source,
    detect_lang,
    gold_answers,
    input_questions,
    label_set,
    labels_queried,
    read_bio,
    read_bio_tag_first,
    read_boson,
    read_cluener,
    read_cmeee,
    read_json_array,
    read_jsonl_rows,
    read_lines,
    read_sky_ner,
    read_slimer,
    read_token_rows,
    read_uniner,
    read_weibo,
    read_yidu,
    require_field,
    tag_names,
)
from raitner_hub.records import ANNOTATED_FEATURES, AnnotatedPassage, Entity, check_entities

__all__ = [
    "FORMATS",
    "READERS",
    "ReadReport",
    "bio_to_entities",
    "default_source",
    "detect_format",
    "detect_lang",
    "export_it",
    "gold_answers",
    "hub_data_files",
    "input_questions",
    "label_set",
    "labels_queried",
    "load_it_dataset",
    "load_token_dataset",
    "parse_hub_source",
    "read_annotated",
    "read_annotated_rows",
    "read_token_classification",
    "to_uniner_item",
    "write_jsonl",
    "write_uniner",
]


# ---- our own AnnotatedPassage rows ----------------------------------------------------------------------


def _own_rows(path: Path) -> Iterator[tuple[int, dict]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise InputError(f"cannot read parquet ({exc})", path=str(path)) from None
        yield from enumerate(table.to_pylist(), 1)
    else:
        yield from read_jsonl_rows(path)


def read_annotated_rows(
    path: PathLike, *, lang: str | None = None, source: str | None = None
) -> Iterator[AnnotatedPassage]:
    """Our ``AnnotatedPassage`` rows (jsonl or parquet); every entity's offsets must index its text."""
    path = Path(path)
    source = source or default_source(path)
    for i, (n, row) in enumerate(_own_rows(path)):
        text = require_field(row, "text", path, n)
        if not isinstance(text, str):
            raise InputError("field 'text' is not a string", path=str(path), line=n)
        raw = require_field(row, "entities", path, n) or []
        try:
            entities = [
                Entity(start=int(e["start"]), end=int(e["end"]), text=str(e["text"]), label=str(e["label"]))
                for e in raw
            ]
        except (KeyError, TypeError, ValueError):
            raise InputError("each entity needs start, end, text, label", path=str(path), line=n) from None
        check_entities(text, entities, where=f"{path}:{n}")
        row_source = row.get("source") or source
        yield AnnotatedPassage(
            id=str(row.get("id") or f"{source}_{i}"),
            text=text,
            lang=row.get("lang") or lang or detect_lang(text),
            source=row_source,
            entities=entities,
            annotator=row.get("annotator") or annotator_json("annotated", row_source),
        )


def hub_data_files(folder: PathLike, split: str | None = None) -> list[Path]:
    """The ``*.parquet`` / ``*.jsonl`` data files of a dataset folder (hidden folders skipped)."""
    folder = Path(folder)
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix in (".parquet", ".jsonl")
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if split is not None:
        files = [p for p in files if p.name.split(".")[0].split("-")[0] == split]
    return files


def _read_folder(
    folder: PathLike, *, lang: str | None = None, split: str | None = None, source: str | None = None
) -> Iterator[AnnotatedPassage]:
    files = hub_data_files(folder, split)
    if not files:
        wanted = f" for split {split!r}" if split else ""
        raise InputError(f"no data files (*.parquet, *.jsonl){wanted} in this folder", path=str(folder))
    for file in files:
        yield from read_annotated_rows(file, lang=lang, source=source or Path(folder).name)


# ---- the Hub's token-classification layout ---------------------------------------------------------------

HUB_SOURCE = re.compile(
    r"(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>[^:@]+))?:(?P<config>[^:@]*)(?::(?P<split>[^:@]*))?"
)


def parse_hub_source(spec: str) -> dict[str, str | None] | None:
    """``org/name[@revision]:config[:split]`` -> its parts (empty config = the default); None if not one.

    Example:
        >>> parse_hub_source("DFKI-SLT/cross_ner:ai:test")
        {'repo': 'DFKI-SLT/cross_ner', 'revision': None, 'config': 'ai', 'split': 'test'}
    """
    match = HUB_SOURCE.fullmatch(str(spec))
    if match is None:
        return None
    parts = match.groupdict()
    return {**parts, "config": parts["config"] or None, "split": parts["split"] or None}


def _columns(path: Path) -> set[str]:
    """Column names of a parquet/arrow file or of the first data file of a folder (empty if unknown)."""
    try:
        if path.is_dir():
            if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
                ds = datasets.load_from_disk(str(path))
                first = next(iter(ds.values())) if isinstance(ds, datasets.DatasetDict) else ds
                return set(first.column_names)
            files = hub_data_files(path)
            return (
                _columns(files[0])
                if files and files[0].suffix == ".parquet"
                else (set(next(read_jsonl_rows(files[0]))[1]) if files else set())
            )
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return set(pq.read_schema(path).names)
        if path.suffix == ".arrow":
            return set(datasets.Dataset.from_file(str(path)).column_names)
    except (OSError, ValueError, StopIteration, InputError):
        return set()
    return set()


def load_token_dataset(path: PathLike, *, split: str | None = None, config: str | None = None) -> datasets.Dataset:
    """A local dataset in the token-classification layout, with its features (the tag names)."""
    path = Path(path)
    try:
        if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                wanted = split or ("train" if "train" in ds else next(iter(ds)))
                if wanted not in ds:
                    raise InputError(f"no split {wanted!r} (it has: {', '.join(ds)})", path=str(path))
                ds = ds[wanted]
            return ds
        if path.is_dir():
            return datasets.load_dataset(str(path), name=config, split=split or "train")
        if path.suffix == ".parquet":
            return datasets.Dataset.from_parquet(str(path))
        if path.suffix == ".arrow":
            return datasets.Dataset.from_file(str(path))
        return datasets.Dataset.from_json(str(path))
    except InputError:
        raise
    except (ValueError, FileNotFoundError, KeyError, OSError) as exc:
        raise InputError(f"cannot load the token-classification dataset ({first_line(exc)})", path=str(path)) from None


def read_token_classification(
    path: PathLike, *, lang: str | None = None, source: str | None = None, split: str | None = None
) -> Iterator[AnnotatedPassage]:
    """A local ``tokens`` + ``ner_tags`` dataset (label names from its features) as passages."""
    ds = load_token_dataset(path, split=split)
    yield from read_token_rows(
        ds, names=tag_names(ds.features), source=source or default_source(path), where=str(path), lang=lang
    )


def _read_hub_source(spec: dict, *, lang: str | None) -> list[AnnotatedPassage]:
    from raitner_hub import hub

    ds, _ = hub.load_hub_split(spec["repo"], spec["config"], spec["split"] or "train", revision=spec["revision"])
    source = "_".join(x for x in (spec["repo"].split("/")[1], spec["config"], spec["split"] or "train") if x)
    return list(
        read_token_rows(
            ds,
            names=tag_names(ds.features),
            source=source,
            lang=lang,
            where=f"{spec['repo']}:{spec['config'] or ''}:{spec['split'] or 'train'}",
        )
    )


READERS: dict[str, Callable[..., Iterator[AnnotatedPassage]]] = {
    "bio": read_bio,
    "bio_tag_first": read_bio_tag_first,
    "weibo": read_weibo,
    "cluener": read_cluener,
    "cmeee": read_cmeee,
    "yidu": read_yidu,
    "boson": read_boson,
    "sky_ner": read_sky_ner,
    "slimer": read_slimer,
    "uniner": read_uniner,
    "annotated": read_annotated_rows,
    "token_classification": read_token_classification,
}
FORMATS: tuple[str, ...] = tuple(READERS)


# ---- detection and the entry point ----------------------------------------------------------------------


def _format_of_item(row: dict, more: Iterable[dict] = ()) -> str | None:
    keys = set(row)
    if set(TOKEN_COLUMNS) <= keys:
        return "token_classification"
    if "conversations" in keys:
        return "uniner"
    if "doc_question_pairID" in keys:
        return "slimer"
    if "entity_list" in keys:
        return "yidu"
    if "sentence" in keys and "label" in keys:
        return "boson"
    if "label" in keys and "text" in keys:
        return "cluener"
    if "entities" in keys and "text" in keys:
        for candidate in (row, *more):
            first = next(iter(candidate.get("entities") or []), None)
            if isinstance(first, dict):
                if "start_idx" in first:
                    return "cmeee"
                if "mention" in first:
                    return "sky_ner"
                return "annotated"
        return "annotated"
    return None


def _sniff_bio(lines: list[str]) -> str:
    fields = [line.split("\t") for line in lines]
    if any(len(f) != 2 for f in fields):
        return "bio"  # the reader reports the malformed line
    if all(BIO_TAG.fullmatch(f[0]) for f in fields) and not all(BIO_TAG.fullmatch(f[1]) for f in fields):
        return "bio_tag_first"
    if all(WEIBO_TOKEN.fullmatch(f[0]) for f in fields):
        return "weibo"
    return "bio"


def detect_format(path: PathLike) -> str:
    """The format name of a file or folder (rules in the module docstring).

    Example:
        >>> detect_format("../shared/data/en/mit_movie/train.bio.txt")
        'bio_tag_first'
    """
    path = Path(path)
    if path.is_dir() or path.suffix in (".parquet", ".arrow"):
        return "token_classification" if set(TOKEN_COLUMNS) <= _columns(path) else "annotated"
    head: list[str] = []
    for _, line in read_lines(path):
        if line.strip():
            head.append(line)
        if len(head) >= 200:
            break
    if not head:
        raise InputError(f"no passages in {path}")
    first = head[0].lstrip()
    fmt = None
    if first.startswith("[") or (path.suffix == ".json" and not first.startswith("{")):
        items = read_json_array(path)
        fmt = _format_of_item(items[0], items[1:50]) if items and isinstance(items[0], dict) else None
    elif first.startswith("{"):
        rows = [row for (_, row), _ in zip(read_jsonl_rows(path), range(50))]
        fmt = _format_of_item(rows[0], rows[1:]) if rows else None
    else:
        fmt = _sniff_bio(head)
    if fmt is None:
        hint = " (rows without entities look like raw passages, not annotated data)" if '"text"' in first else ""
        raise InputError(f"cannot tell the format{hint}; pass format= one of {', '.join(FORMATS)}", path=str(path))
    return fmt


def read_annotated(
    path: PathLike,
    *,
    format: str = "auto",
    lang: str | None = None,
    split: str | None = None,
    report: ReadReport | None = None,
) -> datasets.Dataset:
    """Read any supported NER file (or a Hub-layout dataset folder) as ``AnnotatedPassage`` rows.

    Args:
        path: a file, or a folder with ``*.parquet`` / ``*.jsonl`` AnnotatedPassage files (e.g. ``data/``), or
            a dataset in the token-classification layout: local, or a Hub id ``org/name[@rev]:config:split``.
        format: one of ``FORMATS`` or ``auto`` (see ``detect_format``).
        lang: ``en`` / ``zh``; inferred from the text when None (a folder's rows keep their own).
        split: for a folder, only files named ``<split>-*`` / ``<split>.*`` (token-classification: the split).
        report: filled with what the reader dropped (conversations with an unparseable answer).

    Example:
        >>> ds = read_annotated("examples/data/pile_ner_sample.en.jsonl")
        >>> ds.features == ANNOTATED_FEATURES, ds[0]["entities"][0].keys()
        (True, dict_keys(['start', 'end', 'text', 'label']))
    """
    hub_source = None if Path(path).exists() else parse_hub_source(str(path))
    path = Path(path)
    if hub_source is not None:
        if format not in ("auto", "token_classification"):
            raise ConfigError(f"a Hub source is read in the token_classification layout, not {format!r}")
        fmt = "token_classification"
    elif not path.exists():
        raise InputError("no such file or folder", path=str(path))
    else:
        fmt = detect_format(path) if format == "auto" else format
    if fmt not in READERS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of: auto, {', '.join(FORMATS)}")
    if hub_source is not None:
        rows = _read_hub_source(hub_source, lang=lang)
    elif fmt == "token_classification":
        rows = list(read_token_classification(path, lang=lang, split=split))
    elif path.is_dir():
        if fmt != "annotated":
            raise InputError(f"a folder can only hold 'annotated' data, not {fmt!r}", path=str(path))
        rows = list(_read_folder(path, lang=lang, split=split))
    elif fmt in ("uniner", "slimer"):
        rows = list(READERS[fmt](path, lang=lang, report=report))
    else:
        rows = list(READERS[fmt](path, lang=lang))
    if not rows:
        raise InputError(f"no passages in {path}")
    if lang is None and fmt != "annotated":
        # A third-party file is one language; per-row detection is settled by majority so that noise rows
        # ("??????", a bare number) do not split e.g. the Sky-NER sample into zh and en.
        majority = Counter(row["lang"] for row in rows).most_common(1)[0][0]
        for row in rows:
            row["lang"] = majority
    seen: set[str] = set()
    for row in rows:
        if row["id"] in seen:
            raise InputError(f"duplicate passage id {row['id']!r}", path=str(path))
        seen.add(row["id"])
    return datasets.Dataset.from_list(rows, features=ANNOTATED_FEATURES)


def pool_language(pool: datasets.Dataset, lang: str | None, *, where: PathLike) -> str:
    """The language of annotated passages: ``lang`` when given, else the one language the rows carry.

    Used by every stage that turns one pool into one language's data (build-data, index).
    """
    if lang:
        return lang
    langs = sorted(set(pool["lang"]))  # (Dataset.unique ignores a select(): a --sample subset would count all rows)
    if len(langs) != 1:
        raise ConfigError(f"{where}: mixed languages {langs}; pass --lang")
    return langs[0]


# ---- writers ----------------------------------------------------------------------------------------------


def _write_atomically(path: PathLike, write: Callable[[Any], None]) -> None:
    """Write to a temporary sibling and rename, so a failure never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(rows: Iterable[dict], path: PathLike) -> int:
    """Write rows (a Dataset or dicts) as UTF-8 JSON lines; returns the row count.

    Example:
        >>> write_jsonl(read_annotated("train.bio.txt"), "train.annotated.jsonl")
        100
    """
    count = 0

    def write(fh: Any) -> None:
        nonlocal count
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1

    _write_atomically(path, write)
    return count


SHAREGPT_ROLES = {"user": "human", "assistant": "gpt"}


def to_uniner_item(example: dict) -> dict:
    """One ``ITExample`` as a UniNER/ShareGPT item (a system message becomes the item's ``system``)."""
    item: dict[str, Any] = {"id": example["id"], "conversations": []}
    for message in example["messages"]:
        role = message["role"]
        if role == "system":
            item["system"] = message["content"]
        elif role in SHAREGPT_ROLES:
            item["conversations"].append({"from": SHAREGPT_ROLES[role], "value": message["content"]})
        else:
            raise InputError(f"example {example['id']!r}: unknown message role {role!r}")
    return item


def write_uniner(it_rows: Iterable[dict], path: PathLike, *, indent: int | None = None) -> int:
    """Write ``ITExample`` rows as a UniNER conversation JSON list; returns the item count.

    Example:
        >>> write_uniner(load_it_dataset("outputs/it-data", config="vanilla"), "train.json")
        271
    """
    items = [to_uniner_item(row) for row in it_rows]
    _write_atomically(path, lambda fh: json.dump(items, fh, ensure_ascii=False, indent=indent))
    return len(items)


def load_it_dataset(path: PathLike, *, config: str | None = None, split: str = "train") -> datasets.Dataset:
    """An IT dataset from a built folder (``load_dataset(folder, config, split)``) or a parquet/jsonl file."""
    path = Path(path)
    from raitner_hub.progress import quiet_progress

    try:
        if not path.exists():
            raise InputError(f"no such file or folder: {path}")
        with quiet_progress():  # a local read is quick; the CLI prints one summary line
            if path.is_dir():
                ds = datasets.load_dataset(str(path), name=config, split=split)
            elif path.suffix == ".parquet":
                ds = datasets.Dataset.from_parquet(str(path))
            elif path.suffix in (".jsonl", ".json"):
                ds = datasets.Dataset.from_json(str(path))
            else:
                raise InputError("expected a dataset folder or a .parquet/.jsonl file", path=str(path))
    except (ValueError, FileNotFoundError, KeyError) as exc:  # unknown config/split, missing files
        raise InputError(f"cannot load the IT dataset ({first_line(exc)})", path=str(path)) from None
    if "messages" not in ds.column_names:
        raise InputError(f"not an IT dataset: no 'messages' column (columns: {ds.column_names})", path=str(path))
    return ds


EXPORT_FORMATS = ("uniner", "jsonl")


def export_it(
    path: PathLike, out: PathLike, *, config: str | None = None, split: str = "train", format: str = "uniner"
) -> int:
    """Export one config/split of an IT dataset as UniNER JSON (or jsonl of ITExample rows).

    Example:
        >>> export_it("outputs/it-data", "vanilla.train.json", config="vanilla")
        271
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
    ds = load_it_dataset(path, config=config, split=split)
    return write_uniner(ds, out) if format == "uniner" else write_jsonl(ds, out)
