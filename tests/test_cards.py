"""Golden tests for the card templates owned here (IT dataset, annotated corpus): the whole rendered card
is compared with ``tests/golden/<kind>.md`` and its YAML is round-tripped through ``DatasetCard``.

Update a golden file on purpose only: ``RAITNER_UPDATE_GOLDEN=1 pytest tests/test_cards.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import DatasetCard

from raitner_hub.annotate import _card as annotated_card
from raitner_hub.build import _card as it_card
from raitner_hub.config import AnnotateConfig, BuildConfig
from raitner_hub.teacher import TeacherSpec

GOLDEN = Path(__file__).resolve().parent / "golden"


def check_golden(kind: str, card) -> None:
    path = GOLDEN / f"{kind}.md"
    if os.environ.get("RAITNER_UPDATE_GOLDEN"):
        path.write_text(str(card), encoding="utf-8")
    assert str(card) == path.read_text(encoding="utf-8")
    reparsed = DatasetCard(str(card))
    assert reparsed.data.to_dict() == card.data.to_dict()


def test_it_dataset_card_golden():
    config = BuildConfig(
        input="examples/data/sky_ner_sample.zh.jsonl",
        out="outputs/sky-ner-it",
        embedder="bm25",
        strategies=("nn.v1", "bm25_filter.v1"),
        license="other",
    )
    counts = {
        "vanilla": {"train": 269, "validation": 30},
        "ra-nn-k2": {"train": 269, "validation": 30},
        "ra-bm25_filter-k2": {"train": 269, "validation": 30},
    }
    facts = {
        "lang": "zh",
        "passages": 299,
        "entities": 4150,
        "embedder": "bm25",
        "negatives": "resample",
        "rows_without_demos": {"ra-nn-k2": 0, "ra-bm25_filter-k2": 77},
    }
    card = it_card(
        config,
        counts,
        facts,
        "raitner build-data examples/data/sky_ner_sample.zh.jsonl --embedder bm25",
        "examples/data/sky_ner_sample.zh.jsonl#sha256:0123abcd",
        "me/sky-ner-it",
    )
    check_golden("it_dataset", card)
    assert card.data.raitner["demonstration_template"] == "ra_it.zh.v1"
    assert [c["config_name"] for c in card.data.configs] == list(counts)


def test_annotated_card_golden():
    config = AnnotateConfig(
        corpus="skypile/", lang="zh", teachers=(TeacherSpec(model="gpt-3.5-turbo-0125"),), sample=1000, license="other"
    )
    facts = {
        "teachers": ["gpt-3.5-turbo-0125"],
        "corpus": {
            "documents": 120,
            "chunks": 1040,
            "duplicates_dropped": 3,
            "empty_dropped": 2,
            "length_counter": "tiktoken o200k_base",
            "settings": {"chunk_size": 256},
        },
        "passages": 1000,
        "passages_with_entities": 987,
        "entities": 15210,
        "distinct_pairs": 12840,
        "types": 1432,
        "top_types": [["概念", 1800], ["地点", 1500], ["人物", 1320]],
        "calls": {
            "gpt-3.5-turbo-0125": {
                "calls": 1000,
                "cached": 0,
                "retries": 4,
                "rate_limited": 2,
                "refused": 1,
                "rejected": 0,
                "prompt_tok": 410000,
                "completion_tok": 120000,
                "cost_usd": 0.385,
            }
        },
        "drops": {"too_long": 12, "not_in_text": 40, "junk_type": 60},
    }
    card = annotated_card(
        config, facts, "skypile/#sha256:89abcdef", "me/sky-ner", "raitner annotate skypile/ --lang zh"
    )
    check_golden("sky_ner", card)
    assert card.data.raitner["prompt"] == "annotate.zh.v1"
