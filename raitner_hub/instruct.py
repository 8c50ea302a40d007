"""Annotated passages -> instruction-tuning conversations (the vanilla IT data).

One chat per passage (paper.md §3): the text turn and its acknowledgement, then one question per entity
type with a JSON-list answer. Negative types (absent from the passage, answer ``[]``) are drawn once per
passage, before any subsetting or retrieval, so every RA-IT variant asks exactly the same questions as
the vanilla one and differs only by its demonstrations (paper.md §2.4):

- n ~ Binomial(P, 0.5) for P positive types, capped at the number of candidate types;
- candidates are all other types in the dataset, drawn in proportion to their mention frequency,
  **without replacement** (the reference samples a multiset and can draw one type twice);
- positives and negatives are shuffled together; that is the question order.

Every draw uses a generator seeded by ``(seed, passage id)`` (``row_random``), so the result does not
depend on row order, batching or the number of worker processes.

Input that already carries its questions (a Pile-NER-type or other conversation file: every type asked,
``[]`` answers are the negatives; ``readers.input_questions``) is kept as it is by default: the same
questions, the same answers, in the file's order (``negatives="keep"``; paper.md §2.4 trains on
Pile-NER-type as released). ``"resample"`` draws new negatives as above; ``"none"`` asks positives only.
"""

from __future__ import annotations

from collections import Counter

import datasets
import numpy as np
import pyarrow as pa

from raitner_hub.errors import ConfigError
from raitner_hub.prompts import ConversationTemplate, conversation_template, format_answer
from raitner_hub.readers import recorded_questions
from raitner_hub.records import (
    IT_FEATURES,
    EntityColumns,
    dataset_from_arrow,
    distinct_pairs,
    group_mentions,
)
from raitner_hub.row_random import choice_without_replacement, row_generators

NEGATIVE_COIN = 0.5
NEGATIVES = ("keep", "resample", "none")


def has_questions(annotated: datasets.Dataset) -> bool:
    """True when the input recorded its own questions (conversation formats): ``keep`` is then the default."""
    # only whether questions were recorded matters here, not their answers (hence ``dict``: none)
    return any(recorded_questions(a, dict) is not None for a in annotated["annotator"][:])


def resolve_negatives(negatives: str | bool | None, annotated: datasets.Dataset) -> str:
    """``None`` -> ``keep`` when the input has questions, else ``resample``; booleans as before."""
    if negatives is None:
        return "keep" if has_questions(annotated) else "resample"
    if isinstance(negatives, bool):
        return "resample" if negatives else "none"
    if negatives not in NEGATIVES:
        raise ConfigError(f"unknown negatives mode {negatives!r}; choose one of: {', '.join(NEGATIVES)}")
    return negatives


def type_frequencies(passages: datasets.Dataset, *, block: int = 4096) -> Counter:
    """Kept mentions per type over the whole set (distinct (mention, type) pairs per passage)."""
    freq: Counter = Counter()
    for start in range(0, len(passages), block):  # Arrow columns block by block: no dict per entity
        entities = EntityColumns.from_arrow(passages.with_format("arrow")[start : start + block]["entities"])
        for row in range(len(entities.offsets) - 1):
            freq.update(label for _, label in distinct_pairs(entities.pairs(row)))
    return freq


class NegativeSampler:
    """Frequency-weighted negative types, distinct within a passage."""

    def __init__(self, freq: Counter, coin: float = NEGATIVE_COIN):
        self.types = sorted(freq)  # fixed order: draws must not depend on row order
        self.weights = np.array([freq[t] for t in self.types], dtype=np.float64)
        self.index = {t: i for i, t in enumerate(self.types)}
        self.coin = coin

    def sample(self, positives: list[str], rng: np.random.Generator) -> list[str]:
        if not positives or not self.types:
            return []
        n = int(rng.binomial(len(positives), self.coin))
        if n == 0:  # nothing to draw (the capping below can only lower n)
            return []
        weights = self.weights.copy()
        for label in positives:
            if label in self.index:
                weights[self.index[label]] = 0.0
        n = min(n, int(np.count_nonzero(weights)))
        if n == 0:
            return []
        picked = choice_without_replacement(rng, weights / weights.sum(), n)  # rng.choice(..., replace=False, p=)
        return [self.types[i] for i in picked]


