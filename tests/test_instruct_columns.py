"""The column-wise vanilla build equals the previous row-by-row one byte for byte (shared real samples)."""

from __future__ import annotations

import pytest

from raitner_hub.formats import read_annotated
from raitner_hub.instruct import build_conversations
from raitner_hub.records import IT_FEATURES
from tests.fixtures.row_by_row import row_by_row_conversations

SAMPLES = {
    "sky_ner": ("zh/sky_ner_sample/sky_ner_examples_from_ra_it_rag.jsonl", "zh"),
    "pile_ner": ("en/pile_ner_slimer_subset/validation_nodef.jsonl", "en"),
}


@pytest.fixture(scope="module", params=list(SAMPLES))
def pool(request, shared_data):
    path, lang = SAMPLES[request.param]
    return read_annotated(shared_data / path, lang=lang)


@pytest.mark.parametrize("negatives", ["keep", "resample", "none"])
def test_column_wise_build_equals_row_by_row(pool, negatives):
    ours = build_conversations(pool, seed=42, negatives=negatives, block=300)  # several blocks, a ragged last
    reference = row_by_row_conversations(pool, seed=42, negatives=negatives)
    assert ours.features == reference.features == IT_FEATURES
    assert ours.data.table.equals(reference.data.table)  # byte for byte, every column
    n_questions = [len(q) for q in ours["labels_queried"][:]]
    assert max(n_questions) > 1 and len(ours) == len(pool)


def test_rows_out_of_order_and_a_subset(pool):
    """An indices mapping (a reversed subset) reads the mapped rows; each row's draws depend on its id only."""
    picked = pool.select(range(len(pool) - 1, 0, -3))
    ours = build_conversations(picked, seed=7, negatives="resample")
    reference = row_by_row_conversations(picked, seed=7, negatives="resample")
    assert ours.data.table.equals(reference.data.table)


def test_empty_input_keeps_the_schema(pool):
    empty = build_conversations(pool.select([]), seed=42)
    assert len(empty) == 0 and empty.features == IT_FEATURES


def test_rows_written_before_qa_and_rows_without_questions(shared_data):
    """``keep`` on a mix: rows with ``qa``, older rows with ``labels_queried`` only, rows with no questions."""
    import json

    path, lang = SAMPLES["pile_ner"]
    pool = read_annotated(shared_data / path, lang=lang)

    def age(row, i):
        data = json.loads(row["annotator"])
        if i % 3 == 1:  # before qa existed: the asked types only, answers from the entities
            data = {k: v for k, v in data.items() if k != "qa"}
            data["labels_queried"] = [label for label, _ in json.loads(row["annotator"])["qa"]]
        elif i % 3 == 2:
            data = {"format": "plain"}
        return {"annotator": json.dumps(data, ensure_ascii=False)}

    mixed = pool.map(age, with_indices=True)
    ours = build_conversations(mixed, seed=3, negatives="keep", block=128)
    reference = row_by_row_conversations(mixed, seed=3, negatives="keep")
    assert ours.data.table.equals(reference.data.table)
