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

REPO = Path(__file__).resolve().parent.parent
EN_SAMPLE = REPO / "examples" / "data" / "pile_ner_sample.en.jsonl"
ZH_SAMPLE = REPO / "examples" / "data" / "sky_ner_sample.zh.jsonl"


def load_config(folder: Path, name: str, tmp_path: Path) -> datasets.DatasetDict:
    # datasets caches local folders by name: a private cache dir keeps runs apart
    return datasets.load_dataset(str(folder), name, cache_dir=str(tmp_path / f"cache-{folder.name}-{name}"))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raitner_hub", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=600)


def conversation_body(messages: list[dict]) -> list[dict]:
    """The conversation without the demonstration exchange."""
    if messages and messages[0]["content"].startswith(("Here are some examples", "以下是一些命名实体识别的例子")):
        return messages[2:]
    return messages


@pytest.fixture(scope="module")
def zh_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("zh") / "sky-it"
    config = BuildConfig(input=str(ZH_SAMPLE), out=str(out), embedder="bm25",
                         strategies=("nn.v1", "diverse_nn.v1", "bm25_filter.v1", "random.v1"), seed=42)
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
    other = build_data(replace(config, out=str(tmp_path / "other"), seed=7, strategies=("diverse_nn.v1",)),
                       progress=False)
    a = load_config(result.out, "ra-diverse_nn-k2", tmp_path)["train"]
    b = load_config(other.out, "ra-diverse_nn-k2", tmp_path)["train"]
    assert a["demos"] != b["demos"]


def test_english_sample_with_offline_embedder(tmp_path, minilm_path):
    out = tmp_path / "pile-it"
    result = build_data(BuildConfig(input=str(EN_SAMPLE), out=str(out), embedder=minilm_path,
                                    strategies=("nn.v1",), license="cc-by-nc-4.0"), progress=False)
    ds = load_config(out, "ra-nn-k2", tmp_path)["train"]
    row = ds[0]
    assert row["template"].startswith("uniner.en.v1") and row["strategy"] == "nn.v1"
    assert row["messages"][0]["content"].startswith("Here are some examples of named entity recognition:\nText: ")
    assert row["messages"][1]["content"] == "I've read these examples."
    assert row["messages"][2]["content"].startswith("Text: ")
    assert result.manifest["settings"]["license"] == "cc-by-nc-4.0"


def test_cli_summary_and_example(tmp_path):
    out = tmp_path / "cli-out"
    proc = run_cli("build-data", str(ZH_SAMPLE), "--embedder", "bm25", "--strategy", "nn.v1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"built {out}" in proc.stdout and "ra-nn-k2" in proc.stdout
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
        src = tmp_path / {"tiny": "tiny.jsonl", "": "empty.jsonl", "bio": "bad.bio.txt",
                          "offsets": "bad.jsonl"}[content]
        src.write_text({
            "tiny": "\n".join(json.dumps({"id": f"t{i}", "text": f"Alice {i}", "entities": [{"mention": "Alice",
                                         "type": "person"}]}) for i in range(3)) + "\n",
            "": "",
            "bio": "Alice\tB-person\nmet\tO\nBob B-person\n\n",
            "offsets": json.dumps({"id": "x", "text": "Alice met Bob", "lang": "en", "source": "t", "annotator": "",
                                   "entities": [{"start": 0, "end": 5, "text": "Bobby", "label": "person"}]}) + "\n",
        }[content], encoding="utf-8")
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
    result = build_data(BuildConfig(input=str(src), out=str(tmp_path / "sky-full"), embedder="bm25",
                                    strategies=("nn.v1", "bm25_filter.v1")), progress=False)
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
    result = build_data(BuildConfig(input=str(src), out=str(tmp_path / "pile-full"), embedder=minilm_path,
                                    strategies=("nn.v1", "diverse_nn.v1")), progress=False)
    assert sum(result.configs["vanilla"].values()) == 882
    rows = load_config(result.out, "ra-diverse_nn-k2", tmp_path)["train"]
    assert all(row["id"] not in row["demos"] and len(row["demos"]) == 2 for row in rows)


def test_non_default_top_k_and_threshold_are_in_the_config_names(tmp_path):
    config = BuildConfig(input=str(ZH_SAMPLE), out=str(tmp_path / "it"), embedder="bm25", sample=40,
                         strategies=("diverse_nn.v1", "bm25_filter.v1", "nn.v1"), top_k=8, bm25_threshold=5.0)
    result = build_data(config, progress=False)
    assert set(result.configs) == {"vanilla", "ra-diverse_nn-top8-k2", "ra-bm25_filter-bm5-k2", "ra-nn-k2"}
