"""Confidence scores: the greedy pass's log-probs, the mention's tokens, a hand computation to match."""

from __future__ import annotations

import math

import pytest

from raitner_hub import prompts
from raitner_hub.predict import NER, Query
from raitner_hub.scores import Answer, literal_span, mention_score, token_pieces
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


def test_chinese_scores_cover_split_characters(taught):
    taught.lang = "zh"
    entities = taught.predict(ZH_TEXT, ["地点"])
    assert [(e["text"], e["start"], e["end"]) for e in entities] == [("广州", 6, 8), ("上海", 9, 11)]
    [answer] = taught.generate_answers([Query(ZH_TEXT, "地点")])
    decode = lambda ids: taught.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    pieces = token_pieces(decode, list(answer.token_ids))
    assert "".join(pieces) == answer and len(pieces) == len(answer.token_ids)
    assert "" in pieces  # byte-level BPE splits a CJK character: that token adds nothing on its own
    assert all("\ufffd" not in p for p in pieces)
    for entity in entities:
        assert 0 < entity["score"] <= 1
        assert entity["score"] == pytest.approx(mention_score(pieces, answer.logprobs, answer, entity["text"]))
    taught.lang = None


def test_mention_score_pure_cases():
    lp = [math.log(p) for p in (1.0, 0.5, 0.8, 0.9, 0.25, 1.0)]
    pieces = ['["', "Par", 'is", "', "R", 'ome"', "]"]
    # 'Paris"' = answer[2:8]: "Par" and 'is", "' (which also holds the closing quote); not '["'.
    assert mention_score(pieces, lp, '["Paris", "Rome"]', "Paris") == pytest.approx((0.5 * 0.8) ** 0.5)
    # 'Rome"' = answer[11:16]: "R", 'ome"'; the token 'is", "' ends where it starts.
    assert mention_score(pieces, lp, '["Paris", "Rome"]', "Rome") == pytest.approx((0.9 * 0.25) ** 0.5)
    assert mention_score(pieces, lp, '["Paris", "Rome"]', "Oslo") is None
    with pytest.raises(ValueError, match="6 token pieces but 5 log-probs"):
        mention_score(pieces, lp[:-1], '["Paris", "Rome"]', "Paris")
    # Escapes are matched by value: \" inside the literal, \\u escapes for CJK.
    assert literal_span('["say \\"hi\\""]', 'say "hi"') == (2, 13)
    assert literal_span('["\\u5317\\u4eac"]', "北京") == (2, 15)
    # A zero-width token (part of a character) counts with the character it belongs to.
    assert mention_score(['["', "", "北", '京"]'], [0.0, math.log(0.5), math.log(0.5), 0.0], '["北京"]', "北京") \
        == pytest.approx(0.5 ** (2 / 3))


def test_occurrences_share_a_score_and_chunks_score_their_own(taught, monkeypatch):
    text = "Paris is big. Paris is old. " + "Paris again."
    monkeypatch.setattr(taught, "max_chars", 28)  # two chunks: "Paris is big. Paris is old. " and "Paris again."
    monkeypatch.setattr(taught, "generate_answers", scripted_generate({
        ("Paris is big. Paris is old. ", "city"): {"Paris": 0.6},
        ("Paris again.", "city"): {"Paris": 0.9},
    }))
    entities = taught.predict(text, ["city"])
    assert [(e["start"], e["score"]) for e in entities] == [(0, pytest.approx(0.6)), (14, pytest.approx(0.6)),
                                                            (28, pytest.approx(0.9))]


def test_backend_without_logprobs_gives_none(taught, monkeypatch):
    monkeypatch.setattr(taught, "generate_answers", lambda items: ['["Paris"]'] * len(items))
    assert [e["score"] for e in taught.predict(EN_TEXT, ["location"])] == [None]
