"""GLiNER checkpoints under `raitner evaluate --backend gliner`: a real (tiny, random, local) GLiNER model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gliner", reason="the gliner extra is not installed (pip install --no-deps gliner==0.2.29)")

from raitner_hub import metrics  # noqa: E402
from raitner_hub.errors import ConfigError  # noqa: E402
from raitner_hub.evaluate import apply_model_index, evaluate_model, scores_from_predictions  # noqa: E402
from raitner_hub.predict import NER, Query  # noqa: E402
from tests.fixtures.benchmarks import LABELS, TEST_ROWS  # noqa: E402
from tests.fixtures.benchmarks import write_benchmarks as _write_benchmarks  # noqa: E402
from tests.fixtures.tiny_gliner import build_tiny_gliner  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def gliner_dir(tmp_path_factory) -> Path:
    return build_tiny_gliner(tmp_path_factory.mktemp("tiny-gliner"))


@pytest.fixture(scope="module")
def bench_folder(tmp_path_factory):
    return _write_benchmarks(tmp_path_factory.mktemp("benchmarks"), names=("toy_a",))


def test_report_equals_gliner_predict_entities_scored_directly(gliner_dir, bench_folder, tmp_path):
    from gliner import GLiNER

    report = evaluate_model(str(gliner_dir), str(bench_folder), backend="gliner", out=tmp_path / "g")
    # Independently: GLiNER's own predict_entities per sentence (all labels at once, its defaults).
    model = GLiNER.from_pretrained(str(gliner_dir))
    uniner, strict, n_found = metrics.Counts(), metrics.Counts(), 0
    for row in TEST_ROWS:
        found = model.predict_entities(row["text"], LABELS, threshold=0.5, flat_ner=True, multi_label=False)
        n_found += len(found)
        for label in LABELS:
            mentions = list(dict.fromkeys(e["text"] for e in found if e["label"] == label))
            golds = [e["text"] for e in row["entities"] if e["label"] == label]
            uniner = uniner + metrics.uniner_counts([mentions], [list(dict.fromkeys(golds))])
        strict = strict + metrics.strict_span_counts(found, row["entities"], labels=LABELS).total
    assert n_found > 0  # the random model does tag something at 0.5 (else this test proves little)
    toy = report.results["datasets"]["toy_a"]
    assert toy["counts"] == {"uniner": vars(uniner), "strict": vars(strict)}
    assert (toy["uniner_f1"], toy["strict_f1"]) == (metrics.prf(uniner)[2], metrics.prf(strict)[2])
    assert report.results["model"]["backend"] == "gliner" and report.results["templates"] == ["gliner-native"]
    recomputed = scores_from_predictions(report.folder / "predictions.jsonl")["toy_a"]
    assert (recomputed.uniner_f1, recomputed.strict_f1) == (toy["uniner_f1"], toy["strict_f1"])
    table = (report.folder / "results.md").read_text()
    assert "UniNER F1" in table and "strict F1" in table and (report.folder / "manifest.json").is_file()

    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    card = ModelCard("---\nlicense: apache-2.0\n---\n# GLiNER tiny\n")
    apply_model_index(card, report.results, "gliner-tiny")
    name, results = model_index_to_eval_results(ModelCard(str(card)).data.to_dict()["model-index"])
    assert name == "gliner-tiny" and {r.metric_name for r in results} == {
        "UniNER micro-F1",
        "UniNER micro-precision",
        "UniNER micro-recall",
        "Strict span micro-F1",
    }
    assert {r.metric_value for r in results if r.metric_name == "Strict span micro-F1"} == {toy["strict_f1"]}


def test_answers_are_mention_lists_and_strict_scores_gliners_own_spans(gliner_dir, monkeypatch, tmp_path):
    predictor = NER.from_pretrained(str(gliner_dir), backend="gliner")
    text = "Paris and Paris ."
    calls = []

    def inference(texts, labels, **kw):  # GLiNER tags one of the two occurrences, once per sentence
        calls.append((list(texts), list(labels)))
        return [[{"start": 10, "end": 15, "text": "Paris", "label": "location", "score": 0.8}] for _ in texts]

    monkeypatch.setattr(predictor.model, "inference", inference)
    answers = predictor.generate_answers([Query(text, "person"), Query(text, "location")])
    assert answers == ["[]", '["Paris"]'] and calls == [([text], ["person", "location"])]
    file = tmp_path / "paris.bio.txt"
    file.write_text("Paris\tB-location\nand\tO\nParis\tB-location\n.\tO\n")
    report = evaluate_model(predictor, files=[str(file)], labels=["location"], out=tmp_path / "r")
    # UniNER: one string, right. Strict: GLiNER's one span (not both occurrences of the string).
    assert report.results["datasets"]["paris"]["counts"]["strict"] == {
        "n_pred": 1,
        "n_gold": 2,
        "n_correct": 1,
        "unparsed": 0,
    }
    assert report.scores[0].uniner_f1 == 100.0


def test_demonstrations_and_non_gliner_folders_are_clear_errors(gliner_dir, tiny_model_dir, bench_folder, tmp_path):
    with pytest.raises(ConfigError, match="takes no demonstrations"):
        evaluate_model(
            str(gliner_dir), str(bench_folder), backend="gliner", mode="in-domain", embedder="bm25", out=tmp_path / "x"
        )
    with pytest.raises(ConfigError, match="not a GLiNER checkpoint"):
        NER.from_pretrained(str(tiny_model_dir), backend="gliner")
    assert not (tmp_path / "x").exists()


def test_cli_evaluate_gliner_in_a_fresh_process(gliner_dir, bench_folder, tmp_path):
    raitner = Path(sys.executable).with_name("raitner")
    out = tmp_path / "cli"
    proc = subprocess.run(
        [
            str(raitner),
            "evaluate",
            str(gliner_dir),
            "--backend",
            "gliner",
            "--benchmarks",
            str(bench_folder),
            "--dataset",
            "toy_a",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    results = json.loads((out / "results.json").read_text())
    assert summary.startswith(
        f"none: UniNER F1 {results['average']['uniner_f1']:.2f}, strict F1 {results['average']['strict_f1']:.2f}"
    )
    assert results["model"]["backend"] == "gliner" and results["datasets"]["toy_a"]["n"] == len(TEST_ROWS) * 3
    text = TEST_ROWS[0]["text"]
    proc = subprocess.run(
        [
            str(raitner),
            "predict",
            str(gliner_dir),
            "--backend",
            "gliner",
            "--text",
            text,
            "--labels",
            "person,location",
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    entities = json.loads(proc.stdout.strip().splitlines()[-1])
    assert entities and all(text[e["start"] : e["end"]] == e["text"] and 0.5 < e["score"] <= 1 for e in entities)
