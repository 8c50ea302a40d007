"""raitner_hub.hub against the loopback Hub with the real clients (huggingface_hub, datasets, transformers).

Covers: push -> load_dataset round trip, idempotent re-push, mirroring, pinned pulls and branches, retries on
injected faults, all-or-nothing on persistent faults, secrets, bad input, licenses, adapters, cards, Spaces,
``from_pretrained`` over HTTP, and the benchmark card template (golden file + YAML round trip).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
import uuid
from pathlib import Path

import datasets
import pytest
from huggingface_hub import DatasetCard, EvalResult, HfApi, ModelCard

from raitner_hub import hub, hub_errors
from raitner_hub.cards import render_dataset_card, size_category
from raitner_hub.errors import HubError
from raitner_hub.manifest import build_manifest, write_manifest
from tests.conftest import TEST_TOKEN

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "benchmark.md"
ZH_SAMPLE = REPO / "examples" / "data" / "sky_ner_sample.zh.jsonl"

ROWS = {
    "toy_en": [
        {
            "id": "en-0",
            "text": "Barack Obama visited Paris.",
            "lang": "en",
            "source": "toy",
            "entities": [
                {"start": 0, "end": 12, "text": "Barack Obama", "label": "person"},
                {"start": 21, "end": 26, "text": "Paris", "label": "location"},
            ],
        },
        {"id": "en-1", "text": "Nothing here.", "lang": "en", "source": "toy", "entities": []},
    ],
    "toy_zh": [
        {
            "id": "zh-0",
            "text": "我在北京工作。",
            "lang": "zh",
            "source": "toy",
            "entities": [{"start": 2, "end": 4, "text": "北京", "label": "地点"}],
        },
    ],
}


def benchmark_card(repo_id: str, *, license_note: str | None = None):
    """The benchmark card for ROWS, from a fixed context (also the golden test's input)."""
    benchmarks = [
        {
            "name": "toy_en",
            "lang": "en",
            "splits": ["test"],
            "rows": 2,
            "labels": ["person", "location"],
            "gold": "bio",
            "gold_mentions": 2,
            "license": "mit",
            "source": "zliucr/CrossNER `ner_data/ai/test.txt`",
            "source_revision": "2e7ba2a7798c961e3f29fbc51252c5a8d40224bf",
            "license_note": None,
            "citation": "Liu et al., CrossNER, AAAI 2021",
        },
        {
            "name": "toy_zh",
            "lang": "zh",
            "splits": ["test"],
            "rows": 1,
            "labels": ["地点"],
            "gold": "bio",
            "gold_mentions": 1,
            "license": "other",
            "source": "Emma1066/Retrieval-Augmented-IT-OpenNER `data/benchmark_data/boson`",
            "source_revision": "c9cb37efb5667fe33134d4e3aa0cc008443e900d",
            "license_note": license_note,
            "citation": "BosonNLP NER data",
        },
    ]
    card_data = {
        "license": "other",
        "language": ["en", "zh"],
        "task_categories": ["token-classification"],
        "size_categories": [size_category(3)],
        "pretty_name": "Toy open-NER benchmarks",
        "tags": ["ner", "open-ner", "raitner-hub"],
        "configs": [
            {"config_name": b["name"], "data_files": [{"split": "test", "path": f"data/{b['name']}/test-*.parquet"}]}
            for b in benchmarks
        ],
    }
    return render_dataset_card(
        "benchmark",
        card_data,
        pretty_name=card_data["pretty_name"],
        repo_id=repo_id,
        benchmarks=benchmarks,
        command="raitner push-benchmarks bench.yaml --repo-id " + repo_id,
        version="0.1.0",
    )


def make_benchmark_folder(root: Path, repo_id: str, *, redistributable: bool = True) -> Path:
    """A Hub-layout dataset folder: README card with ``configs``, parquet per config, manifest."""
    folder = root / f"bench-{uuid.uuid4().hex[:6]}"
    for name, rows in ROWS.items():
        (folder / "data" / name).mkdir(parents=True)
        datasets.Dataset.from_list(rows).to_parquet(str(folder / "data" / name / "test-00000-of-00001.parquet"))
    benchmark_card(repo_id).save(folder / "README.md")
    extra = (
        {}
        if redistributable
        else {"redistributable": False, "license_note": "BosonNLP license: no redistribution to third parties"}
    )
    write_manifest(
        folder,
        build_manifest(
            "benchmarks",
            settings={"configs": list(ROWS)},
            inputs={},
            counts={"rows": 3},
            started=time.time(),
            extra=extra,
        ),
    )
    return folder


def new_repo(name: str) -> str:
    return f"user/{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch, hub_faults):
    """Tiny backoff so fault tests stay fast, and no faults left over from other tests."""
    monkeypatch.setattr(hub_errors, "RETRY", hub_errors.RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05))


