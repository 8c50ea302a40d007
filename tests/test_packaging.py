"""Packaging: the core install is what build-data needs; extras have bounds; the three pin files agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
HEAVY = {
    "trl",
    "peft",
    "accelerate",
    "gradio",
    "gradio-client",
    "openai",
    "tiktoken",
    "langchain-text-splitters",
    "vllm",
    "bitsandbytes",
    "matplotlib",
    "torch",
}


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not an exact pin"
            found[canonicalize_name(name)] = version
    return found


def requirements() -> list[tuple[str, Requirement]]:
    reqs = [("core", Requirement(r)) for r in PYPROJECT["dependencies"]]
    for extra, items in PYPROJECT["optional-dependencies"].items():
        reqs += [(extra, Requirement(r)) for r in items if not r.startswith("raitner-hub[")]
    return reqs


def test_core_dependencies_are_only_what_build_data_needs():
    core = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["dependencies"]}
    assert not core & HEAVY, f"core pulls {core & HEAVY}"
    assert {"datasets", "huggingface-hub", "faiss-cpu", "rank-bm25", "jieba", "typer"} <= core
    extras = PYPROJECT["optional-dependencies"]
    assert {"annotate", "predict", "train", "serve", "vllm", "qlora", "offline", "bench", "dev"} <= set(extras)
    assert "trl" in {Requirement(r).name for r in extras["train"]}


def test_every_dependency_has_lower_and_upper_bounds():
    for where, req in requirements():
        ops = {spec.operator for spec in req.specifier}
        assert "==" in ops or (ops & {">=", ">"} and ops & {"<", "<="}), f"[{where}] {req} needs bounds"


def test_constraints_satisfy_pyproject_and_the_space_pins_equal_constraints():
    constraints = pins(REPO / "constraints.txt")
    for where, req in requirements():
        name = canonicalize_name(req.name)
        if name in constraints:
            assert req.specifier.contains(constraints[name], prereleases=True), (
                f"constraints.txt pins {name}=={constraints[name]}, outside [{where}] {req.specifier}"
            )
        elif where not in ("vllm", "qlora"):  # CUDA-only extras are not in the CPU test install
            pytest.fail(f"[{where}] {req.name} is not pinned in constraints.txt")
    space = pins(REPO / "spaces" / "raitner-ner" / "requirements.txt")
    assert space.keys() <= constraints.keys(), f"Space pins missing from constraints: {space.keys() - constraints}"
    assert {n: v for n, v in space.items() if constraints[n] != v} == {}
    assert constraints["torch"] == "2.13.0"  # the version; the Makefile installs its CPU build


def test_the_makefile_installs_the_cpu_torch_before_the_package():
    make = (REPO / "Makefile").read_text(encoding="utf-8")
    # torch alone (--no-deps) from the CPU index, before anything can pull PyPI's CUDA build
    torch_line = make.index(
        'pip install -q --no-deps --retries 1 --timeout 15 --extra-index-url $(TORCH_INDEX) "$(TORCH)"'
    )
    assert torch_line < make.index('-c constraints.txt -e ".[dev]"')
    assert "TORCH ?= torch==2.13.0+cpu" in make and "download.pytorch.org/whl/cpu" in make


BUILD_AND_LIST_MODULES = """
import json, sys
from raitner_hub.cli import app
try:
    app([*sys.argv[1:]])
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_build_data_with_bm25_imports_no_optional_dependency(tmp_path):
    sample = tmp_path / "sample.zh.jsonl"
    lines = (REPO / "examples" / "data" / "sky_ner_sample.zh.jsonl").read_text(encoding="utf-8").splitlines()
    sample.write_text("\n".join(lines[:30]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            BUILD_AND_LIST_MODULES,
            "build-data",
            str(sample),
            "--embedder",
            "bm25",
            "--strategy",
            "nn.v1",
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    optional = {
        "trl",
        "peft",
        "accelerate",
        "gradio",
        "gradio_client",
        "openai",
        "tiktoken",
        "vllm",
        "langchain_text_splitters",
        "bitsandbytes",
        "matplotlib",
    }
    assert not loaded & optional, f"build-data imported {loaded & optional}"
    assert (out / "manifest.json").is_file() and list((out / "data").glob("ra-nn-k*/train-*.parquet"))


def test_a_command_without_its_extra_names_the_extra(tmp_path):
    # sitecustomize hides trl from this process only (None in sys.modules makes imports and find_spec fail).
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['trl'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(hide)}
    raitner = Path(sys.executable).with_name("raitner")
    proc = subprocess.run(
        [str(raitner), "train", "--dataset", str(tmp_path / "nothing"), "--out", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: this needs the 'trl' package: pip install 'raitner-hub[train]'"
    assert not (tmp_path / "a").exists()


def test_the_package_ships_its_type_information():
    # PEP 561 marker; hatch ships every tracked file of raitner_hub/ in the wheel.
    assert (REPO / "raitner_hub" / "py.typed").is_file()
    tracked = subprocess.run(["git", "ls-files", "raitner_hub/py.typed"], cwd=REPO, capture_output=True, text=True)
    assert tracked.stdout.strip() == "raitner_hub/py.typed"
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"][
        "packages"
    ] == ["raitner_hub"]
