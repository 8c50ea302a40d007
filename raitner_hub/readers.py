"""Readers for third-party NER files: each yields ``AnnotatedPassage`` rows (records.py) lazily.

Use ``formats.read_annotated`` (auto-detection, one Dataset) unless you need a reader's own options
(``joiner``, ``tag_first``, ``source``). Format details and conventions are in ``formats``' docstring:

- BIO text is tokens joined by " " (English) or "" (Chinese); ``I-X`` after ``O``/another type starts an
  entity (conlleval). Weibo tokens lose their trailing word-segmentation digits.
- Offset formats (CLUENER, CMeEE, Yidu) are checked against the text and stored by position.
- Mention-only formats (Boson, Sky-NER, SLIMER, UniNER) are aligned to every occurrence, in file order;
  pairs not found are listed under ``unaligned`` in ``annotator``.
- ``annotator`` is JSON ``{"format", "source", "labels_queried"?, "qa"?, "unaligned"?}``; ``qa`` holds a
  conversation's own questions, ``[[type, [mention, ...]], ...]`` in its order, negatives (``[]``) included,
  exactly as the file has them (``input_questions``).
- A conversation whose answer is not a JSON list of strings is dropped and counted (``ReadReport``); a file
  where more than half of the conversations are dropped is an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raitner_hub.errors import InputError
from raitner_hub.prompts import CONVERSATION_TEMPLATES
from raitner_hub.records import AnnotatedPassage, Entity, align_mentions, check_entities, mentions_by_label

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


def annotator_json(fmt: str, source: str, **extra: Any) -> str:
    # an empty ``qa`` is kept: a conversation that asked nothing must not be asked the whole label set
    return json.dumps(
        {"format": fmt, "source": source, **{k: v for k, v in extra.items() if v or (k == "qa" and v is not None)}},
        ensure_ascii=False,
    )


def labels_queried(passage: AnnotatedPassage) -> list[str]:
    """The types asked about this passage (conversation/SLIMER data), else its entity labels."""
    try:
        asked = json.loads(passage["annotator"]).get("labels_queried")
    except (ValueError, AttributeError):
        asked = None
    return list(asked) if asked else list(dict.fromkeys(e["label"] for e in passage["entities"]))


def _annotator(passage: AnnotatedPassage) -> dict:
    return _annotator_fields(passage["annotator"])


def _annotator_fields(annotator: str | None) -> dict:
    try:
        data = json.loads(annotator)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def input_questions(passage: AnnotatedPassage) -> list[tuple[str, list[str]]] | None:
    """The questions a conversation-format input asked about this passage, ``[(type, answer), ...]`` in its
    order (negatives have ``[]``), exactly as the file wrote them (``qa``; else ``labels_queried`` with the
    entities' mentions as answers); None when the input had no questions."""
    return recorded_questions(passage["annotator"], lambda: mentions_by_label(passage["entities"]))


def recorded_questions(
    annotator: str | None, answers: Callable[[], dict[str, list[str]]]
) -> list[tuple[str, list[str]]] | None:
    """:func:`input_questions` from a row's ``annotator`` JSON; ``answers()`` gives the entities' mentions per
    type, called only for rows written before ``qa`` existed (the column-wise build passes its own)."""
    data = _annotator_fields(annotator)
    qa = data.get("qa")
    if isinstance(qa, list):
        return [(str(label), [str(m) for m in answer]) for label, answer in qa]
    asked = data.get("labels_queried")
    if isinstance(asked, list):  # rows written before ``qa`` existed: the asked types, answers from the entities
        by_label = answers()
        return [(str(label), by_label.get(label, [])) for label in asked]
    return None


def gold_answers(passage: AnnotatedPassage) -> dict[str, list[str]]:
    """The answer list per type: the input's own answers where it asked questions (UniNER's gold, mentions
    not found in the text included), else the distinct mentions of the passage's entities."""
    qa = input_questions(passage)
    if qa is None:
        return mentions_by_label(passage["entities"])
    out: dict[str, list[str]] = {}
    for label, answer in qa:
        out.setdefault(label, list(answer))
    return out


def relabel_annotator(annotator: str, mapping: dict[str, str | None]) -> str:
    """``labels_queried`` and ``qa`` of an annotator JSON renamed through ``mapping`` (``None`` drops the type)."""
    try:
        data = json.loads(annotator)
    except (ValueError, TypeError):
        return annotator
    if not isinstance(data, dict) or not ({"labels_queried", "qa"} & set(data)):
        return annotator
    if "labels_queried" in data:
        renamed = (mapping.get(label, label) for label in data["labels_queried"])
        data["labels_queried"] = list(dict.fromkeys(label for label in renamed if label))
    if "qa" in data:
        data["qa"] = [[mapping.get(label, label), answer] for label, answer in data["qa"] if mapping.get(label, label)]
    return json.dumps(data, ensure_ascii=False)


@dataclass
class ReadReport:
    """What a reader dropped: conversations whose answer does not parse (the paper drops them too)."""

    conversations: int = 0
    dropped: int = 0
    first_dropped: str = ""  # the error of the first dropped conversation (file:line / item)

    def check(self, path: PathLike) -> None:
        """More than half of the conversations bad: not a file of this format; an error."""
        if self.conversations and self.dropped * 2 > self.conversations:
            raise InputError(
                f"{self.first_dropped} ({self.dropped} of {self.conversations} conversations "
                f"have an unparseable answer)"
            )


class _BadAnswer(InputError):
    """An answer that is not a JSON list of strings (the conversation is dropped and counted)."""


def label_set(rows: Iterable[AnnotatedPassage]) -> list[str]:
    """Every type asked or annotated over the rows, in first-seen order (a benchmark's label set)."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(labels_queried(row)))
    return list(seen)


def read_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """(line number, text) pairs, decoded strictly: a non-UTF-8 byte is an error naming its line."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"not UTF-8 text (byte {exc.start} of the line)", path=str(path), line=n) from None
            yield n, (line.removeprefix("\ufeff") if n == 1 else line).rstrip("\r\n")


def read_jsonl_rows(path: PathLike) -> Iterator[tuple[int, dict]]:
    for n, line in read_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc.msg}, column {exc.colno})", path=str(path), line=n) from None
        if not isinstance(row, dict):
            raise InputError(f"expected a JSON object, got {type(row).__name__}", path=str(path), line=n)
        yield n, row


