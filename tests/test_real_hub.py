"""The real Hugging Face Hub (marker ``hub``; deselected by default, never run in CI).

Run with a write token and a throwaway namespace you own::

    RAITNER_REAL_HUB_TOKEN=hf_... RAITNER_REAL_HUB_NAMESPACE=me pytest -m hub tests/test_real_hub.py

The suite's conftest points every client at the loopback server, so these tests run the clients in
subprocesses with the real endpoint; each creates private repos under the namespace and deletes them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.hub

REPO = Path(__file__).resolve().parent.parent
TOKEN = os.environ.get("RAITNER_REAL_HUB_TOKEN")
NAMESPACE = os.environ.get("RAITNER_REAL_HUB_NAMESPACE")


@pytest.fixture
def real_env(tmp_path):
    if not (TOKEN and NAMESPACE):
        pytest.skip("set RAITNER_REAL_HUB_TOKEN and RAITNER_REAL_HUB_NAMESPACE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "RAITNER_TEST"))}
    env.update(HF_TOKEN=TOKEN, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    return env


def run(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=900)


def test_build_push_and_load_from_the_real_hub(real_env, tmp_path):
    repo_id = f"{NAMESPACE}/raitner-hub-test-{uuid.uuid4().hex[:8]}"
    try:
        proc = run(
            real_env,
            "-m",
            "raitner_hub",
            "build-data",
            "examples/data/sky_ner_sample.zh.jsonl",
            "--embedder",
            "bm25",
            "--strategy",
            "nn.v1",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
            "--push",
            "--repo-id",
            repo_id,
            "--private",
        )
        assert proc.returncode == 0, proc.stderr
        assert TOKEN not in proc.stdout + proc.stderr
        check = (
            "import datasets, sys; ds = datasets.load_dataset(sys.argv[1], 'ra-nn-k2'); "
            "print(len(ds['train']) + len(ds['validation']))"
        )
        proc = run(real_env, "-c", check, repo_id)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().splitlines()[-1] == "299"
    finally:
        run(
            real_env,
            "-c",
            "import sys; from huggingface_hub import HfApi; "
            "HfApi().delete_repo(sys.argv[1], repo_type='dataset', missing_ok=True)",
            repo_id,
        )
