"""Benchmark converters: label sets, gold-as-prediction = 100, seeded splits, the Hub-layout folder, the CLI."""

from __future__ import annotations

import json
import random
import uuid

import datasets
import pytest
from huggingface_hub import DatasetCard
from typer.testing import CliRunner

from raitner_hub.benchmarks import (
    BENCHMARKS,
    build_benchmarks_folder,
    gold_mentions,
    label_set_of,
    load_benchmark,
    load_label_map,
    read_benchmarks_meta,
)
from raitner_hub.errors import ConfigError, InputError
from raitner_hub.evaluate import question_row
from raitner_hub.formats import read_annotated
from raitner_hub.metrics import Counts, answers_to_entities, prf, strict_span_counts, uniner_counts
from raitner_hub.readers import gold_answers
from raitner_hub.records import ANNOTATED_FEATURES, mentions_by_label

# Types per benchmark from ../shared/data/README.md, minus misc (Weibo's 8 tags collapse to 4).
README_TYPES = {
    "crossner_ai": 13,
    "crossner_literature": 11,
    "crossner_music": 12,
    "crossner_politics": 8,
    "crossner_science": 16,
    "mit_movie": 12,
    "mit_restaurant": 8,
    "weibo": 4,
    "msra": 3,
    "boson": 6,
    "cluener": 10,
    "cmeee": 9,
    "yidu": 6,
}
FIRST = 200  # sentences per benchmark in the gold-as-prediction test


def test_registry_label_sets():
    assert {n for n, spec in BENCHMARKS.items() if spec.default} == set(README_TYPES)
    variants = {n for n, spec in BENCHMARKS.items() if not spec.default}
    assert variants == {
        f"{n}_bio"
        for n in ("crossner_ai", "crossner_literature", "crossner_music", "crossner_politics", "mit_restaurant")
    }
    for name, spec in BENCHMARKS.items():
        labels = label_set_of(load_label_map(spec.label_map_path()))
        assert len(labels) == README_TYPES[name.removesuffix("_bio")], name
        assert "dev" not in spec.splits  # held-out splits are named validation
        assert len(set(labels)) == len(labels) and "misc" not in labels
        assert "test" in spec.splits
    assert label_set_of(load_label_map("crossner_ai"))[-3:] == ["program language", "field", "metrics"]
    assert "average ratings" in label_set_of(load_label_map("mit_movie"))
    assert "Restaurant Name" in label_set_of(load_label_map("mit_restaurant"))
    assert load_label_map("weibo")["PER.NOM"] == "人名" and load_label_map("crossner_music")["misc"] is None
    assert not BENCHMARKS["boson"].redistributable and "forbids" in BENCHMARKS["boson"].license_note


def test_label_sets_follow_uniner_question_order(shared_data):
    """CrossNER / MIT-Restaurant label sets are UniNER's own names in its test files' order."""
    import re

    for name in ("crossner_ai", "crossner_politics", "mit_restaurant"):
        items = json.loads((shared_data / BENCHMARKS[name].folder / "test.uniner.json").read_text())
        asked = list(
            dict.fromkeys(
                re.match(r"What describes (.*) in the text\?", it["conversations"][2]["value"]).group(1) for it in items
            )
        )
        assert label_set_of(load_label_map(name)) == asked


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_gold_as_prediction_scores_100(shared_data, name):
    bench = load_benchmark(name, "test", shared_data)
    assert bench.dataset.features == ANNOTATED_FEATURES and bench.lang == BENCHMARKS[name].lang
    rows = bench.dataset.select(range(min(FIRST, len(bench.dataset)))).to_list()
    preds, golds, strict = [], [], Counts()
    for row in rows:
        assert {e["label"] for e in row["entities"]} <= set(bench.label_set)  # misc dropped, all mapped
        by_label = mentions_by_label(row["entities"])
        for label in bench.label_set:
            preds.append(list(by_label.get(label, [])))
            golds.append(by_label.get(label, []))
        strict = strict + strict_span_counts(row["entities"], row["entities"], labels=bench.label_set).total
    uniner = uniner_counts(preds, golds)
    assert uniner.n_gold > 0 and strict.n_gold > 0
    assert prf(uniner) == (100.0, 100.0, 100.0)
    assert prf(strict) == (100.0, 100.0, 100.0)
    assert len(preds) == len(rows) * len(bench.label_set)