def read_json_array(path: PathLike) -> list:
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


def require_field(row: dict, key: str, path: PathLike, line: int | str) -> Any:
    if key not in row:
        raise InputError(f"missing field {key!r}", path=str(path), line=line)
    return row[key]


@contextlib.contextmanager
def _entity_fields(fmt: str, path: PathLike, line: int | str | None) -> Iterator[None]:
    """Turn a malformed entity structure (missing key, wrong type) into one InputError line."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"malformed {fmt} entities ({type(exc).__name__}: {exc})", path=str(path), line=line) from None


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
    for n, line in read_lines(path):
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


def read_bio(
    path: PathLike,
    *,
    lang: str | None = None,
    tag_first: bool = False,
    joiner: str | None = None,
    source: str | None = None,
    token_fn: Callable[[str], str] | None = None,
    fmt: str = "bio",
) -> Iterator[AnnotatedPassage]:
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
    annotator = annotator_json(fmt, source)
    for n, (tokens, tags) in enumerate(sentences):
        text, entities = bio_to_entities(tokens, tags, joiner)
        yield AnnotatedPassage(
            id=f"{source}_{n}", text=text, lang=lang, source=source, entities=entities, annotator=annotator
        )


def read_bio_tag_first(path: PathLike, **kwargs: Any) -> Iterator[AnnotatedPassage]:
    """MIT-style ``tag<TAB>token`` BIO."""
    return read_bio(path, tag_first=True, fmt="bio_tag_first", **kwargs)


def weibo_char(token: str) -> str:
    match = WEIBO_TOKEN.fullmatch(token)
    return match.group(1) if match else token


def read_weibo(path: PathLike, *, lang: str | None = "zh", **kwargs: Any) -> Iterator[AnnotatedPassage]:
    """Weibo NER conll: drop each token's trailing word-segmentation position (``李0`` -> ``李``)."""
    return read_bio(path, lang=lang or "zh", token_fn=weibo_char, fmt="weibo", **kwargs)


# ---- HF token classification (tokens + ner_tags) ---------------------------------------------------------

TOKEN_COLUMNS = ("tokens", "ner_tags")


def tag_names(features: Any) -> list[str] | None:
    """The label names of a ``ner_tags`` column typed ``Sequence(ClassLabel)`` / ``List(ClassLabel)``."""
    feature = features.get("ner_tags") if features is not None else None
    names = getattr(getattr(feature, "feature", None), "names", None)
    return list(names) if names else None


