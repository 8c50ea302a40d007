"""The ``openai`` backend against a loopback OpenAI-compatible server serving the tiny model.

The server (``tests/fixtures/openai_server.py``) runs transformers' own greedy ``generate`` on the same
weights the ``hf`` backend loads, so greedy outputs must be token-identical. Also: 429 then success
(after the server's Retry-After), 500 retried, a bad key is a one-line error, the key never appears in
output, logs or reports, and the CLI commands work through the installed console script.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from raitner_hub import prompts
from raitner_hub.engines import OpenAIEngine
from raitner_hub.errors import ConfigError, EngineError
from raitner_hub.predict import NER, Query
from tests.fixtures.openai_server import OpenAICompletionsServer

pytestmark = pytest.mark.usefixtures("one_thread")

RAITNER = Path(sys.executable).with_name("raitner")
GOOD_KEY = "sk-raitnerTestKeyGood0123456789abcdef"
BAD_KEY = "sk-raitnerTestKeyWRONG0123456789abcdef"
PASSAGES = [
    "Barack Obama visited Paris with Google engineers in 2015 .",
    "Paris",
    "文本 北京 上海 人物 and a few more words",
]
LABELS = ["person", "location", "organization", "date"]
DEMOS = (prompts.Demo("d1", "Google hired Obama .", (("Google", "organization"), ("Obama", "person"))),)


@pytest.fixture(scope="module")
def noisy_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with larger random weights (outputs vary per prompt), saved as a model folder."""
    from tests.fixtures.tiny_model import load_noisy_tiny_model

    model, tokenizer = load_noisy_tiny_model(tiny_model_dir)
    folder = tmp_path_factory.mktemp("noisy-tiny")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def hf_ner(noisy_dir):
    return NER.from_pretrained(noisy_dir, backend="hf", device="cpu", max_new_tokens=10)


@pytest.fixture(scope="module")
def server(hf_ner):
    with OpenAICompletionsServer(hf_ner.model, hf_ner.tokenizer, name="tiny") as srv:
        yield srv


@pytest.fixture
def fresh(server):
    """The shared server with its switches and logs reset after the test."""
    yield server
    server.rate_limit_first = server.server_errors_first = 0
    server.require_key, server.retry_after = None, "0.05"


def queries() -> list[Query]:
    return [
        Query(text, label, demos, lang)
        for text in PASSAGES
        for label in LABELS
        for demos, lang in (((), None), (DEMOS, "en"), ((), "zh"))
    ]


def openai_ner(noisy_dir, server, **options) -> NER:
    return NER.from_pretrained(
        noisy_dir, backend="openai", base_url=server.base_url, served_model="tiny", max_new_tokens=10, **options
    )


def test_greedy_outputs_are_token_identical_to_hf_with_logprobs(hf_ner, noisy_dir, server):
    import torch

    items = queries()
    remote = openai_ner(noisy_dir, server, max_concurrency=8)
    before = len(server.requests)
    ours, reference = remote.generate(items), hf_ner.generate(items)
    assert [g.token_ids for g in ours] == [g.token_ids for g in reference]
    assert [g.text for g in ours] == [g.text for g in reference]
    assert len({g.token_ids for g in reference}) > len(items) // 2  # outputs really differ between questions
    assert max(server.batch_sizes) > 1  # requests were in flight together
    for g in ours:  # one log-prob per generated token (the stop token is not an answer token)
        assert g.logprobs is not None and len(g.logprobs) == len(g.token_ids) == len(g.tokens)
        assert all(lp <= 0 for lp in g.logprobs)
        assert list(g.tokens) == hf_ner.tokenizer.convert_ids_to_tokens(list(g.token_ids))
    # the first token's log-prob is the model's own, from one forward pass over the rendered prompt
    conv, demo_tmpl = hf_ner.templates_for(items[0].text)
    ids = hf_ner._render_ids(prompts.render_query(items[0].text, items[0].label, conv, (), demo_tmpl))
    with torch.no_grad():
        logp = hf_ner.model(torch.tensor([ids])).logits[0, -1].log_softmax(-1)
    assert ours[0].logprobs[0] == pytest.approx(float(logp[ours[0].token_ids[0]]), abs=1e-4)
    # what went over the wire: the locally rendered token ids, greedy, the model's stops and limit
    sent = server.requests[before:]
    assert len(sent) == len(items) and ids in [r["prompt"] for r in sent]
    assert all(
        r["temperature"] == 0
        and r["max_tokens"] == 10
        and r["logprobs"] == 1
        and r["model"] == "tiny"
        and r["stop_token_ids"] == hf_ner.stop_ids
        and r["return_tokens_as_token_ids"]
        for r in sent
    )


