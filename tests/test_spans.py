"""GLiNER's threshold / flat_ner / multi_label semantics, case by case, through spans.py and NER's two APIs."""

from __future__ import annotations

import pytest

from raitner_hub.errors import InputError
from raitner_hub.predict import NER
from raitner_hub.spans import clashes, select_spans
from tests.fixtures.scripted import LABELS, SCRIPT, TEXT, scripted_generate


@pytest.fixture()
def scripted(tiny_model_dir, monkeypatch) -> NER:
    """An NER whose answers are scripted (the tokenizer is the tiny model's; no model is run)."""
    from transformers import AutoTokenizer

    ner = NER(None, AutoTokenizer.from_pretrained(tiny_model_dir), model_id="scripted")
    monkeypatch.setattr(ner, "generate_answers", scripted_generate(SCRIPT))
    return ner


def _triples(entities):
    return [(e["text"], e["start"], e["label"], round(e["score"], 3)) for e in entities]


def test_predict_keeps_everything_with_scores(scripted):
    everything = scripted.predict(TEXT, LABELS)
    assert _triples(everything) == [
        ("Paris", 0, "city", 0.6),
        ("Paris", 0, "location", 0.6),
        ("Paris Hilton", 0, "person", 0.9),
        ("Paris", 23, "city", 0.6),
        ("Paris", 23, "location", 0.6),
        ("New York", 32, "city", 0.7),
        ("New York City", 32, "city", 0.7),
        ("New York City", 32, "location", 0.5),
        ("York", 36, "person", 0.3),
    ]


def test_flat_ner_keeps_higher_score_ties_go_to_longer_then_earlier_label(scripted):
    flat = scripted.predict_entities(TEXT, LABELS)
    # Paris Hilton (0.9) beats the nested Paris (0.6); New York City and New York tie at 0.7: the longer wins;
    # Paris@23 as city and as location tie (same span): city comes first in LABELS; York overlaps NYC.
    assert _triples(flat) == [
        ("Paris Hilton", 0, "person", 0.9),
        ("Paris", 23, "city", 0.6),
        ("New York City", 32, "city", 0.7),
    ]
    assert flat == select_spans(scripted.predict(TEXT, LABELS), LABELS)


def test_label_order_decides_same_span_ties(scripted):
    flat = scripted.predict_entities(TEXT, ["location", "city", "person"])
    assert ("Paris", 23, "location", 0.6) in _triples(flat)


def test_nested_mode_keeps_nested_spans_and_drops_crossing_ones():
    ents = [
        {"start": 0, "end": 12, "label": "a", "score": 0.9},
        {"start": 0, "end": 5, "label": "b", "score": 0.8},
        {"start": 3, "end": 15, "label": "c", "score": 0.7},
    ]  # c crosses a's end: never kept with a
    assert [e["label"] for e in select_spans(ents, flat_ner=False)] == ["b", "a"]
    assert [e["label"] for e in select_spans(ents, flat_ner=True)] == ["a"]


def test_multi_label_keeps_every_label_of_a_span(scripted):
    multi = scripted.predict_entities(TEXT, LABELS, multi_label=True)
    # Same span, other label: kept. Different overlapping spans: still one (flat).
    assert _triples(multi) == [
        ("Paris Hilton", 0, "person", 0.9),
        ("Paris", 23, "city", 0.6),
        ("Paris", 23, "location", 0.6),
        ("New York City", 32, "city", 0.7),
        ("New York City", 32, "location", 0.5),
    ]
    nested_multi = scripted.predict_entities(TEXT, LABELS, flat_ner=False, multi_label=True)
    assert len(nested_multi) == len(scripted.predict(TEXT, LABELS))  # nothing here crosses: all kept


def test_threshold_keeps_scores_above_it(scripted):
    assert _triples(scripted.predict_entities(TEXT, LABELS, threshold=0.6)) == [
        ("Paris Hilton", 0, "person", 0.9),
        ("New York City", 32, "city", 0.7),
    ]  # 0.6 is not above 0.6
    assert scripted.predict_entities(TEXT, LABELS, threshold=0.95) == []


def test_batch_predict_entities_equals_one_by_one(scripted):
    texts = [TEXT, "Nothing here .", "From Paris ."]
    assert scripted.batch_predict_entities(texts, LABELS, threshold=0.5) == [
        scripted.predict_entities(t, LABELS, threshold=0.5) for t in texts
    ]
    with pytest.raises(TypeError):  # keyword-only: GLiNER's positional order is (flat_ner, threshold)
        scripted.predict_entities(TEXT, LABELS, 0.5)
    with pytest.raises(InputError, match="label set is empty"):
        scripted.batch_predict_entities(texts, [])


def test_unscored_entities_pass_only_threshold_zero_and_lose_ties():
    ents = [{"start": 0, "end": 5, "label": "a", "score": None}, {"start": 0, "end": 3, "label": "b", "score": 0.1}]
    assert [e["label"] for e in select_spans(ents)] == ["b"]
    assert select_spans(ents, threshold=0.2) == []
    assert clashes(ents[0], ents[1]) and not clashes(ents[0], {"start": 5, "end": 7, "label": "a"})
