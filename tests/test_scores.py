"""Confidence scores: the greedy pass's log-probs, the mention's tokens, a hand computation to match."""

from __future__ import annotations

import math

import pytest

from raitner_hub import prompts
from raitner_hub.predict import NER, Query
from raitner_hub.scores import (
    Answer,
    literal_span,
    mention_score,
    token_spans,
    token_spans_by_decoding,
    token_spans_from_bytes,
)
from tests.fixtures.scripted import scripted_generate
from tests.fixtures.taught_model import EN_TEXT, ZH_TEXT

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def taught(taught_model_dir):
    return NER.from_pretrained(str(taught_model_dir), backend="hf", max_new_tokens=24)


def _forward_logprobs(ner: NER, prompt_ids: list[int], answer_ids: list[int]) -> list[float]:
    """A plain forward pass over prompt + answer: each answer token's log-probability."""
    import torch

    ids = torch.tensor([prompt_ids + answer_ids])
    with torch.no_grad():
        logits = ner.model(input_ids=ids).logits[0].float()
    logprobs = logits.log_softmax(-1)
    return [logprobs[len(prompt_ids) - 1 + k, t].item() for k, t in enumerate(answer_ids)]


def test_score_equals_hand_computation(taught):
    taught.lang = "en"
    [entity] = taught.predict(EN_TEXT, ["location"])
    assert (entity["text"], entity["start"], entity["end"]) == ("Paris", 21, 26)
    [answer] = taught.generate_answers([Query(EN_TEXT, "location")])
    assert answer == '["Paris"]' and isinstance(answer, Answer)
    prompt = taught._render_ids(prompts.render_query(EN_TEXT, "location", prompts.conversation_template("en")))
    by_hand = _forward_logprobs(taught, prompt, list(answer.token_ids))
    assert list(answer.logprobs) == pytest.approx(by_hand, abs=1e-5)  # collected in the greedy pass
    # By hand: the tokens whose characters meet 'Paris"' (ASCII: each token decodes on its own).
    texts = [taught.tokenizer.decode([t]) for t in answer.token_ids]
    assert "".join(texts) == answer
    i = answer.index('"Paris"') + 1
    j = i + len('Paris"')
    pos, chosen = 0, []
    for text, logprob in zip(texts, by_hand):
        if pos < j and pos + len(text) > i:
            chosen.append(logprob)
        pos += len(text)
    assert chosen and len(chosen) < len(texts)  # the opening bracket is not part of the mention
    assert entity["score"] == pytest.approx(math.exp(sum(chosen) / len(chosen)), abs=1e-5)
    assert 0 < entity["score"] <= 1


def _gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (what a ByteLevel BPE token string is written in)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def test_chinese_scores_cover_split_characters(taught):
    taught.lang = "zh"
    entities = taught.predict(ZH_TEXT, ["地点"])
    assert [(e["text"], e["start"], e["end"]) for e in entities] == [("广州", 6, 8), ("上海", 9, 11)]
    [answer] = taught.generate_answers([Query(ZH_TEXT, "地点")])
    decode = lambda ids: taught.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    spans = token_spans_by_decoding(decode, list(answer.token_ids))
    # Byte-level BPE splits 广/州 (not in the tokenizer's corpus) across tokens: by hand from the bytes.
    raw = [taught.tokenizer.convert_ids_to_tokens(t) for t in answer.token_ids]
    byte_of = {v: k for k, v in _gpt2_bytes_to_unicode().items()}
    token_bytes = [bytes(byte_of[ch] for ch in tok) for tok in raw]
    assert b"".join(token_bytes).decode() == answer
    assert spans == token_spans_from_bytes(token_bytes)
    assert any(end > next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))  # a shared character
    for entity in entities:
        assert 0 < entity["score"] <= 1
        i, j = literal_span(answer, entity["text"])
        b0, b1 = len(answer[:i].encode()), len(answer[:j].encode())
        pos, chosen = 0, []
        for tb, logprob in zip(token_bytes, answer.logprobs):  # tokens with a byte inside the literal
            if pos < b1 and pos + len(tb) > b0:
                chosen.append(logprob)
            pos += len(tb)
        assert entity["score"] == pytest.approx(math.exp(sum(chosen) / len(chosen)), abs=1e-9)
    taught.lang = None


