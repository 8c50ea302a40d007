"""The fresh-process tier: every ``raitner`` command, run the way a user runs it, on a real small job.

Each command runs through the installed console script in a new process (``tests/fixtures/console.py``),
against the loopback Hub and a tiny model, and its outputs are checked: files, card YAML, printed JSON and
what the Hub repo holds afterwards, read back with the Hub's own clients (``datasets.load_dataset``,
``peft.AutoPeftModelForCausalLM``, ``huggingface_hub``). Expensive artefacts (one build, one index, one
trained adapter, one benchmarks repo) are module fixtures shared by the tests that inspect them.

The base model is the "parrot" (``tests/fixtures/parrot_model.py``): a tiny Qwen2 that answers every
question with ``["Paris"]``, pushed to the loopback Hub under the id ``examples/train_tiny.yaml`` names, so
predictions, scores and the Space's answer are known in advance.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import datasets
import pytest
import yaml
from huggingface_hub import DatasetCard, HfApi, ModelCard

from tests.fixtures.console import REPO_ROOT, free_port, raitner, stop, wait_for_http, write_benchmark_root
from tests.fixtures.parrot_model import build_parrot_model

BASE_ID = "trl-internal-testing/tiny-Qwen2ForCausalLM-2.5"  # the base model of examples/train_tiny.yaml
EN_SAMPLE = REPO_ROOT / "examples" / "data" / "pile_ner_sample.en.jsonl"
TRAIN_TINY = REPO_ROOT / "examples" / "train_tiny.yaml"
NS = "console"  # namespace of every repo this module pushes
TEXT = "Barack Obama visited Paris."


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("console")


@pytest.fixture(scope="module")
def parrot_base(hub_server, tiny_model_dir, work) -> str:
    """The parrot model, pushed to the loopback Hub as the tiny base model of ``train_tiny.yaml``."""
    from raitner_hub import hub

    hub.push_folder(build_parrot_model(tiny_model_dir, work / "parrot"), BASE_ID, repo_type="model")
    return BASE_ID


@pytest.fixture(scope="module")
def built(hub_server, work):
    """``raitner build-data --push``: 40 English passages, BM25 retrieval, vanilla + ra-nn-k2."""
    out, repo = work / "pile-it", f"{NS}/pile-it"
    proc = raitner(
        "build-data",
        str(EN_SAMPLE),
        "--embedder",
        "bm25",
        "--strategy",
        "nn.v1",
        "--sample",
        "40",
        "--license",
        "cc-by-nc-4.0",
        "--out",
        str(out),
        "--push",
        "--repo-id",
        repo,
    )
    return out, repo, proc


@pytest.fixture(scope="module")
def index_repo(hub_server, work):
    """``raitner index --push`` over the whole English sample (BM25)."""
    out, repo = work / "pile-index", f"{NS}/pile-index"
    proc = raitner(
        "index", str(EN_SAMPLE), "--embedder", "bm25", "--out", str(out), "--push", "--repo-id", repo, "--quiet"
    )
    return out, repo, proc


@pytest.fixture(scope="module")
def adapter(parrot_base, built, work):
    """``raitner train --push`` with the shipped tiny config on the build above."""
    out, repo = work / "tiny-adapter", f"{NS}/tiny-ra-it-lora"
    proc = raitner(
        "train",
        "--config",
        str(TRAIN_TINY),
        "--dataset",
        str(built[0]),
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--push",
        "--repo-id",
        repo,
        cwd=work,
    )
    return out, repo, proc


@pytest.fixture(scope="module")
def benchmarks_repo(hub_server, work):
    """``raitner push-benchmarks --push`` from a data root holding a 6-sentence CrossNER AI."""
    root = write_benchmark_root(work / "bench-data")
    out, repo = work / "benchmarks", f"{NS}/ner-benchmarks"
    proc = raitner(
        "push-benchmarks",
        "--data-root",
        str(root),
        "--dataset",
        "crossner_ai",
        "--out",
        str(out),
        "--push",
        "--repo-id",
        repo,
    )
    return out, repo, proc


def _rows(folder: Path, config: str) -> dict[str, int]:
    return {split: len(ds) for split, ds in datasets.load_dataset(str(folder), config).items()}


# ---- data commands ----


def test_build_data_push_loads_from_the_hub_with_the_built_rows(built, tmp_path):
    out, repo, proc = built
    assert f"built {out}" in proc.stdout and "pushed" in proc.stdout and repo in proc.stdout
    card = DatasetCard.load(out / "README.md")
    assert {c["config_name"] for c in card.data.configs} == {"vanilla", "ra-nn-k2"}
    assert card.data.license == "cc-by-nc-4.0"
    for config in ("vanilla", "ra-nn-k2"):
        local = _rows(out, config)
        assert sum(local.values()) == 40
        remote = datasets.load_dataset(repo, config, cache_dir=str(tmp_path / config))
        assert {split: len(ds) for split, ds in remote.items()} == local
    first = datasets.load_dataset(repo, "ra-nn-k2", split="train", cache_dir=str(tmp_path / "rows"))[0]
    assert first["strategy"] == "nn.v1" and len(first["demos"]) == 2
    assert first["messages"][0]["role"] == "user" and first["messages"][1]["role"] == "assistant"
    remote_card = DatasetCard.load(repo, repo_type="dataset")
    assert {c["config_name"] for c in remote_card.data.configs} == {"vanilla", "ra-nn-k2"}


def test_export_writes_uniner_conversations(built, tmp_path):
    out = tmp_path / "pile-it.train.json"
    proc = raitner(
        "export", str(built[0]), "--config", "ra-nn-k2", "--split", "train", "--format", "uniner", "--out", str(out)
    )
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert len(rows) == _rows(built[0], "ra-nn-k2")["train"]
    assert f"wrote {len(rows)} conversations" in proc.stdout
    turns = rows[0]["conversations"]
    assert [t["from"] for t in turns[:2]] == ["human", "gpt"] and all(t["value"] for t in turns)


def test_annotate_with_a_teacher_endpoint(fake_teacher, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    docs = ["Barack Obama visited Paris in spring.", "Nothing to see here at all.", "Paris hosted Google staff."]
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs)), encoding="utf-8"
    )
    fake_teacher.default = lambda passage, model: json.dumps([{"Paris": "location"}] if "Paris" in passage else [])
    out = tmp_path / "annotated"
    proc = raitner(
        "annotate",
        str(corpus),
        "--lang",
        "en",
        "--teacher-model",
        "fake-model",
        "--base-url",
        fake_teacher.base_url,
        "--no-api-key",
        "--no-chunk",
        "--cache",
        str(tmp_path / "cache.sqlite"),
        "--out",
        str(out),
        "--quiet",
    )
    assert "annotated 3 passages (2 entities" in proc.stdout
    from raitner_hub.formats import read_annotated

    rows = {row["id"]: row for row in read_annotated(str(out))}
    assert len(rows) == 3
    for row in rows.values():
        for entity in row["entities"]:
            assert row["text"][entity["start"] : entity["end"]] == entity["text"] == "Paris"
            assert entity["label"] == "location"
    assert sorted(len(r["entities"]) for r in rows.values()) == [0, 1, 1]
    assert fake_teacher.total_answered == 3


def test_index_push_round_trips(index_repo):
    out, repo, proc = index_repo
    assert proc.stdout.startswith("indexed 300 passages") and repo in proc.stdout
    from raitner_hub.retrieval import RetrievalIndex

    local, remote = RetrievalIndex.from_pretrained(str(out)), RetrievalIndex.from_pretrained(repo)
    assert len(remote) == len(local) == 300
    queries = ["Apple opened a store in Paris.", "The senator spoke in Washington."]
    assert [list(map(remote.ids.__getitem__, row)) for row in remote.search(queries, 3)[0]] == [
        list(map(local.ids.__getitem__, row)) for row in local.search(queries, 3)[0]
    ]


def test_push_benchmarks_loads_with_every_split(benchmarks_repo, tmp_path):
    out, repo, proc = benchmarks_repo
    assert "crossner_ai 6" in proc.stdout and "pushed" in proc.stdout
    loaded = datasets.load_dataset(repo, "crossner_ai", cache_dir=str(tmp_path / "bench"))
    assert sorted(len(ds) for ds in loaded.values()) == [1, 2, 3]  # dev/validation, test, train
    test = loaded["test"]
    assert len(test) == 2 and test[0]["text"].startswith("Barack Obama visited Paris")
    meta = json.loads((out / "benchmarks.json").read_text())
    assert "location" in meta["crossner_ai"]["label_set"] and "misc" not in meta["crossner_ai"]["label_set"]


# ---- training ----


def test_train_in_a_fresh_process_pushes_a_loadable_adapter(adapter, parrot_base):
    # The original crash: a fresh interpreter running the console script resolved raitner_hub.train to a
    # function (AttributeError ... load_train_config). Here the console script trains and pushes end to end.
    out, repo, proc = adapter
    assert "AttributeError" not in proc.stderr
    assert f"adapter written to {out}" in proc.stdout and repo in proc.stdout
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == parrot_base
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["steps"] == 2 and manifest["inputs"]["dataset_config"] == "ra-nn-k2"
    files = set(HfApi().list_repo_files(repo))
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "manifest.json"} <= files
    assert "training_args.bin" not in files
    card = ModelCard.load(repo)
    assert card.data.base_model == parrot_base and card.data.library_name == "peft"
    from peft import AutoPeftModelForCausalLM

    model = AutoPeftModelForCausalLM.from_pretrained(repo)
    assert model.peft_config["default"].base_model_name_or_path == parrot_base
    assert model.peft_config["default"].r == 8


def test_train_with_two_processes_through_accelerate(parrot_base, built, work):
    out = work / "adapter-2proc"
    proc = raitner(
        "train",
        "--config",
        str(TRAIN_TINY),
        "--dataset",
        str(built[0]),
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--num-processes",
        "2",
        cwd=work,
    )
    assert f"adapter written to {out}" in proc.stdout
    assert (out / "adapter_model.safetensors").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    # Two processes each take a batch of 4 per step: 2 steps see 16 rows (8 with one process).
    final = json.loads(
        next(line for line in reversed(proc.stdout.splitlines()) if "train_runtime" in line).replace("'", '"')
    )
    assert float(final["epoch"]) == pytest.approx(2 * 4 * 2 / manifest["counts"]["train_rows"], abs=0.05)
    assert manifest["counts"]["steps"] == 2


# ---- prediction, evaluation ----


def test_predict_prints_entities_whose_text_is_the_passage_slice(adapter):
    proc = raitner("predict", str(adapter[0]), "--text", TEXT, "--labels", "person,location", "--max-new-tokens", "12")
    entities = json.loads(proc.stdout)
    assert entities and all({"start", "end", "text", "label"} <= set(e) for e in entities)
    assert all(TEXT[e["start"] : e["end"]] == e["text"] for e in entities)
    assert {(e["text"], e["label"]) for e in entities} == {("Paris", "person"), ("Paris", "location")}


def _report(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def _numbers(report: dict) -> list[float]:
    """Every F1 number in a results.json, wherever the report keeps it."""
    found = []

    def walk(value, key=""):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and "f1" in key.lower():
            found.append(float(value))

    walk(report)
    return found


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def test_evaluate_in_all_three_modes_and_push(adapter, benchmarks_repo, index_repo, work):
    out, repo, _ = adapter
    common = ["--benchmarks", benchmarks_repo[1], "--dataset", "crossner_ai", "--max-new-tokens", "12"]
    runs = {
        "none": [],
        # nn.v1: the default bm25_filter.v1 (rightly) finds no pool passage close enough to these sentences
        "out-domain": ["--pool", index_repo[1], "--strategy", "nn.v1"],
        "in-domain": ["--embedder", "bm25"],
    }
    for mode, extra in runs.items():
        folder = work / f"eval-{mode}"
        proc = raitner(
            "evaluate",
            repo,
            *common,
            "--mode",
            mode,
            *extra,
            "--out",
            str(folder),
            *(["--push"] if mode == "none" else []),
        )
        assert proc.stdout.startswith(f"{mode}: UniNER F1") and str(folder) in proc.stdout
        report = _report(folder)
        # The parrot answers ["Paris"] to all 13 CrossNER AI questions of both test sentences: 2 right,
        # 24 wrong types, 2 gold entities missed -> P 2/26, R 2/4, F1 2/15, in either metric.
        scores = _numbers(report)
        assert scores and all(
            s == pytest.approx(2 / 15, abs=1e-3) or s == pytest.approx(200 / 15, abs=0.1) for s in scores
        ), scores
        predictions = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
        assert len({p.get("id") or p.get("passage_id") for p in predictions}) == 2
        demos = {demo for p in predictions for demo in p["demos"]}
        if mode == "none":
            assert not demos
        else:  # two demonstrations in front of every question, from the pool / the benchmark's train split
            assert all(len(p["demos"]) == 2 for p in predictions)
            assert all(d.startswith("crossner_ai_train_" if mode == "in-domain" else "pilener_") for d in demos), demos
    files = set(HfApi().list_repo_files(repo))
    assert any(f.startswith("eval_results/") and f.endswith("results.json") for f in files)
    card = ModelCard.load(repo)
    assert card.data.base_model == BASE_ID  # the rest of the card is kept
    model_index = card.data.to_dict()["model-index"]
    results = model_index[0]["results"]
    assert results and all(r["metrics"] for r in results)
    from huggingface_hub.repocard_data import model_index_to_eval_results

    # The card says what results.json says: every published value is one of the report's numbers, and
    # both F1 metrics (UniNER and strict) are there.
    _, evals = model_index_to_eval_results(model_index)
    reported = _report(work / "eval-none")
    numbers = {round(float(v), 6) for v in _leaves(reported) if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert evals and all(round(float(e.metric_value), 6) in numbers for e in evals)
    assert (
        sum(
            e.metric_value == pytest.approx(2 / 15, abs=1e-3) or e.metric_value == pytest.approx(200 / 15, abs=0.1)
            for e in evals
        )
        >= 2
    )
    assert {e.dataset_config for e in evals} == {"crossner_ai"}


# ---- the Space ----


def test_push_space_bundles_the_app_and_its_defaults(adapter, index_repo, tmp_path):
    repo = f"{NS}/raitner-ner"
    proc = raitner(
        "push-space",
        "--repo-id",
        repo,
        "--model",
        adapter[1],
        "--index",
        index_repo[1],
        "--out",
        str(tmp_path / "space"),
    )
    assert "pushed Space" in proc.stdout and repo in proc.stdout
    files = set(HfApi().list_repo_files(repo, repo_type="space"))
    assert {"app.py", "README.md", "requirements.txt", "raitner_space.json", "raitner_hub/serve.py"} <= files
    from huggingface_hub import hf_hub_download

    defaults = json.loads(Path(hf_hub_download(repo, "raitner_space.json", repo_type="space")).read_text())
    assert defaults["model"] == adapter[1] and defaults["index"] == index_repo[1]
    readme = Path(hf_hub_download(repo, "README.md", repo_type="space")).read_text()
    front = yaml.safe_load(readme.split("---")[1])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py"


def test_serve_answers_one_request_and_stops(adapter, index_repo, tmp_path):
    import gradio_client

    from tests.fixtures.console import ENV_EXTRA, console_script

    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            [console_script(), "serve", "--model", str(adapter[0]), "--index", str(index_repo[0]), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env={**__import__("os").environ, **ENV_EXTRA},
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, proc, log)
        client = gradio_client.Client(url, verbose=False)
        _, table, demos, status = client.predict(
            TEXT, "person, location", "en", True, "nn.v1", 2, None, api_name="/extract"
        )
        rows = [dict(zip(table["headers"], row)) for row in table["data"]]
        assert {(r["text"], r["label"]) for r in rows} == {("Paris", "person"), ("Paris", "location")}, status
        assert all(TEXT[int(r["start"]) : int(r["end"])] == r["text"] for r in rows)
        assert len(demos["data"]) == 2  # two demonstrations retrieved from the index
    finally:
        stop(proc)
    assert proc.returncode is not None
    assert f"serving {adapter[0]} on http://127.0.0.1:{port}" in log.read_text()


# ---- errors a user meets first ----


@pytest.mark.parametrize(
    "args",
    [
        ["build-data", "{missing}.jsonl"],
        ["index", "{missing}.jsonl", "--embedder", "bm25"],
        ["annotate", "{missing}.jsonl", "--lang", "en", "--no-api-key"],
        ["export", "{missing}", "--out", "{tmp}/x.json"],
        ["predict", "{missing}", "--text", "a", "--labels", "person"],
        ["evaluate", "{missing}", "--file", "{missing}.bio.txt", "--labels", "person"],
        ["evaluate", "{missing}", "--benchmarks", "{missing}"],
    ],
    ids=lambda args: "-".join(a for a in args[:2] if not a.startswith("{")),
)
def test_a_missing_local_path_is_named_as_such(args, hub_server, tmp_path):
    from typer.testing import CliRunner

    from raitner_hub.cli import app

    missing = str(tmp_path / "nowhere" / "data")
    argv = [a.format(missing=missing, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "no such file or folder" in lines[0] and missing in lines[0], lines
    assert "invalid repo id" not in lines[0]


def test_push_benchmarks_needs_a_data_root(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from raitner_hub.cli import app

    monkeypatch.delenv("RAITNER_DATA_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["push-benchmarks", "--out", str(tmp_path / "b")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: no benchmark data folder: pass --data-root DIR (the folder holding en/crossner_ai/, zh/weibo/, ...) "
        "or set RAITNER_DATA_ROOT"
    ]
    assert not (tmp_path / "b").exists()


def test_a_max_length_that_drops_every_example_is_one_line(tiny_model_dir, built, tmp_path):
    from typer.testing import CliRunner

    from raitner_hub.cli import app

    config = tmp_path / "short.yaml"
    config.write_text(TRAIN_TINY.read_text().replace("max_length: 2048", "max_length: 16"), encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--config",
            str(config),
            "--base-model",
            str(tiny_model_dir),
            "--dataset",
            str(built[0]),
            "--out",
            str(tmp_path / "a"),
        ],
    )
    assert result.exit_code == 1
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error: sft.max_length 16 ") and "longest example has" in line
    longest = int(line.split("longest example has ")[1].split()[0])
    assert longest > 16
    assert not (tmp_path / "a").exists()