@pytest.fixture
def api() -> HfApi:
    return HfApi()


def commit_count(api: HfApi, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> int:
    return len(api.list_repo_commits(repo_id, repo_type=repo_type, revision=revision))


# ---- datasets: push, load, idempotence ----


def test_push_then_load_dataset_returns_the_rows(tmp_path, hub_server, api):
    repo_id = new_repo("bench")
    folder = make_benchmark_folder(tmp_path, repo_id)
    result = hub.push_folder(folder, repo_id)
    assert result.commit_sha is not None and result.head_sha == result.commit_sha
    assert result.url == f"{os.environ['HF_ENDPOINT']}/datasets/{repo_id}"
    remote = hub_server.files(repo_id, "dataset")
    assert set(remote) == {
        ".gitattributes",
        "README.md",
        "manifest.json",
        "data/toy_en/test-00000-of-00001.parquet",
        "data/toy_zh/test-00000-of-00001.parquet",
    }
    assert remote["README.md"] == (folder / "README.md").read_bytes()
    for name, rows in ROWS.items():
        ds, sha = hub.load_dataset_config(repo_id, name, split="test", cache_dir=tmp_path / "cache")
        assert sha == result.commit_sha
        assert ds.to_list() == rows
    card = DatasetCard.load(repo_id, repo_type="dataset")
    assert [c["config_name"] for c in card.data.configs] == list(ROWS)
    assert card.data.task_categories == ["token-classification"]


def test_second_identical_push_makes_no_commit(tmp_path, hub_server, api):
    repo_id = new_repo("idem")
    folder = make_benchmark_folder(tmp_path, repo_id)
    first = hub.push_folder(folder, repo_id)
    commits_before, posts_before = commit_count(api, repo_id), hub_server.count("POST", f"{repo_id}/commit/")
    second = hub.push_folder(folder, repo_id)
    assert second.commit_sha is None and second.head_sha == first.commit_sha
    assert commit_count(api, repo_id) == commits_before == 2  # "initial commit" + the push
    assert hub_server.count("POST", f"{repo_id}/commit/") == posts_before
    assert hub_server.count("PUT", "/__lfs_upload/") > 0  # parquet went through LFS the first time


def test_repush_mirrors_the_folder_in_one_commit(tmp_path, hub_server, api):
    repo_id = new_repo("mirror")
    folder = make_benchmark_folder(tmp_path, repo_id)
    hub.push_folder(folder, repo_id)
    (folder / "data" / "toy_zh" / "test-00000-of-00001.parquet").unlink()
    (folder / "data" / "toy_zh").rmdir()
    (folder / "NOTES.md").write_text("changed\n")
    result = hub.push_folder(folder, repo_id)
    remote = hub_server.files(repo_id, "dataset")
    assert set(remote) == {
        ".gitattributes",
        "README.md",
        "manifest.json",
        "NOTES.md",
        "data/toy_en/test-00000-of-00001.parquet",
    }
    assert commit_count(api, repo_id) == 3 and result.commit_sha == hub.resolve_revision(repo_id)


# ---- pulls and revisions ----


def test_pull_is_pinned_and_records_the_sha(tmp_path, hub_server):
    repo_id = new_repo("pinned")
    folder = make_benchmark_folder(tmp_path, repo_id)
    v1 = hub.push_folder(folder, repo_id)
    (folder / "NOTES.md").write_text("v2\n")
    v2 = hub.push_folder(folder, repo_id)
    old = hub.pull_artefact(repo_id, revision=v1.commit_sha, cache_dir=tmp_path / "hf")
    assert old.sha == v1.commit_sha and old.ref == f"{repo_id}@{v1.commit_sha}"
    assert not (old.path / "NOTES.md").exists() and (old.path / "manifest.json").is_file()
    latest = hub.pull_artefact(repo_id, cache_dir=tmp_path / "hf")
    assert latest.sha == v2.commit_sha and (latest.path / "NOTES.md").read_text() == "v2\n"
    only_card = hub.download_artefact(repo_id, allow_patterns=["README.md"], cache_dir=tmp_path / "hf2")
    assert sorted(p.name for p in only_card.iterdir()) == ["README.md"]


def test_push_to_a_branch_leaves_main_alone(tmp_path, hub_server):
    repo_id = new_repo("branch")
    folder = make_benchmark_folder(tmp_path, repo_id)
    main = hub.push_folder(folder, repo_id)
    (folder / "NOTES.md").write_text("experiment\n")
    exp = hub.push_folder(folder, repo_id, revision="exp")
    assert exp.revision == "exp" and exp.commit_sha is not None
    assert hub.resolve_revision(repo_id, "dataset", "exp") == exp.commit_sha
    assert hub.resolve_revision(repo_id, "dataset") == main.commit_sha
    assert "NOTES.md" not in hub_server.files(repo_id, "dataset")
    assert hub.push_folder(folder, repo_id, revision="exp").commit_sha is None


# ---- faults ----


@pytest.mark.parametrize(
    "faults",
    [
        [("5xx", 2, "/commit/")],
        [("drop", 1, "/commit/"), ("5xx", 1, "/api/repos/create")],
        [("409", 1, "/commit/")],
        [("drop", 1, "/revision/main")],
    ],
)
def test_transient_faults_are_retried(tmp_path, hub_server, faults):
    repo_id = new_repo("flaky")
    folder = make_benchmark_folder(tmp_path, repo_id)
    for kind, n, where in faults:
        hub_server.inject(kind, n=n, path_contains=where)
    result = hub.push_folder(folder, repo_id)
    assert result.commit_sha is not None
    assert len(hub_server.files(repo_id, "dataset")) == 5
    assert all(f["left"] == 0 for f in hub_server.faults)
    commit_posts = hub_server.count("POST", f"{repo_id}/commit/")
    expected = 1 + sum(n for kind, n, where in faults if where == "/commit/")
    assert commit_posts == expected


def test_slow_response_still_completes(tmp_path, hub_server):
    repo_id = new_repo("slow")
    folder = make_benchmark_folder(tmp_path, repo_id)
    hub_server.inject("slow", n=1, path_contains="/commit/", delay=0.3)
    started = time.monotonic()
    assert hub.push_folder(folder, repo_id).commit_sha is not None
    assert time.monotonic() - started >= 0.3


def test_persistent_fault_fails_cleanly_and_leaves_the_repo_whole(tmp_path, hub_server):
    repo_id = new_repo("down")
    folder = make_benchmark_folder(tmp_path, repo_id)
    v1 = hub.push_folder(folder, repo_id)
    before = hub_server.files(repo_id, "dataset")
    (folder / "NOTES.md").write_text("never arrives\n")
    (folder / "manifest.json").write_text("{}\n")
    hub_server.inject("5xx", n=100, path_contains="/commit/")
    with pytest.raises(HubError) as err:
        hub.push_folder(folder, repo_id)
    message = str(err.value)
    assert "\n" not in message and repo_id in message and "failed after 4 attempts" in message and "503" in message
    assert hub_server.files(repo_id, "dataset") == before  # nothing from the failed push
    assert hub.resolve_revision(repo_id) == v1.commit_sha


def test_persistent_fault_on_a_new_repo_uploads_nothing(tmp_path, hub_server):
    repo_id = new_repo("fresh-down")
    folder = make_benchmark_folder(tmp_path, repo_id)
    hub_server.inject("drop", n=100, path_contains="/commit/")
    with pytest.raises(HubError, match="RemoteProtocolError"):
        hub.push_folder(folder, repo_id)
    assert set(hub_server.files(repo_id, "dataset")) == {".gitattributes"}


# ---- secrets ----


def test_failing_cli_push_never_shows_the_token(tmp_path, hub_server):
    assert os.environ["HF_TOKEN"] == TEST_TOKEN
    out = tmp_path / "secret-it"
    repo_id = new_repo("secret")
    hub_server.inject("5xx", n=100, path_contains="/commit/")
    env = {**os.environ, "RAITNER_HUB_RETRIES": "2", "RAITNER_HUB_RETRY_DELAY": "0.01"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "raitner_hub",
            "build-data",
            str(ZH_SAMPLE),
            "--embedder",
            "bm25",
            "--strategy",
            "nn.v1",
            "--out",
            str(out),
            "--push",
            "--repo-id",
            repo_id,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and repo_id in errors[0] and "failed after 2 attempts" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    pushed_text = [(out / "README.md").read_text(), (out / "manifest.json").read_text()]
    for text in [proc.stdout, proc.stderr, *pushed_text]:
        assert TEST_TOKEN not in text and "hf_raitner" not in text


def test_library_error_and_traceback_never_show_the_token(tmp_path, hub_server, caplog):
    repo_id = new_repo("secret-lib")
    folder = make_benchmark_folder(tmp_path, repo_id)
    hub_server.inject("5xx", n=100, path_contains="/commit/")
    with pytest.raises(HubError) as err:
        hub.push_folder(folder, repo_id)
    rendered = "".join(traceback.format_exception(err.value))
    for text in (str(err.value), rendered, caplog.text):
        assert TEST_TOKEN not in text
    assert TEST_TOKEN.encode() not in b"".join(hub_server.files(repo_id, "dataset").values())


def test_redact_and_refusing_a_file_that_holds_the_token(tmp_path, hub_server):
    assert TEST_TOKEN not in hub.redact(f"401 for url with headers {{'authorization': 'Bearer {TEST_TOKEN}'}}")
    assert hub.redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert hub.redact("token hf_abcdefghijkl leaked") == "token hf_*** leaked"
    folder = tmp_path / "leaky"
    folder.mkdir()
    (folder / "README.md").write_text(f"---\nlicense: mit\n---\nmy token is {TEST_TOKEN}\n")
    repo_id = new_repo("leaky")
    with pytest.raises(HubError, match="README.md contains the Hub token") as err:
        hub.push_folder(folder, repo_id)
    assert TEST_TOKEN not in str(err.value)
    assert hub_server.repo(repo_id, "dataset") is None


# ---- bad input ----


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: hub.validate_repo_id("x y"), "invalid repo id 'x y': "),
        (lambda: hub.push_folder(".", "x y"), "invalid repo id 'x y': "),
        (lambda: hub.push_folder(".", "noowner"), "invalid repo id 'noowner': expected 'owner/name'"),
        (
            lambda: hub.download_artefact("user/does-not-exist"),
            "dataset repo 'user/does-not-exist' not found on http://127.0.0.1",
        ),
        (lambda: hub.load_dataset_config("user/does-not-exist", "x"), "dataset repo 'user/does-not-exist' not found"),
        (lambda: hub.resolve_revision("user/does-not-exist", "model"), "model repo 'user/does-not-exist' not found"),
    ],
)
def test_bad_input_is_one_line_naming_the_repo(call, message):
    with pytest.raises(HubError) as err:
        call()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_missing_revision_names_the_repo(tmp_path, hub_server):
    repo_id = new_repo("revs")
    hub.push_folder(make_benchmark_folder(tmp_path, repo_id), repo_id)
    with pytest.raises(HubError) as err:
        hub.download_artefact(repo_id, revision="v9", cache_dir=tmp_path / "hf")
    assert str(err.value).startswith(f"revision 'v9' not found in {repo_id}") and "\n" not in str(err.value)