def read_token_rows(
    rows: Iterable[dict], *, names: list[str] | None, source: str, where: str, lang: str | None = None
) -> Iterator[AnnotatedPassage]:
    """Rows of the Hub's token-classification layout (``tokens`` + ``ner_tags``) as passages.

    Tag ids are turned into names with ``names`` (the ClassLabel names of the features); string tags are
    used as they are. The BIO reader's rules apply: IOB1 and IOB2 both (an ``I-X`` after ``O`` or another
    type starts an entity), tokens joined by " " (English) or "" (Chinese), ``-DOCSTART-`` dropped, ids
    ``<source>_<n>`` counting the sentences kept, so a BIO file and the same sentences in this layout read
    the same.
    """
    sentences: list[tuple[list[str], list[str]]] = []
    for i, row in enumerate(rows):
        missing = [c for c in TOKEN_COLUMNS if c not in row]
        if missing:
            raise InputError(f"row {i}: missing column(s) {', '.join(missing)}", path=where)
        tokens, raw = [str(t) for t in row["tokens"]], list(row["ner_tags"])
        if len(tokens) != len(raw):
            raise InputError(f"row {i}: {len(tokens)} tokens but {len(raw)} ner_tags", path=where)
        tags = []
        for tag in raw:
            if isinstance(tag, int) and not isinstance(tag, bool):
                if names is None:
                    raise InputError(
                        f"row {i}: integer ner_tags without label names (the features must type "
                        "ner_tags as Sequence(ClassLabel), or write the tags as strings)",
                        path=where,
                    )
                if not 0 <= tag < len(names):
                    raise InputError(
                        f"row {i}: tag id {tag} out of range (features name {len(names)} tags)", path=where
                    )
                tag = names[tag]
            if not isinstance(tag, str) or not BIO_TAG.fullmatch(tag):
                raise InputError(f"row {i}: bad BIO tag {tag!r} (expected O, B-<type> or I-<type>)", path=where)
            tags.append(tag)
        kept = [(t, g) for t, g in zip(tokens, tags) if t != "-DOCSTART-"]
        if kept:
            sentences.append(([t for t, _ in kept], [g for _, g in kept]))
    if lang is None:
        lang = detect_lang("".join("".join(tokens) for tokens, _ in sentences[:200]))
    joiner = "" if lang == "zh" else " "
    annotator = annotator_json("token_classification", source)
    for n, (tokens, tags) in enumerate(sentences):
        text, entities = bio_to_entities(tokens, tags, joiner)
        yield AnnotatedPassage(
            id=f"{source}_{n}", text=text, lang=lang, source=source, entities=entities, annotator=annotator
        )


# ---- offset jsonl / json ----------------------------------------------------------------------------------


def _offset_passage(
    row_id: str, text: str, lang: str | None, source: str, fmt: str, entities: list[Entity]
) -> AnnotatedPassage:
    return AnnotatedPassage(
        id=row_id,
        text=text,
        lang=lang or detect_lang(text),
        source=source,
        entities=entities,
        annotator=annotator_json(fmt, source),
    )


def read_cluener(path: PathLike, *, lang: str | None = None, source: str | None = None) -> Iterator[AnnotatedPassage]:
    """CLUENER jsonl (``[start, end]`` inclusive)."""
    source = source or default_source(path)
    for i, (n, row) in enumerate(read_jsonl_rows(path)):
        text = str(require_field(row, "text", path, n))
        with _entity_fields("cluener", path, n):
            spans = [
                (s, e + 1, mention, label)
                for label, mentions in (row.get("label") or {}).items()
                for mention, offsets in mentions.items()
                for s, e in offsets
            ]
            entities = _span_entities(text, spans, f"{path}:{n}")
        yield _offset_passage(str(row.get("id", f"{source}_{i}")), text, lang, source, "cluener", entities)


def read_cmeee(path: PathLike, *, lang: str | None = None, source: str | None = None) -> Iterator[AnnotatedPassage]:
    """CMeEE JSON array (``end_idx`` inclusive; entities may nest)."""
    source = source or default_source(path)
    for i, row in enumerate(read_json_array(path)):
        where = f"{path}: item {i}"
        if not isinstance(row, dict):
            raise InputError(f"expected a JSON object, got {type(row).__name__}", path=str(path), line=f"item {i}")
        text = str(require_field(row, "text", path, f"item {i}"))
        with _entity_fields("cmeee", path, f"item {i}"):
            spans = [(e["start_idx"], e["end_idx"] + 1, e["entity"], e["type"]) for e in row.get("entities", [])]
            entities = _span_entities(text, spans, where)
        yield _offset_passage(str(row.get("id", f"{source}_{i}")), text, lang, source, "cmeee", entities)


