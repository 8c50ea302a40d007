"""Pieces every stage shares, each implemented once: progress bars, first error line, cache root, secrets,
end-of-turn tokens, card data."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from huggingface_hub import utils as hf_utils

from raitner_hub.cache import cache_dir, cache_root
from raitner_hub.errors import first_line
from raitner_hub.manifest import build_manifest, is_secret_key
from raitner_hub.progress import quiet_progress

REPO = Path(__file__).resolve().parent.parent


def test_quiet_progress_silences_every_library_and_restores_what_was_on(monkeypatch):
    import transformers.utils.logging as tf_logging

    hf_tqdm = sys.modules["huggingface_hub.utils.tqdm"]

    # conftest exports HF_HUB_DISABLE_PROGRESS_BARS=1, which makes huggingface_hub refuse to re-enable bars.
    monkeypatch.setattr(hf_tqdm, "HF_HUB_DISABLE_PROGRESS_BARS", None)

    datasets.enable_progress_bars()
    hf_utils.enable_progress_bars()
    tf_logging.enable_progress_bar()
    with quiet_progress():
        assert not datasets.is_progress_bar_enabled()
        assert hf_utils.are_progress_bars_disabled()
        assert not tf_logging.is_progress_bar_enabled()
    assert datasets.is_progress_bar_enabled() and not hf_utils.are_progress_bars_disabled()
    assert tf_logging.is_progress_bar_enabled()
    # Off before the block: stays off after it; quiet=False changes nothing.
    datasets.disable_progress_bars()
    with quiet_progress():
        pass
    assert not datasets.is_progress_bar_enabled()
    with quiet_progress(False):
        assert hf_utils.are_progress_bars_disabled() is False
    datasets.enable_progress_bars()
    hf_utils.disable_progress_bars()  # as the environment had it


def test_quiet_progress_restores_after_an_exception():
    datasets.enable_progress_bars()
    with pytest.raises(RuntimeError), quiet_progress():
        raise RuntimeError("boom")
    assert datasets.is_progress_bar_enabled()


@pytest.mark.parametrize(
    "exc, expected",
    [
        (ValueError("bad value\nTraceback detail"), "bad value"),
        (ValueError("\n  \n  second line is the first non-empty one\nthird"), "second line is the first non-empty one"),
        (OSError(""), "OSError"),
        (KeyError(), "KeyError"),
    ],
)
def test_first_line_handles_empty_messages(exc, expected):
    assert first_line(exc) == expected


def test_one_cache_root_with_sub_folders(tmp_path, monkeypatch):
    from raitner_hub.corpus import _tiktoken_cache_dir
    from raitner_hub.embedder import default_cache_dir
    from raitner_hub.teacher import default_cache_path

    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.setenv("RAITNER_CACHE", str(tmp_path / "root"))
    assert cache_root() == tmp_path / "root"
    assert default_cache_dir() == tmp_path / "root" / "embeddings" == cache_dir("embeddings")
    assert default_cache_path() == tmp_path / "root" / "teacher" / "answers.sqlite"
    assert _tiktoken_cache_dir() == tmp_path / "root" / "tiktoken"
    monkeypatch.delenv("RAITNER_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == Path.home() / ".cache" / "raitner-hub"


def test_secret_keys_match_by_exact_name():
    for key in ("token", "hf_token", "HF_TOKEN", "hub_token", "api_key", "api-key", "openai_api_key", "password"):
        assert is_secret_key(key), key
    for key in ("max_new_tokens", "eos_token", "pad_token", "tokenizer", "max_tokens", "keys", "api_base"):
        assert not is_secret_key(key), key


def test_manifest_records_settings_named_like_tokens_and_refuses_credentials():
    manifest = build_manifest(
        "eval_report",
        settings={"max_new_tokens": 1024, "eos_token": "<|im_end|>"},
        inputs={},
        counts={},
        started=time.time(),
    )
    assert manifest["settings"]["max_new_tokens"] == 1024 and manifest["settings"]["eos_token"] == "<|im_end|>"
    for key in ("hf_token", "api_key", "token"):
        with pytest.raises(ValueError, match=f"credential-like key in a manifest: settings.sft.{key}$"):
            build_manifest(
                "adapter", settings={"sft": {key: "hf_secretvalue123"}}, inputs={}, counts={}, started=time.time()
            )


def test_adapter_settings_keep_eos_token_and_drop_credential_values():
    from raitner_hub.adapter_folder import _public

    block = {
        "eos_token": "<|im_end|>",
        "max_new_tokens": 64,
        "hf_token": "hf_secret1",
        "api_key": "sk-secret2",
        "token": "secret3",
        "learning_rate": 2e-4,
    }
    public = _public(block)
    assert public == {"eos_token": "<|im_end|>", "max_new_tokens": 64, "learning_rate": 2e-4}
    assert not {"secret1", "secret2", "secret3"} & {part for v in map(str, public.values()) for part in [v[-7:]]}


def test_end_of_turn_tokens_are_one_set():
    from raitner_hub import predict
    from raitner_hub.chat_templates import END_OF_TURN_TOKENS

    assert predict.END_OF_TURN_TOKENS is END_OF_TURN_TOKENS
    assert {"<|im_end|>", "<|eot_id|>"} <= set(END_OF_TURN_TOKENS)


def test_card_data_leaves_unknowns_out_and_buckets_rows():
    from raitner_hub.cards import NER_TASK, card_data

    data = card_data(
        tags=["ner", "raitner-hub"],
        license="mit",
        language=["en"],
        rows=12_000,
        **NER_TASK,
        raitner={"seed": 1},
        source_datasets=None,
        base_model=None,
    )
    assert data == {
        "license": "mit",
        "language": ["en"],
        "task_categories": ["token-classification"],
        "task_ids": ["named-entity-recognition"],
        "size_categories": ["10K<n<100K"],
        "tags": ["ner", "raitner-hub"],
        "raitner": {"seed": 1},
    }


@pytest.mark.parametrize(
    "pattern, why, where",
    [
        (r"def first_line\|splitlines()\[0\]\|splitlines() or \[", "first line of an exception", ["errors.py"]),
        (r"disable_progress_bar", "quiet progress bars", ["progress.py"]),
        (r"END_OF_TURN[A-Z_]* = ", "end-of-turn tokens", ["chat_templates/__init__.py"]),
        (r"SECRET_[A-Z_]* = ", "secret key names", ["manifest.py"]),
        (r"def resolve_chat_template", "chat template resolution", ["chat_templates/__init__.py"]),
        (r"\"RAITNER_CACHE\"\|\"XDG_CACHE_HOME\"", "the cache root", ["cache.py"]),
        (r"\"size_categories\"", "card data", ["cards.py"]),
        (r"def resolve(\|def locate(\|looks_like_path(", "local-or-Hub resolution", ["hub.py", "hub_checks.py"]),
    ],
)
def test_each_cross_cutting_piece_exists_once(pattern, why, where):
    found = subprocess.run(
        ["git", "grep", "-n", pattern, "--", "raitner_hub"], cwd=REPO, capture_output=True, text=True
    ).stdout.splitlines()
    files = {line.split(":", 1)[0].removeprefix("raitner_hub/") for line in found}
    assert files == set(where), f"{why}: {found}"
