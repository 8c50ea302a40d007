"""Confidence scores for predicted mentions, from the tokens of the answer that named them.

Definition. A model answers one question (one entity type) with a JSON list, e.g. ``["Paris", "Rome"]``,
generated token by token. For a mention ``m`` of that list, its **score** is the geometric mean of the
probabilities the model gave the answer tokens that cover ``m``'s string literal in the answer, from
its first character after the opening quote through its closing quote::

    score(m) = exp( mean( logprob(t) for t in tokens overlapping answer[i:j] ) )

where ``answer[i:j]`` is ``Paris"`` in ``["Paris", ...`` (the closing quote is included because it is
the model's decision that the mention ends there: ``Paris`` inside ``Paris Hilton`` is scored with the
choice to stop). A token overlaps when its character span in the answer intersects ``[i, j)``; a token
holding only part of a character (a byte of a multi-byte UTF-8 character) has an empty span at the
position of that character and counts with it. The literal is the first JSON string in the answer's
list whose decoded value equals ``m`` (so escapes such as ``\\"`` or ``\\u5df4`` are handled).

Under greedy decoding every chosen token has probability at least ``1 / vocabulary size``, so scores
lie in (0, 1]. Every occurrence of ``m`` in the passage gets the score of ``m``; a mention named in the
answers of several chunks of a long text gets, at each occurrence, the score from its own chunk's
answer.

These functions are pure: any backend that yields the answer's token strings and their log-probs (the
HF backend's greedy pass, an OpenAI-compatible server's ``logprobs``) can feed them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Callable, Sequence

_LIST_RE = re.compile(r"\[(.*?)\]")  # the answer list, exactly as metrics.parse_answer finds it
_STRING_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')


class Answer(str):
    """A model output string that also carries its tokens, when the backend gives them.

    It *is* the output string (everything that reads answers, the evaluation included, is unchanged);
    ``pieces`` are the tokens' texts (``"".join(pieces) == answer``), ``token_ids`` the ids they came
    from (pieces are then derived on demand, see :func:`token_pieces`), ``logprobs`` each token's
    log-probability. ``spans`` optionally carries entities the backend located itself (GLiNER).
    """

    pieces: tuple[str, ...] | None
    token_ids: tuple[int, ...] | None
    logprobs: tuple[float, ...] | None
    spans: tuple[dict, ...] | None

    def __new__(cls, text: str, *, pieces=None, token_ids=None, logprobs=None, spans=None) -> "Answer":
        obj = super().__new__(cls, text)
        obj.pieces = tuple(pieces) if pieces is not None else None
        obj.token_ids = tuple(token_ids) if token_ids is not None else None
        obj.logprobs = tuple(logprobs) if logprobs is not None else None
        obj.spans = tuple(spans) if spans is not None else None
        return obj


def token_pieces(decode: Callable[[Sequence[int]], str], ids: Sequence[int]) -> list[str]:
    """The text each token adds to the decoded answer, by decoding growing prefixes.

    A prefix that ends inside a multi-byte character decodes with a trailing ``U+FFFD``; that token
    then adds ``""`` and the token completing the character adds it. ``"".join(pieces)`` is
    ``decode(ids)``. Quadratic in the answer length, which is short (and only computed for answers
    that named a mention).
    """
    pieces, done = [], 0
    full = decode(list(ids))
    for i in range(len(ids)):
        text = decode(list(ids[: i + 1])) if i + 1 < len(ids) else full
        end = len(text.rstrip("\ufffd")) if i + 1 < len(ids) else len(full)
        end = max(end, done)
        pieces.append(full[done:end])
        done = end
    return pieces


def literal_span(answer: str, mention: str) -> tuple[int, int] | None:
    """``(i, j)``: the mention's characters and closing quote inside the answer's JSON list, or None.

    Example:
        >>> literal_span('["Paris", "Rome"]', "Rome")
        (11, 16)
    """
    match = _LIST_RE.search(answer)
    if match is None:
        return None
    for lit in _STRING_RE.finditer(answer, match.start(), match.end()):
        try:
            value = json.loads(lit.group())
        except ValueError:
            continue
        if value == mention:
            return lit.start() + 1, lit.end()
    return None


def mention_score(pieces: Sequence[str], logprobs: Sequence[float], answer: str, mention: str) -> float | None:
    """The score of ``mention`` in ``answer`` (see the module docstring), or None when it is not there.

    ``pieces[k]`` is the text token ``k`` adds to ``answer`` and ``logprobs[k]`` its log-probability.

    Example:
        >>> pieces = ['["', 'Par', 'is', '"]']
        >>> round(mention_score(pieces, [0.0, math.log(0.5), math.log(0.8), math.log(0.9)], '["Paris"]', "Paris"), 4)
        0.7114
    """
    if len(pieces) != len(logprobs):
        raise ValueError(f"{len(pieces)} token pieces but {len(logprobs)} log-probs")
    span = literal_span(answer, mention)
    if span is None:
        return None
    i, j = span
    chosen, pos = [], 0
    for piece, logprob in zip(pieces, logprobs):
        start, end = pos, pos + len(piece)
        pos = end
        if (start < j and end > i) if start < end else (i <= start < j):
            chosen.append(logprob)
    if not chosen:
        return None
    return min(1.0, math.exp(sum(chosen) / len(chosen)))
