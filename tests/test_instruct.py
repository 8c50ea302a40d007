"""Vanilla conversations: questions, answers, negative sampling (distinct, frequency-weighted, seeded)."""

import json
from collections import Counter

import datasets
import numpy as np
import pytest

from raitner_hub.instruct import NegativeSampler, build_conversations, split_train_validation, type_frequencies
from raitner_hub.records import ANNOTATED_FEATURES, align_mentions


def passage(pid, text, pairs, lang="en"):
    entities, missing = align_mentions(text, pairs)
    assert not missing
    return {"id": pid, "text": text, "lang": lang, "source": "test", "entities": entities, "annotator": "{}"}


@pytest.fixture
def annotated():
    rows = [
        passage(
            "p0",
            "Obama met Merkel in Berlin. Obama smiled.",
            [("Obama", "person"), ("Merkel", "person"), ("Berlin", "location")],
        ),
        passage("p1", "Google hired engineers in Paris.", [("Google", "organization"), ("Paris", "location")]),
        passage("p2", "Nothing to see here.", []),
        passage("p3", "Python 3 was released by the PSF.", [("Python 3", "software"), ("PSF", "organization")]),
    ]
    return datasets.Dataset.from_list(rows, features=ANNOTATED_FEATURES)


def test_answers_and_questions(annotated):
    it = build_conversations(annotated, seed=1)
    row = it[0]
    assert row["id"] == row["source_id"] == "p0" and row["template"] == "uniner.en.v1" and row["demos"] == []
    msgs = row["messages"]
    assert msgs[0] == {"role": "user", "content": "Text: Obama met Merkel in Berlin. Obama smiled."}
    assert msgs[1] == {"role": "assistant", "content": "I've read this text."}
    answers = {}
    for q, a in zip(msgs[2::2], msgs[3::2]):
        label = q["content"][len("What describes ") : -len(" in the text?")]
        answers[label] = json.loads(a["content"])
    assert answers["person"] == ["Obama", "Merkel"]  # distinct, in stored order (Obama occurs twice)
    assert answers["location"] == ["Berlin"]
    assert set(row["labels_queried"]) == set(answers) and len(row["labels_queried"]) == len(set(answers))
    for label in set(answers) - {"person", "location"}:
        assert answers[label] == []  # negatives answer []


def test_no_entities_means_two_turn_chat(annotated):
    it = build_conversations(annotated, seed=1)
    empty = it[2]
    assert len(empty["messages"]) == 2 and empty["labels_queried"] == []


def test_reproducible_and_order_independent(annotated):
    a = build_conversations(annotated, seed=7)
    b = build_conversations(annotated.select([3, 2, 1, 0]), seed=7)
    by_id = {r["id"]: r for r in b}
    assert all(r == by_id[r["id"]] for r in a)


def test_negatives_are_distinct_and_never_positive():
    freq = Counter({f"t{i}": i + 1 for i in range(30)})
    sampler = NegativeSampler(freq)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        positives = [f"t{i}" for i in rng.choice(30, size=int(rng.integers(1, 12)), replace=False)]
        negatives = sampler.sample(positives, rng)
        assert len(negatives) == len(set(negatives)) <= len(positives)
        assert not set(negatives) & set(positives)


def test_negative_count_is_binomial_half():
    sampler = NegativeSampler(Counter({f"t{i}": 1 for i in range(100)}))
    rng = np.random.default_rng(0)
    counts = [len(sampler.sample(["a", "b", "c", "d"], rng)) for _ in range(20000)]
    assert abs(np.mean(counts) - 2.0) < 0.05  # E[Binomial(4, 0.5)] = 2
    assert abs(np.mean(np.array(counts) == 0) - 1 / 16) < 0.01


def test_negatives_proportional_to_frequency():
    freq = Counter({"a": 1, "b": 2, "c": 7, "pos": 50})
    sampler = NegativeSampler(freq)
    rng = np.random.default_rng(0)
    drawn = Counter()
    for _ in range(30000):
        # one positive => at most one negative, so single draws are exactly freq-proportional among a/b/c
        drawn.update(sampler.sample(["pos"], rng))
    total = sum(drawn.values())
    assert abs(total / 30000 - 0.5) < 0.02
    for label, weight in (("a", 0.1), ("b", 0.2), ("c", 0.7)):
        assert abs(drawn[label] / total - weight) < 0.015


def test_capped_at_candidate_count():
    sampler = NegativeSampler(Counter({"x": 3, "y": 1}))
    rng = np.random.default_rng(0)
    assert all(len(sampler.sample(["x", "p", "q", "r", "s"], rng)) <= 1 for _ in range(200))


def test_type_frequencies_count_distinct_mentions(annotated):
    freq = type_frequencies(annotated)
    assert freq == Counter({"person": 2, "location": 2, "organization": 2, "software": 1})


def test_split_is_seeded_and_90_10():
    ids = [f"p{i}" for i in range(1000)]
    train, val = split_train_validation(ids, fraction=0.1, seed=42)
    assert len(val) == 100 and len(train) == 900 and not train & val
    assert split_train_validation(ids, fraction=0.1, seed=42) == (train, val)
    assert split_train_validation(ids, fraction=0.1, seed=1)[1] != val


def test_mixed_language_input_is_refused():
    rows = [passage("a", "x", [], "en"), passage("b", "y", [], "zh")]
    from raitner_hub.errors import ConfigError

    with pytest.raises(ConfigError, match="mixes languages"):
        build_conversations(datasets.Dataset.from_list(rows, features=ANNOTATED_FEATURES))