def test_predict_and_predict_batch_match_hf(hf_ner, noisy_dir, server):
    remote = openai_ner(noisy_dir, server)
    texts = ["Obama visited Paris .", "北京 上海 人物"]
    labels = [["person", "location"], ["地点"]]
    assert remote.predict_batch(texts, labels, demos=[list(DEMOS), []], lang=["en", "zh"]) == hf_ner.predict_batch(
        texts, labels, demos=[list(DEMOS), []], lang=["en", "zh"]
    )
    assert remote.model is None and remote.backend == "openai"  # only the tokenizer was loaded


def test_server_without_token_ids_still_answers(hf_ner, noisy_dir, server, monkeypatch):
    """A server that ignores ``return_tokens_as_token_ids`` returns token strings: the text is the server's."""
    remote = openai_ner(noisy_dir, server)
    real = remote._engine._body
    monkeypatch.setattr(
        remote._engine, "_body", lambda *a: {**real(*a), "extra_body": {"stop_token_ids": list(hf_ner.stop_ids)}}
    )
    items = [Query("Obama visited Paris .", label) for label in LABELS]
    ours, reference = remote.generate(items), hf_ner.generate(items)
    for g, ref in zip(ours, reference):
        assert g.text == hf_ner.tokenizer.decode(list(g.token_ids), skip_special_tokens=True)
        assert g.tokens is not None and len(g.tokens) == len(g.logprobs) == len(ref.token_ids)


def test_rate_limit_waits_for_retry_after_then_succeeds(hf_ner, noisy_dir, fresh):
    fresh.rate_limit_first, fresh.retry_after = 2, "0.3"
    engine = OpenAIEngine(fresh.base_url, "tiny", tokenizer=hf_ner.tokenizer, backoff=0.001)
    item = Query("Obama visited Paris .", "person")
    conv, demo_tmpl = hf_ner.templates_for(item.text)
    ids = hf_ner._render_ids(prompts.render_query(item.text, item.label, conv, (), demo_tmpl))
    start = time.perf_counter()
    got = engine.generate([ids], stop_ids=hf_ner.stop_ids, max_new_tokens=10)
    assert time.perf_counter() - start >= 0.6  # two waits of the server's 0.3 s, not the 1 ms backoff
    assert engine.stats["rate_limited"] == 2 and engine.stats["requests"] == 1
    assert got[0].token_ids == hf_ner.generate([item])[0].token_ids


def test_server_errors_are_retried_and_persistent_ones_stop_with_one_line(hf_ner, noisy_dir, fresh):
    fresh.server_errors_first = 2
    engine = OpenAIEngine(fresh.base_url, "tiny", tokenizer=hf_ner.tokenizer, backoff=0.001, max_retries=3)
    assert engine.generate([[5, 6, 7]], stop_ids=hf_ner.stop_ids, max_new_tokens=4)[0].token_ids
    assert engine.stats["retries"] == 2 and fresh.status_log[-3:] == [500, 500, 200]
    fresh.server_errors_first = 10
    with pytest.raises(EngineError) as err:
        engine.generate([[5, 6, 7], [8, 9]], stop_ids=hf_ner.stop_ids, max_new_tokens=4)
    assert "HTTP 500 after 4 tries" in str(err.value) and "\n" not in str(err.value)


