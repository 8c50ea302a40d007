"""Evaluation: three retrieval modes, report files whose numbers equal a direct metric call, model-index."""

from __future__ import annotations

import json

import datasets
import pytest

from raitner_hub import metrics
from raitner_hub.errors import ConfigError
from raitner_hub.evaluate import apply_model_index, eval_results, evaluate_model, scores_from_predictions
from raitner_hub.predict import NER
from raitner_hub.records import ANNOTATED_FEATURES
from tests.fixtures.benchmarks import LABELS, TEST_ROWS, TRAIN_ROWS, passage, write_benchmarks

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bench_folder(tmp_path_factory):
    return write_benchmarks(tmp_path_factory.mktemp("benchmarks"))


@pytest.fixture(scope="module")
def ner(tiny_model_dir):
    return NER.from_pretrained(tiny_model_dir, max_new_tokens=8)


def _oracle(queries_seen):
    """Answers: gold for person, a wrong + a right one for location, unparseable for organization."""
    gold = {(r["text"], e["label"]): [] for r in TEST_ROWS for e in r["entities"]}
    for r in TEST_ROWS:
        for e in r["entities"]:
            gold[(r["text"], e["label"])].append(e["text"])

    def answers(items):
        queries_seen.extend(items)
        out = []
        for q in items:
            mentions = gold.get((q.text, q.label), [])
            if q.label == "person":
                out.append(json.dumps([m.lower() for m in mentions]))  # UniNER-correct, strict-wrong (case)
            elif q.label == "location":
                out.append(json.dumps(mentions[:1] + ["Atlantis"]))
            else:
                out.append('["Google", 1]' if mentions else "[]")
        return out

    return answers


@pytest.fixture(scope="module")
def pool_folder(tmp_path_factory):
    from raitner_hub.retrieval import RetrievalIndex

    pool = datasets.Dataset.from_list(
        [
            passage(f"p{i}", text, ents)
            for i, (text, ents) in enumerate(
                [
                    ("Barack Obama visited Paris and Berlin .", [("Barack Obama", "person"), ("Paris", "place")]),
                    ("Google hired an engineer .", [("Google", "company")]),
                    ("Angela Merkel met the U.S. Army .", [("Angela Merkel", "person")]),
                ]
            )
        ],
        features=ANNOTATED_FEATURES,
    )
    folder = tmp_path_factory.mktemp("pool") / "index"
    RetrievalIndex.build(pool, lang="en", embedder="bm25", progress=False).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("mode", ["none", "out-domain", "in-domain"])
