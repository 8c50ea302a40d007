"""Structural rules: stages import only earlier stages, nothing imports the CLI, only hub.py talks to the Hub."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "raitner_hub"

# Pipeline order (design.md). A module may import foundation modules and any earlier stage, never a later one.
FOUNDATION = {
    "errors",
    "records",
    "prompts",
    "config",
    "manifest",
    "artefacts",
    "cards",
    "hub",
    "hub_errors",
    "formats",
    "readers",
    "progress",
    "cache",
    "bm25",
    "embedder",
    "decoding",
    "loading",
    "licenses",
    "scores",
    "spans",
    "hub_checks",
    "hub_cache",
    "row_random",
}
STAGES = [
    "corpus",
    "teacher",
    "annotate",
    "corpus_pipeline",
    "instruct",
    "retrieval",
    "augment",
    "build",
    "benchmark_registry",
    "benchmarks",
    "adapter_folder",
    "train",
    "engines",
    "gliner_backend",
    "predict",
    "spacy_component",
    "metrics",
    "evaluate",
    "serve",
    "space",
    # the reproduce orchestrator runs after every stage (docs/architecture.md)
    "paper_results",
    "recipe",
    "results_table",
    "reproduce_plan",
    "reproduce",
]
ENTRY_POINTS = {"cli", "cli_options"}
HUB_CALLS = {
    "HfApi",
    "upload_folder",
    "create_commit",
    "hf_hub_download",
    "snapshot_download",
    "create_repo",
    "push_to_hub",
}


def imports_of(path: Path, *, runtime_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if runtime_only:  # drop `if TYPE_CHECKING:` blocks (names for type checkers, never imported at run time)
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
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
    later = set(STAGES[STAGES.index(path.stem) + 1 :])
    # metrics are pure functions that predict may use to parse answers; evaluation is the consumer.
    allowed = {"metrics"} if path.stem == "predict" else set()
    assert not (imports_of(path) & later) - allowed, f"{path.stem} imports a later stage"


@pytest.mark.parametrize("path", [p for p in MODULES if p.stem != "hub"], ids=lambda p: p.stem)
def test_only_hub_module_calls_the_hub(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
    }
    imported = {
        a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("huggingface_hub")
        for a in n.names
    }
    # push_to_hub as a *method name we define* (RetrievalIndex.push_to_hub delegating to hub) is fine
    offending = (imported & HUB_CALLS) | ({"HfApi", "upload_folder", "create_commit"} & names)
    assert not offending, f"{path.stem} uses {offending}; go through raitner_hub.hub"


def test_every_module_has_a_place_in_the_layering():
    placed = FOUNDATION | set(STAGES) | ENTRY_POINTS
    assert len(FOUNDATION) + len(STAGES) + len(ENTRY_POINTS) == len(placed), "a module is listed twice"
    assert {p.stem for p in MODULES} == placed, "add new modules to FOUNDATION or STAGES (and remove gone ones)"


@pytest.mark.parametrize("path", [p for p in MODULES if p.stem in FOUNDATION], ids=lambda p: p.stem)
def test_foundation_does_not_import_stages(path):
    stages = imports_of(path, runtime_only=True) & (set(STAGES) | ENTRY_POINTS)
    assert not stages, f"{path.stem} (foundation) imports the stage(s) {stages}"


# Functions that read Hub ids: only hub.py (artefacts, datasets) and loading.py (models, tokenizers) call them.
HUB_READS = {"load_dataset", "from_pretrained", "snapshot_download"}
HUB_READERS = {"hub", "loading"}
# Receivers whose from_pretrained is our own classmethod, which goes through hub.resolve.
OWN_LOADERS = {"NER", "RetrievalIndex", "GLiNERPredictor", "cls"}
# (module, enclosing function, called name): calls on local paths only, with the reason they are safe.
LOCAL_ONLY = {
    ("train", "load_training_data", "load_dataset"): "only the local build-data folder (hub.locate said local)",
    ("formats", "load_it_dataset", "load_dataset"): "only when the path is a folder on disk (is_dir checked)",
    ("formats", "load_token_dataset", "load_dataset"): "a local folder only (is_dir checked); Hub splits go"
    " through hub.load_hub_split",
    ("adapter_folder", "merge_adapter", "from_pretrained"): "PeftModel on the adapter folder just written",
    ("gliner_backend", "from_pretrained", "from_pretrained"): "GLiNER on the folder hub.pull_artefact fetched",
}


def hub_reads(path: Path) -> list[tuple[str, str, int]]:
    """(enclosing function, called name, line) for every HUB_READS call that is not one of our own loaders."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Call):
                func = child.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
                receiver = (
                    func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
                )
                if name in HUB_READS and receiver not in OWN_LOADERS:
                    found.append((function, name, child.lineno))
            visit(child, function)

    visit(tree, "<module>")
    return found


@pytest.mark.parametrize("path", [p for p in MODULES if p.stem not in HUB_READERS], ids=lambda p: p.stem)
def test_hub_reads_only_in_hub_and_loading(path):
    offending = [
        f"{path.name}:{line} {name}() in {function}"
        for function, name, line in hub_reads(path)
        if (path.stem, function, name) not in LOCAL_ONLY
    ]
    assert not offending, f"Hub reads outside hub.py/loading.py (use hub.resolve / raitner_hub.loading): {offending}"


def test_the_hub_read_check_sees_calls_and_the_allow_list_is_not_stale(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import datasets\ndef f(x):\n    return datasets.load_dataset(x)\n"
        "def g(x):\n    return NER.from_pretrained(x)\n"
    )
    assert hub_reads(sample) == [("f", "load_dataset", 3)]
    for module, function, name in LOCAL_ONLY:
        assert (function, name) in {(f, n) for f, n, _ in hub_reads(PACKAGE / f"{module}.py")}, module


def test_no_utils_module_and_modules_stay_small():
    assert not (PACKAGE / "utils.py").exists()
    for path in MODULES:
        assert len(path.read_text().splitlines()) < 700, f"{path.name} is a god module"


def test_test_modules_share_helpers_through_fixtures_only():
    offending = []
    for path in sorted(PACKAGE.parent.joinpath("tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            offending += [f"{path.name}: {n}" for n in names if n.startswith("tests.test_")]
    assert not offending, f"move shared helpers to tests/fixtures/: {offending}"
