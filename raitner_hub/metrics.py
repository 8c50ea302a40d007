"""Pure scoring functions: answer parsing, the UniNER set-F1 and a strict character-span F1.

The UniNER metric reproduces the evaluation code of UniNER (``universal-ner/universal-ner``,
``src/eval/evaluate.py``: ``normalize_answer``, ``parser``, ``NEREvaluator``) as used by RA-IT
(``Emma1066/Retrieval-Augmented-IT-OpenNER``, ``src/llm_tuning/evaluation/evaluate.py``:
``entity_parser``, ``NEREvaluator``, ``format_number``). What that code does, and what we keep:

- Parsing: RA-IT takes the first ``re.search(r'\\[(.*?)\\]', text)`` match (UniNER: ``re.match``,
  anchored at the start), **without** ``re.DOTALL``, so a list broken over several lines does not
  match; no match means ``[]``. Then ``json.loads``. Any exception (invalid JSON, or an item that is
  not a string, since ``normalize_answer`` calls ``.lower()`` on it) makes the whole answer
  unparsed: RA-IT returns ``None``, counts it and scores it as ``[]``. We do the same. (Nested lists
  never reach the tuple branch of the reference: the non-greedy match stops at the first ``]``, so
  ``[["a"]]`` is cut to ``[["a"]`` and fails to parse.)
- ``normalize_answer``: lower → drop ASCII ``string.punctuation`` (full-width ``，。`` stay) →
  ``\\b(a|an|the)\\b`` → ``" "`` → ``" ".join(s.split())``, in that order.
- Per answer, normalised items are de-duplicated keeping first occurrences (``if item not in
  formatted_items``), for gold and prediction alike. For each question (sentence × type):
  ``n_pred += |P|``, ``n_gold += |G|``, ``n_correct += |{p in P: p in G}|``.
- ``P = c/(n_pred+1e-10)``, ``R = c/(n_gold+1e-10)``, ``F1 = 2PR/(P+R+1e-10)``, each ×100 and
  ``round(.., 2)`` (RA-IT's ``format_number``).

Gold answers are the stored lists (never re-parsed from rendered JSON; the reference re-parses and loses
answers containing an unescaped quote).

The strict metric scores (start, end, label) triples: gold from the benchmark's offsets, predictions
from mapping each predicted mention string to all its exact, case-sensitive, non-overlapping occurrences
in the passage; a mention found nowhere counts as one false positive.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from raitner_hub.records import Entity, find_occurrences

_LIST_RE = re.compile(r"\[(.*?)\]")  # no DOTALL, as in RA-IT
_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_EPS = 1e-10


def parse_answer(output: str) -> list[str] | None:
    """The mention list in a model output, as RA-IT's parser reads it (not normalised).

    Returns ``[]`` when the output holds no ``[...]`` on one line, and ``None`` (unparsed) when the first
    such match is not a JSON list of strings.

    Example:
        >>> parse_answer('Sure: ["Paris", "Rome"] and [1]')
        ['Paris', 'Rome']
        >>> parse_answer("none"), parse_answer('["a", 3]')
        ([], None)
    """
    match = _LIST_RE.search(output)
    if match is None:
        return []
    try:
        items = json.loads(match.group())
    except ValueError:
        return None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        return None
    return items


def normalize(s: str) -> str:
    """UniNER's ``normalize_answer``: lower, drop ASCII punctuation, drop articles, squeeze spaces.

    Example:
        >>> normalize("The  U.S.-Army，")
        'usarmy，'
    """
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def normalized_set(mentions: Iterable[str]) -> list[str]:
    """Normalised mentions, de-duplicated keeping first occurrences (the reference's list semantics)."""
    out: list[str] = []
    for mention in mentions:
        item = normalize(mention)
        if item not in out:
            out.append(item)
    return out


@dataclass
class Counts:
    """Micro-F1 counts; add them up with ``+``."""

    n_pred: int = 0
    n_gold: int = 0
    n_correct: int = 0
    unparsed: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.n_pred + other.n_pred,
            self.n_gold + other.n_gold,
            self.n_correct + other.n_correct,
            self.unparsed + other.unparsed,
        )