def test_boson_gold_strings_map_back_to_gold_spans(shared_data):
    """Boson has no offsets: gold is every occurrence, so mention strings give strict 100 too."""
    bench = load_benchmark("boson", "test", shared_data)
    total = Counts()
    for row in bench.dataset.to_list():
        ents, unfound = answers_to_entities(row["text"], mentions_by_label(row["entities"]))
        total = total + strict_span_counts(ents, row["entities"], unfound=unfound).total
    assert prf(total) == (100.0, 100.0, 100.0)


def test_test_split_sampling_is_seeded_and_stable(shared_data):
    full = read_annotated(shared_data / "zh/msra/test.bio.txt", format="bio", lang="zh")
    first = load_benchmark("msra", "test", shared_data).dataset["id"]
    again = load_benchmark("msra", "test", shared_data).dataset["id"]
    random.seed(42)
    expected = [full[i]["id"] for i in random.sample(range(len(full)), 2000)]
    assert first == again == expected and len(first) == 2000
    random.seed(42)
    assert first[:3] == [full["id"][i] for i in random.sample(range(3442), 3)]
    # small test sets are kept whole and in file order
    assert load_benchmark("crossner_ai", "test", shared_data).dataset["id"][:2] == [
        "crossner_ai_test_0",
        "crossner_ai_test_1",
    ]


def test_derived_splits_are_disjoint_and_complete(shared_data):
    test = load_benchmark("cluener", "test", shared_data).dataset["id"]
    dev = load_benchmark("cluener", "validation", shared_data).dataset["id"]
    assert (len(test), len(dev)) == (671, 672) and not set(test) & set(dev)
    random.seed(42)
    assert test == [f"cluener_dev_{i}" for i in random.sample(range(1343), 671)]
    assert dev == sorted(dev, key=lambda i: int(i.rsplit("_", 1)[1]))
    held = load_benchmark("mit_movie", "test", shared_data).dataset["id"]
    rest = load_benchmark("mit_movie", "train", shared_data).dataset["id"]
    assert (len(held), len(rest)) == (2000, 7775) and not set(held) & set(rest)


def test_load_benchmark_from_a_file(tmp_path):
    bio = tmp_path / "mine.bio.txt"
    bio.write_text(
        "Alan\tB-person\nTuring\tI-person\nvisited\tO\nMIT\tB-organisation\nin\tO\nspring\tB-misc\n\nNothing\tO\n",
        encoding="utf-8",
    )
    plain = load_benchmark(bio)
    assert plain.label_set == ["person", "organisation"] and plain.name == "mine"
    assert [e["label"] for e in plain.dataset[0]["entities"]] == ["person", "organisation"]  # misc dropped
    mapped = load_benchmark(bio, label_map="crossner_ai")
    assert mapped.label_set[0] == "organization" and len(mapped.label_set) == 13
    assert [e["label"] for e in mapped.dataset[0]["entities"]] == ["person", "organization"]
    own = load_benchmark(str(bio), label_map={"person": "human", "organisation": None})
    assert own.label_set == ["human"] and [e["text"] for e in own.dataset[0]["entities"]] == ["Alan Turing"]
    only_misc = tmp_path / "misc.bio.txt"
    only_misc.write_text("spring\tB-misc\n", encoding="utf-8")
    with pytest.raises(InputError, match="empty label set"):
        load_benchmark(only_misc)


def test_bad_names_and_splits(tmp_path):
    with pytest.raises(ConfigError, match="unknown benchmark 'nope'"):
        load_benchmark("nope")
    with pytest.raises(ConfigError, match="has no 'validation' split"):
        load_benchmark("msra", "validation", tmp_path)
    with pytest.raises(InputError, match="benchmark file missing"):
        load_benchmark("msra", "test", tmp_path)
    with pytest.raises(ConfigError, match="no label map"):
        load_label_map("nope")


