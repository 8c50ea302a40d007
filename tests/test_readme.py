"""The README is executed: every shell command in its ```bash blocks, and every command's ``--help`` example
(``Example: raitner ...`` in the epilogs), runs here through the installed console script in a fresh
process, in README order, or is listed in ``NOT_RUN`` below with the reason it cannot run here.

A command that is neither run nor listed fails ``test_every_command_is_run_or_listed``, and a ``NOT_RUN``
entry that matches no command fails too, so the README and the list cannot drift apart.

The commands run as written, in a scratch folder holding a link to ``examples/``, with these substitutions
(``SUBSTITUTIONS``; Hub ids need none: ``HF_ENDPOINT`` points every client at the loopback Hub, which
accepts any namespace such as ``me/``):

- the base model of ``examples/train_tiny.yaml`` (``trl-internal-testing/tiny-Qwen2ForCausalLM-2.5``) is the
  test suite's tiny "parrot" model, pushed to the loopback Hub under that id;
- ``path/to/ner-data`` (the benchmark data root a user supplies) is a 6-sentence CrossNER AI written by the
  test (``tests/fixtures/console.py``);
- ``python`` is this interpreter, ``raitner`` the console script beside it.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest

from tests.fixtures.console import REPO_ROOT, raitner, write_benchmark_root
from tests.fixtures.parrot_model import build_parrot_model

README = REPO_ROOT / "README.md"
BASE_ID = "trl-internal-testing/tiny-Qwen2ForCausalLM-2.5"
DATA_ROOT_PLACEHOLDER = "path/to/ner-data"

# The one list of commands not run here: command prefix -> why. Everything else in the README and the
# epilogs runs in this module.
NOT_RUN = {
    "make demo": "runs the whole install + demo build; the suite checks its pieces (recursive to run inside it)",
    "make test": "runs this very suite (recursive)",
    "export OPENAI_API_KEY=...": "sets a real teacher API key (needs a teacher API)",
    "raitner annotate skypile/": "needs a real teacher API (OpenAI); test_console runs annotate against a fake teacher",
    "raitner build-data outputs/sky-ner --embedder thenlper/gte-large-zh": "needs the annotate output above (teacher API) and GTE-large-zh from the real Hub",
    "raitner train --config examples/train_en_llama3.yaml": "needs a CUDA GPU and Meta-Llama-3-8B from the real Hub",
    "raitner train --config examples/train_zh_qwen.yaml": "needs a CUDA GPU and Qwen1.5-7B from the real Hub",
    "raitner evaluate me/llama3-8b-ra-it-lora": "needs the 8B adapter trained above (GPU)",
    "raitner serve --model me/llama3-8b-ra-it-lora": "needs the 8B adapter trained above (GPU)",
    "raitner annotate hf-user/skypile-150b": "a Slurm cluster, a GPU teacher and the real Hub; "
    "tests/test_corpus_pipeline.py checks the Slurm job chain datatrove writes (sbatch replaced by a recorder)",
    "raitner reproduce recipes/paper-en.yaml --dry-run": "needs the benchmark data root (RAITNER_DATA_ROOT); "
    "tests/test_reproduce.py::test_paper_en_dry_run_prints_the_real_plan runs exactly this on ../shared/data",
    "raitner reproduce recipes/paper-en.yaml --parallel 4": "twelve 8B LoRA trainings: CUDA GPUs and the real Hub",
    "raitner reproduce recipes/smoke.yaml": "its default base model (Qwen2.5-0.5B-Instruct) comes from the real Hub; "
    "tests/test_reproduce.py runs the same recipe with --set base_model=<the tiny model>",
    "hf download me/llama3-8b-ra-it-lora": "the 8B adapter from the real Hub (trained on a GPU)",
    "vllm serve meta-llama/Meta-Llama-3-8B-Instruct": "vLLM needs a CUDA GPU; tests/test_openai_backend.py serves the "
    "tiny model behind the same OpenAI-compatible API",
    "raitner predict me/llama3-8b-ra-it-lora --backend openai": "needs the vLLM server above (GPU); "
    "tests/test_openai_backend.py runs this command against the loopback server",
    "raitner serve --model me/tiny-ra-it-lora": "runs until stopped; tests/test_console.py::test_serve_answers_one_request_and_stops starts one, "
    "queries it through gradio_client and stops it",
}
SUBSTITUTIONS = {
    DATA_ROOT_PLACEHOLDER: "<the test's benchmark data root>",
    "python": sys.executable,
    "raitner": "<venv>/bin/raitner",
}


def readme_commands(text: str) -> list[str]:
    """Shell commands of the ```bash blocks: ``\\`` continuations joined, ``#`` comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            tokens = shlex.split(line, comments=True)
            if tokens:
                commands.append(shlex.join(tokens))
    return commands


def epilog_commands() -> list[str]:
    """The ``Example: raitner ...`` of every command's ``--help``."""
    import typer

    from raitner_hub.cli import app

    group = typer.main.get_command(app)
    out = []
    for name in sorted(group.commands):
        epilog = group.commands[name].epilog or ""
        assert epilog.startswith("Example: raitner "), f"raitner {name} --help has no example: {epilog!r}"
        out.append(shlex.join(shlex.split(epilog.removeprefix("Example: "))))
    return out


COMMANDS = [("README", c) for c in readme_commands(README.read_text(encoding="utf-8"))] + [
    ("epilog", c) for c in epilog_commands()
]


def reason_not_run(command: str) -> str | None:
    return next((why for prefix, why in NOT_RUN.items() if command.startswith(prefix)), None)


def test_every_command_is_run_or_listed():
    assert len([c for where, c in COMMANDS if where == "README"]) >= 15
    unmatched = [prefix for prefix in NOT_RUN if not any(c.startswith(prefix) for _, c in COMMANDS)]
    assert unmatched == [], f"NOT_RUN entries that match no README/epilog command (stale): {unmatched}"
    runnable = [c for _, c in COMMANDS if reason_not_run(c) is None]
    unknown = [c for c in runnable if shlex.split(c)[0] not in ("raitner", "python")]
    assert unknown == [], f"commands this test cannot run and NOT_RUN does not list: {unknown}"
    # The path a user starts with runs here: train from the README, on what the README's build-data writes.
    assert "raitner train --config examples/train_tiny.yaml" in runnable


def test_readme_marks_what_needs_a_gpu_a_hub_or_a_teacher():
    text = README.read_text(encoding="utf-8")
    table = text[text.index("What each block needs:") : text.index("First steps, on a CPU")]
    for need in ("a CUDA GPU", "a Hub account", "teacher API"):
        assert need in table


RUNNABLE = [(where, command) for where, command in COMMANDS if reason_not_run(command) is None]


class Scratch:
    """One scratch folder in which the runnable commands run once each, in README order."""

    def __init__(self, cwd: Path, data_root: Path):
        self.cwd, self.data_root, self.done = cwd, data_root, {}

    def run(self, command: str):
        """Run ``command``, after every runnable command before it (so ``-k`` on one command still works)."""
        for _, earlier in RUNNABLE[: [c for _, c in RUNNABLE].index(command)]:
            if earlier not in self.done:
                self.run(earlier)
        if command not in self.done:
            tokens = [str(self.data_root) if t == DATA_ROOT_PLACEHOLDER else t for t in shlex.split(command)]
            if tokens[0] == "python":
                import subprocess

                self.done[command] = subprocess.run(
                    [sys.executable, *tokens[1:]], cwd=self.cwd, capture_output=True, text=True, timeout=600
                )
            else:
                self.done[command] = raitner(*tokens[1:], cwd=self.cwd, check=False)
        return self.done[command]


@pytest.fixture(scope="module")
def scratch(hub_server, tiny_model_dir, tmp_path_factory) -> Scratch:
    from raitner_hub import hub

    work = tmp_path_factory.mktemp("readme")
    hub.push_folder(build_parrot_model(tiny_model_dir, work / "parrot-model"), BASE_ID, repo_type="model")
    cwd = work / "checkout"
    cwd.mkdir()
    for name in ("examples", "recipes"):  # the folders README commands name, read-only
        if (REPO_ROOT / name).is_dir():
            (cwd / name).symlink_to(REPO_ROOT / name, target_is_directory=True)
    return Scratch(cwd, write_benchmark_root(work / "ner-data"))


@pytest.mark.parametrize(
    "where,command", RUNNABLE, ids=lambda value: value if value in ("README", "epilog") else value[:70]
)
def test_command_runs(scratch, where, command):
    proc = scratch.run(command)
    assert proc.returncode == 0, f"{where}: {command}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    first = shlex.split(command)[1]
    if first == "predict":  # the README says: one JSON list of {start, end, text, label, score}
        entities = json.loads(proc.stdout)
        assert isinstance(entities, list) and all({"start", "end", "text", "label"} <= set(e) for e in entities)
    elif first in ("build-data", "index", "train", "evaluate", "export", "push-benchmarks", "push-space"):
        assert proc.stdout.strip(), f"{command} printed nothing"
    if "--push" in command or first == "push-space":
        assert "pushed" in proc.stdout
