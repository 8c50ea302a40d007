"""Structural rules: stages import only earlier stages, nothing imports the CLI, only hub.py talks to the Hub."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "raitner_hub"

# Pipeline order (design.md). A module may import foundation modules and any earlier stage, never a later one.
FOUNDATION = {"errors", "records", "prompts", "config", "manifest", "artefacts", "cards", "hub", "formats"}
STAGES = ["corpus", "teacher", "annotate", "instruct", "retrieval", "augment", "build", "benchmarks", "train",
          "predict", "metrics", "evaluate", "serve"]
HUB_CALLS = {"HfApi", "upload_folder", "create_commit", "hf_hub_download", "snapshot_download", "create_repo",
             "push_to_hub"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("raitner_hub"):
            found.add(node.module.split(".")[1] if "." in node.module else "")
            if node.module == "raitner_hub":
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("raitner_hub."))
    return found - {""}


MODULES = sorted(p for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_nothing_imports_the_cli(path):
    if path.stem != "cli":
        assert "cli" not in imports_of(path)


@pytest.mark.parametrize("path", [p for p in MODULES if p.stem in STAGES], ids=lambda p: p.stem)
def test_stages_do_not_import_later_stages(path):
    later = set(STAGES[STAGES.index(path.stem) + 1:])
    # metrics are pure functions that predict may use to parse answers; evaluation is the consumer.
    allowed = {"metrics"} if path.stem == "predict" else set()
    assert not (imports_of(path) & later) - allowed, f"{path.stem} imports a later stage"


@pytest.mark.parametrize("path", [p for p in MODULES if p.stem != "hub"], ids=lambda p: p.stem)
def test_only_hub_module_calls_the_hub(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith(
        "huggingface_hub") for a in n.names}
    # push_to_hub as a *method name we define* (RetrievalIndex.push_to_hub delegating to hub) is fine
    offending = (imported & HUB_CALLS) | ({"HfApi", "upload_folder", "create_commit"} & names)
    assert not offending, f"{path.stem} uses {offending}; go through raitner_hub.hub"


def test_no_utils_module_and_modules_stay_small():
    assert not (PACKAGE / "utils.py").exists()
    for path in MODULES:
        assert len(path.read_text().splitlines()) < 700, f"{path.name} is a god module"