def test_built_folder_round_trips_through_load_dataset(shared_data, tmp_path):
    folder = build_benchmarks_folder(
        ["crossner_ai", "boson"], tmp_path / "bench", shared_data, repo_id="me/ner-benchmarks"
    )
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "benchmarks.json",
        "data/boson/test-00000-of-00001.parquet",
        "data/boson/train-00000-of-00001.parquet",
        "data/boson/validation-00000-of-00001.parquet",
        "data/crossner_ai/test-00000-of-00001.parquet",
        "data/crossner_ai/train-00000-of-00001.parquet",
        "data/crossner_ai/validation-00000-of-00001.parquet",
        "manifest.json",
    ]
    for name in ("crossner_ai", "boson"):
        direct = load_benchmark(name, "test", shared_data)
        loaded = datasets.load_dataset(str(folder), name, split="test", cache_dir=str(tmp_path / "cache"))
        assert loaded.to_list() == direct.dataset.to_list()
        again = load_benchmark(name, "test", folder=folder)
        assert again.label_set == direct.label_set and again.dataset.to_list() == direct.dataset.to_list()
    meta = read_benchmarks_meta(folder)
    assert meta["crossner_ai"]["splits"] == {"train": 100, "validation": 350, "test": 431}
    assert meta["crossner_ai"]["gold"] == "uniner" and meta["crossner_ai"]["gold_mentions"]["test"] == 1607
    # no config name: the first config is the default (issue 12)
    default = datasets.load_dataset(str(folder), split="test", cache_dir=str(tmp_path / "cache-default"))
    assert default.to_list() == load_benchmark("crossner_ai", "test", shared_data).dataset.to_list()
    assert meta["boson"]["in_domain_pool"] == "train" and meta["boson"]["redistributable"] is False
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["redistributable"] is False and manifest["license_note"].startswith("boson: BosonNLP")
    assert manifest["benchmarks"]["crossner_ai"]["license"] == "mit"
    assert all(v.startswith("sha256:") for v in manifest["inputs"].values())
    card = DatasetCard.load(folder / "README.md")
    assert [c["config_name"] for c in card.data.configs] == ["crossner_ai", "boson"]
    assert card.data.raitner["label_sets"]["boson"][0] == "产品名称"
    assert "forbids giving the data to third parties" in card.text
    assert "| `crossner_ai` (default) | en | train, validation, test | 881 | uniner | 1607 |" in card.text
    with pytest.raises(ConfigError, match="no 'dev' split"):
        load_benchmark("crossner_ai", "dev", folder=folder)


def test_cli_push_benchmarks(shared_data, tmp_path, hub_server):
    from raitner_hub.cli import app

    runner = CliRunner()
    out = tmp_path / "bench"
    repo_id = f"user/bench-{uuid.uuid4().hex[:8]}"
    args = [
        "push-benchmarks",
        "--data-root",
        str(shared_data),
        "-d",
        "yidu",
        "-d",
        "weibo",
        "--out",
        str(out),
        "--push",
        "--repo-id",
        repo_id,
    ]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "--private" in refused.output and hub_server.repo(repo_id, "dataset") is None
    pushed = runner.invoke(app, args + ["--private"])
    assert pushed.exit_code == 0, pushed.output
    assert pushed.output.splitlines()[0] == f"built {out.resolve()}: yidu 110, weibo 1620 passages"
    remote = hub_server.files(repo_id, "dataset")
    assert "data/weibo/test-00000-of-00001.parquet" in remote and "benchmarks.json" in remote
    bad = runner.invoke(app, ["push-benchmarks", "--data-root", str(shared_data), "-d", "nope", "--out", str(out)])
    assert bad.exit_code == 1 and "unknown benchmark(s) nope" in bad.output


# Gold per English test set (issue 13), counted two ways over questions (passage x type): distinct answer
# strings (the card's "gold mentions") and UniNER's n_gold (normalised, de-duplicated: metrics.uniner_counts).
# UniNER's test files are the default gold; the BIO-derived gold is the config <name>_bio.
ENGLISH_GOLD = {  # name: (questions, distinct strings, UniNER n_gold) for the uniner gold, then for the bio gold
    "crossner_ai": ((5603, 1607, 1603), (5603, 1611, 1607)),
    "crossner_literature": ((4576, 1980, 1980), (4576, 1982, 1982)),
    "crossner_music": ((5580, 3125, 3122), (5580, 3127, 3124)),
    "crossner_politics": ((5200, 3894, 3893), (5208, 3901, 3900)),
    "mit_restaurant": ((12160, 3149, 3149), (12168, 3150, 3150)),
}


