"""Confidence scores for predicted mentions, from the tokens of the answer that named them.

Definition. A model answers one question (one entity type) with a JSON list, e.g. ``["Paris", "Rome"]``,
generated token by token. For a mention ``m`` of that list, take its string literal in the answer from
the first character after the opening quote through the closing quote (``Paris"``: the closing quote
is the model's decision that the mention ends there, so ``Paris`` inside ``Paris Hilton`` is scored
with the choice to stop). Its **score** is the geometric mean of the probabilities of the tokens that
produced at least one byte of those characters::

    score(m) = exp( mean( logprob(t) for t in tokens with a byte in answer[i:j] ) )

Tokens are located by character spans (:func:`token_spans`): a token covers the characters it
completes, plus the character it ends inside of when it stops mid-character (one byte of a three-byte
CJK character), so that character counts for both tokens that produced its bytes. The literal is the
first JSON string in the answer's list whose decoded value equals ``m`` (escapes such as ``\\"`` or
``\\u5df4`` are matched by value).

Under greedy decoding every chosen token has probability at least ``1 / vocabulary size``, so scores
lie in (0, 1]. Every occurrence of ``m`` in the passage gets the score of ``m``; a mention named in the
answers of several chunks of a long text gets, at each occurrence, the score from its own chunk's
answer.

These functions are pure: any backend that yields per-token log-probs with the tokens' text or bytes
(the HF backend's greedy pass; an OpenAI-compatible server's ``logprobs.content[k].bytes``) feeds them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence

_LIST_RE = re.compile(r"\[(.*?)\]")  # the answer list, exactly as metrics.parse_answer finds it
_STRING_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')


class Answer(str):
    """A model output string that also carries its tokens, when the backend gives them.

    It *is* the output string (everything that reads answers, the evaluation included, is unchanged).
    ``logprobs`` are the tokens' log-probabilities; their character spans come either as
    ``token_spans`` or are derived on demand from ``token_ids`` (:func:`token_spans_by_decoding`).
    ``entities`` optionally carries entities the backend located itself (GLiNER).
    """

    token_spans: tuple[tuple[int, int], ...] | None
    token_ids: tuple[int, ...] | None
    logprobs: tuple[float, ...] | None
    entities: tuple[dict, ...] | None

    def __new__(cls, text: str, *, token_spans=None, token_ids=None, logprobs=None, entities=None) -> Answer:
        obj = super().__new__(cls, text)
        obj.token_spans = tuple(map(tuple, token_spans)) if token_spans is not None else None
        obj.token_ids = tuple(token_ids) if token_ids is not None else None
        obj.logprobs = tuple(logprobs) if logprobs is not None else None
        obj.entities = tuple(entities) if entities is not None else None
        return obj


def token_spans(pieces: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans of tokens whose texts concatenate to the answer (no token splits a character).

    Example:
        >>> token_spans(['["', "Par", 'is"]'])
        [(0, 2), (2, 5), (5, 9)]
    """
    spans, pos = [], 0
    for piece in pieces:
        spans.append((pos, pos + len(piece)))
        pos += len(piece)
    return spans


def token_spans_by_decoding(decode: Callable[[Sequence[int]], str], ids: Sequence[int]) -> list[tuple[int, int]]:
    """Character spans of generated tokens, by decoding growing prefixes of ``ids``.

    A prefix that ends inside a multi-byte character decodes with a trailing ``U+FFFD``: that token's
    span then also covers the character it started. Quadratic in the answer length, which is short
    (and this runs only for answers that named a mention).
    """
    spans, done = [], 0
    for k in range(len(ids)):
        text = decode(list(ids[: k + 1]))
        complete = max(len(text.rstrip("\ufffd")), done)
        partial = k + 1 < len(ids) and text.endswith("\ufffd")
        spans.append((done, complete + (1 if partial else 0)))
        done = complete
    return spans


def token_spans_from_bytes(token_bytes: Sequence[bytes]) -> list[tuple[int, int]]:
    """Character spans from each token's UTF-8 bytes (OpenAI-compatible ``logprobs.content[k].bytes``).

    The ``token`` strings alone are not enough there: a token holding part of a CJK character is
    reported as an escape.

    Example:
        >>> bs = '["北京"]'.encode()
        >>> token_spans_from_bytes([bs[:3], bs[3:6], bs[6:]])  # '["' + a byte of 北 | 北's rest + a byte of 京 | ...
        [(0, 3), (2, 4), (3, 6)]
    """
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    spans, done = [], 0
    for k, chunk in enumerate(token_bytes):
        last = k + 1 == len(token_bytes)
        complete = done + len(decoder.decode(bytes(chunk), final=last))
        pending = bool(decoder.getstate()[0])
        spans.append((done, complete + (1 if pending else 0)))
        done = complete
    return spans


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


def mention_score(
    spans: Sequence[tuple[int, int]], logprobs: Sequence[float], answer: str, mention: str
) -> float | None:
    """The score of ``mention`` in ``answer`` (see the module docstring), or None when it is not there.

    ``spans[k]`` is token ``k``'s character span in ``answer`` and ``logprobs[k]`` its log-probability.

    Example:
        >>> spans = token_spans(['["', 'Par', 'is', '"]'])
        >>> round(mention_score(spans, [0.0, math.log(0.5), math.log(0.8), math.log(0.9)], '["Paris"]', "Paris"), 4)
        0.7114
    """
    if len(spans) != len(logprobs):
        raise ValueError(f"{len(spans)} token spans but {len(logprobs)} log-probs")
    literal = literal_span(answer, mention)
    if literal is None:
        return None
    i, j = literal
    chosen = [logprob for (start, end), logprob in zip(spans, logprobs) if start < j and end > i]
    if not chosen:
        return None
    return min(1.0, math.exp(sum(chosen) / len(chosen)))
