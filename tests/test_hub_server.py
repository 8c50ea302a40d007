"""The loopback Hub itself: the headers and error codes the real clients depend on (offline-stack.md section 5)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest
from huggingface_hub import HfApi, HfFileSystem, hf_hub_download
from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError


def request(url: str, method: str = "GET", headers: dict | None = None, data: bytes | None = None):
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture
def repo(hub_faults, tmp_path):
    """A dataset repo with a small regular file and a binary (LFS) file."""
    repo_id = f"user/server-{uuid.uuid4().hex[:8]}"
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"hello world\n", path_in_repo="docs/a.txt", repo_id=repo_id, repo_type="dataset")
    api.upload_file(
        path_or_fileobj=bytes(range(256)) * 100, path_in_repo="data/blob.bin", repo_id=repo_id, repo_type="dataset"
    )
    return repo_id


def test_create_conflict_returns_the_url(repo, hub_server):
    status, _, body = request(
        f"{hub_server.url}/api/repos/create",
        "POST",
        {"Content-Type": "application/json"},
        json.dumps({"name": repo.split("/")[1], "organization": "user", "type": "dataset"}).encode(),
    )
    assert status == 409 and json.loads(body)["url"] == f"{hub_server.url}/datasets/{repo}"


def test_resolve_headers_and_range(repo, hub_server):
    base = f"{hub_server.url}/datasets/{repo}/resolve/main"
    status, headers, _ = request(f"{base}/data/blob.bin", "HEAD")
    sha = hub_server.repo(repo, "dataset").branches["main"]
    assert status == 200 and headers["X-Repo-Commit"] == sha and headers["X-Linked-Size"] == "25600"
    status, headers, body = request(f"{base}/data/blob.bin", headers={"Range": "bytes=10-19"})
    assert status == 206 and headers["Content-Range"] == "bytes 10-19/25600" and body == bytes(range(10, 20))
    status, headers, _ = request(f"{base}/missing.txt", "HEAD")
    assert status == 404 and headers["X-Error-Code"] == "EntryNotFound" and headers["X-Repo-Commit"] == sha
    with HfFileSystem().open(f"datasets/{repo}/data/blob.bin", "rb") as fh:  # ranged reads through the client
        fh.seek(256)
        assert fh.read(4) == bytes(range(4))


def test_lfs_and_tree_entries(repo, hub_server):
    api = HfApi()
    entries = {e.path: e for e in api.list_repo_tree(repo, repo_type="dataset", recursive=True)}
    assert entries["data/blob.bin"].lfs is not None and entries["docs/a.txt"].lfs is None
    assert {"data", "docs"} <= set(entries)
    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree(repo, repo_type="dataset", path_in_repo="nope"))
    info = api.get_paths_info(repo, ["docs/a.txt", "data", "absent"], repo_type="dataset")
    assert [i.path for i in info] == ["docs/a.txt", "data"]
    assert hub_server.count("PUT", "/__lfs_upload/") >= 1


def test_not_found_codes(repo, hub_server, tmp_path):
    with pytest.raises(RepositoryNotFoundError):
        HfApi().repo_info("user/absent-repo", repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo, "docs/a.txt", repo_type="dataset", revision="v9", cache_dir=tmp_path)
    path = hf_hub_download(repo, "docs/a.txt", repo_type="dataset", cache_dir=tmp_path)
    assert open(path, "rb").read() == b"hello world\n"


def test_stale_parent_commit_is_refused(repo):
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    old = api.repo_info(repo, repo_type="dataset").sha
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo, repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            repo, [CommitOperationAdd("y.txt", b"y")], commit_message="stale", repo_type="dataset", parent_commit=old
        )
    assert err.value.response.status_code == 412


def test_fault_injection_targets_matching_requests(repo, hub_server):
    hub_server.inject("5xx", n=2, path_contains="/api/datasets/")
    url = f"{hub_server.url}/api/datasets/{repo}"
    assert request(f"{hub_server.url}/api/whoami-v2")[0] == 200  # not matching: untouched
    assert [request(url)[0] for _ in range(3)] == [503, 503, 200]
    hub_server.inject("drop", n=1)
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url, timeout=5)
    assert request(url)[0] == 200
    assert not any("authorization" in line.lower() for line in hub_server.requests)