def build_conversations(
    annotated: datasets.Dataset,
    *,
    seed: int = 42,
    template: str | None = None,
    negatives: str | bool | None = None,
    block: int = 4096,
) -> datasets.Dataset:
    """Vanilla IT conversations, one per annotated passage, with seeded negative types.

    Args:
        annotated: ``AnnotatedPassage`` rows (one language).
        seed: seeds negative sampling and question order (per row, by passage id).
        template: a conversation template name; default: the language's ``uniner.<lang>.v1``.
        negatives: ``keep`` (the input's own questions and answers, in its order; a passage without
            recorded questions asks its positive types, as ``none``), ``resample`` (draw negatives, shuffle) or ``none``
            (positives only, shuffled). None: ``keep`` when the input has questions, else ``resample``.
        block: rows converted at a time (bounds the Python objects alive at once).

    The chats are built column-wise: Arrow columns in, flat message contents and offsets out, no
    ``datasets.map`` and no dict per row or entity. The result equals the row-by-row build byte for byte
    (tests/test_instruct_columns.py).

    Example:
        >>> it = build_conversations(annotated, seed=42)
        >>> it[0]["messages"][2]["content"]
        'What describes person in the text?'
    """
    langs = set(annotated.unique("lang")) if len(annotated) else {"en"}
    if template is None and len(langs) != 1:
        raise ConfigError(f"annotated data mixes languages {sorted(langs)}; build one language at a time")
    tmpl = conversation_template(template or next(iter(langs)))
    mode = resolve_negatives(negatives, annotated)
    sampler = NegativeSampler(type_frequencies(annotated, block=block) if mode == "resample" else Counter())
    blocks = [
        _conversation_block(annotated.with_format("arrow")[start : start + block], tmpl, mode, sampler, seed)
        for start in range(0, len(annotated), block)
    ] or [_conversation_block(annotated.with_format("arrow")[:0], tmpl, mode, sampler, seed)]
    return dataset_from_arrow(
        {name: pa.chunked_array([b[name] for b in blocks], type=blocks[0][name].type) for name in IT_FEATURES},
        IT_FEATURES,
    )


def _conversation_block(
    table: pa.Table, tmpl: ConversationTemplate, mode: str, sampler: NegativeSampler, seed: int
) -> dict[str, pa.Array]:
    """One block of passages as IT columns (paper.md §3 chat; question order and negatives per row)."""
    ids = table.column("id").to_pylist()
    texts = table.column("text").to_pylist()
    annotators = table.column("annotator").to_pylist() if mode == "keep" else None
    entities = EntityColumns.from_arrow(table.column("entities"))
    questions: dict[str, str] = {}  # label -> rendered question: few distinct labels, many rows
    contents: list[str] = []  # user, assistant, user, assistant... of every chat in the block
    message_offsets, asked, asked_offsets = [0], [], [0]
    for i, rng in enumerate(row_generators(seed, ids)):  # row i's own generator, re-seeded per row
        answers = group_mentions(entities.pairs(i))
        qa = recorded_questions(annotators[i], answers.copy) if annotators is not None else None
        if qa is None:
            positives = list(answers)
            order = positives + sampler.sample(positives, rng)
            if len(order) > 1:  # a shuffle of one label draws nothing that is used after it
                order = [order[j] for j in rng.permutation(len(order))]
            qa = [(label, answers.get(label, [])) for label in order]
        contents.append(tmpl.text_turn.format(text=texts[i]))
        contents.append(tmpl.text_ack)
        for label, answer in qa:
            if label not in questions:
                questions[label] = tmpl.question.format(label=label)
            contents.append(questions[label])
            contents.append(format_answer(answer))
            asked.append(label)
        message_offsets.append(len(contents))
        asked_offsets.append(len(asked))
    n = len(ids)
    schema = IT_FEATURES.arrow_schema
    message_type = schema.field("messages").type
    messages = pa.StructArray.from_arrays(
        [pa.array(["user", "assistant"] * (len(contents) // 2), type=pa.string()), pa.array(contents, pa.string())],
        fields=list(message_type.value_type),
    )
    id_column = table.column("id").combine_chunks().cast(pa.string())
    return {
        "id": id_column,
        "lang": pa.array([tmpl.lang] * n, type=pa.string()),
        "messages": pa.ListArray.from_arrays(pa.array(message_offsets, pa.int32()), messages, type=message_type),
        "labels_queried": pa.ListArray.from_arrays(
            pa.array(asked_offsets, pa.int32()), pa.array(asked, pa.string()), type=schema.field("labels_queried").type
        ),
        "source_id": id_column,
        "template": pa.array([tmpl.name] * n, type=pa.string()),
        "strategy": pa.nulls(n, type=pa.string()),
        "demos": pa.ListArray.from_arrays(
            pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], pa.string()), type=schema.field("demos").type
        ),
    }


def split_train_validation(ids: list[str], *, fraction: float = 0.1, seed: int = 42) -> tuple[set[str], set[str]]:
    """The held-out split (paper.md §5: 10%, seed 42), by passage id so all variants share it."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    n_val = int(round(len(ids) * fraction))
    val = {ids[i] for i in order[:n_val]}
    return {i for i in ids if i not in val}, val
