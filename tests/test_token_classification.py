"""The Hub's NER layout (tokens + ner_tags, Sequence(ClassLabel) names): local files, Hub ids, benchmark sources.

Fixtures are real CrossNER sentences written by ``datasets`` exactly in that layout (conll2003-shaped: id,
tokens, ner_tags), so every count and span can be compared with the BIO reader on the same sentences.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import datasets
import pytest

from raitner_hub.benchmarks import BenchmarkSpec, build_benchmarks_folder, load_benchmark, read_benchmarks_meta
from raitner_hub.errors import InputError
from raitner_hub.formats import detect_format, parse_hub_source, read_annotated
from raitner_hub.readers import read_bio

REPO = Path(__file__).resolve().parent.parent


def bio_sentences(path: Path) -> list[tuple[list[str], list[str]]]:
    out, tokens, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if tokens:
                out.append((tokens, tags))
            tokens, tags = [], []
            continue
        token, tag = line.split("\t")
        tokens.append(token)
        tags.append(tag)
    if tokens:
        out.append((tokens, tags))
    return out


def to_iob1(tags: list[str]) -> list[str]:
    """IOB2 -> IOB1 (conll2003's original scheme): B- only where an entity follows one of the same type."""
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-") and not (i and tags[i - 1] != "O" and tags[i - 1][2:] == tag[2:]):
            tag = "I-" + tag[2:]
        out.append(tag)
    return out


def tag_names(sentences) -> list[str]:
    types = sorted({t[2:] for _, tags in sentences for t in tags if t != "O"})
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def layout(sentences, names: list[str], iob1: bool = False) -> datasets.Dataset:
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    index = {n: i for i, n in enumerate(names)}
    return datasets.Dataset.from_dict(
        {
            "id": [str(i) for i in range(len(sentences))],
            "tokens": [t for t, _ in sentences],
            "ner_tags": [[index[g] for g in (to_iob1(tags) if iob1 else tags)] for _, tags in sentences],
        },
        features=features,
    )


def spans(ds) -> list[tuple[str, list]]:
    return [(row["text"], [(e["start"], e["end"], e["text"], e["label"]) for e in row["entities"]]) for row in ds]


@pytest.fixture(scope="module")
def crossner(shared_data):
    test = shared_data / "en" / "crossner_ai" / "test.bio.txt"
    train = shared_data / "en" / "crossner_ai" / "train.bio.txt"
    sentences = {"test": bio_sentences(test), "train": bio_sentences(train)}
    names = tag_names(sentences["test"] + sentences["train"])
    return {
        "files": {"test": test, "train": train},
        "sentences": sentences,
        "names": names,
        "bio": {split: list(read_bio(path)) for split, path in {"test": test, "train": train}.items()},
    }


def test_local_parquet_arrow_and_jsonl_read_as_the_bio_file(crossner, tmp_path):
    ds = layout(crossner["sentences"]["test"], crossner["names"])
    assert ds.features["ner_tags"].feature.names[:3] == ["O", "B-algorithm", "I-algorithm"]
    expected = spans(crossner["bio"]["test"])
    assert len(expected) == 431 and sum(len(e) for _, e in expected) > 1000
    ds.to_parquet(str(tmp_path / "test.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict({"test": ds, "train": layout(crossner["sentences"]["train"], crossner["names"])}).save_to_disk(
        str(tmp_path / "saved_dict")
    )
    arrow = next((tmp_path / "saved").glob("*.arrow"))
    with open(tmp_path / "test.jsonl", "w", encoding="utf-8") as fh:  # string tags: no features needed
        for tokens, tags in crossner["sentences"]["test"]:
            fh.write(json.dumps({"tokens": tokens, "ner_tags": tags}) + "\n")
    for path, split in (
        (tmp_path / "test.parquet", None),
        (tmp_path / "saved", None),
        (arrow, None),
        (tmp_path / "saved_dict", "test"),
        (tmp_path / "test.jsonl", None),
    ):
        assert detect_format(path) == "token_classification", path
        got = read_annotated(path, split=split)
        assert spans(got) == expected, path
        assert got[0]["id"].endswith("_0") and set(got["lang"]) == {"en"}
    train = read_annotated(tmp_path / "saved_dict", split="train")
    assert spans(train) == spans(crossner["bio"]["train"])


def test_iob1_and_iob2_give_the_same_spans(crossner, tmp_path):
    iob1 = layout(crossner["sentences"]["test"], crossner["names"], iob1=True)
    assert any(
        tag.startswith("I-") and (i == 0 or row[i - 1] == 0)  # I- opening an entity: IOB1
        for row in iob1["ner_tags"]
        for i, tag in enumerate(iob1.features["ner_tags"].feature.int2str(row))
    )
    iob1.to_parquet(str(tmp_path / "iob1.parquet"))
    assert spans(read_annotated(tmp_path / "iob1.parquet")) == spans(crossner["bio"]["test"])


def test_bad_token_data_is_a_one_line_error(tmp_path):
    ints = tmp_path / "ints.jsonl"
    ints.write_text(json.dumps({"tokens": ["a", "b"], "ner_tags": [0, 1]}) + "\n")
    with pytest.raises(InputError, match="integer ner_tags without label names"):
        read_annotated(ints)
    bioes = tmp_path / "bioes.jsonl"
    bioes.write_text(json.dumps({"tokens": ["a"], "ner_tags": ["S-x"]}) + "\n")
    with pytest.raises(InputError, match=r"row 0: bad BIO tag 'S-x'"):
        read_annotated(bioes)
    short = tmp_path / "short.jsonl"
    short.write_text(json.dumps({"tokens": ["a", "b"], "ner_tags": ["O"]}) + "\n")
    with pytest.raises(InputError, match="2 tokens but 1 ner_tags"):
        read_annotated(short)


def test_hub_source_spec_parsing():
    assert parse_hub_source("org/name:cfg:test") == {
        "repo": "org/name",
        "revision": None,
        "config": "cfg",
        "split": "test",
    }
    assert parse_hub_source("org/name@abc::train")["revision"] == "abc"
    assert parse_hub_source("org/name") is None and parse_hub_source("a/b/c:x") is None


@pytest.fixture(scope="module")
def hub_cross_ner(hub_server, crossner):
    """A repo laid out like DFKI-SLT/cross_ner: config ai, ClassLabel names such as B-algorithm."""
    repo = f"user/cross_ner-{uuid.uuid4().hex[:6]}"
    dd = datasets.DatasetDict(
        {split: layout(crossner["sentences"][split], crossner["names"]) for split in ("train", "test")}
    )
    dd.push_to_hub(repo, config_name="ai")
    return repo


def test_read_a_hub_split(hub_cross_ner, crossner):
    got = read_annotated(f"{hub_cross_ner}:ai:test")
    assert spans(got) == spans(crossner["bio"]["test"])
    assert got[0]["id"] == f"{hub_cross_ner.split('/')[1]}_ai_test_0"
    bench = load_benchmark(f"{hub_cross_ner}:ai:test", label_map="crossner_ai")
    assert bench.label_set[0] == "organization" and len(bench.dataset) == 431


def test_benchmark_spec_with_a_hub_source(hub_cross_ner, shared_data, tmp_path, hub_server):
    """push-benchmarks from the Hub: the same rows as the registry's BIO-derived config, pinned to a commit."""
    spec = BenchmarkSpec.from_dict(
        {
            "name": "cross_ner_ai",
            "lang": "en",
            "hub": hub_cross_ner,
            "hub_config": "ai",
            "label_map": "crossner_ai",
            "splits": {"train": "train", "test": "test"},
            "license": "mit",
        }
    )
    folder = build_benchmarks_folder(None, tmp_path / "bench", shared_data, specs=[spec])
    meta = read_benchmarks_meta(folder)["cross_ner_ai"]
    assert meta["splits"] == {"train": 100, "test": 431} and meta["gold"] == "hub"
    ours = load_benchmark("cross_ner_ai", "test", folder=folder)
    local = load_benchmark("crossner_ai_bio", "test", shared_data)
    assert ours.label_set == local.label_set
    assert spans(ours.dataset) == spans(local.dataset)
    assert (
        meta["gold_mentions"]["test"]
        == read_benchmarks_meta(build_benchmarks_folder(["crossner_ai_bio"], tmp_path / "local", shared_data))[
            "crossner_ai_bio"
        ]["gold_mentions"]["test"]
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    sha = hub_server.repo(hub_cross_ner, "dataset").branches["main"]
    assert manifest["inputs"] == {"cross_ner_ai": f"{hub_cross_ner}@{sha}"}


def test_cli_build_data_from_a_hub_split(hub_cross_ner, tmp_path, hub_server):
    out = tmp_path / "it"
    proc = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "raitner") if (REPO / ".venv").is_dir() else sys.executable,
            *([] if (REPO / ".venv").is_dir() else ["-m", "raitner_hub"]),
            "build-data",
            f"{hub_cross_ner}:ai:train",
            "--strategy",
            "none",
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "vanilla 100 conversations" in proc.stdout and "negatives: resample" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    sha = hub_server.repo(hub_cross_ner, "dataset").branches["main"]
    assert manifest["inputs"]["annotated"] == f"{hub_cross_ner}@{sha}:ai:train"


def test_cli_push_benchmarks_with_a_hub_spec(hub_cross_ner, shared_data, tmp_path, hub_server):
    spec_file = tmp_path / "specs.yaml"
    spec_file.write_text(
        f"- name: cross_ner_ai\n  lang: en\n  hub: {hub_cross_ner}\n  hub_config: ai\n"
        "  label_map: crossner_ai\n  license: mit\n  splits: {test: test, train: train}\n"
    )
    out = tmp_path / "bench"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "raitner_hub",
            "push-benchmarks",
            "--spec",
            str(spec_file),
            "--data-root",
            str(shared_data),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"built {out.resolve()}: cross_ner_ai 531 passages"
    loaded = datasets.load_dataset(str(out), split="test", cache_dir=str(tmp_path / "cache"))  # default config
    assert len(loaded) == 431


def test_cli_index_from_a_hub_split(hub_cross_ner, tmp_path, hub_server):
    out = tmp_path / "index"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "raitner_hub",
            "index",
            f"{hub_cross_ner}:ai:train",
            "--embedder",
            "bm25",
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("indexed 100 passages")
    from raitner_hub.retrieval import RetrievalIndex

    index = RetrievalIndex.from_pretrained(str(out))
    assert len(index) == 100


def test_evaluate_a_hub_split_with_its_train_split_as_in_domain_pool(
    hub_cross_ner, tiny_model_dir, tmp_path, monkeypatch
):
    from raitner_hub.evaluate import evaluate_model
    from raitner_hub.predict import NER

    ner = NER.from_pretrained(tiny_model_dir, max_new_tokens=8)
    seen = []
    monkeypatch.setattr(ner, "generate_answers", lambda items: seen.extend(items) or ["[]"] * len(items))
    report = evaluate_model(
        ner,
        files=[f"{hub_cross_ner}:ai:test"],
        label_map="crossner_ai",
        mode="in-domain",
        embedder="bm25",
        limit=5,
        out=tmp_path / "r",
    )
    name = f"{hub_cross_ner.split('/')[1]}_ai_test"
    assert report.results["datasets"][name]["pool"]["pool_size"] == 100
    assert len(seen) == 5 * 13 and all(len(q.demos) == 2 for q in seen)
    train_ids = {row["id"] for row in read_annotated(f"{hub_cross_ner}:ai:train")}
    assert all({d.id for d in q.demos} <= train_ids for q in seen)
