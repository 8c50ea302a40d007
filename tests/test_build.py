"""`raitner build-data` end to end: layout, load_dataset, self-exclusion, BM25 fallback, determinism, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from raitner_hub.build import build_data
from raitner_hub.config import BuildConfig
from raitner_hub.errors import ConfigError, InputError

REPO = Path(__file__).resolve().parent.parent
EN_SAMPLE = REPO / "examples" / "data" / "pile_ner_sample.en.jsonl"
ZH_SAMPLE = REPO / "examples" / "data" / "sky_ner_sample.zh.jsonl"


def load_config(folder: Path, name: str, tmp_path: Path) -> datasets.DatasetDict:
    # datasets caches local folders by name: a private cache dir keeps runs apart
    return datasets.load_dataset(str(folder), name, cache_dir=str(tmp_path / f"cache-{folder.name}-{name}"))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "raitner_hub", *args], capture_output=True, text=True, cwd=REPO, timeout=600
    )


def conversation_body(messages: list[dict]) -> list[dict]:
    """The conversation without the demonstration exchange."""
    if messages and messages[0]["content"].startswith(("Here are some examples", "以下是一些命名实体识别的例子")):
        return messages[2:]
    return messages


@pytest.fixture(scope="module")
def zh_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("zh") / "sky-it"
    config = BuildConfig(
        input=str(ZH_SAMPLE),
        out=str(out),
        embedder="bm25",
        strategies=("nn.v1", "diverse_nn.v1", "bm25_filter.v1", "random.v1"),
        seed=42,
    )
    return build_data(config, command="raitner build-data test", progress=False), config


def test_layout_card_and_manifest(zh_build, tmp_path):
    result, config = zh_build
    out = result.out
    assert set(result.configs) == {"vanilla", "ra-nn-k2", "ra-diverse_nn-k2", "ra-bm25_filter-k2", "ra-random-k2"}
    for name, splits in result.configs.items():
        for split in ("train", "validation"):
            assert (out / "data" / name / f"{split}-00000-of-00001.parquet").is_file()
        assert splits["validation"] == round(0.1 * (splits["train"] + splits["validation"]))
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(out / "README.md")
    assert {c["config_name"] for c in card.data.configs} == set(result.configs)
    assert card.data.raitner["k"] == 2 and card.data.raitner["top_k"] == 128
    assert card.data.raitner["demonstration_template"] == "ra_it.zh.v1"
    assert "token-classification" in card.data.task_categories
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["seed"] == 42 and manifest["counts"]["configs"] == result.configs
    assert manifest["templates"] == {"conversation": "uniner.zh.v1", "demonstrations": "ra_it.zh.v1"}
    assert not list(out.parent.glob(".*staging*"))


def test_load_dataset_returns_the_rows(zh_build, tmp_path):
    result, _ = zh_build
    for name in result.configs:
        ds = load_config(result.out, name, tmp_path)
        assert {s: len(ds[s]) for s in ds} == result.configs[name]
        direct = datasets.Dataset.from_parquet(str(result.out / "data" / name / "train-00000-of-00001.parquet"))
        assert ds["train"]["id"] == direct["id"] and ds["train"][0] == direct[0]


def test_all_configs_ask_the_same_questions(zh_build, tmp_path):
    result, _ = zh_build
    vanilla = {r["id"]: r for r in load_config(result.out, "vanilla", tmp_path)["train"]}
    for name in result.configs:
        for row in load_config(result.out, name, tmp_path)["train"]:
            base = vanilla[row["id"]]
            assert row["labels_queried"] == base["labels_queried"]
            assert conversation_body(row["messages"]) == base["messages"]
            assert (row["messages"] != base["messages"]) == bool(row["demos"])


def test_never_its_own_demonstration(zh_build, tmp_path):
    result, _ = zh_build
    text_of = {}
    for split in ("train", "validation"):
        for row in load_config(result.out, "vanilla", tmp_path)[split]:
            text_of[row["id"]] = row["messages"][0]["content"]
    for name in result.configs:
        if name == "vanilla":
            continue
        for row in load_config(result.out, name, tmp_path)["train"]:
            assert row["id"] not in row["demos"]
            assert all(text_of[d] != text_of[row["id"]] for d in row["demos"])
            if name != "ra-bm25_filter-k2":
                assert len(row["demos"]) == 2 and len(set(row["demos"])) == 2


def test_bm25_filter_falls_back_to_vanilla(zh_build, tmp_path):
    result, config = zh_build
    rows = load_config(result.out, "ra-bm25_filter-k2", tmp_path)["train"]
    nn = {r["id"]: r["demos"] for r in load_config(result.out, "ra-nn-k2", tmp_path)["train"]}
    n_without = sum(1 for r in rows if not r["demos"])
    assert 0 < n_without < len(rows)  # some rows keep examples, some fall back
    for row in rows:
        assert row["strategy"] == "bm25_filter.v1"
        assert set(row["demos"]) <= set(nn[row["id"]])  # filtered NN, no back-fill
        assert [d for d in nn[row["id"]] if d in row["demos"]] == row["demos"]


def test_same_seed_same_result_other_seed_differs(zh_build, tmp_path):
    result, config = zh_build
    from dataclasses import replace

    again = build_data(replace(config, out=str(tmp_path / "again")), progress=False)
    for name in result.configs:
        a = load_config(result.out, name, tmp_path)["train"]
        b = load_config(again.out, name, tmp_path)["train"]
        assert a.to_list() == b.to_list()
    other = build_data(
        replace(config, out=str(tmp_path / "other"), seed=7, strategies=("diverse_nn.v1",)), progress=False
    )
    a = load_config(result.out, "ra-diverse_nn-k2", tmp_path)["train"]
    b = load_config(other.out, "ra-diverse_nn-k2", tmp_path)["train"]
    assert a["demos"] != b["demos"]


def test_english_sample_with_offline_embedder(tmp_path, minilm_path):
    out = tmp_path / "pile-it"
    result = build_data(
        BuildConfig(
            input=str(EN_SAMPLE), out=str(out), embedder=minilm_path, strategies=("nn.v1",), license="cc-by-nc-4.0"
        ),
        progress=False,
    )
    ds = load_config(out, "ra-nn-k2", tmp_path)["train"]
    row = ds[0]
    assert row["template"].startswith("uniner.en.v1") and row["strategy"] == "nn.v1"
    assert row["messages"][0]["content"].startswith("Here are some examples of named entity recognition:\nText: ")
    assert row["messages"][1]["content"] == "I've read these examples."
    assert row["messages"][2]["content"].startswith("Text: ")
    assert result.manifest["settings"]["license"] == "cc-by-nc-4.0"


def test_cli_summary_and_example(tmp_path):
    """No --strategy: the paper's main setting, NN (vanilla + ra-nn-k2)."""
    out = tmp_path / "cli-out"
    proc = run_cli("build-data", str(ZH_SAMPLE), "--embedder", "bm25", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"built {out}" in proc.stdout and "ra-nn-k2" in proc.stdout and "negatives: resample" in proc.stdout
    assert {p.name for p in (out / "data").iterdir()} == {"vanilla", "ra-nn-k2"}
    assert "以下是一些命名实体识别的例子" in proc.stdout  # one rendered example


@pytest.mark.parametrize(
    "content, extra, message",
    [
        (None, ["--strategy", "nearest_v9"], "unknown strategy 'nearest_v9'"),
        ("tiny", ["--k", "5"], "k=5 is larger than the pool"),
        ("", [], "no passages"),
        ("bio", [], ":3:"),
        ("offsets", [], "does not match"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, content, extra, message):
    if content is None:
        src = ZH_SAMPLE
    else:
        src = (
            tmp_path / {"tiny": "tiny.jsonl", "": "empty.jsonl", "bio": "bad.bio.txt", "offsets": "bad.jsonl"}[content]
        )
        src.write_text(
            {
                "tiny": "\n".join(
                    json.dumps(
                        {"id": f"t{i}", "text": f"Alice {i}", "entities": [{"mention": "Alice", "type": "person"}]}
                    )
                    for i in range(3)
                )
                + "\n",
                "": "",
                "bio": "Alice\tB-person\nmet\tO\nBob B-person\n\n",
                "offsets": json.dumps(
                    {
                        "id": "x",
                        "text": "Alice met Bob",
                        "lang": "en",
                        "source": "t",
                        "annotator": "",
                        "entities": [{"start": 0, "end": 5, "text": "Bobby", "label": "person"}],
                    }
                )
                + "\n",
            }[content],
            encoding="utf-8",
        )
    out = tmp_path / "never"
    proc = run_cli("build-data", str(src), "--embedder", "bm25", "--lang", "en", "--out", str(out), *extra)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".never*"))


def test_full_sky_ner_sample_end_to_end(shared_data, tmp_path):
    """The whole shared Sky-NER sample (938 passages, one text carrying two annotations)."""
    src = shared_data / "zh" / "sky_ner_sample" / "sky_ner_examples_from_ra_it_rag.jsonl"
    result = build_data(
        BuildConfig(
            input=str(src), out=str(tmp_path / "sky-full"), embedder="bm25", strategies=("nn.v1", "bm25_filter.v1")
        ),
        progress=False,
    )
    assert sum(result.configs["vanilla"].values()) == 938
    rows = load_config(result.out, "ra-nn-k2", tmp_path)["train"]
    for row in rows:
        assert row["id"] not in row["demos"] and len(row["demos"]) == 2
    fallback = result.manifest["counts"]["rows_without_demos"]["ra-bm25_filter-k2"]
    assert 0 < fallback < 938


@pytest.mark.slow
def test_full_pile_ner_sample_with_minilm(shared_data, tmp_path, minilm_path):
    """The whole shared English Pile-NER subset (882 passages) with the offline embedder."""
    src = shared_data / "en" / "pile_ner_slimer_subset" / "validation_nodef.jsonl"
    result = build_data(
        BuildConfig(
            input=str(src), out=str(tmp_path / "pile-full"), embedder=minilm_path, strategies=("nn.v1", "diverse_nn.v1")
        ),
        progress=False,
    )
    assert sum(result.configs["vanilla"].values()) == 882
    rows = load_config(result.out, "ra-diverse_nn-k2", tmp_path)["train"]
    assert all(row["id"] not in row["demos"] and len(row["demos"]) == 2 for row in rows)


def test_non_default_top_k_and_threshold_are_in_the_config_names(tmp_path):
    config = BuildConfig(
        input=str(ZH_SAMPLE),
        out=str(tmp_path / "it"),
        embedder="bm25",
        sample=40,
        strategies=("diverse_nn.v1", "bm25_filter.v1", "nn.v1"),
        top_k=8,
        bm25_threshold=5.0,
    )
    result = build_data(config, progress=False)
    assert set(result.configs) == {"vanilla", "ra-diverse_nn-top8-k2", "ra-bm25_filter-bm5-k2", "ra-nn-k2"}


# ---- data as the paper used it (issue 13): negatives kept, subsets after negatives, bad answers dropped --------

ROLES = {"user": "human", "assistant": "gpt"}


def as_turns(messages: list[dict]) -> list[dict]:
    return [{"from": ROLES[m["role"]], "value": m["content"]} for m in messages]


def all_rows(folder: Path, name: str, tmp_path: Path) -> dict[str, dict]:
    ds = load_config(folder, name, tmp_path)
    return {row["id"]: row for split in ds for row in ds[split]}


def pile_ner_type_items(n: int = 30) -> list[dict]:
    """UniNER's release format (Pile-NER-type): one chat per passage, every type asked, negatives answer [].
    Real passages and mentions from the bundled sample; negatives and a question order that differ per item."""
    from raitner_hub.records import mentions_by_label

    rows = [json.loads(line) for line in EN_SAMPLE.read_text(encoding="utf-8").splitlines()[:n]]
    all_types = sorted({e["label"] for row in rows for e in row["entities"]})
    items = []
    for i, row in enumerate(rows):
        answers = mentions_by_label(row["entities"])
        negatives = [t for t in all_types if t not in answers][i % 5 : i % 5 + 1 + i % 4]
        qa = [(label, []) for label in negatives] + list(answers.items())
        qa = qa[i % len(qa) :] + qa[: i % len(qa)] if qa else qa  # rotate: negatives are not always first
        turns = [{"from": "human", "value": f"Text: {row['text']}"}, {"from": "gpt", "value": "I've read this text."}]
        for label, answer in qa:
            turns += [
                {"from": "human", "value": f"What describes {label} in the text?"},
                {"from": "gpt", "value": json.dumps(answer, ensure_ascii=False)},
            ]
        items.append({"id": str(i), "conversations": turns})
    return items


def test_pile_ner_type_keeps_its_questions_and_drops_a_bad_answer(tmp_path):
    """--strategy none: every passage returns exactly its input chat; one malformed answer of 30 is dropped
    and reported (summary line, manifest, card); the rest build."""
    items = pile_ner_type_items(30)
    items[7]["conversations"][3]["value"] = '["unterminated'
    src = tmp_path / "pile_ner_type.json"
    src.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "it"
    proc = run_cli("build-data", str(src), "--strategy", "none", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "vanilla 29 conversations" in proc.stdout and "negatives: keep" in proc.stdout
    assert "dropped 1 input conversations with an unparseable answer" in proc.stdout
    rows = all_rows(out, "vanilla", tmp_path)
    assert len(rows) == 29
    by_text = {item["conversations"][0]["value"]: item["conversations"] for i, item in enumerate(items) if i != 7}
    for row in rows.values():
        assert as_turns(row["messages"]) == by_text[row["messages"][0]["content"]]
    assert sum(1 for r in rows.values() for m in r["messages"][3::2] if m["content"] == "[]") > 29  # negatives
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["dropped_conversations"] == 1 and manifest["settings"]["negatives"] == "keep"
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| negatives | `keep`" in card and "| dropped | 1 input conversations" in card


def test_mostly_bad_answers_is_still_an_error(tmp_path):
    items = pile_ner_type_items(5)
    for item in items[:3]:
        item["conversations"][3]["value"] = "not json"
    src = tmp_path / "bad.json"
    src.write_text(json.dumps(items), encoding="utf-8")
    with pytest.raises(InputError, match=r"item 0: answer is not a JSON list of strings.*3 of 5 conversations"):
        build_data(BuildConfig(input=str(src), out=str(tmp_path / "never"), strategies=()), progress=False)
    assert not (tmp_path / "never").exists()


def test_resample_and_none_are_explicit_choices(tmp_path):
    src = tmp_path / "pile_ner_type.json"
    items = pile_ner_type_items(30)
    src.write_text(json.dumps(items), encoding="utf-8")
    inputs = {item["conversations"][0]["value"]: item["conversations"] for item in items}
    built = {}
    for mode in ("resample", "none"):
        result = build_data(
            BuildConfig(input=str(src), out=str(tmp_path / mode), strategies=(), negatives=mode), progress=False
        )
        assert result.manifest["settings"]["negatives"] == mode
        built[mode] = all_rows(result.out, "vanilla", tmp_path)
    changed = sum(as_turns(r["messages"]) != inputs[r["messages"][0]["content"]] for r in built["resample"].values())
    assert changed > 10  # re-sampled negatives and a new order
    for row in built["none"].values():
        assert all(m["content"] != "[]" for m in row["messages"][3::2])  # positives only
    with pytest.raises(ConfigError, match="unknown negatives mode 'some'"):
        build_data(
            BuildConfig(input=str(src), out=str(tmp_path / "x"), strategies=(), negatives="some"), progress=False
        )


def test_ra_it_sky_ner_chats_keep_all_their_questions(shared_data, tmp_path):
    """The RA-IT authors' released Sky-NER chats (17): built as they are, byte for byte (was 2 of 17)."""
    src = shared_data / "zh" / "sky_ner_sample" / "sky_10_samples.it_conversation.json"
    items = json.loads(src.read_text(encoding="utf-8"))
    result = build_data(BuildConfig(input=str(src), out=str(tmp_path / "sky"), strategies=()), progress=False)
    rows = all_rows(result.out, "vanilla", tmp_path)
    assert sorted(json.dumps(as_turns(r["messages"]), ensure_ascii=False) for r in rows.values()) == sorted(
        json.dumps(item["conversations"], ensure_ascii=False) for item in items
    )


def test_sample_inherits_the_negatives_of_the_full_build(tmp_path):
    """paper.md §2.4: negatives are drawn once on the whole set; a subset asks the same questions."""
    full = build_data(
        BuildConfig(input=str(ZH_SAMPLE), out=str(tmp_path / "full"), strategies=(), validation_fraction=0.0),
        progress=False,
    )
    part = build_data(
        BuildConfig(
            input=str(ZH_SAMPLE), out=str(tmp_path / "part"), strategies=(), sample=100, validation_fraction=0.0
        ),
        progress=False,
    )
    assert full.facts["negatives"] == "resample"
    whole, subset = all_rows(full.out, "vanilla", tmp_path), all_rows(part.out, "vanilla", tmp_path)
    assert len(subset) == 100
    negatives = 0
    for pid, row in subset.items():
        assert row["labels_queried"] == whole[pid]["labels_queried"]
        assert row["messages"] == whole[pid]["messages"]
        negatives += sum(m["content"] == "[]" for m in row["messages"][3::2])
    assert negatives > 0


def test_slimer_rows_keep_their_questions(shared_data, tmp_path):
    """SLIMER's Pile-NER rows: every (passage, type) question and answer, in question order, negatives as given."""
    src = shared_data / "en" / "pile_ner_slimer_subset" / "validation_nodef.jsonl"
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    expected: dict[str, list] = {}
    for row in sorted(rows, key=lambda r: [int(x) for x in r["doc_question_pairID"].split(":")]):
        passage = row["doc_question_pairID"].split(":")[0]
        expected.setdefault(f"pilener_{passage}", []).append(
            (f"What describes {row['tagName']} in the text?", json.loads(row["output"]))
        )
    result = build_data(BuildConfig(input=str(src), out=str(tmp_path / "slimer"), strategies=()), progress=False)
    built = all_rows(result.out, "vanilla", tmp_path)
    assert result.facts["negatives"] == "keep" and len(built) == 882
    for pid, row in built.items():
        got = [(q["content"], json.loads(a["content"])) for q, a in zip(row["messages"][2::2], row["messages"][3::2])]
        assert got == expected[pid]
    assert sum(a == [] for qa in expected.values() for _, a in qa) == 1320 - 717  # the source's negatives


def test_bundled_sample_keeps_slimers_asked_types(tmp_path):
    """Rows that record labels_queried (the bundled SLIMER sample) keep those questions by default."""
    rows = [json.loads(line) for line in EN_SAMPLE.read_text(encoding="utf-8").splitlines()]
    result = build_data(BuildConfig(input=str(EN_SAMPLE), out=str(tmp_path / "en"), strategies=()), progress=False)
    built = all_rows(result.out, "vanilla", tmp_path)
    assert result.facts["negatives"] == "keep"
    for row in rows:
        assert built[row["id"]]["labels_queried"] == json.loads(row["annotator"])["labels_queried"]
