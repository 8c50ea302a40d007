"""Artefact folders appear whole or not at all; manifests never hold secrets."""

import pytest

from raitner_hub.artefacts import staged_folder
from raitner_hub.manifest import build_manifest


def test_success_replaces_previous_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with staged_folder(out) as staging:
        (staging / "new.txt").write_text("new")
        assert not (out / "new.txt").exists()  # nothing visible until done
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failure_leaves_previous_output_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with staged_folder(out) as staging:
            (staging / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failure_creates_nothing(tmp_path):
    with pytest.raises(ValueError):
        with staged_folder(tmp_path / "new"):
            raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_manifest_refuses_credentials():
    with pytest.raises(ValueError, match="api_key"):
        build_manifest("x", settings={"api_key": "sk-123"}, inputs={}, counts={}, started=0.0)
    manifest = build_manifest("x", settings={"api_key_env": None, "seed": 1}, inputs={}, counts={}, started=0.0)
    assert manifest["settings"]["seed"] == 1 and manifest["libraries"]["torch"].startswith("2.13.0")


def test_never_replaces_the_working_directory_home_or_a_checkout(tmp_path, monkeypatch):
    from raitner_hub.errors import ConfigError

    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "keep.txt").write_text("keep")
    monkeypatch.chdir(work / "sub")
    for out in (work / "sub", work, work / "sub" / "."):
        with pytest.raises(ConfigError, match="refusing to replace"):
            with staged_folder(out) as staging:
                (staging / "x.txt").write_text("x")
    checkout = tmp_path / "repo"
    (checkout / ".git").mkdir(parents=True)
    with pytest.raises(ConfigError, match="git checkout"):
        with staged_folder(checkout):
            pass
    assert (work / "keep.txt").read_text() == "keep" and (checkout / ".git").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "work"]
