"""Annotated passages -> instruction-tuning conversations (the vanilla IT data).

One chat per passage (paper.md §3): the text turn and its acknowledgement, then one question per entity
type with a JSON-list answer. Negative types (absent from the passage, answer ``[]``) are drawn once per
passage, before any subsetting or retrieval, so every RA-IT variant asks exactly the same questions as
the vanilla one and differs only by its demonstrations (paper.md §2.4):

- n ~ Binomial(P, 0.5) for P positive types, capped at the number of candidate types;
- candidates are all other types in the dataset, drawn in proportion to their mention frequency,
  **without replacement** (the reference samples a multiset and can draw one type twice);
- positives and negatives are shuffled together; that is the question order.

Every draw uses a generator seeded by ``(seed, passage id)``, so the result does not depend on row order,
batching or the number of worker processes.

Input that already carries its questions (a Pile-NER-type or other conversation file: every type asked,
``[]`` answers are the negatives; ``readers.input_questions``) is kept as it is by default: the same
questions, the same answers, in the file's order (``negatives="keep"``; paper.md §2.4 trains on
Pile-NER-type as released). ``"resample"`` draws new negatives as above; ``"none"`` asks positives only.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable

import datasets
import numpy as np

from raitner_hub.errors import ConfigError
from raitner_hub.prompts import ConversationTemplate, conversation_template, render_conversation
from raitner_hub.readers import input_questions
from raitner_hub.records import IT_FEATURES, AnnotatedPassage, ITExample, distinct_mentions, mentions_by_label

NEGATIVE_COIN = 0.5
NEGATIVES = ("keep", "resample", "none")


def has_questions(annotated: datasets.Dataset) -> bool:
    """True when the input recorded its own questions (conversation formats): ``keep`` is then the default."""
    rows = ({"annotator": a, "entities": []} for a in annotated["annotator"][:])  # the two keys it reads
    return any(input_questions(row) is not None for row in rows)  # type: ignore[arg-type]


def resolve_negatives(negatives: str | bool | None, annotated: datasets.Dataset) -> str:
    """``None`` -> ``keep`` when the input has questions, else ``resample``; booleans as before."""
    if negatives is None:
        return "keep" if has_questions(annotated) else "resample"
    if isinstance(negatives, bool):
        return "resample" if negatives else "none"
    if negatives not in NEGATIVES:
        raise ConfigError(f"unknown negatives mode {negatives!r}; choose one of: {', '.join(NEGATIVES)}")
    return negatives


def type_frequencies(passages: Iterable[AnnotatedPassage]) -> Counter:
    """Kept mentions per type over the whole set (distinct (mention, type) pairs per passage)."""
    freq: Counter = Counter()
    for passage in passages:
        freq.update(label for _, label in distinct_mentions(passage["entities"]))
    return freq


def row_rng(seed: int, key: str) -> np.random.Generator:
    """A generator for one row, independent of row order."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


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
        weights = self.weights.copy()
        for label in positives:
            if label in self.index:
                weights[self.index[label]] = 0.0
        n = min(n, int(np.count_nonzero(weights)))
        if n == 0:
            return []
        picked = rng.choice(len(self.types), size=n, replace=False, p=weights / weights.sum())
        return [self.types[i] for i in picked]


def to_it_example(
    passage: AnnotatedPassage,
    negatives: list[str],
    rng: np.random.Generator,
    template: ConversationTemplate,
    qa: list[tuple[str, list[str]]] | None = None,
) -> ITExample:
    """One vanilla chat: positives and negatives asked in one shuffled order (or ``qa`` as given)."""
    if qa is None:
        answers = mentions_by_label(passage["entities"])
        labels = list(answers) + negatives
        order = rng.permutation(len(labels))
        qa = [(labels[i], answers.get(labels[i], [])) for i in order]
    return ITExample(
        id=passage["id"],
        lang=template.lang,
        messages=render_conversation(passage["text"], qa, template),
        labels_queried=[label for label, _ in qa],
        source_id=passage["id"],
        template=template.name,
        strategy=None,
        demos=[],
    )


def build_conversations(
    annotated: datasets.Dataset, *, seed: int = 42, template: str | None = None, negatives: str | bool | None = None
) -> datasets.Dataset:
    """Vanilla IT conversations, one per annotated passage, with seeded negative types.

    Args:
        annotated: ``AnnotatedPassage`` rows (one language).
        seed: seeds negative sampling and question order (per row, by passage id).
        template: a conversation template name; default: the language's ``uniner.<lang>.v1``.
        negatives: ``keep`` (the input's own questions and answers, in its order; a passage without
            recorded questions asks its positive types, as ``none``), ``resample`` (draw negatives, shuffle) or ``none``
            (positives only, shuffled). None: ``keep`` when the input has questions, else ``resample``.

    Example:
        >>> it = build_conversations(annotated, seed=42)
        >>> it[0]["messages"][2]["content"]
        'What describes person in the text?'
    """
    langs = set(annotated.unique("lang")) if len(annotated) else {"en"}
    if template is None and len(langs) != 1:
        from raitner_hub.errors import ConfigError

        raise ConfigError(f"annotated data mixes languages {sorted(langs)}; build one language at a time")
    tmpl = conversation_template(template or next(iter(langs)))
    mode = resolve_negatives(negatives, annotated)
    sampler = NegativeSampler(type_frequencies(annotated) if mode == "resample" else Counter())

    def convert(row: AnnotatedPassage) -> ITExample:
        rng = row_rng(seed, row["id"])
        # keep, for a passage that recorded no questions: its positive types, shuffled, no negatives (as none)
        qa = input_questions(row) if mode == "keep" else None
        positives = list(mentions_by_label(row["entities"]))
        return to_it_example(row, sampler.sample(positives, rng), rng, tmpl, qa=qa)

    return annotated.map(
        convert,
        remove_columns=annotated.column_names,
        features=IT_FEATURES,
        desc="conversations",
        load_from_cache_file=False,
    )


def split_train_validation(ids: list[str], *, fraction: float = 0.1, seed: int = 42) -> tuple[set[str], set[str]]:
    """The held-out split (paper.md §5: 10%, seed 42), by passage id so all variants share it."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    n_val = int(round(len(ids) * fraction))
    val = {ids[i] for i in order[:n_val]}
    return {i for i in ids if i not in val}, val