def test_mention_score_pure_cases():
    lp = [math.log(p) for p in (1.0, 0.5, 0.8, 0.9, 0.25, 1.0)]
    spans = token_spans(['["', "Par", 'is", "', "R", 'ome"', "]"])
    # 'Paris"' = answer[2:8]: "Par" and 'is", "' (which also holds the closing quote); not '["'.
    assert mention_score(spans, lp, '["Paris", "Rome"]', "Paris") == pytest.approx((0.5 * 0.8) ** 0.5)
    # 'Rome"' = answer[11:16]: "R", 'ome"'; the token 'is", "' ends where it starts.
    assert mention_score(spans, lp, '["Paris", "Rome"]', "Rome") == pytest.approx((0.9 * 0.25) ** 0.5)
    assert mention_score(spans, lp, '["Paris", "Rome"]', "Oslo") is None
    with pytest.raises(ValueError, match="6 token spans but 5 log-probs"):
        mention_score(spans, lp[:-1], '["Paris", "Rome"]', "Paris")
    # Escapes are matched by value: \" inside the literal, \\u escapes for CJK.
    assert literal_span('["say \\"hi\\""]', 'say "hi"') == (2, 13)
    assert literal_span('["\\u5317\\u4eac"]', "北京") == (2, 15)


def test_occurrences_share_a_score_and_chunks_score_their_own(taught, monkeypatch):
    text = "Paris is big. Paris is old. " + "Paris again."
    monkeypatch.setattr(taught, "max_chars", 28)  # two chunks: "Paris is big. Paris is old. " and "Paris again."
    monkeypatch.setattr(
        taught,
        "generate_answers",
        scripted_generate(
            {
                ("Paris is big. Paris is old. ", "city"): {"Paris": 0.6},
                ("Paris again.", "city"): {"Paris": 0.9},
            }
        ),
    )
    entities = taught.predict(text, ["city"])
    assert [(e["start"], e["score"]) for e in entities] == [
        (0, pytest.approx(0.6)),
        (14, pytest.approx(0.6)),
        (28, pytest.approx(0.9)),
    ]


def test_backend_without_logprobs_gives_none(taught, monkeypatch):
    monkeypatch.setattr(taught, "generate_answers", lambda items: ['["Paris"]'] * len(items))
    assert [e["score"] for e in taught.predict(EN_TEXT, ["location"])] == [None]


def test_openai_style_token_bytes_score_every_token_with_a_byte_of_the_mention():
    """An OpenAI-compatible server reports each token's bytes; cutting a CJK answer anywhere still scores."""
    answer = '["广州", "上海"]'
    raw = answer.encode()
    cuts = [0, 2, 3, 5, 9, 11, 13, 16, len(raw)]  # several cuts fall inside a 3-byte character
    token_bytes = [raw[a:b] for a, b in zip(cuts, cuts[1:])]
    spans = token_spans_from_bytes(token_bytes)
    logprobs = [math.log(0.5 + 0.05 * k) for k in range(len(spans))]
    # 上海 = bytes 12..18, closing quote 18: tokens [11,13) ('"' + a byte of 上), [13,16), [16,20).
    assert mention_score(spans, logprobs, answer, "上海") == pytest.approx(
        math.exp((logprobs[5] + logprobs[6] + logprobs[7]) / 3)
    )
    # 广州 = bytes 2..8 + quote: tokens [2,3), [3,5), [5,9).
    assert mention_score(spans, logprobs, answer, "广州") == pytest.approx(
        math.exp((logprobs[1] + logprobs[2] + logprobs[3]) / 3)
    )


def test_batched_questions_each_match_their_own_forward_pass(taught):
    """Three questions decoded as one shared-prefix batch (rows finish at different steps)."""
    labels = ["person", "location", "organization"]
    taught.lang = "en"
    entities = taught.predict(EN_TEXT, labels)
    answers = taught.generate_answers([Query(EN_TEXT, label) for label in labels])
    assert len({len(a.token_ids) for a in answers}) > 1  # different lengths: rows leave the batch
    conv = prompts.conversation_template("en")
    for label, answer in zip(labels, answers):
        prompt = taught._render_ids(prompts.render_query(EN_TEXT, label, conv))
        by_hand = _forward_logprobs(taught, prompt, list(answer.token_ids))
        assert list(answer.logprobs) == pytest.approx(by_hand, abs=1e-5)
        [entity] = [e for e in entities if e["label"] == label]
        texts = [taught.tokenizer.decode([t]) for t in answer.token_ids]
        i = answer.index(f'"{entity["text"]}"') + 1
        j = i + len(entity["text"]) + 1
        starts = [sum(map(len, texts[:k])) for k in range(len(texts))]
        chosen = [lp for s, t, lp in zip(starts, texts, by_hand) if s < j and s + len(t) > i]
        assert entity["score"] == pytest.approx(math.exp(sum(chosen) / len(chosen)), abs=1e-5)
    taught.lang = None