def test_unknown_config_is_a_hub_error(tmp_path, hub_server):
    repo_id = new_repo("cfg")
    hub.push_folder(make_benchmark_folder(tmp_path, repo_id), repo_id)
    with pytest.raises(HubError, match=f"cannot load {repo_id}@.* config 'nope'"):
        hub.load_dataset_config(repo_id, "nope", cache_dir=tmp_path / "cache")


# ---- licenses ----


def test_non_redistributable_data_needs_private(tmp_path, hub_server):
    repo_id = new_repo("boson")
    folder = make_benchmark_folder(tmp_path, repo_id, redistributable=False)
    with pytest.raises(HubError, match="refusing a public push .*BosonNLP license: no redistribution.*--private"):
        hub.push_folder(folder, repo_id)
    assert hub_server.repo(repo_id, "dataset") is None
    hub.push_folder(folder, repo_id, private=True)
    assert hub_server.repo(repo_id, "dataset").private is True
    public = new_repo("public")
    HfApi().create_repo(public, repo_type="dataset")
    with pytest.raises(HubError, match="exists and is public"):
        hub.push_folder(folder, public, private=True)
    assert set(hub_server.files(public, "dataset")) == {".gitattributes"}


# ---- models: adapters, cards, results, from_pretrained ----


def test_from_pretrained_over_http(tmp_path, hub_server, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    repo_id = new_repo("tinybase")
    result = hub.push_folder(tiny_model_dir, repo_id, repo_type="model")
    assert result.url == f"{os.environ['HF_ENDPOINT']}/{repo_id}"
    model = AutoModelForCausalLM.from_pretrained(repo_id, cache_dir=str(tmp_path / "hf"))
    local = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    for (name, remote_p), (_, local_p) in zip(model.state_dict().items(), local.state_dict().items()):
        assert torch.equal(remote_p, local_p), name
    tok = AutoTokenizer.from_pretrained(repo_id, cache_dir=str(tmp_path / "hf"))
    assert (
        tok("Barack Obama visited Paris")["input_ids"]
        == AutoTokenizer.from_pretrained(str(tiny_model_dir))("Barack Obama visited Paris")["input_ids"]
    )


def test_push_adapter_refuses_a_local_base_model(tmp_path, hub_server):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    (folder / "training_args.bin").write_bytes(b"\0" * 16)
    for bad in ("/tmp/work/tinybase", "./tinybase", "C:\\models\\x", "a/b/c"):
        (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": bad}))
        with pytest.raises(HubError, match="base_model_name_or_path .* not a Hub repo id"):
            hub.push_adapter(folder, new_repo("adapter"))
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "user/tinybase"}))
    repo_id = new_repo("adapter")
    hub.push_adapter(folder, repo_id)
    assert set(hub_server.files(repo_id)) == {".gitattributes", "adapter_config.json", "adapter_model.safetensors"}