def read_yidu(path: PathLike, *, lang: str | None = None, source: str | None = None) -> Iterator[AnnotatedPassage]:
    """Yidu-S4K jsonl (``entity_index.end`` exclusive)."""
    source = source or default_source(path)
    for i, (n, row) in enumerate(read_jsonl_rows(path)):
        text = str(require_field(row, "text", path, n))
        with _entity_fields("yidu", path, n):
            spans = [
                (e["entity_index"]["begin"], e["entity_index"]["end"], e["entity"], e["entity_type"])
                for e in row.get("entity_list", [])
            ]
            entities = _span_entities(text, spans, f"{path}:{n}")
        yield _offset_passage(str(row.get("id", f"{source}_{i}")), text, lang, source, "yidu", entities)


# ---- mention strings without offsets -------------------------------------------------------------------


def _own_id(value: Any, source: str, i: int) -> str:
    """A file's own id; a bare number is prefixed with the source so ids stay unique across files."""
    if value is None or value == "":
        return f"{source}_{i}"
    return f"{source}_{value}" if isinstance(value, int) else str(value)


def read_boson(path: PathLike, *, lang: str | None = None, source: str | None = None) -> Iterator[AnnotatedPassage]:
    """Boson jsonl (``label: {mention: type}``), aligned to every occurrence."""
    source = source or default_source(path)
    for i, (n, row) in enumerate(read_jsonl_rows(path)):
        text = str(require_field(row, "sentence", path, n))
        with _entity_fields("boson", path, n):
            entities, missing = _aligned(text, [(m, t) for m, t in (row.get("label") or {}).items()])
        yield AnnotatedPassage(
            id=_own_id(row.get("id"), source, i),
            text=text,
            lang=lang or "zh",
            source=source,
            entities=entities,
            annotator=annotator_json("boson", source, unaligned=missing),
        )


def read_sky_ner(path: PathLike, *, lang: str | None = None, source: str | None = None) -> Iterator[AnnotatedPassage]:
    """Sky-NER jsonl (``entities: [{mention, type}]`` in teacher order), aligned to every occurrence."""
    source = source or default_source(path)
    for i, (n, row) in enumerate(read_jsonl_rows(path)):
        text = str(require_field(row, "text", path, n))
        with _entity_fields("sky_ner", path, n):
            pairs = [(str(e["mention"]), str(e["type"])) for e in row.get("entities", [])]
        entities, missing = _aligned(text, pairs)
        yield AnnotatedPassage(
            id=_own_id(row.get("id"), source, i),
            text=text,
            lang=lang or detect_lang(text),
            source=source,
            entities=entities,
            annotator=annotator_json("sky_ner", source, unaligned=missing),
        )


def _answer(value: str | None, where: str, line: int | None, path: PathLike) -> list[str]:
    try:
        answer = json.loads(value or "", strict=False)  # RA-IT's Boson file has a raw tab inside one answer
    except (json.JSONDecodeError, TypeError):
        answer = None
    if not isinstance(answer, list) or not all(isinstance(m, str) for m in answer):
        raise _BadAnswer(f"{where}answer is not a JSON list of strings: {str(value)[:60]!r}", path=str(path), line=line)
    return answer


