"""A real OpenAI-compatible teacher (marker ``external``; deselected by default, never run in CI).

    OPENAI_API_KEY=sk-... [RAITNER_EXTERNAL_BASE_URL=...] [RAITNER_EXTERNAL_MODEL=gpt-4o-mini] pytest -m external

Annotates three bundled Chinese passages and checks what a real teacher's answers must satisfy after
parsing and filtering: every mention sits at its offsets, and the run is paid once (a re-run is cached).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from raitner_hub.annotate import annotate_corpus
from raitner_hub.config import AnnotateConfig
from raitner_hub.teacher import DEFAULT_BASE_URL, TeacherSpec

pytestmark = pytest.mark.external

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "data" / "sky_ner_sample.zh.jsonl"


def test_real_teacher_annotates_and_caches(tmp_path):
    if not os.environ.get("OPENAI_API_KEY"):
        pytest.skip("set OPENAI_API_KEY (and optionally RAITNER_EXTERNAL_BASE_URL / RAITNER_EXTERNAL_MODEL)")
    corpus = tmp_path / "corpus.jsonl"
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()[:3]]
    corpus.write_text(
        "".join(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n" for r in rows),
        encoding="utf-8",
    )
    teacher = TeacherSpec(
        model=os.environ.get("RAITNER_EXTERNAL_MODEL", "gpt-4o-mini"),
        base_url=os.environ.get("RAITNER_EXTERNAL_BASE_URL", DEFAULT_BASE_URL),
        key_env="OPENAI_API_KEY",
    )
    config = AnnotateConfig(
        corpus=str(corpus), lang="zh", teachers=(teacher,), chunk=False, cache=str(tmp_path / "cache.sqlite")
    )
    annotated, facts = annotate_corpus(config, progress=False)
    assert len(annotated) == 3 and facts["entities"] > 0
    for row in annotated:
        assert all(row["text"][e["start"] : e["end"]] == e["text"] for e in row["entities"])
    again, facts_again = annotate_corpus(config, progress=False)
    assert facts_again["calls"][teacher.model]["calls"] == 0
    assert again.to_list() == annotated.to_list()
