"""Span selection with GLiNER's meanings of ``threshold``, ``flat_ner`` and ``multi_label``.

GLiNER (``gliner/decoding/decoder.py``: ``greedy_search``; ``gliner/decoding/utils.py``:
``has_overlapping``, ``has_overlapping_nested``) keeps candidates scored strictly above ``threshold``,
then walks them from the highest score down and keeps each one that does not clash with a kept one:

- ``flat_ner=True``: two different spans clash when they overlap at all.
- ``flat_ner=False``: they clash only when they overlap without one being nested in the other.
- The same span under two labels clashes unless ``multi_label=True``.

Ties in score (GLiNER leaves them to input order) are broken here by the longer span, then the label
that comes first in ``labels``, then the earlier start. The result is sorted by (start, end, label order).

Offsets are ``[start, end)`` (characters for entities, token indices work the same). An entity without
a score (a backend with no log-probs) passes only ``threshold <= 0`` and ranks below every scored one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

E = TypeVar("E", bound=Mapping)


def _overlap(a: Mapping, b: Mapping) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def _nested(a: Mapping, b: Mapping) -> bool:
    return (a["start"] <= b["start"] and b["end"] <= a["end"]) or (b["start"] <= a["start"] and a["end"] <= b["end"])


def clashes(a: Mapping, b: Mapping, *, flat_ner: bool = True, multi_label: bool = False) -> bool:
    """Whether two entities cannot both be kept.

    Example:
        >>> paris, paris_loc = {"start": 0, "end": 5, "label": "city"}, {"start": 0, "end": 5, "label": "loc"}
        >>> clashes(paris, paris_loc), clashes(paris, paris_loc, multi_label=True)
        (True, False)
    """
    if (a["start"], a["end"]) == (b["start"], b["end"]):
        return not multi_label
    if flat_ner:
        return _overlap(a, b)
    return _overlap(a, b) and not _nested(a, b)


def select_spans(
    entities: Sequence[E],
    labels: Sequence[str] = (),
    *,
    threshold: float = 0.0,
    flat_ner: bool = True,
    multi_label: bool = False,
) -> list[E]:
    """The entities GLiNER's greedy search would keep (see the module docstring).

    Example:
        >>> ents = [{"start": 0, "end": 5, "text": "Paris", "label": "city", "score": 0.6},
        ...         {"start": 0, "end": 12, "text": "Paris Hilton", "label": "person", "score": 0.9}]
        >>> [e["text"] for e in select_spans(ents, ["person", "city"])]
        ['Paris Hilton']
        >>> [e["text"] for e in select_spans(ents, ["person", "city"], flat_ner=False)]
        ['Paris', 'Paris Hilton']
    """
    order = {label: i for i, label in enumerate(labels)}

    def rank(e: Mapping):
        score = e.get("score")
        return (score is None, -(score or 0.0), -(e["end"] - e["start"]), order.get(e["label"], len(order)), e["start"])

    def passes(e: Mapping) -> bool:
        score = e.get("score")
        return threshold <= 0 if score is None else score > threshold

    kept: list[E] = []
    for entity in sorted((e for e in entities if passes(e)), key=rank):
        if not any(clashes(entity, other, flat_ner=flat_ner, multi_label=multi_label) for other in kept):
            kept.append(entity)
    return sorted(kept, key=lambda e: (e["start"], e["end"], order.get(e["label"], len(order))))