def _score(correct: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    precision = correct / (n_pred + _EPS)
    recall = correct / (n_gold + _EPS)
    f1 = 2 * precision * recall / (precision + recall + _EPS)
    return round(precision * 100, 2), round(recall * 100, 2), round(f1 * 100, 2)


def prf(counts: Counts) -> tuple[float, float, float]:
    """(precision, recall, F1) ×100 rounded to 2 decimals, with the reference's 1e-10 epsilons.

    Example:
        >>> prf(Counts(n_pred=4, n_gold=5, n_correct=3))
        (75.0, 60.0, 66.67)
    """
    return _score(counts.n_correct, counts.n_pred, counts.n_gold)


def uniner_counts(pred_lists: Sequence[Sequence[str] | str | None], gold_lists: Sequence[Sequence[str]]) -> Counts:
    """UniNER counts over questions: one (prediction, gold) pair per (sentence, type).

    A prediction may be a parsed list, ``None`` (unparsed: scored as ``[]`` and counted) or the raw
    model output string (parsed here with :func:`parse_answer`).

    Example:
        >>> uniner_counts([["The Beatles", "beatles"], None], [["Beatles"], ["x"]])
        Counts(n_pred=1, n_gold=2, n_correct=1, unparsed=1)
    """
    if len(pred_lists) != len(gold_lists):
        raise ValueError(f"{len(pred_lists)} predictions for {len(gold_lists)} gold answers")
    total = Counts()
    for pred, gold in zip(pred_lists, gold_lists):
        if isinstance(pred, str):
            pred = parse_answer(pred)
        unparsed = pred is None
        predicted = normalized_set(pred or [])
        expected = normalized_set(gold)
        total = total + Counts(len(predicted), len(expected), sum(p in expected for p in predicted), int(unparsed))
    return total


@dataclass
class SpanCounts:
    """Strict span counts, micro (``total``) and per label."""

    total: Counts = field(default_factory=Counts)
    per_label: dict[str, Counts] = field(default_factory=dict)

    def __add__(self, other: SpanCounts) -> SpanCounts:
        labels = {**self.per_label, **other.per_label}
        return SpanCounts(
            self.total + other.total,
            {lab: self.per_label.get(lab, Counts()) + other.per_label.get(lab, Counts()) for lab in labels},
        )

    def per_label_prf(self) -> dict[str, tuple[float, float, float]]:
        return {label: prf(counts) for label, counts in sorted(self.per_label.items())}


def answers_to_entities(text: str, answers: Mapping[str, Sequence[str]]) -> tuple[list[Entity], dict[str, int]]:
    """Map ``{label: [mention, ...]}`` to entities at every exact, case-sensitive, non-overlapping occurrence.

    Returns (entities, unfound) where ``unfound[label]`` counts the distinct mentions of that label found
    nowhere in ``text`` (each is one false positive of the strict metric).

    Example:
        >>> ents, unfound = answers_to_entities("Rome and Rome", {"city": ["Rome", "Oslo"]})
        >>> [(e["start"], e["end"]) for e in ents], unfound
        ([(0, 4), (9, 13)], {'city': 1})
    """
    entities: list[Entity] = []
    unfound: dict[str, int] = {}
    for label, mentions in answers.items():
        for mention in dict.fromkeys(mentions):  # a repeated string adds nothing new
            spans = find_occurrences(text, mention)
            if not spans:
                unfound[label] = unfound.get(label, 0) + 1
            entities.extend(Entity(start=s, end=e, text=mention, label=label) for s, e in spans)
    return entities, unfound


def strict_span_counts(
    pred_entities: Sequence[Entity],
    gold_entities: Sequence[Entity],
    *,
    labels: Sequence[str] | None = None,
    unfound: Mapping[str, int] | None = None,
) -> SpanCounts:
    """Exact (start, end, label) matches for one passage, micro and per label.

    ``pred_entities`` carry offsets (``NER.predict`` output, or :func:`answers_to_entities`); ``unfound``
    adds one false positive per predicted mention that was found nowhere in the text. Only ``labels`` are
    scored when given (gold of other labels, e.g. ``misc``, is ignored). Repeated triples count once.

    Example:
        >>> ents, unfound = answers_to_entities("Rome and Rome", {"city": ["Rome"]})
        >>> strict_span_counts(ents, [{"start": 0, "end": 4, "text": "Rome", "label": "city"}]).total
        Counts(n_pred=2, n_gold=1, n_correct=1, unparsed=0)
    """
    predicted = {(e["start"], e["end"], e["label"]) for e in pred_entities}
    gold = {(e["start"], e["end"], e["label"]) for e in gold_entities}
    missing = dict(unfound or {})
    if labels is not None:
        keep = set(labels)
        predicted = {t for t in predicted if t[2] in keep}
        gold = {t for t in gold if t[2] in keep}
        missing = {label: n for label, n in missing.items() if label in keep}
    per_label: dict[str, Counts] = {}
    for label in sorted({t[2] for t in predicted | gold} | set(missing)):
        p = {t for t in predicted if t[2] == label}
        g = {t for t in gold if t[2] == label}
        per_label[label] = Counts(len(p) + missing.get(label, 0), len(g), len(p & g))
    return SpanCounts(sum(per_label.values(), Counts()), per_label)


@dataclass
class DatasetScores:
    """One benchmark's results under both metrics (percentages, 2 decimals)."""

    dataset: str
    uniner_p: float
    uniner_r: float
    uniner_f1: float
    strict_p: float
    strict_r: float
    strict_f1: float
    n: int  # questions asked (sentences × types)
    unparsed: int
    counts: dict = field(default_factory=dict)  # raw counts of both metrics, for re-aggregation

    @classmethod
    def from_counts(cls, dataset: str, uniner: Counts, strict: Counts | SpanCounts, n: int) -> DatasetScores:
        """Build from the two metrics' counts; ``unparsed`` comes from the UniNER counts."""
        strict_total = strict.total if isinstance(strict, SpanCounts) else strict
        up, ur, uf = prf(uniner)
        sp, sr, sf = prf(strict_total)
        return cls(
            dataset,
            up,
            ur,
            uf,
            sp,
            sr,
            sf,
            n,
            uniner.unparsed,
            {"uniner": asdict(uniner), "strict": asdict(strict_total)},
        )

    def as_dict(self) -> dict:
        return asdict(self)


def average(scores: Sequence[DatasetScores], name: str = "average") -> DatasetScores:
    """Unweighted mean of each percentage over datasets (rounded to 2 decimals); n and unparsed are summed.

    Example:
        >>> a = DatasetScores("a", 50, 50, 50, 40, 40, 40, 10, 1)
        >>> b = DatasetScores("b", 60, 70, 64.62, 30, 30, 30, 20, 0)
        >>> average([a, b]).uniner_f1
        57.31
    """
    if not scores:
        raise ValueError("no dataset scores to average")

    def mean(attr: str) -> float:
        return round(sum(getattr(s, attr) for s in scores) / len(scores), 2)

    return DatasetScores(
        name,
        mean("uniner_p"),
        mean("uniner_r"),
        mean("uniner_f1"),
        mean("strict_p"),
        mean("strict_r"),
        mean("strict_f1"),
        sum(s.n for s in scores),
        sum(s.unparsed for s in scores),
    )
