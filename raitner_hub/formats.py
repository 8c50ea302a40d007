"""Readers for every NER data format we meet, all yielding ``AnnotatedPassage`` rows; two writers.

``read_annotated(path)`` is the one entry point (auto-detects the format); the ``read_<format>`` functions
below yield rows lazily. Formats (``FORMATS``):

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
``uniner``         UniNER/ShareGPT conversation JSON (en or zh), one or many types per item: grouped by text
``annotated``      our own ``AnnotatedPassage`` rows (jsonl or parquet), or a Hub-layout dataset folder
=================  ===============================================================================

Auto-detection (``detect_format``): a folder or ``*.parquet`` is ``annotated``. Otherwise the content
decides: a file starting with ``[`` (or named ``*.json``) is a JSON array and its first item's keys
decide; a file starting with ``{`` is jsonl and its first rows' keys decide (``conversations`` ->
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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import datasets

from raitner_hub.errors import ConfigError, InputError
from raitner_hub.prompts import CONVERSATION_TEMPLATES
from raitner_hub.records import ANNOTATED_FEATURES, AnnotatedPassage, Entity, align_mentions, check_entities

PathLike = str | os.PathLike
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
BIO_TAG = re.compile(r"O|[BI]-\S.*")
WEIBO_TOKEN = re.compile(r"(.{1,2}?)(\d{1,2})")


# ---- small shared pieces -------------------------------------------------------------------------------

def detect_lang(text: str) -> str:
    """``zh`` when at least 30% of the non-space characters are CJK, else ``en``."""
    chars = [c for c in text if not c.isspace()]
    return "zh" if chars and sum(bool(CJK.match(c)) for c in chars) / len(chars) >= 0.3 else "en"


def default_source(path: PathLike) -> str:
    """``<folder>_<file stem>``: ``.../en/crossner_ai/test.bio.txt`` -> ``crossner_ai_test``."""
    path = Path(path)
    stem = path.name.split(".")[0]
    return f"{path.parent.name}_{stem}" if path.parent.name else stem


def _annotator(fmt: str, source: str, **extra: Any) -> str:
    return json.dumps({"format": fmt, "source": source, **{k: v for k, v in extra.items() if v}},
                      ensure_ascii=False)


def labels_queried(passage: AnnotatedPassage) -> list[str]:
    """The types asked about this passage (conversation/SLIMER data), else its entity labels."""
    try:
        asked = json.loads(passage["annotator"]).get("labels_queried")
    except (ValueError, AttributeError):
        asked = None
    return list(asked) if asked else list(dict.fromkeys(e["label"] for e in passage["entities"]))


def label_set(rows: Iterable[AnnotatedPassage]) -> list[str]:
    """Every type asked or annotated over the rows, in first-seen order (a benchmark's label set)."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(labels_queried(row)))
    return list(seen)


def _lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """(line number, text) pairs, decoded strictly: a non-UTF-8 byte is an error naming its line."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"not UTF-8 text (byte {exc.start} of the line)", path=str(path), line=n) from None
            yield n, (line.removeprefix("\ufeff") if n == 1 else line).rstrip("\r\n")


def _jsonl(path: PathLike) -> Iterator[tuple[int, dict]]:
    for n, line in _lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc.msg}, column {exc.colno})", path=str(path), line=n) from None
        if not isinstance(row, dict):
            raise InputError(f"expected a JSON object, got {type(row).__name__}", path=str(path), line=n)
        yield n, row


def _json_array(path: PathLike) -> list:
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError("not UTF-8 text", path=str(path), line=line) from None
    if not text.strip():
        raise InputError(f"no passages in {path}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON ({exc.msg}, column {exc.colno})", path=str(path), line=exc.lineno) from None
    if not isinstance(data, list):
        raise InputError("expected a JSON list of items", path=str(path))
    return data


def _field(row: dict, key: str, path: PathLike, line: int | str) -> Any:
    if key not in row:
        raise InputError(f"missing field {key!r}", path=str(path), line=line)
    return row[key]


def _span_entities(text: str, spans: Iterable[tuple[int, int, str, str]], where: str) -> list[Entity]:
    """Offset entities (end exclusive), checked against the text and stored by position."""
    entities = [Entity(start=int(s), end=int(e), text=m, label=label) for s, e, m, label in spans]
    entities.sort(key=lambda ent: (ent["start"], ent["end"]))
    check_entities(text, entities, where=where)
    return entities


def _aligned(text: str, pairs: Iterable[tuple[str, str]]) -> tuple[list[Entity], list[list[str]]]:
    entities, missing = align_mentions(text, list(dict.fromkeys(pairs)))
    return entities, [list(pair) for pair in missing]


# ---- BIO -----------------------------------------------------------------------------------------------

def _bio_sentences(path: PathLike, tag_first: bool) -> Iterator[tuple[list[str], list[str]]]:
    tokens: list[str] = []
    tags: list[str] = []
    for n, line in _lines(path):
        if not line.strip():
            if tokens:
                yield tokens, tags
                tokens, tags = [], []
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            layout = "tag<TAB>token" if tag_first else "token<TAB>tag"
            raise InputError(f"expected one '{layout}' per line, got {line[:60]!r}", path=str(path), line=n)
        token, tag = (parts[1], parts[0]) if tag_first else (parts[0], parts[1])
        if token == "-DOCSTART-":
            continue
        if not BIO_TAG.fullmatch(tag):
            raise InputError(f"bad BIO tag {tag!r} (expected O, B-<type> or I-<type>)", path=str(path), line=n)
        tokens.append(token)
        tags.append(tag)
    if tokens:
        yield tokens, tags


def bio_to_entities(tokens: list[str], tags: list[str], joiner: str = " ") -> tuple[str, list[Entity]]:
    """Join tokens into text and turn BIO tags into char-offset entities.

    Example:
        >>> bio_to_entities(["bruce", "willis", "movies"], ["B-ACTOR", "I-ACTOR", "O"])
        ('bruce willis movies', [{'start': 0, 'end': 12, 'text': 'bruce willis', 'label': 'ACTOR'}])
    """
    starts, pos = [], 0
    for token in tokens:
        starts.append(pos)
        pos += len(token) + len(joiner)
    text = joiner.join(tokens)
    entities: list[Entity] = []
    current: list | None = None  # [label, first token, last token]

    def close() -> None:
        if current is not None:
            start, end = starts[current[1]], starts[current[2]] + len(tokens[current[2]])
            entities.append(Entity(start=start, end=end, text=text[start:end], label=current[0]))

    for i, tag in enumerate(tags):
        if tag == "O":
            close()
            current = None
        elif tag[0] == "I" and current is not None and current[0] == tag[2:]:
            current[2] = i
        else:  # B-X, or an I-X that does not continue an X entity: starts one (conlleval)
            close()
            current = [tag[2:], i, i]
    close()
    return text, entities


def read_bio(path: PathLike, *, lang: str | None = None, tag_first: bool = False, joiner: str | None = None,
             source: str | None = None, token_fn: Callable[[str], str] | None = None,
             fmt: str = "bio") -> Iterator[AnnotatedPassage]:
    """BIO sentences as passages (token-first unless ``tag_first``); Chinese joins tokens with "".

    Example:
        >>> rows = list(read_bio("../shared/data/en/crossner_ai/train.bio.txt"))
        >>> len(rows), rows[0]["id"]
        (100, 'crossner_ai_train_0')
    """
    source = source or default_source(path)
    sentences = list(_bio_sentences(path, tag_first))
    if token_fn is not None:
        sentences = [([token_fn(t) for t in tokens], tags) for tokens, tags in sentences]
    if lang is None:
        lang = detect_lang("".join("".join(tokens) for tokens, _ in sentences[:200]))
    if joiner is None:
        joiner = "" if lang == "zh" else " "
    annotator = _annotator(fmt, source)
    for n, (tokens, tags) in enumerate(sentences):
        text, entities = bio_to_entities(tokens, tags, joiner)
        yield AnnotatedPassage(id=f"{source}_{n}", text=text, lang=lang, source=source, entities=entities,
                               annotator=annotator)


def read_bio_tag_first(path: PathLike, **kwargs: Any) -> Iterator[AnnotatedPassage]:
    """MIT-style ``tag<TAB>token`` BIO."""
    return read_bio(path, tag_first=True, fmt="bio_tag_first", **kwargs)


def _weibo_char(token: str) -> str:
    match = WEIBO_TOKEN.fullmatch(token)
    return match.group(1) if match else token


def read_weibo(path: PathLike, *, lang: str | None = "zh", **kwargs: Any) -> Iterator[AnnotatedPassage]:
    """Weibo NER conll: drop each token's trailing word-segmentation position (``李0`` -> ``李``)."""
    return read_bio(path, lang=lang or "zh", token_fn=_weibo_char, fmt="weibo", **kwargs)


# ---- offset jsonl / json ----------------------------------------------------------------------------------

def _offset_passage(row_id: str, text: str, lang: str | None, source: str, fmt: str,
                    entities: list[Entity]) -> AnnotatedPassage:
    return AnnotatedPassage(id=row_id, text=text, lang=lang or detect_lang(text), source=source,
                            entities=entities, annotator=_annotator(fmt, source))


def read_cluener(path: PathLike, *, lang: str | None = None, source: str | None = None) -> Iterator[AnnotatedPassage]:
    """CLUENER jsonl (``[start, end]`` inclusive)."""
    source = source or default_source(path)
    for i, (n, row) in enumerate(_jsonl(path)):
        text = str(_field(row, "text", path, n))
        spans = [(s, e + 1, mention, label) for label, mentions in (row.get("label") or {}).items()
                 for mention, offsets in mentions.items() for s, e in offsets]
        yield _offset_passage(str(row.get("id", f"{source}_{i}")), text, lang, source, "cluener",
                              _span_entities(text, spans, f"{path}:{n}"))


def read_cmeee(path: PathLike, *, lang: str | None = None, source: str | None = None) -> Iterator[AnnotatedPassage]:
    """CMeEE JSON array (``end_idx`` inclusive; entities may nest)."""
    source = source or default_source(path)
    for i, row in enumerate(_json_array(path)):
        where = f"{path}: item {i}"
        text = str(_field(row, "text", path, f"item {i}"))
        spans = [(e["start_idx"], e["end_idx"] + 1, e["entity"], e["type"]) for e in row.get("entities", [])]
        yield _offset_passage(str(row.get("id", f"{source}_{i}")), text, lang, source, "cmeee",
                              _span_entities(text, spans, where))


def read_yidu(path: PathLike, *, lang: str | None = None, source: str | None = None) -> Iterator[AnnotatedPassage]:
    """Yidu-S4K jsonl (``entity_index.end`` exclusive)."""
    source = source or default_source(path)
    for i, (n, row) in enumerate(_jsonl(path)):
        text = str(_field(row, "text", path, n))
        spans = [(e["entity_index"]["begin"], e["entity_index"]["end"], e["entity"], e["entity_type"])
                 for e in row.get("entity_list", [])]
        yield _offset_passage(str(row.get("id", f"{source}_{i}")), text, lang, source, "yidu",
                              _span_entities(text, spans, f"{path}:{n}"))


# ---- mention strings without offsets -------------------------------------------------------------------

def _own_id(value: Any, source: str, i: int) -> str:
    """A file's own id; a bare number is prefixed with the source so ids stay unique across files."""
    if value is None or value == "":
        return f"{source}_{i}"
    return f"{source}_{value}" if isinstance(value, int) else str(value)


def read_boson(path: PathLike, *, lang: str | None = None, source: str | None = None) -> Iterator[AnnotatedPassage]:
    """Boson jsonl (``label: {mention: type}``), aligned to every occurrence."""
    source = source or default_source(path)
    for i, (n, row) in enumerate(_jsonl(path)):
        text = str(_field(row, "sentence", path, n))
        entities, missing = _aligned(text, ((m, t) for m, t in (row.get("label") or {}).items()))
        yield AnnotatedPassage(id=_own_id(row.get("id"), source, i), text=text, lang=lang or "zh", source=source,
                               entities=entities, annotator=_annotator("boson", source, unaligned=missing))


def read_sky_ner(path: PathLike, *, lang: str | None = None, source: str | None = None) -> Iterator[AnnotatedPassage]:
    """Sky-NER jsonl (``entities: [{mention, type}]`` in teacher order), aligned to every occurrence."""
    source = source or default_source(path)
    for i, (n, row) in enumerate(_jsonl(path)):
        text = str(_field(row, "text", path, n))
        pairs = [(str(e["mention"]), str(e["type"])) for e in row.get("entities", [])]
        entities, missing = _aligned(text, pairs)
        yield AnnotatedPassage(id=_own_id(row.get("id"), source, i), text=text, lang=lang or detect_lang(text),
                               source=source, entities=entities,
                               annotator=_annotator("sky_ner", source, unaligned=missing))


def _answer(value: str, where: str, line: int | None, path: PathLike) -> list[str]:
    try:
        answer = json.loads(value, strict=False)  # RA-IT's Boson file has a raw tab inside one answer
    except (json.JSONDecodeError, TypeError):
        answer = None
    if not isinstance(answer, list) or not all(isinstance(m, str) for m in answer):
        raise InputError(f"{where}answer is not a JSON list of strings: {str(value)[:60]!r}", path=str(path), line=line)
    return answer


def read_slimer(path: PathLike, *, lang: str | None = None, source: str | None = None) -> Iterator[AnnotatedPassage]:
    """SLIMER Pile-NER rows grouped by passage index (``doc_question_pairID`` = ``passage:question``).

    Ids are ``pilener_<passage index>`` (the ids of ``raw_passages/pile_passages_from_pilener.jsonl``);
    the asked types, negatives included, go to ``labels_queried`` in question order.
    """
    source = source or default_source(path)
    groups: dict[int, dict] = {}
    for n, row in _jsonl(path):
        pair_id = str(_field(row, "doc_question_pairID", path, n))
        try:
            passage, question = (int(x) for x in pair_id.split(":"))
        except ValueError:
            raise InputError(f"bad doc_question_pairID {pair_id!r} (expected '<passage>:<question>')",
                             path=str(path), line=n) from None
        group = groups.setdefault(passage, {"text": _field(row, "input", path, n), "qa": []})
        if group["text"] != row["input"]:
            raise InputError(f"passage {passage} has two different texts", path=str(path), line=n)
        label = str(_field(row, "tagName", path, n))
        group["qa"].append((question, label, _answer(_field(row, "output", path, n), "", n, path)))
    for passage in sorted(groups):
        text, qa = groups[passage]["text"], sorted(groups[passage]["qa"], key=lambda q: q[0])
        entities, missing = _aligned(text, ((m, label) for _, label, answer in qa for m in answer))
        yield AnnotatedPassage(id=f"pilener_{passage}", text=text, lang=lang or "en", source=source,
                               entities=entities, annotator=_annotator(
                                   "slimer", source, labels_queried=list(dict.fromkeys(q[1] for q in qa)),
                                   unaligned=missing))


def _template_patterns() -> list[tuple[str, str, re.Pattern]]:
    """(lang, text-turn prefix, question regex) from the conversation templates in prompts.py."""
    out = []
    for tmpl in CONVERSATION_TEMPLATES.values():
        question = re.escape(tmpl.question).replace(re.escape("{label}"), "(.+)")
        out.append((tmpl.lang, tmpl.text_turn.split("{text}")[0], re.compile(question, re.S)))
    return out


def _conversation(item: dict, where: str, path: PathLike) -> tuple[str, str, list[tuple[str, list[str]]]]:
    """(lang, text, [(type, answer)]) of one UniNER conversation; a leading RA-IT example turn is skipped."""
    turns = item.get("conversations")
    if not isinstance(turns, list):
        raise InputError(f"{where}missing 'conversations' list", path=str(path))
    patterns = _template_patterns()
    for t, turn in enumerate(turns):
        value = str(turn.get("value", ""))
        match = next(((lang, prefix) for lang, prefix, _ in patterns if value.startswith(prefix)), None)
        if match is None and value.startswith("文本："):  # the prefix without its space
            match = ("zh", "文本：")
        if turn.get("from") == "human" and match:
            lang, text = match[0], value[len(match[1]):]
            break
    else:
        raise InputError(f"{where}no 'Text: ...' / '文本： ...' turn", path=str(path))
    qa = []
    rest = turns[t + 2:]  # after the text turn and its acknowledgement
    for q, a in zip(rest[0::2], rest[1::2]):
        question = str(q.get("value", ""))
        label = next((m.group(1) for _, _, rx in patterns if (m := rx.fullmatch(question))), None)
        if label is None:
            raise InputError(f"{where}not a type question: {question[:60]!r}", path=str(path))
        qa.append((label.strip('"'), _answer(a.get("value"), where, None, path)))
    return lang, text, qa


def read_uniner(path: PathLike, *, lang: str | None = None, source: str | None = None) -> Iterator[AnnotatedPassage]:
    """UniNER / ShareGPT conversations (JSON array or jsonl), grouped by text: one passage, all its types.

    The asked types (negatives included) are kept in ``labels_queried``; ``label_set(rows)`` gives the
    benchmark's label set.
    """
    source = source or default_source(path)
    if Path(path).suffix == ".jsonl":
        items = [(f"line {n}: ", row) for n, row in _jsonl(path)]
    else:
        items = [(f"item {i}: ", item) for i, item in enumerate(_json_array(path))]
    groups: dict[str, dict] = {}
    for where, item in items:
        if not isinstance(item, dict):
            raise InputError(f"{where}expected an object with 'conversations'", path=str(path))
        item_lang, text, qa = _conversation(item, where, path)
        group = groups.setdefault(text, {"lang": item_lang, "qa": []})
        group["qa"].extend(qa)
    for n, (text, group) in enumerate(groups.items()):
        entities, missing = _aligned(text, ((m, label) for label, answer in group["qa"] for m in answer))
        asked = list(dict.fromkeys(label for label, _ in group["qa"]))
        yield AnnotatedPassage(id=f"{source}_{n}", text=text, lang=lang or group["lang"], source=source,
                               entities=entities,
                               annotator=_annotator("uniner", source, labels_queried=asked, unaligned=missing))


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
        yield from _jsonl(path)


def read_annotated_rows(path: PathLike, *, lang: str | None = None,
                        source: str | None = None) -> Iterator[AnnotatedPassage]:
    """Our ``AnnotatedPassage`` rows (jsonl or parquet); every entity's offsets must index its text."""
    path = Path(path)
    source = source or default_source(path)
    for i, (n, row) in enumerate(_own_rows(path)):
        text = _field(row, "text", path, n)
        if not isinstance(text, str):
            raise InputError("field 'text' is not a string", path=str(path), line=n)
        raw = _field(row, "entities", path, n) or []
        try:
            entities = [Entity(start=int(e["start"]), end=int(e["end"]), text=str(e["text"]), label=str(e["label"]))
                        for e in raw]
        except (KeyError, TypeError, ValueError):
            raise InputError("each entity needs start, end, text, label", path=str(path), line=n) from None
        check_entities(text, entities, where=f"{path}:{n}")
        row_source = row.get("source") or source
        yield AnnotatedPassage(id=str(row.get("id") or f"{source}_{i}"), text=text,
                               lang=row.get("lang") or lang or detect_lang(text), source=row_source,
                               entities=entities, annotator=row.get("annotator") or _annotator("annotated", row_source))


def hub_data_files(folder: PathLike, split: str | None = None) -> list[Path]:
    """The ``*.parquet`` / ``*.jsonl`` data files of a dataset folder (hidden folders skipped)."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".parquet", ".jsonl") and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if split is not None:
        files = [p for p in files if p.name.split(".")[0].split("-")[0] == split]
    return files


def _read_folder(folder: PathLike, *, lang: str | None = None, split: str | None = None,
                 source: str | None = None) -> Iterator[AnnotatedPassage]:
    files = hub_data_files(folder, split)
    if not files:
        wanted = f" for split {split!r}" if split else ""
        raise InputError(f"no data files (*.parquet, *.jsonl){wanted} in this folder", path=str(folder))
    for file in files:
        yield from read_annotated_rows(file, lang=lang, source=source or Path(folder).name)


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
}
FORMATS: tuple[str, ...] = tuple(READERS)


# ---- detection and the entry point ----------------------------------------------------------------------

def _format_of_item(row: dict, more: Iterable[dict] = ()) -> str | None:
    keys = set(row)
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
    if path.is_dir() or path.suffix == ".parquet":
        return "annotated"
    head: list[str] = []
    for _, line in _lines(path):
        if line.strip():
            head.append(line)
        if len(head) >= 200:
            break
    if not head:
        raise InputError(f"no passages in {path}")
    first = head[0].lstrip()
    fmt = None
    if first.startswith("[") or (path.suffix == ".json" and not first.startswith("{")):
        items = _json_array(path)
        fmt = _format_of_item(items[0], items[1:50]) if items and isinstance(items[0], dict) else None
    elif first.startswith("{"):
        rows = [row for (_, row), _ in zip(_jsonl(path), range(50))]
        fmt = _format_of_item(rows[0], rows[1:]) if rows else None
    else:
        fmt = _sniff_bio(head)
    if fmt is None:
        hint = " (rows without entities look like raw passages, not annotated data)" if '"text"' in first else ""
        raise InputError(f"cannot tell the format{hint}; pass format= one of {', '.join(FORMATS)}",
                         path=str(path))
    return fmt


def read_annotated(path: PathLike, *, format: str = "auto", lang: str | None = None,
                   split: str | None = None) -> datasets.Dataset:
    """Read any supported NER file (or a Hub-layout dataset folder) as ``AnnotatedPassage`` rows.

    Args:
        path: a file, or a folder with ``*.parquet`` / ``*.jsonl`` AnnotatedPassage files (e.g. ``data/``).
        format: one of ``FORMATS`` or ``auto`` (see ``detect_format``).
        lang: ``en`` / ``zh``; inferred from the text when None (a folder's rows keep their own).
        split: for a folder, only files named ``<split>-*`` / ``<split>.*``.

    Example:
        >>> ds = read_annotated("examples/data/pile_ner_sample.en.jsonl")
        >>> ds.features == ANNOTATED_FEATURES, ds[0]["entities"][0].keys()
        (True, dict_keys(['start', 'end', 'text', 'label']))
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", path=str(path))
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in READERS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of: auto, {', '.join(FORMATS)}")
    if path.is_dir():
        if fmt != "annotated":
            raise InputError(f"a folder can only hold 'annotated' data, not {fmt!r}", path=str(path))
        rows = list(_read_folder(path, lang=lang, split=split))
    else:
        rows = list(READERS[fmt](path, lang=lang))
    if not rows:
        raise InputError(f"no passages in {path}")
    seen: set[str] = set()
    for row in rows:
        if row["id"] in seen:
            raise InputError(f"duplicate passage id {row['id']!r}", path=str(path))
        seen.add(row["id"])
    return datasets.Dataset.from_list(rows, features=ANNOTATED_FEATURES)


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

    def write(fh) -> None:
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
    was_disabled = datasets.is_progress_bar_enabled() is False
    datasets.disable_progress_bars()  # a local read is quick; the CLI prints one summary line
    try:
        if path.is_dir():
            ds = datasets.load_dataset(str(path), name=config, split=split)
        elif path.suffix == ".parquet":
            ds = datasets.Dataset.from_parquet(str(path))
        elif path.suffix in (".jsonl", ".json"):
            ds = datasets.Dataset.from_json(str(path))
        else:
            raise InputError("expected a dataset folder or a .parquet/.jsonl file", path=str(path))
    except (ValueError, FileNotFoundError, KeyError) as exc:  # unknown config/split, missing files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot load the IT dataset ({first})", path=str(path)) from None
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()
    if "messages" not in ds.column_names:
        raise InputError(f"not an IT dataset: no 'messages' column (columns: {ds.column_names})", path=str(path))
    return ds


EXPORT_FORMATS = ("uniner", "jsonl")


def export_it(path: PathLike, out: PathLike, *, config: str | None = None, split: str = "train",
              format: str = "uniner") -> int:
    """Export one config/split of an IT dataset as UniNER JSON (or jsonl of ITExample rows).

    Example:
        >>> export_it("outputs/it-data", "vanilla.train.json", config="vanilla")
        271
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
    ds = load_it_dataset(path, config=config, split=split)
    return write_uniner(ds, out) if format == "uniner" else write_jsonl(ds, out)