def test_unknown_model_and_unreachable_server_are_one_line_errors(hf_ner, fresh):
    engine = OpenAIEngine(fresh.base_url, "nope", tokenizer=hf_ner.tokenizer)
    with pytest.raises(
        EngineError,
        match=r"model nope at http://127.0.0.1:\d+/v1: HTTP 404: The model `nope` "
        r"does not exist\. \(check --base-url and --served-model\)$",
    ):
        engine.generate([[5, 6]], stop_ids=hf_ner.stop_ids, max_new_tokens=2)
    dead = OpenAIEngine("http://127.0.0.1:9/v1", "tiny", tokenizer=hf_ner.tokenizer, backoff=0.001, max_retries=1)
    with pytest.raises(EngineError, match="cannot connect .* after 2 tries"):
        dead.generate([[5, 6]], stop_ids=hf_ner.stop_ids, max_new_tokens=2)


def test_bad_key_is_a_one_line_error_and_the_key_never_leaks(hf_ner, noisy_dir, fresh, monkeypatch, caplog):
    fresh.require_key = GOOD_KEY
    monkeypatch.setenv("RAITNER_TEST_KEY", BAD_KEY)
    caplog.set_level(logging.DEBUG)
    remote = openai_ner(noisy_dir, fresh, api_key_env="RAITNER_TEST_KEY")
    with pytest.raises(EngineError) as err:
        remote.predict("Obama visited Paris .", ["person"])
    message = str(err.value)
    assert "refused the request (401 unauthorized); check the key in $RAITNER_TEST_KEY" in message
    assert "\n" not in message and BAD_KEY not in message and BAD_KEY not in repr(remote._engine)
    monkeypatch.setenv("RAITNER_TEST_KEY", GOOD_KEY)
    remote = openai_ner(noisy_dir, fresh, api_key_env="RAITNER_TEST_KEY")
    assert remote.predict("Obama visited Paris .", ["person"]) == hf_ner.predict("Obama visited Paris .", ["person"])
    assert GOOD_KEY not in caplog.text and BAD_KEY not in caplog.text


def test_backend_options_are_checked(noisy_dir):
    with pytest.raises(ConfigError, match="needs the server's URL: --base-url"):
        NER.from_pretrained(noisy_dir, backend="openai")
    with pytest.raises(ConfigError, match="need --backend openai"):
        NER.from_pretrained(noisy_dir, backend="hf", base_url="http://127.0.0.1:1/v1")


# ---- the console script, in fresh processes --------------------------------------------------------------


def _raitner(*args: str, key: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ""}
    env.pop("RAITNER_TEST_KEY", None)
    if key is not None:
        env["RAITNER_TEST_KEY"] = key
    return subprocess.run([str(RAITNER), *args], env=env, capture_output=True, text=True, timeout=300)


REMOTE = [
    "--served-model",
    "tiny",
    "--api-key-env",
    "RAITNER_TEST_KEY",
    "--max-concurrency",
    "4",
    "--max-new-tokens",
    "10",
]
TEXT = "Barack Obama visited Paris with Google engineers ."
BIO = "Obama\tB-person\nvisited\tO\nParis\tB-location\n\nRome\tB-location\nis\tO\nold\tO\n"


def test_cli_predict_in_a_fresh_process(hf_ner, noisy_dir, fresh):
    fresh.require_key = GOOD_KEY
    ok = _raitner(
        "predict",
        str(noisy_dir),
        "--text",
        TEXT,
        "--labels",
        "person,location,organization",
        "--backend",
        "openai",
        "--base-url",
        fresh.base_url,
        *REMOTE,
        key=GOOD_KEY,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1]) == hf_ner.predict(
        TEXT, ["person", "location", "organization"]
    )
    assert GOOD_KEY not in ok.stdout + ok.stderr


def _check_evaluate_report(hf_ner, out: Path, file: Path, tmp_path: Path) -> None:
    from raitner_hub.evaluate import evaluate_model

    reference = evaluate_model(hf_ner, files=[str(file)], labels=["location", "person"], out=tmp_path / "eval-hf")
    assert (out / "predictions.jsonl").read_text().splitlines() == (
        tmp_path / "eval-hf" / "predictions.jsonl"
    ).read_text().splitlines()
    results = json.loads((out / "results.json").read_text())
    published = json.loads((tmp_path / "eval-hf" / "results.json").read_text())  # both with local paths scrubbed
    assert results["model"]["backend"] == "openai" and results["datasets"] == published["datasets"]
    assert reference.results["average"] == results["average"]
    for path in out.rglob("*"):
        if path.is_file() and path.suffix != ".png":
            assert GOOD_KEY not in path.read_text(encoding="utf-8"), path.name


