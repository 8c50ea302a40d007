"""The spaCy component raitner_ner: entry point, doc.ents with scores, en and zh blank pipelines, batching."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

spacy = pytest.importorskip("spacy", reason="the spacy extra is not installed")

from raitner_hub import spacy_component  # noqa: E402
from raitner_hub.predict import NER  # noqa: E402
from tests.fixtures.scripted import (  # noqa: E402
    LABELS,
    SCRIPT,
    TEXT,
    scripted_generate,  # noqa: E402
)
from tests.fixtures.taught_model import EN_TEXT, ZH_TEXT  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def scripted(tiny_model_dir, monkeypatch):
    """Pipelines built with model='scripted' get an NER whose answers are scripted."""
    from transformers import AutoTokenizer

    ner = NER(None, AutoTokenizer.from_pretrained(tiny_model_dir), model_id="scripted")
    monkeypatch.setattr(ner, "generate_answers", scripted_generate(SCRIPT))
    monkeypatch.setattr(spacy_component, "load_ner", lambda model, index, backend: ner)
    return ner


@pytest.fixture(scope="module")
def taught(taught_model_dir):
    return NER.from_pretrained(str(taught_model_dir), backend="hf", max_new_tokens=24)


def _ents(doc):
    return [
        (e.text, e.start_char, e.end_char, e.label_, None if e._.score is None else round(e._.score, 3))
        for e in doc.ents
    ]


def test_entry_point_is_registered():
    from importlib.metadata import entry_points

    [ep] = [ep for ep in entry_points(group="spacy_factories") if ep.name == "raitner_ner"]
    assert ep.value == "raitner_hub.spacy_component:make_raitner_ner"


def test_english_doc_ents_follow_flat_selection_and_threshold(scripted):
    nlp = spacy.blank("en")
    nlp.add_pipe("raitner_ner", config={"model": "scripted", "labels": LABELS})
    doc = nlp(TEXT)
    assert _ents(doc) == [
        ("Paris Hilton", 0, 12, "person", 0.9),
        ("Paris", 23, 28, "city", 0.6),
        ("New York City", 32, 45, "city", 0.7),
    ]
    assert [(e["start"], e["end"], e["label"]) for e in scripted.predict_entities(TEXT, LABELS)] == [
        (e.start_char, e.end_char, e.label_) for e in doc.ents
    ]
    strict = spacy.blank("en")
    strict.add_pipe("raitner_ner", config={"model": "scripted", "labels": LABELS, "threshold": 0.65})
    assert [e.text for e in strict(TEXT).ents] == ["Paris Hilton", "New York City"]


def test_mentions_inside_tokens_expand_to_whole_tokens(scripted, monkeypatch):
    monkeypatch.setattr(
        scripted, "generate_answers", scripted_generate({"person": {"aris Hil": 0.8}, "city": {"ork": 0.9}})
    )
    nlp = spacy.blank("en")
    nlp.add_pipe("raitner_ner", config={"model": "scripted", "labels": ["person", "city"]})
    assert _ents(nlp(TEXT)) == [("Paris Hilton", 0, 12, "person", 0.8), ("York", 36, 40, "city", 0.9)]


def test_chinese_blank_pipeline_character_tokens(scripted, monkeypatch):
    monkeypatch.setattr(scripted, "generate_answers", scripted_generate({"地点": {"广州": 0.7, "上海": 0.95}}))
    nlp = spacy.blank("zh")  # character segmentation: no extra package needed
    nlp.add_pipe("raitner_ner", config={"model": "scripted", "labels": ["地点"]})
    doc = nlp(ZH_TEXT)
    assert len(doc) == len(ZH_TEXT)
    assert _ents(doc) == [("广州", 6, 8, "地点", 0.7), ("上海", 9, 11, "地点", 0.95)]


def test_long_documents_are_chunked_with_offsets_kept(scripted, monkeypatch):
    monkeypatch.setattr(scripted, "max_chars", 30)
    monkeypatch.setattr(scripted, "generate_answers", scripted_generate({"city": {"Paris": 0.9}}))
    text = "Nothing in this first sentence. " * 3 + "Then Paris came."
    nlp = spacy.blank("en")
    nlp.add_pipe("raitner_ner", config={"model": "scripted", "labels": ["city"]})
    assert _ents(nlp(text)) == [("Paris", text.index("Paris"), text.index("Paris") + 5, "city", 0.9)]


def test_taught_model_end_to_end_en_and_zh(taught, monkeypatch):
    monkeypatch.setattr(spacy_component, "load_ner", lambda model, index, backend: taught)
    en = spacy.blank("en")
    en.add_pipe("raitner_ner", config={"model": "taught", "labels": ["person", "location", "organization"]})
    doc = en(EN_TEXT)
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Barack Obama", "person"),
        ("Paris", "location"),
        ("Google", "organization"),
    ]
    assert all(EN_TEXT[e.start_char : e.end_char] == e.text and 0 < e._.score <= 1 for e in doc.ents)
    zh = spacy.blank("zh")
    zh.add_pipe("raitner_ner", config={"model": "taught", "labels": ["人物", "地点"]})
    doc = zh(ZH_TEXT)
    assert [(e.text, e.start_char, e.label_) for e in doc.ents] == [
        ("奥巴马", 0, "人物"),
        ("广州", 6, "地点"),
        ("上海", 9, "地点"),
    ]
    assert all(0 < e._.score <= 1 for e in doc.ents)


def test_pipe_batches_equal_one_by_one(taught, monkeypatch):
    monkeypatch.setattr(spacy_component, "load_ner", lambda model, index, backend: taught)
    nlp = spacy.blank("en")
    nlp.add_pipe("raitner_ner", config={"model": "taught", "labels": ["person", "location", "organization"]})
    texts = [EN_TEXT, "Paris", EN_TEXT + " Google", "Nothing ."]
    one_by_one = [_ents(nlp(t)) for t in texts]
    sizes = []
    original = taught.predict_batch
    monkeypatch.setattr(
        taught, "predict_batch", lambda texts, labels, **kw: sizes.append(len(texts)) or original(texts, labels, **kw)
    )
    batched = [_ents(doc) for doc in nlp.pipe(texts, batch_size=3)]
    assert sizes == [3, 1]  # the component's pipe got spaCy's batches
    assert batched == one_by_one and any(one_by_one)


def test_fresh_process_finds_the_factory_through_the_entry_point(taught_model_dir):
    code = (
        "import json, spacy; nlp = spacy.blank('en'); "
        f"nlp.add_pipe('raitner_ner', config={{'model': {str(taught_model_dir)!r}, 'labels': ['location'], "
        "'backend': 'hf'}); doc = nlp(" + repr(EN_TEXT) + "); "
        "print(json.dumps([[e.text, e.label_, e._.score] for e in doc.ents]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(), timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    [[text, label, score]] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (text, label) == ("Paris", "location") and 0 < score <= 1
