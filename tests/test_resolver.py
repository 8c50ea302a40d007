"""hub.locate / hub.resolve: the one rule for "local file/folder, or repo[@revision] on the Hub"."""

from __future__ import annotations

import uuid

import pytest

from raitner_hub import hub
from raitner_hub.errors import HubError, InputError


def test_an_existing_local_path_wins(tmp_path, monkeypatch):
    # A local folder named like a repo id is local: nothing is looked up on the Hub.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "me" / "sky-ner-it").mkdir(parents=True)
    source = hub.locate("me/sky-ner-it")
    assert source.is_local and source.path == tmp_path.joinpath("me", "sky-ner-it").relative_to(tmp_path)
    assert source.ref is None and source.repo_id is None
    file = tmp_path / "data.jsonl"
    file.write_text("{}\n")
    assert hub.resolve(str(file)).path == file


@pytest.mark.parametrize(
    "name",
    [
        "./missing",
        "/nowhere/at/all",
        "~/raitner-nothing-here",
        "out/a/b",
        "missing.jsonl",
        "me/data.parquet",
        "local/missing",
    ],
)
def test_a_path_like_name_that_does_not_exist_is_one_clear_error(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local").mkdir()  # "local/missing": the first part exists, so it is meant as a path
    with pytest.raises(InputError) as info:
        hub.locate(name)
    assert str(info.value) == f"no such file or folder: {name}"


def test_repo_ids_with_and_without_revision(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plain = hub.locate("me/sky-ner-it")
    assert (plain.repo_id, plain.revision, plain.path, plain.is_local) == ("me/sky-ner-it", None, None, False)
    assert hub.locate("me/sky-ner-it", revision="v2").revision == "v2"
    pinned = hub.locate("me/sky-ner-it@v1", revision="ignored-when-pinned")
    assert (pinned.repo_id, pinned.revision) == ("me/sky-ner-it", "v1")
    assert hub.locate("gpt2").repo_id == "gpt2"
    with pytest.raises(HubError, match="invalid repo id 'me/bad name'"):
        hub.locate("me/bad name")
    with pytest.raises(HubError, match="nothing after '@'"):
        hub.locate("me/sky-ner-it@")


def test_resolve_pins_a_hub_repo_and_downloads_it(tmp_path, hub_server):
    repo_id = f"user/resolve-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "artefact"
    folder.mkdir()
    (folder / "README.md").write_text("v1\n")
    v1 = hub.push_folder(folder, repo_id)
    (folder / "README.md").write_text("v2\n")
    v2 = hub.push_folder(folder, repo_id)

    latest = hub.resolve(repo_id)
    assert latest.sha == v2.commit_sha and latest.ref == f"{repo_id}@{v2.commit_sha}"
    assert (latest.path / "README.md").read_text() == "v2\n"
    old = hub.resolve(f"{repo_id}@{v1.commit_sha}")
    assert old.ref == f"{repo_id}@{v1.commit_sha}" and (old.path / "README.md").read_text() == "v1\n"
    only_sha = hub.resolve(repo_id, download=False)
    assert only_sha.path is None and only_sha.sha == v2.commit_sha


def test_a_missing_embedder_folder_is_never_looked_up_on_the_hub(tmp_path):
    from raitner_hub.embedder import Embedder
    from raitner_hub.errors import ConfigError

    for spec in ("./no-such-model", str(tmp_path / "missing-model")):
        with pytest.raises(ConfigError, match=r"cannot load embedder .* \(no such folder\); offline, use"):
            Embedder(spec, lang="en", cache_dir=False)