def _questions_and_gold(bench):
    rows = [question_row(bench.name, p, label, "[]", []) for p in bench.dataset for label in bench.label_set]
    return (
        rows,
        sum(len(dict.fromkeys(r["gold"])) for r in rows),
        uniner_counts([[]] * len(rows), [r["gold"] for r in rows]).n_gold,
    )


@pytest.mark.parametrize("name", list(ENGLISH_GOLD))
def test_english_gold_counts_equal_uniner_files(shared_data, name):
    """The default gold is UniNER's file: same questions, same answers, the same counts as the file itself."""
    items = json.loads((shared_data / BENCHMARKS[name].folder / "test.uniner.json").read_text(encoding="utf-8"))
    answers = [json.loads(item["conversations"][3]["value"]) for item in items]
    from_file = (len(items), sum(len(set(a)) for a in answers), uniner_counts([[]] * len(answers), answers).n_gold)
    uniner, bio = load_benchmark(name, "test", shared_data), load_benchmark(f"{name}_bio", "test", shared_data)
    assert uniner.info["gold"] == "uniner" and bio.info["gold"] == "bio"
    for bench, expected in zip((uniner, bio), ENGLISH_GOLD[name]):
        rows, distinct, n_gold = _questions_and_gold(bench)
        assert (len(rows), distinct, n_gold) == expected
        assert gold_mentions(bench.dataset, bench.label_set) == distinct
    assert from_file == ENGLISH_GOLD[name][0]
    rows, _, _ = _questions_and_gold(uniner)
    assert sorted(map(json.dumps, (r["gold"] for r in rows))) == sorted(map(json.dumps, answers))


@pytest.mark.parametrize("name", ["crossner_ai", "crossner_ai_bio", "crossner_music", "crossner_music_bio"])
def test_gold_as_prediction_scores_100_on_both_gold_sources(shared_data, name):
    """Scored as evaluate scores it: every question, gold answers as outputs (UniNER metric) and gold spans as
    predicted spans (strict metric; mention strings map to every occurrence, which BIO gold need not be)."""
    bench = load_benchmark(name, "test", shared_data)
    rows = [
        question_row(name, p, label, json.dumps(gold_answers(p).get(label, [])), [])
        for p in bench.dataset
        for label in bench.label_set
    ]
    uniner = uniner_counts([r["output"] for r in rows], [r["gold"] for r in rows])
    strict = sum(
        (strict_span_counts(r["gold_entities"], r["gold_entities"], labels=[r["label"]]).total for r in rows), Counts()
    )
    if not name.endswith("_bio"):  # UniNER gold is every occurrence: the strings give the same spans
        assert all(sorted(map(str, r["entities"])) == sorted(map(str, r["gold_entities"])) for r in rows)
    assert uniner.n_gold == ENGLISH_GOLD[name.removesuffix("_bio")][name.endswith("_bio")][2]
    assert prf(uniner) == (100.0, 100.0, 100.0) and prf(strict) == (100.0, 100.0, 100.0)


@pytest.mark.parametrize("name", ["crossner_ai", "crossner_politics", "mit_restaurant"])
def test_gold_agrees_with_uniner_test_files(shared_data, name):
    """Our conversion + label map reproduce UniNER's own gold answers (differences: repeated texts only)."""
    import re

    ours: dict[str, dict[str, list[str]]] = {}
    for row in load_benchmark(name, "test", shared_data).dataset:
        ours.setdefault(row["text"], mentions_by_label(row["entities"]))
    items = json.loads((shared_data / BENCHMARKS[name].folder / "test.uniner.json").read_text(encoding="utf-8"))
    preds, golds = [], []
    for item in items:
        text = item["conversations"][0]["value"].removeprefix("Text: ")
        label = re.match(r"What describes (.*) in the text\?", item["conversations"][2]["value"]).group(1)
        preds.append(ours[text].get(label, []))
        golds.append(json.loads(item["conversations"][3]["value"]))
    precision, recall, f1 = prf(uniner_counts(preds, golds))
    assert recall == 100.0 and f1 >= 99.8, (precision, recall, f1)
