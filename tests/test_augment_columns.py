"""The column-wise demonstration rendering equals row-by-row rendering byte for byte (shared real samples)."""

from __future__ import annotations

import numpy as np
import pytest

from raitner_hub.augment import augment_dataset, get_strategy, select_demos
from raitner_hub.formats import read_annotated
from raitner_hub.instruct import build_conversations
from raitner_hub.records import IT_FEATURES
from raitner_hub.retrieval import RetrievalIndex
from tests.fixtures.row_by_row import row_by_row

SAMPLES = {
    "sky_ner": ("zh/sky_ner_sample/sky_ner_examples_from_ra_it_rag.jsonl", "zh"),
    "pile_ner": ("en/pile_ner_slimer_subset/validation_nodef.jsonl", "en"),
}


@pytest.mark.parametrize("sample", list(SAMPLES))
@pytest.mark.parametrize("strategy", ["bm25_filter.v1", "random.v1"])
def test_column_wise_rendering_equals_row_by_row(shared_data, sample, strategy):
    path, lang = SAMPLES[sample]
    pool = read_annotated(shared_data / path, lang=lang)
    vanilla = build_conversations(pool, seed=42)
    vanilla = vanilla.select(range(len(vanilla) - 1, -1, -1))  # an indices mapping, rows out of pool order
    index = RetrievalIndex.build(pool, lang=lang, embedder="bm25", progress=False, cache_dir=False)
    ours = augment_dataset(vanilla, index, strategy=strategy, k=2, seed=42, bm25_threshold=20.0, progress=False)
    rows = [index.row_of(sid) for sid in vanilla["source_id"][:]]
    chosen = select_demos(
        index,
        get_strategy(strategy),
        vanilla["id"][:],
        k=2,
        top_k=128,
        seed=42,
        bm25_threshold=20.0,
        mixed_ratio=0.5,
        query_rows=np.array(rows),
    )
    reference = row_by_row(vanilla, index, chosen, strategy)
    assert ours.features == reference.features
    assert ours.data.table.equals(reference.flatten_indices().data.table)  # byte for byte, every column
    counts = {len(d) for d in ours["demos"][:]}
    assert 2 in counts and (strategy != "bm25_filter.v1" or 0 in counts or 1 in counts)  # both paths exercised


def test_empty_input_keeps_the_schema(shared_data):
    pool = read_annotated(shared_data / SAMPLES["sky_ner"][0], lang="zh")
    index = RetrievalIndex.build(pool.select(range(20)), lang="zh", embedder="bm25", progress=False, cache_dir=False)
    empty = build_conversations(pool.select(range(20)), seed=42).select([])
    out = augment_dataset(empty, index, strategy="nn.v1", k=2)
    assert len(out) == 0 and out.features == IT_FEATURES