def test_cli_evaluate_and_a_bad_key(hf_ner, noisy_dir, fresh, tmp_path, monkeypatch, caplog):
    from typer.testing import CliRunner

    from raitner_hub.cli import app

    fresh.require_key = GOOD_KEY
    caplog.set_level(logging.DEBUG)
    runner, remote = CliRunner(), ["--backend", "openai", "--base-url", fresh.base_url, *REMOTE]
    monkeypatch.setenv("RAITNER_TEST_KEY", BAD_KEY)
    bad = runner.invoke(app, ["predict", str(noisy_dir), "--text", TEXT, "--labels", "person", *remote])
    assert bad.exit_code == 1 and "401 unauthorized" in bad.output and bad.output.strip().count("\n") == 0
    assert "Traceback" not in bad.output and BAD_KEY not in bad.output
    monkeypatch.setenv("RAITNER_TEST_KEY", GOOD_KEY)
    file = tmp_path / "mini.bio.txt"
    file.write_text(BIO)
    out = tmp_path / "eval-openai"
    run = runner.invoke(
        app,
        ["evaluate", str(noisy_dir), "--file", str(file), "--labels", "location,person", "--out", str(out), *remote],
    )
    assert run.exit_code == 0, run.output
    assert GOOD_KEY not in run.output and GOOD_KEY not in caplog.text and BAD_KEY not in caplog.text
    _check_evaluate_report(hf_ner, out, file, tmp_path)


@pytest.mark.slow  # two fresh processes (~25 s each under load, mostly imports)
def test_cli_evaluate_and_a_bad_key_in_fresh_processes(hf_ner, noisy_dir, fresh, tmp_path):
    fresh.require_key = GOOD_KEY
    remote = ["--backend", "openai", "--base-url", fresh.base_url, *REMOTE]
    bad = _raitner("predict", str(noisy_dir), "--text", TEXT, "--labels", "person", *remote, key=BAD_KEY)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "401 unauthorized" in bad.stderr
    file = tmp_path / "mini.bio.txt"
    file.write_text(BIO)
    out = tmp_path / "eval-openai"
    run = _raitner(
        "evaluate",
        str(noisy_dir),
        "--file",
        str(file),
        "--labels",
        "location,person",
        "--out",
        str(out),
        *remote,
        key=GOOD_KEY,
    )
    assert run.returncode == 0, run.stderr
    for proc in (bad, run):
        assert GOOD_KEY not in proc.stdout + proc.stderr and BAD_KEY not in proc.stdout + proc.stderr
    _check_evaluate_report(hf_ner, out, file, tmp_path)


def test_serve_with_the_openai_backend_answers_like_hf(hf_ner, noisy_dir, server, tmp_path):
    import socket

    import gradio_client

    from raitner_hub.serve import serve

    pool = tmp_path / "pool.jsonl"
    pool.write_text(
        json.dumps(
            {
                "id": "p0",
                "text": "Obama visited Paris .",
                "lang": "en",
                "source": "t",
                "annotator": "gold",
                "entities": [{"start": 0, "end": 5, "text": "Obama", "label": "person"}],
            }
        )
        + "\n"
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo, url = serve(
        str(noisy_dir),
        str(pool),
        lang="en",
        port=port,
        prevent_thread_lock=True,
        quiet=True,
        backend="openai",
        base_url=server.base_url,
        served_model="tiny",
        max_new_tokens=10,
    )
    try:
        predictor = demo.extractor.predictor
        assert predictor.backend == "openai" and predictor.model is None
        before = len(server.requests)
        client = gradio_client.Client(url, verbose=False)
        _, table, demos, status = client.predict(
            "Obama met Merkel in Paris .", "person, location", "en", True, "nn.v1", 1, None, api_name="/extract"
        )
        assert len(server.requests) - before == 2 and [row[1] for row in demos["data"]] == ["p0"], status
        expected = hf_ner.predict(
            "Obama met Merkel in Paris .", ["person", "location"], lang="en", demos=[demo.extractor.index.demo(0)]
        )
        assert table["data"] == [[e["start"], e["end"], e["text"], e["label"]] for e in expected]
    finally:
        demo.close()
