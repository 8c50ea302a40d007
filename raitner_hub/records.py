"""The one record schema that flows through every stage.

Character offsets are the truth: ``passage["text"][e["start"]:e["end"]] == e["text"]`` for every entity
(end exclusive). Mention strings, answers and demonstration blocks are derived from them.

Entity order matters and is kept: readers of offset data store entities by position; teacher
annotations keep the teacher's order, with every occurrence of one mention next to each other. The
instruction builder derives "the mentions of type T" as the distinct entity texts of that label, in
stored order, which reproduces the reference answers exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import datasets

if TYPE_CHECKING:
    import pyarrow as pa


class Entity(TypedDict):
    start: int
    end: int
    text: str
    label: str


class Passage(TypedDict):
    id: str
    text: str
    lang: str
    source: str


class AnnotatedPassage(Passage):
    entities: list[Entity]
    annotator: str  # JSON: teacher ids / vote details, or the name of the human-annotated source


class Message(TypedDict):
    role: str  # "user" | "assistant" (| "system")
    content: str


class ITExample(TypedDict):
    id: str
    lang: str
    messages: list[Message]
    labels_queried: list[str]
    source_id: str
    template: str
    strategy: str | None
    demos: list[str]


class Prediction(TypedDict):
    start: int
    end: int
    text: str
    label: str
    score: float | None


ENTITY_FEATURES = {
    "start": datasets.Value("int32"),
    "end": datasets.Value("int32"),
    "text": datasets.Value("string"),
    "label": datasets.Value("string"),
}

PASSAGE_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "lang": datasets.Value("string"),
        "source": datasets.Value("string"),
    }
)

ANNOTATED_FEATURES = datasets.Features(
    {
        **PASSAGE_FEATURES,
        "entities": datasets.List(ENTITY_FEATURES),
        "annotator": datasets.Value("string"),
    }
)

IT_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "lang": datasets.Value("string"),
        "messages": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
        "labels_queried": datasets.List(datasets.Value("string")),
        "source_id": datasets.Value("string"),
        "template": datasets.Value("string"),
        "strategy": datasets.Value("string"),
        "demos": datasets.List(datasets.Value("string")),
    }
)

LANGS = ("en", "zh")


def mentions_by_label(entities: list[Entity]) -> dict[str, list[str]]:
    """Distinct mention texts per label, in stored order (the answer lists of the IT format)."""
    return group_mentions((ent["text"], ent["label"]) for ent in entities)


def group_mentions(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """:func:`mentions_by_label` of (mention, label) pairs (the column-wise readers have no entity dicts)."""
    out: dict[str, list[str]] = {}
    for text, label in pairs:
        mentions = out.setdefault(label, [])
        if text not in mentions:
            mentions.append(text)
    return out


def distinct_mentions(entities: list[Entity]) -> list[tuple[str, str]]:
    """Distinct (mention, label) pairs in stored order: what a demonstration shows."""
    return distinct_pairs((ent["text"], ent["label"]) for ent in entities)


def distinct_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """:func:`distinct_mentions` of (mention, label) pairs (``EntityColumns.pairs``)."""
    return list(dict.fromkeys(pairs))


def find_occurrences(text: str, mention: str, *, case_sensitive: bool = True) -> list[tuple[int, int]]:
    """Every non-overlapping occurrence of ``mention`` in ``text`` as (start, end) offsets."""
    if not mention:
        return []
    hay, needle = (text, mention) if case_sensitive else (text.lower(), mention.lower())
    if len(hay) != len(text):  # lower() changed lengths (rare Unicode cases): fall back to exact search
        hay, needle = text, mention
    spans, pos = [], hay.find(needle)
    while pos != -1:
        spans.append((pos, pos + len(needle)))
        pos = hay.find(needle, pos + len(needle))
    return spans


def align_mentions(text: str, pairs: list[tuple[str, str]]) -> tuple[list[Entity], list[tuple[str, str]]]:
    """Turn (mention, label) strings into entities at every occurrence, in the pairs' order.

    Exact-case occurrences are preferred; a mention found only case-insensitively is aligned to those
    spans (entity text is then the passage's own casing). Returns (entities, pairs that were not found).
    """
    entities: list[Entity] = []
    missing: list[tuple[str, str]] = []
    for mention, label in pairs:
        spans = find_occurrences(text, mention) or find_occurrences(text, mention, case_sensitive=False)
        if not spans:
            missing.append((mention, label))
        for start, end in spans:
            entities.append(Entity(start=start, end=end, text=text[start:end], label=label))
    return entities, missing


def check_entities(passage_text: str, entities: list[Entity], *, where: str) -> None:
    """Raise InputError when an entity's offsets do not index its text."""
    from raitner_hub.errors import InputError

    for ent in entities:
        if passage_text[ent["start"] : ent["end"]] != ent["text"]:
            raise InputError(
                f"entity {ent['text']!r} ({ent['label']}) does not match text[{ent['start']}:{ent['end']}]"
                f" = {passage_text[ent['start'] : ent['end']]!r}",
                path=where,
            )


@dataclass(frozen=True)
class EntityColumns:
    """An Arrow ``entities`` column as flat mention / label lists and row offsets (no dict per entity):
    row i's entities are ``texts[offsets[i]:offsets[i + 1]]`` with ``labels`` alongside."""

    offsets: list[int]
    texts: list[str]
    labels: list[str]

    @classmethod
    def from_arrow(cls, entities: pa.ChunkedArray | pa.Array) -> EntityColumns:
        import pyarrow as pa

        array = entities.combine_chunks() if isinstance(entities, pa.ChunkedArray) else entities
        offsets = array.offsets.to_numpy()
        start, stop = int(offsets[0]), int(offsets[-1])  # a sliced array's offsets start past 0
        values = array.values.slice(start, stop - start)
        return cls((offsets - start).tolist(), values.field("text").to_pylist(), values.field("label").to_pylist())

    def pairs(self, row: int) -> Iterator[tuple[str, str]]:
        """Row ``row``'s (mention, label) pairs in stored order."""
        start, stop = self.offsets[row], self.offsets[row + 1]
        return zip(self.texts[start:stop], self.labels[start:stop])


def dataset_from_arrow(columns: dict[str, Any], features: datasets.Features) -> datasets.Dataset:
    """An in-memory Dataset of Arrow columns (arrays or chunked arrays, one per feature), built without
    ``datasets.map``: only a column whose type differs from the schema is cast (a whole-table cast copies
    every column), and the fingerprint is random (else datasets pickles the whole table to hash it)."""
    import pyarrow as pa
    from datasets.fingerprint import generate_random_fingerprint

    schema = features.arrow_schema
    arrays = [
        col if col.type == schema.field(name).type else col.cast(schema.field(name).type)
        for name, col in ((name, columns[name]) for name in schema.names)
    ]
    return datasets.Dataset(
        datasets.table.InMemoryTable(pa.Table.from_arrays(arrays, schema=schema)),
        info=datasets.DatasetInfo(features=features),
        fingerprint=generate_random_fingerprint(),
    )