def read_slimer(
    path: PathLike, *, lang: str | None = None, source: str | None = None, report: ReadReport | None = None
) -> Iterator[AnnotatedPassage]:
    """SLIMER Pile-NER rows grouped by passage index (``doc_question_pairID`` = ``passage:question``).

    Ids are ``pilener_<passage index>`` (the ids of ``raw_passages/pile_passages_from_pilener.jsonl``);
    the asked types, negatives included, go to ``labels_queried`` and (with their answers) ``qa``, in
    question order. A passage with an unparseable answer is dropped and counted in ``report``.
    """
    source = source or default_source(path)
    report = report if report is not None else ReadReport()
    groups: dict[int, dict] = {}
    for n, row in read_jsonl_rows(path):
        pair_id = str(require_field(row, "doc_question_pairID", path, n))
        try:
            passage, question = (int(x) for x in pair_id.split(":"))
        except ValueError:
            raise InputError(
                f"bad doc_question_pairID {pair_id!r} (expected '<passage>:<question>')", path=str(path), line=n
            ) from None
        group = groups.setdefault(passage, {"text": require_field(row, "input", path, n), "qa": [], "bad": ""})
        if group["text"] != row["input"]:
            raise InputError(f"passage {passage} has two different texts", path=str(path), line=n)
        label = str(require_field(row, "tagName", path, n))
        try:
            group["qa"].append((question, label, _answer(require_field(row, "output", path, n), "", n, path)))
        except _BadAnswer as exc:
            group["bad"] = group["bad"] or str(exc)
    report.conversations += len(groups)
    for passage in sorted(groups):
        if groups[passage]["bad"]:
            report.dropped += 1
            report.first_dropped = report.first_dropped or groups[passage]["bad"]
    report.check(path)
    for passage in sorted(groups):
        if groups[passage]["bad"]:
            continue
        text, qa = groups[passage]["text"], sorted(groups[passage]["qa"], key=lambda q: q[0])
        entities, missing = _aligned(text, ((m, label) for _, label, answer in qa for m in answer))
        yield AnnotatedPassage(
            id=f"pilener_{passage}",
            text=text,
            lang=lang or "en",
            source=source,
            entities=entities,
            annotator=annotator_json(
                "slimer",
                source,
                labels_queried=list(dict.fromkeys(q[1] for q in qa)),
                qa=[[label, answer] for _, label, answer in qa],
                unaligned=missing,
            ),
        )


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
        if not isinstance(turn, dict):
            raise InputError(f"{where}turn {t} is not an object with 'from' and 'value'", path=str(path))
        value = str(turn.get("value", ""))
        match = next(((lang, prefix) for lang, prefix, _ in patterns if value.startswith(prefix)), None)
        if match is None and value.startswith("文本："):  # the prefix without its space
            match = ("zh", "文本：")
        if turn.get("from") == "human" and match:
            lang, text = match[0], value[len(match[1]) :]
            break
    else:
        raise InputError(f"{where}no 'Text: ...' / '文本： ...' turn", path=str(path))
    qa = []
    rest = turns[t + 2 :]  # after the text turn and its acknowledgement
    for q, a in zip(rest[0::2], rest[1::2]):
        if not isinstance(q, dict) or not isinstance(a, dict):
            raise InputError(f"{where}a turn is not an object with 'from' and 'value'", path=str(path))
        question = str(q.get("value", ""))
        label = next((m.group(1) for _, _, rx in patterns if (m := rx.fullmatch(question))), None)
        if label is None:
            raise InputError(f"{where}not a type question: {question[:60]!r}", path=str(path))
        qa.append((label.strip('"'), _answer(a.get("value"), where, None, path)))
    return lang, text, qa


def read_uniner(
    path: PathLike, *, lang: str | None = None, source: str | None = None, report: ReadReport | None = None
) -> Iterator[AnnotatedPassage]:
    """UniNER / ShareGPT conversations (JSON array or jsonl): one passage per sentence, all its questions.

    Items with the same text are one passage until a type is asked again: UniNER's test files ask one
    type per item, and a sentence that occurs twice in the benchmark is asked (and scored) twice, so it
    is two passages here (CrossNER AI: 431 sentences, 430 distinct texts). The questions (negatives
    included) are kept in ``qa`` / ``labels_queried`` in file order; ``label_set(rows)`` gives the
    benchmark's label set. An item whose answer does not parse is dropped and counted in ``report``.
    """
    source = source or default_source(path)
    report = report if report is not None else ReadReport()
    if Path(path).suffix == ".jsonl":
        items = [(f"line {n}: ", row) for n, row in read_jsonl_rows(path)]
    else:
        items = [(f"item {i}: ", item) for i, item in enumerate(read_json_array(path))]
    groups: list[dict] = []
    by_text: dict[str, list[dict]] = {}
    for where, item in items:
        if not isinstance(item, dict):
            raise InputError(f"{where}expected an object with 'conversations'", path=str(path))
        report.conversations += 1
        try:
            item_lang, text, qa = _conversation(item, where, path)
        except _BadAnswer as exc:
            report.dropped += 1
            report.first_dropped = report.first_dropped or str(exc)
            continue
        asked = {label for label, _ in qa}
        group = next((g for g in by_text.get(text, []) if not asked & g["asked"]), None)
        if group is None:
            group = {"text": text, "lang": item_lang, "qa": [], "asked": set()}
            groups.append(group)
            by_text.setdefault(text, []).append(group)
        group["qa"].extend(qa)
        group["asked"] |= asked
    report.check(path)
    for n, group in enumerate(groups):
        text = group["text"]
        entities, missing = _aligned(text, ((m, label) for label, answer in group["qa"] for m in answer))
        asked_types = list(dict.fromkeys(label for label, _ in group["qa"]))
        yield AnnotatedPassage(
            id=f"{source}_{n}",
            text=text,
            lang=lang or group["lang"],
            source=source,
            entities=entities,
            annotator=annotator_json(
                "uniner",
                source,
                labels_queried=asked_types,
                qa=[[label, answer] for label, answer in group["qa"]],
                unaligned=missing,
            ),
        )