def test_report_numbers_equal_a_direct_metric_call(ner, bench_folder, pool_folder, tmp_path, monkeypatch, mode):
    seen = []
    monkeypatch.setattr(ner, "generate_answers", _oracle(seen))
    extra = {"pool": pool_folder, "strategy": "nn.v1"} if mode == "out-domain" else {}
    if mode == "in-domain":
        extra["embedder"] = "bm25"
    report = evaluate_model(ner, str(bench_folder), mode=mode, out=tmp_path / "report", seed=42, **extra)
    folder = tmp_path / "report"
    for name in ("results.json", "predictions.jsonl", "results.md", "results.png", "manifest.json"):
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name
    assert (folder / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((folder / "results.json").read_text())
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * len(TEST_ROWS) * len(LABELS) == len(seen)
    expected_order = [("t0", lab) for lab in LABELS] + [("t1", lab) for lab in LABELS]
    assert [(r["id"], r["label"]) for r in rows[:6]] == expected_order
    recomputed = scores_from_predictions(folder / "predictions.jsonl")
    for name in ("toy_a", "toy_b"):
        subset = [r for r in rows if r["dataset"] == name]
        direct = metrics.uniner_counts([r["output"] for r in subset], [r["gold"] for r in subset])
        assert (
            results["datasets"][name]["uniner_p"],
            results["datasets"][name]["uniner_r"],
            results["datasets"][name]["uniner_f1"],
        ) == metrics.prf(direct)
        assert results["datasets"][name]["unparsed"] == direct.unparsed == 2  # t1 and t2 organization
        assert recomputed[name].as_dict() == {
            k: v for k, v in results["datasets"][name].items() if k in recomputed[name].as_dict()
        }
    # hand count (one dataset): gold person 2, location 3, organization 2 = 7. Predicted: person 2 (right,
    # lowercased), location [first gold, "Atlantis"] per sentence = 2 right + 4 Atlantis, organization
    # unparsed twice -> UniNER P = 4/8, R = 4/7
    assert results["datasets"]["toy_a"]["uniner_p"] == 50.0 and results["datasets"]["toy_a"]["uniner_r"] == 57.14
    # strict: the lowercased persons and each Atlantis are found nowhere (false positives): 2 right of 8
    assert results["datasets"]["toy_a"]["strict_p"] == 25.0 and results["datasets"]["toy_a"]["strict_r"] == 28.57
    assert report.average.uniner_f1 == results["average"]["uniner_f1"]
    from raitner_hub.manifest import public_path

    # results.json is published: a local model folder appears relative to the cwd or by its name
    assert results["mode"] == mode and results["model"]["id"] == public_path(ner.model_id)
    demos = {d for r in rows for d in r["demos"]}
    if mode == "none":
        assert demos == set() and results["strategy"] is None
    elif mode == "out-domain":
        assert demos and demos <= {"p0", "p1", "p2"} and results["strategy"] == "nn.v1"
        assert all(len(q.demos) == 2 for q in seen)
    else:
        assert demos and demos <= {"tr0", "tr1", "tr2"} and results["strategy"] == "nn.v1"
        assert results["datasets"]["toy_a"]["pool"]["pool_size"] == len(TRAIN_ROWS)
    # all type questions of one sentence share its demonstrations
    by_sentence = {}
    for q in seen:
        by_sentence.setdefault(q.text, set()).add(q.demos)
    assert all(len(v) == 1 for v in by_sentence.values())
    assert "| **average** |" in (folder / "results.md").read_text()


def test_real_model_run_counts_unparsed(ner, bench_folder, tmp_path):
    report = evaluate_model(ner, str(bench_folder), datasets=["toy_b"], limit=2, out=tmp_path / "r")
    rows = [json.loads(line) for line in (tmp_path / "r" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * len(LABELS)
    assert report.results["unparsed"] == sum(r["parsed"] is None for r in rows)
    recomputed = scores_from_predictions(tmp_path / "r" / "predictions.jsonl")["toy_b"]
    assert recomputed.uniner_f1 == report.scores[0].uniner_f1


def test_gold_as_prediction_scores_100(ner, bench_folder, tmp_path, monkeypatch):
    gold = {(r["text"], e["label"]): [] for r in TEST_ROWS for e in r["entities"]}
    for r in TEST_ROWS:
        for e in r["entities"]:
            gold[(r["text"], e["label"])].append(e["text"])
    monkeypatch.setattr(
        ner, "generate_answers", lambda items: [json.dumps(gold.get((q.text, q.label), [])) for q in items]
    )
    report = evaluate_model(ner, str(bench_folder), datasets=["toy_a"], out=tmp_path / "g")
    assert (report.average.uniner_f1, report.average.strict_f1) == (100.0, 100.0)


def test_benchmark_file_path_with_labels(ner, tmp_path, monkeypatch):
    file = tmp_path / "mini.bio.txt"
    file.write_text("Obama\tB-person\nvisited\tO\nParis\tB-location\n\nRome\tB-location\n")
    monkeypatch.setattr(
        ner,
        "generate_answers",
        lambda items: ['["Paris", "Rome"]' if q.label == "location" else '["Obama"]' for q in items],
    )
    report = evaluate_model(ner, files=[str(file)], labels=["location", "person"], out=tmp_path / "f")
    assert report.results["datasets"]["mini"]["label_set"] == ["location", "person"]
    assert report.scores[0].uniner_r == 100.0 and report.scores[0].uniner_p == 50.0  # 3 right of 6 predicted


def test_file_labels_are_stripped(ner, tmp_path, monkeypatch):
    # `--labels "location, person"` splits to " person": it must still match the gold label.
    file = tmp_path / "mini.bio.txt"
    file.write_text("Obama\tB-person\nvisited\tO\nParis\tB-location\n")
    monkeypatch.setattr(
        ner, "generate_answers", lambda items: ['["Obama"]' if q.label == "person" else "[]" for q in items]
    )
    report = evaluate_model(ner, files=[str(file)], labels=["location", " person", ""], out=tmp_path / "f")
    assert report.results["datasets"]["mini"]["label_set"] == ["location", "person"]
    assert report.scores[0].uniner_p == 100.0 and report.scores[0].uniner_r == 50.0
    with pytest.raises(ConfigError, match="--labels names no entity type"):
        evaluate_model(ner, files=[str(file)], labels=[" ", ""], out=tmp_path / "g")


def test_bad_input_is_a_clear_error(ner, bench_folder, tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset.*nope.*toy_a, toy_b"):
        evaluate_model(ner, str(bench_folder), datasets=["nope"], out=tmp_path / "x")
    with pytest.raises(ConfigError, match="unknown mode"):
        evaluate_model(ner, str(bench_folder), mode="both", out=tmp_path / "x")
    with pytest.raises(ConfigError, match="needs --pool"):
        evaluate_model(ner, str(bench_folder), mode="out-domain", out=tmp_path / "x")
    with pytest.raises(ConfigError, match="nothing to evaluate"):
        evaluate_model(ner, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_model_index_round_trips_and_keeps_the_card(ner, bench_folder, tmp_path, monkeypatch):
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    monkeypatch.setattr(ner, "generate_answers", _oracle([]))
    report = evaluate_model(ner, str(bench_folder), out=tmp_path / "m")
    card = ModelCard("---\nlicense: apache-2.0\nbase_model: user/tinybase\ntags:\n- ner\n---\n# My adapter\n\nBody.\n")
    apply_model_index(card, report.results, "tiny-ra-it")
    apply_model_index(card, report.results, "tiny-ra-it")  # idempotent: replaced, not duplicated
    parsed = ModelCard(str(card))
    assert parsed.data.license == "apache-2.0" and parsed.data.base_model == "user/tinybase"
    assert "# My adapter" in str(parsed) and "Body." in str(parsed)
    name, results = model_index_to_eval_results(parsed.data.to_dict()["model-index"])
    assert name == "tiny-ra-it" and len(results) == 2 * 4
    f1 = {(r.dataset_config, r.metric_name): r.metric_value for r in results}
    assert f1[("toy_a", "UniNER micro-F1")] == report.results["datasets"]["toy_a"]["uniner_f1"]
    assert all(r.task_type == "token-classification" and r.dataset_split == "test" for r in results)
    # parsed back exactly: what apply_model_index wrote is what the Hub's parser reads
    assert [r.to_dict() if hasattr(r, "to_dict") else vars(r) for r in results] == [
        vars(r) for r in eval_results(report.results)
    ]


def test_model_index_names_what_was_scored(ner, bench_folder, tmp_path, monkeypatch):
    """Two metrics never share a type; readable dataset names; the benchmark repo id, config and split."""
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    monkeypatch.setattr(ner, "generate_answers", _oracle([]))
    report = evaluate_model(ner, str(bench_folder), datasets=["toy_a"], limit=2, out=tmp_path / "m")
    report.results["benchmarks"]["source"] = "me/ner-benchmarks"  # as when read from the Hub
    report.results["datasets"]["crossner_ai"] = {**report.results["datasets"]["toy_a"], "sentences": 4}
    card = ModelCard("---\nlicense: apache-2.0\n---\n")
    apply_model_index(card, report.results, "tiny-ra-it")
    _, results = model_index_to_eval_results(ModelCard(str(card)).data.to_dict()["model-index"])
    by_config = {}
    for r in results:
        by_config.setdefault(r.dataset_config, []).append(r)
    assert {r.dataset_name for r in by_config["crossner_ai"]} == {"CrossNER AI"}
    assert {r.dataset_name for r in by_config["toy_a"]} == {"Toy A"}
    assert {r.dataset_type for r in results} == {"me/ner-benchmarks"}
    # --limit 2 of a 4-sentence test split: published as test[:2], never as the whole test split
    assert {r.dataset_split for r in by_config["toy_a"]} == {"test[:2]"}
    assert {r.dataset_split for r in by_config["crossner_ai"]} == {"test"}  # the limit did not cut it
    types = [(r.metric_type, r.metric_name) for r in by_config["toy_a"]]
    assert len({t for t, _ in types}) == len(types)  # one type per metric
    assert dict(types)["f1"] == "UniNER micro-F1" and dict(types)["span_f1"] == "Strict span micro-F1"


# ---- CLI ----


def test_cli_predict_and_evaluate(tiny_model_dir, bench_folder, tmp_path):
    from typer.testing import CliRunner

    from raitner_hub.cli import app

    runner = CliRunner()
    text = "Barack Obama visited Paris ."
    result = runner.invoke(
        app,
        [
            "predict",
            str(tiny_model_dir),
            "--text",
            text,
            "--labels",
            "person,location",
            "--max-new-tokens",
            "4",
            "--backend",
            "hf",
        ],
    )
    assert result.exit_code == 0, result.output
    entities = json.loads(result.stdout.strip().splitlines()[-1])  # stderr may hold a weight-loading bar
    assert isinstance(entities, list) and all(text[e["start"] : e["end"]] == e["text"] for e in entities)
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(tiny_model_dir),
            "--benchmarks",
            str(bench_folder),
            "--dataset",
            "toy_a",
            "--limit",
            "1",
            "--max-new-tokens",
            "4",
            "--out",
            str(tmp_path / "cli"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("none: UniNER F1 ") and summary.endswith(str(tmp_path / "cli"))
    assert (tmp_path / "cli" / "results.json").is_file()
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(tiny_model_dir),
            "--benchmarks",
            str(bench_folder),
            "--dataset",
            "nope",
            "--out",
            str(tmp_path / "bad"),
        ],
    )
    assert result.exit_code == 1 and "error: unknown dataset(s) nope" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["predict", str(tiny_model_dir), "--text", "x", "--labels", ","])
    assert result.exit_code == 1 and "label set is empty" in result.output


# ---- end to end on the loopback Hub ----


def test_trained_adapter_from_the_hub_three_modes_and_model_index(
    hub_server, tiny_model_dir, bench_folder, pool_folder, tmp_path
):
    """tiny trained adapter -> `raitner evaluate` (3 modes, 2 benchmarks, from the Hub) -> model-index."""
    import uuid

    from huggingface_hub import HfApi, ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results
    from typer.testing import CliRunner

    from raitner_hub import hub
    from raitner_hub.cli import app
    from raitner_hub.retrieval import RetrievalIndex
    from raitner_hub.train import write_config
    from tests.fixtures.training_data import make_it_folder, tiny_config

    suffix = uuid.uuid4().hex[:8]
    base_repo, adapter_repo = f"user/tinybase-{suffix}", f"user/tiny-lora-{suffix}"
    bench_repo, pool_repo = f"user/bench-{suffix}", f"user/pool-{suffix}"
    api = HfApi()
    api.create_repo(base_repo)
    api.upload_folder(folder_path=str(tiny_model_dir), repo_id=base_repo)
    config = tiny_config(
        tiny_model_dir,
        make_it_folder(tmp_path / "it"),
        tmp_path / "adapter",
        base_model_repo_id=base_repo,
        sft={"max_steps": 2, "eval_steps": 2, "save_steps": 2},
    )
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["train", "--config", str(write_config(config, tmp_path / "cfg.yaml")), "--push", "--repo-id", adapter_repo],
    )
    assert result.exit_code == 0, result.output
    card_before = hub_server.files(adapter_repo)["README.md"].decode()
    hub.push_folder(bench_folder, bench_repo, repo_type="dataset")
    RetrievalIndex.from_pretrained(pool_folder).push_to_hub(pool_repo)

    common = [
        "--benchmarks",
        bench_repo,
        "--dataset",
        "toy_a",
        "--dataset",
        "toy_b",
        "--limit",
        "2",
        "--max-new-tokens",
        "6",
        "--backend",
        "hf",
        "--push",
    ]
    for mode, extra in (("none", []), ("out-domain", ["--pool", pool_repo]), ("in-domain", ["--embedder", "bm25"])):
        result = runner.invoke(
            app, ["evaluate", adapter_repo, "--mode", mode, "--out", str(tmp_path / f"eval-{mode}"), *extra, *common]
        )
        assert result.exit_code == 0, result.output
        assert "and model-index" in result.output.strip().splitlines()[-1]

    files = hub_server.files(adapter_repo)
    for mode in ("none", "out-domain", "in-domain"):
        pushed = json.loads(files[f"eval_results/eval-{mode}/results.json"])
        local = json.loads((tmp_path / f"eval-{mode}" / "results.json").read_text())
        assert pushed["datasets"] == local["datasets"] and pushed["mode"] == mode
        assert pushed["model"]["id"] == adapter_repo and len(pushed["benchmarks"]["revision"]) == 40
        (tmp_path / f"p-{mode}.jsonl").write_bytes(files[f"eval_results/eval-{mode}/predictions.jsonl"])
        recomputed = scores_from_predictions(tmp_path / f"p-{mode}.jsonl")
        assert {n: s.uniner_f1 for n, s in recomputed.items()} == {
            n: d["uniner_f1"] for n, d in pushed["datasets"].items()
        }
        assert {n: s.strict_f1 for n, s in recomputed.items()} == {
            n: d["strict_f1"] for n, d in pushed["datasets"].items()
        }
    card = ModelCard(files["README.md"].decode())
    name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert name == adapter_repo.split("/")[-1]
    assert len(results) == 3 * 2 * 4  # modes x datasets x metrics
    assert {r.dataset_type for r in results} == {bench_repo} and all(r.source_url for r in results)
    assert card.data.base_model == base_repo  # the rest of the card is kept
    assert card.text.strip() == ModelCard(card_before).text.strip()


def test_default_generation_limit_is_ra_its_1024(ner, bench_folder, tmp_path, monkeypatch):
    # paper.md §6.2: RA-IT evaluates with max_tokens 1,024 (a longer answer would be cut and scored as unparsed).
    from raitner_hub.predict import NER

    seen = {}

    def fake_from_pretrained(model, revision=None, **options):
        seen.update(options)
        return ner

    monkeypatch.setattr(NER, "from_pretrained", staticmethod(fake_from_pretrained))
    monkeypatch.setattr(ner, "generate_answers", lambda items: ["[]" for _ in items])
    evaluate_model("some/model", str(bench_folder), datasets=["toy_a"], out=tmp_path / "d")
    assert seen["max_new_tokens"] == 1024
    evaluate_model("some/model", str(bench_folder), datasets=["toy_a"], out=tmp_path / "e", max_new_tokens=7)
    assert seen["max_new_tokens"] == 7


def test_evaluate_in_three_parts_equals_evaluate_model(ner, bench_folder, tmp_path, monkeypatch):
    """load_inputs -> run -> write_report is evaluate_model; an EvaluateConfig and keyword settings agree."""
    from raitner_hub.config import EvaluateConfig
    from raitner_hub.evaluate import load_inputs, run, write_report

    monkeypatch.setattr(ner, "generate_answers", _oracle([]))
    config = EvaluateConfig(
        model="unused", benchmarks=str(bench_folder), datasets=("toy_a",), limit=3, out=str(tmp_path / "parts")
    )
    lang_before = ner.lang
    inputs = load_inputs(config, ner)
    assert [bench.name for bench, _ in inputs.loaded] == ["toy_a"] and inputs.pool_index is None
    scored = run(inputs, config)
    assert len(scored.rows) == 3 * len(LABELS) and list(scored.per_dataset) == ["toy_a"]
    parts = write_report(scored, inputs, config, started=0.0)
    whole = evaluate_model(ner, str(bench_folder), datasets=["toy_a"], limit=3, out=tmp_path / "whole")
    from_config = evaluate_model(ner, config=config, out=tmp_path / "cfg")
    for report in (whole, from_config):
        assert report.results["datasets"] == parts.results["datasets"]
        assert report.results["average"] == parts.results["average"]
    assert (tmp_path / "parts" / "predictions.jsonl").read_text() == (
        tmp_path / "whole" / "predictions.jsonl"
    ).read_text()
    assert ner.lang == lang_before  # the benchmark's language was set for the run only


@pytest.mark.parametrize(
    "rel", ["en/crossner_ai/test.uniner.json", "zh/sky_ner_sample/sky_10_samples.it_conversation.json"]
)
def test_file_of_conversations_scores_every_question(ner, shared_data, tmp_path, monkeypatch, rel):
    """evaluate --file on a UniNER file asks what the file asks, repeated sentences included (as UniNER):
    questions = the file's question turns; gold answers as outputs score 100."""
    items = json.loads((shared_data / rel).read_text(encoding="utf-8"))
    turns = [
        (item["conversations"][0]["value"].split(" ", 1)[1], q["value"], json.loads(a["value"]))
        for item in items
        for q, a in zip(item["conversations"][2::2], item["conversations"][3::2])
    ]
    from raitner_hub.formats import read_annotated
    from raitner_hub.readers import gold_answers

    gold = {}
    for row in read_annotated(shared_data / rel):
        for label, answer in gold_answers(row).items():
            gold[(row["text"], label)] = answer
    monkeypatch.setattr(ner, "generate_answers", lambda items: [json.dumps(gold[(q.text, q.label)]) for q in items])
    report = evaluate_model(ner, files=[str(shared_data / rel)], out=tmp_path / "u")
    rows = [json.loads(line) for line in (tmp_path / "u" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == len(turns) == report.scores[0].n
    assert sorted(json.dumps(r["gold"], ensure_ascii=False) for r in rows) == sorted(
        json.dumps(a, ensure_ascii=False) for _, _, a in turns
    )
    assert report.scores[0].uniner_f1 == 100.0