def test_update_model_card_keeps_the_rest(tmp_path, hub_server):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "README.md").write_text(
        "---\nlicense: apache-2.0\nbase_model: user/tinybase\n---\n\n# My adapter\n\nBody.\n"
    )
    (folder / "config.json").write_text("{}")
    repo_id = new_repo("card")
    hub.push_folder(folder, repo_id, repo_type="model")
    result_f1 = EvalResult(
        task_type="token-classification",
        dataset_type="user/bench",
        dataset_name="toy_en",
        metric_type="f1",
        metric_value=0.5,
    )

    def add_index(card: ModelCard) -> None:
        card.data.model_name = repo_id
        card.data.eval_results = [result_f1]

    result = hub.update_model_card(repo_id, add_index)
    assert result.commit_sha is not None
    card = ModelCard.load(repo_id)
    assert card.data.license == "apache-2.0" and card.data.base_model == "user/tinybase"
    assert card.data.eval_results == [result_f1] and "model-index:" in card.content
    assert "# My adapter\n\nBody." in card.text
    assert hub.update_model_card(repo_id, add_index).commit_sha is None  # nothing changed: no commit


def test_push_results_only_touches_its_subfolder(tmp_path, hub_server):
    repo_id = new_repo("results")
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    hub.push_folder(model, repo_id, repo_type="model")
    report = tmp_path / "crossner-ai"
    report.mkdir()
    (report / "report.json").write_text('{"f1": 0.5}')
    (report / "predictions.jsonl").write_text("{}\n")
    hub.push_results(report, repo_id)
    (report / "predictions.jsonl").unlink()
    hub.push_results(report, repo_id)
    assert set(hub_server.files(repo_id)) == {".gitattributes", "config.json", "eval_results/crossner-ai/report.json"}


def test_push_space(tmp_path, hub_server):
    folder = tmp_path / "space"
    folder.mkdir()
    (folder / "app.py").write_text("import gradio\n")
    (folder / "README.md").write_text("---\nsdk: gradio\napp_file: app.py\n---\n")
    repo_id = new_repo("space")
    result = hub.push_space(folder, repo_id)
    assert result.url == f"{os.environ['HF_ENDPOINT']}/spaces/{repo_id}"
    assert hub_server.repo(repo_id, "space").sdk == "gradio"
    assert hub_server.files(repo_id, "space")["app.py"] == b"import gradio\n"


# ---- benchmark card ----


def test_benchmark_card_matches_golden_and_round_trips():
    card = benchmark_card("user/open-ner-benchmarks", license_note="no redistribution")
    if os.environ.get("RAITNER_UPDATE_GOLDEN"):
        GOLDEN.write_text(str(card), encoding="utf-8")
    assert str(card) == GOLDEN.read_text(encoding="utf-8")
    assert DatasetCard(str(card)).data.to_dict() == card.data.to_dict()
    assert [c["config_name"] for c in card.data.configs] == ["toy_en", "toy_zh"]
    assert 'load_dataset("user/open-ner-benchmarks", "toy_en", split="test")' in card.text
