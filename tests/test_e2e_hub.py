"""End to end on the loopback Hub with real clients (issue: the Hub layer, "must show").

raitner build-data --push -> datasets.load_dataset(repo, config) returns the same rows -> the card's YAML
lists every config -> RetrievalIndex.from_pretrained(repo) gives the local index's neighbours -> pushing the
same folder again makes no commit -> build-data reads a Hub input pinned to a commit and records it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import datasets
import numpy as np
import pytest
from huggingface_hub import DatasetCard, HfApi

from raitner_hub import hub
from raitner_hub.retrieval import RetrievalIndex

REPO = Path(__file__).resolve().parent.parent
ZH_SAMPLE = REPO / "examples" / "data" / "sky_ner_sample.zh.jsonl"


def raitner(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "raitner_hub", *args], capture_output=True, text=True, cwd=REPO, timeout=600
    )


@pytest.fixture
def repo_name():
    return f"e2e-user/sky-it-{uuid.uuid4().hex[:8]}"


def test_build_push_load_card_and_idempotent_repush(hub_server, tmp_path, repo_name):
    out = tmp_path / "sky-it"
    proc = raitner(
        "build-data",
        str(ZH_SAMPLE),
        "--embedder",
        "bm25",
        "--strategy",
        "nn.v1",
        "--strategy",
        "bm25_filter.v1",
        "--out",
        str(out),
        "--push",
        "--repo-id",
        repo_name,
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert "pushed" in proc.stdout and repo_name in proc.stdout

    for config in ("vanilla", "ra-nn-k2", "ra-bm25_filter-k2"):
        remote = datasets.load_dataset(repo_name, config, cache_dir=str(tmp_path / f"cache-{config}"))
        for split in ("train", "validation"):
            local = datasets.Dataset.from_parquet(str(out / "data" / config / f"{split}-00000-of-00001.parquet"))
            assert remote[split].to_list() == local.to_list()

    card = DatasetCard.load(repo_name, repo_type="dataset")
    assert {c["config_name"] for c in card.data.configs} == {"vanilla", "ra-nn-k2", "ra-bm25_filter-k2"}
    assert card.data.raitner["strategies"] == ["nn.v1", "bm25_filter.v1"]
    assert f'load_dataset("{repo_name}"' in card.text

    api = HfApi()
    commits = len(api.list_repo_commits(repo_name, repo_type="dataset"))
    again = hub.push_folder(out, repo_name, repo_type="dataset")
    assert again.commit_sha is None
    assert len(api.list_repo_commits(repo_name, repo_type="dataset")) == commits


def test_index_push_and_from_pretrained_gives_the_same_neighbours(hub_server, tmp_path, repo_name):
    out = tmp_path / "sky-index"
    repo = repo_name.replace("sky-it", "sky-index")
    proc = raitner(
        "index", str(ZH_SAMPLE), "--embedder", "bm25", "--out", str(out), "--push", "--repo-id", repo, "--quiet"
    )
    assert proc.returncode == 0, proc.stderr
    local = RetrievalIndex.from_pretrained(str(out))
    remote = RetrievalIndex.from_pretrained(repo)
    queries = ["美国对委内瑞拉的石油出口", "消防员赶到现场灭火", "北京大学的学生"]
    local_idx, local_scores = local.search(queries, 8)
    remote_idx, remote_scores = remote.search(queries, 8)
    assert np.array_equal(local_idx, remote_idx)
    assert np.allclose(local_scores, remote_scores)
    assert [remote.ids[i] for i in remote_idx[0]] == [local.ids[i] for i in local_idx[0]]


def test_build_from_a_hub_input_records_the_pinned_revision(hub_server, tmp_path, repo_name):
    annotated = tmp_path / "annotated"
    (annotated / "data").mkdir(parents=True)
    shutil.copy(ZH_SAMPLE, annotated / "data" / "train.jsonl")
    source = repo_name.replace("sky-it", "sky-annotated")
    pushed = hub.push_folder(annotated, source, repo_type="dataset")
    out = tmp_path / "from-hub"
    proc = raitner("build-data", source, "--embedder", "bm25", "--strategy", "nn.v1", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["annotated"] == f"{source}@{pushed.head_sha}"
    card = DatasetCard.load(out / "README.md").data
    assert card.source_datasets == [source]  # a bare Hub id, as the Hub links it
    assert card.raitner["input"] == f"{source}@{pushed.head_sha}"  # the pinned revision


def test_missing_hub_input_is_one_line(hub_server, tmp_path):
    proc = raitner("build-data", "e2e-user/does-not-exist", "--out", str(tmp_path / "x"))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "e2e-user/does-not-exist" in lines[0] and "not found" in lines[0]
    assert not (tmp_path / "x").exists()
