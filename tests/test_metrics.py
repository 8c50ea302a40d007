"""Metric tests: hand-computed cases in tests/data/metric_cases.json, plus the docstring examples."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

from raitner_hub import metrics
from raitner_hub.metrics import (
    Counts,
    DatasetScores,
    answers_to_entities,
    average,
    normalize,
    parse_answer,
    prf,
    strict_span_counts,
    uniner_counts,
)
from raitner_hub.records import mentions_by_label

CASES = json.loads((Path(__file__).parent / "data" / "metric_cases.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES["uniner"], ids=lambda c: c["name"])
def test_uniner_hand_computed(case):
    counts = uniner_counts(case["preds"], case["golds"])
    assert [counts.n_pred, counts.n_gold, counts.n_correct, counts.unparsed] == case["counts"], case["why"]
    assert list(prf(counts)) == case["prf"]


@pytest.mark.parametrize("case", CASES["strict"], ids=lambda c: c["name"])
def test_strict_hand_computed(case):
    entities, unfound = answers_to_entities(case["text"], case["answers"])
    counts = strict_span_counts(entities, case["gold"], labels=case["labels"], unfound=unfound).total
    assert [counts.n_pred, counts.n_gold, counts.n_correct, counts.unparsed] == case["counts"], case["why"]
    assert list(prf(counts)) == case["prf"]
    # the UniNER metric on the same answers: one question per label
    gold_by_label = mentions_by_label(case["gold"])
    uniner = uniner_counts(
        [case["answers"].get(label, []) for label in case["labels"]],
        [gold_by_label.get(label, []) for label in case["labels"]],
    )
    assert list(prf(uniner)) == case["uniner_prf"]


def test_the_two_metrics_differ_where_they_should():
    differing = [c["name"] for c in CASES["strict"] if c["prf"] != c["uniner_prf"]]
    assert {"repeated_mention_uniner_100_strict_not", "wrong_offsets_case"} <= set(differing)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('["a", "b"]', ["a", "b"]),
        ('Answer: ["a"] then ["b"]', ["a"]),  # first match anywhere (re.search)
        ("[]", []),
        ("nothing here", []),
        ('[\n"a"\n]', []),  # no DOTALL: a multi-line list does not match
        ('["a", null]', None),  # non-string item: unparsed, as in the reference
        ('[{"a": 1}]', None),
        ('[["a"]]', None),  # non-greedy match cuts the nested list: invalid JSON
        ("[a, b]", None),
        ('["say \\"hi\\""]', ['say "hi"']),
    ],
)
def test_parse_answer(raw, expected):
    assert parse_answer(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("The Beatles", "beatles"),
        ("  New   York  ", "new york"),
        ("U.S.", "us"),
        ("a-b", "ab"),  # punctuation deleted, not replaced by a space
        ("the-end", "theend"),  # punctuation goes before articles: no word 'the' left
        ("北京，上海。", "北京，上海。"),  # full-width punctuation stays
        ("An Apple A Day", "apple day"),
        ("theory", "theory"),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_counts_add_and_zero_division():
    assert Counts(1, 2, 1, 0) + Counts(2, 1, 1, 3) == Counts(3, 3, 2, 3)
    assert prf(Counts()) == (0.0, 0.0, 0.0)


def test_uniner_counts_length_mismatch():
    with pytest.raises(ValueError):
        uniner_counts([[]], [])


def test_strict_per_label_and_addition():
    text = "Ann met Bob in Rome"
    gold = [
        {"start": 0, "end": 3, "text": "Ann", "label": "person"},
        {"start": 8, "end": 11, "text": "Bob", "label": "person"},
        {"start": 15, "end": 19, "text": "Rome", "label": "city"},
    ]
    ents, unfound = answers_to_entities(text, {"person": ["Ann", "Eve"], "city": ["Rome"]})
    counts = strict_span_counts(ents, gold, unfound=unfound)
    assert counts.per_label["person"] == Counts(2, 2, 1)
    assert counts.per_label["city"] == Counts(1, 1, 1)
    assert counts.per_label_prf()["person"] == (50.0, 50.0, 50.0)
    both = counts + counts
    assert both.total == Counts(6, 6, 4) and both.per_label["city"] == Counts(2, 2, 2)


def test_dataset_scores_and_average():
    a = DatasetScores.from_counts("a", Counts(4, 5, 3, 1), Counts(4, 5, 2), n=10)
    assert (a.uniner_p, a.uniner_r, a.uniner_f1, a.unparsed) == (75.0, 60.0, 66.67, 1)
    assert (a.strict_p, a.strict_r, a.strict_f1) == (50.0, 40.0, 44.44)
    b = DatasetScores.from_counts("b", Counts(1, 1, 1), Counts(1, 1, 1), n=4)
    avg = average([a, b])
    assert avg.uniner_f1 == round((66.67 + 100.0) / 2, 2)  # unweighted, not micro over datasets
    assert (avg.n, avg.unparsed, avg.dataset) == (14, 1, "average")
    assert a.as_dict()["counts"]["uniner"]["n_correct"] == 3
    with pytest.raises(ValueError):
        average([])


def test_docstring_examples():
    failures, tried = doctest.testmod(metrics)
    assert tried > 5 and failures == 0
