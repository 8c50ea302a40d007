"""corpus.py: reference chunks reproduced exactly, spans map back, sampling, dedup, readers and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raitner_hub.corpus import build_passages, chunk_document, count_tokens, read_documents
from raitner_hub.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def ten_docs(shared_data) -> Path:
    return shared_data / "zh" / "raw_passages" / "skypile_10_docs.jsonl"


@pytest.fixture(scope="module")
def reference_chunks(shared_data) -> list[str]:
    path = shared_data / "zh" / "raw_passages" / "skypile_10_docs.chunk256.jsonl"
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_reference_chunks_reproduced_exactly_in_compat_mode(ten_docs, reference_chunks):
    passages, stats = build_passages(ten_docs, lang="zh", strip=False)
    assert len(reference_chunks) == 48
    assert passages["text"] == reference_chunks
    assert passages["id"] == [f"chunk_{i}" for i in range(48)]
    assert (stats.documents, stats.chunks, stats.passages) == (10, 48, 48)
    assert "o200k_base" in stats.length_counter


def test_project_mode_strips_and_offsets_map_back(ten_docs, reference_chunks):
    docs = {d.id: d.text for d in read_documents(ten_docs)}
    passages, _ = build_passages(ten_docs, lang="zh")
    assert passages["text"] == [c.strip() for c in reference_chunks]
    assert sum(1 for c in reference_chunks if c != c.strip()) == 15  # the reference's no-op strip
    for row in passages:
        assert docs[row["doc_id"]][row["char_start"] : row["char_end"]] == row["text"]
        assert row["source"] == f"skypile_10_docs.jsonl:{row['doc_id']}[{row['char_start']}:{row['char_end']}]"
    # chunks of one document tile it in order, never overlapping
    for doc_id in docs:
        spans = [(r["char_start"], r["char_end"]) for r in passages if r["doc_id"] == doc_id]
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_chunks_respect_the_token_budget_and_move_leading_punctuation(ten_docs):
    passages, _ = build_passages(ten_docs, lang="zh")
    sizes = [count_tokens(t) for t in passages["text"]]
    assert max(sizes) <= 257  # 256 + the moved punctuation mark
    assert not any(t[0] in "。！？；" for t in passages["text"])


def test_endoftext_in_text_is_text_not_a_crash():
    chunks = chunk_document("前文<|endoftext|>后文。")
    assert [c.text for c in chunks] == ["前文<|endoftext|>后文。"]


def test_post_step_keeps_spans_true_across_stripped_whitespace():
    text = "甲乙丙丁戊己庚辛壬癸 \n。子丑寅卯辰巳午未申酉"
    chunks = chunk_document(text, chunk_size=8)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert not any(c.text.startswith("。") for c in chunks)


def test_uniform_sample_is_exact_seeded_and_in_corpus_order(ten_docs):
    a, _ = build_passages(ten_docs, lang="zh", sample=10, seed=42)
    b, _ = build_passages(ten_docs, lang="zh", sample=10, seed=42)
    c, _ = build_passages(ten_docs, lang="zh", sample=10, seed=67)
    assert len(a) == 10 and a["id"] == b["id"] and a["id"] != c["id"]
    numbers = [int(i.split("_")[1]) for i in a["id"]]
    assert numbers == sorted(numbers)
    everything, _ = build_passages(ten_docs, lang="zh", sample=1000)
    assert len(everything) == 48  # fewer chunks than asked: all of them


def test_reference_sampling_keeps_about_half_seeded(ten_docs):
    a, stats = build_passages(ten_docs, lang="zh", sampling="reference", seed=1)
    b, _ = build_passages(ten_docs, lang="zh", sampling="reference", seed=1)
    assert a["id"] == b["id"] and 10 < len(a) < 38
    first5, _ = build_passages(ten_docs, lang="zh", sampling="reference", sample=5, seed=1)
    assert first5["id"] == a["id"][:5]
    with pytest.raises(ConfigError, match="sampling"):
        build_passages(ten_docs, lang="zh", sampling="bernoulli")


def test_exact_duplicates_dropped(tmp_path):
    corpus = write_jsonl(
        tmp_path / "dup.jsonl",
        [{"text": "同一段文字。"}, {"text": "同一段文字。"}, {"text": "另一段。"}, {"text": "   "}],
    )
    passages, stats = build_passages(corpus, lang="zh")
    assert passages["text"] == ["同一段文字。", "另一段。"]
    assert passages["id"] == ["chunk_0", "chunk_2"]  # ids count every chunk: stable under dedup
    assert (stats.duplicates_dropped, stats.empty_dropped) == (1, 1)


def test_readers_parquet_txt_folder_and_ids(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "corpus"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [{"id": "doc-a", "text": "第一篇。"}, {"text": "第二篇。"}])
    pq.write_table(pa.table({"content": ["第三篇。"]}), folder / "b.parquet")
    (folder / "c.txt").write_text("第四篇。\n\n还是第四篇。", encoding="utf-8")
    (folder / ".hidden.jsonl").write_text('{"text": "不读"}\n', encoding="utf-8")
    docs = list(read_documents(folder / "a.jsonl")) + list(read_documents(folder / "c.txt"))
    assert [(d.id, d.text) for d in docs] == [
        ("doc-a", "第一篇。"),
        ("a:2", "第二篇。"),
        ("c.txt", "第四篇。\n\n还是第四篇。"),
    ]
    assert [d.text for d in read_documents(folder / "b.parquet", text_field="content")] == ["第三篇。"]
    with pytest.raises(InputError, match="no 'text' column"):
        list(read_documents(folder))  # b.parquet has no 'text'
    passages, _ = build_passages(folder / "a.jsonl", lang="zh", chunk=False)
    assert passages["id"] == ["doc-a", "a:2"]


@pytest.mark.parametrize(
    "content, message, line",
    [
        (b'{"text": "ok"}\n{"text": "\xff\xfe broken"}\n', "not valid UTF-8", 2),
        (b'{"text": "ok"}\n{"text": \n', "invalid JSON", 2),
        (b'{"body": "no text field"}\n', "no 'text' field", 1),
        (b'{"text": 3}\n', "not a string", 1),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, content, message, line):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        build_passages(path, lang="zh")
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list(read_documents(tmp_path / "nothing.jsonl"))
