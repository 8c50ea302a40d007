"""The Space app: launched on 127.0.0.1 and driven with gradio_client; highlighting; bad input; push-space.

The predictor is the real ``NER`` on the tiny random model (its answers are gibberish, the pipeline is real),
or the same class with scripted answers where the test needs known entities. The retrieval pool is a few
English passages embedded with a deterministic hashing encoder (no model download, fast).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

gradio_client = pytest.importorskip("gradio_client")

from raitner_hub.records import ANNOTATED_FEATURES  # noqa: E402
from raitner_hub.serve import build_demo, parse_types, to_highlights  # noqa: E402
from tests.fixtures.serving import IN_DOMAIN, POOL, QUERY, HashingEncoder, rows, scripted_ner  # noqa: E402


def write_jsonl(path: Path, items) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows(items)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pool_index(tmp_path_factory):
    import datasets

    from raitner_hub.retrieval import RetrievalIndex

    pool = datasets.Dataset.from_list(rows(POOL), features=ANNOTATED_FEATURES)
    return RetrievalIndex.build(
        pool,
        lang="en",
        embedder="hash512",
        encoder=HashingEncoder(),
        cache_dir=str(tmp_path_factory.mktemp("emb")),
        progress=False,
        pool_source="test-pool",
    )


@pytest.fixture(scope="module")
def tiny_ner(tiny_model_dir):
    from raitner_hub.predict import NER

    return NER.from_pretrained(tiny_model_dir, lang="en", max_new_tokens=8, backend="hf", device="cpu")


def launch(demo):
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    return gradio_client.Client(url, verbose=False)


@pytest.fixture(scope="module")
def tiny_app(tiny_ner, pool_index):
    demo = build_demo(tiny_ner, pool_index, max_upload_bytes=4_000, pool_encoder=HashingEncoder())
    client = launch(demo)
    yield demo, client
    demo.close()


@pytest.fixture(scope="module")
def scripted_app(tiny_ner, pool_index):
    predictor = scripted_ner(tiny_ner, {"person": ["Obama", "Merkel"], "location": ["Paris", "Berlin", "Mars"]})
    demo = build_demo(predictor, pool_index, max_chars=200)
    client = launch(demo)
    yield demo, client, predictor
    demo.close()


def extract(client, text, types="person, location", *, lang="en", retrieval=True, strategy="nn.v1", k=2, pool=None):
    pool = gradio_client.handle_file(str(pool)) if pool else None
    highlights, table, demos, status = client.predict(
        text, types, lang, retrieval, strategy, k, pool, api_name="/extract"
    )
    return highlights, table["data"], demos["data"], status


# ---- pure helpers ---------------------------------------------------------------------------------------


def test_to_highlights_covers_the_text_and_handles_overlaps():
    text = "Obama met Merkel in Paris"
    entities = [
        {"start": 20, "end": 25, "label": "location"},
        {"start": 0, "end": 5, "label": "person"},
        {"start": 0, "end": 5, "label": "politician"},  # same span, second label: merged
        {"start": 10, "end": 16, "label": "person"},
        {"start": 12, "end": 19, "label": "junk"},  # overlaps Merkel: not highlighted
        {"start": 30, "end": 35, "label": "outside"},  # beyond the text: ignored
    ]
    segments = to_highlights(text, entities)
    assert segments == [
        ("Obama", "person / politician"),
        (" met ", None),
        ("Merkel", "person"),
        (" in ", None),
        ("Paris", "location"),
    ]
    assert "".join(piece for piece, _ in segments) == text
    assert to_highlights("abc", []) == [("abc", None)]
    # a longer span starting at the same place wins over the shorter one
    assert to_highlights(
        "New York City", [{"start": 0, "end": 8, "label": "city"}, {"start": 0, "end": 13, "label": "place"}]
    ) == [("New York City", "place")]


def test_parse_types():
    assert parse_types(" person, location，person ,, 药物、疾病 ") == ["person", "location", "药物", "疾病"]
    assert parse_types("") == [] and parse_types(None) == [] and parse_types(" , ") == []


def test_gpu_decorator_only_with_a_real_spaces_package(monkeypatch):
    import types

    from raitner_hub.serve import gpu

    def fn():
        return 1

    monkeypatch.setitem(sys.modules, "spaces", types.ModuleType("spaces"))  # e.g. the checkout's spaces/ folder
    assert gpu(fn) is fn
    zero_gpu = types.ModuleType("spaces")
    zero_gpu.GPU = lambda f: ("on-gpu", f)
    monkeypatch.setitem(sys.modules, "spaces", zero_gpu)
    assert gpu(fn) == ("on-gpu", fn)


def test_stage_space_lists_only_hub_repos_in_the_card(tiny_model_dir, tmp_path, hub_server):
    import datasets
    from huggingface_hub import SpaceCard

    from raitner_hub.retrieval import RetrievalIndex
    from raitner_hub.space import stage_space

    # stage_space reads the index's manifest (what its query embedder needs): the repo must exist
    RetrievalIndex.build(
        datasets.Dataset.from_list(rows(POOL), features=ANNOTATED_FEATURES), lang="en", embedder="bm25", progress=False
    ).push_to_hub("me/pool-index")

    folder = stage_space(tmp_path / "space", model=str(tiny_model_dir), index="me/pool-index", hardware="a10g-small")
    card = SpaceCard.load(folder / "README.md").data
    assert card.models == [] and card.datasets == ["me/pool-index"] and card.suggested_hardware == "a10g-small"
    manifest = json.loads((folder / "manifest.json").read_text())
    from raitner_hub.manifest import public_path

    # (a local model folder is published relative to the cwd, or as its name: never an absolute path)
    assert manifest["artefact"] == "space" and manifest["settings"]["model"] == public_path(str(tiny_model_dir))
    assert (folder / "raitner_hub" / "stopwords").is_dir() and (folder / "raitner_hub" / "dataset_cards").is_dir()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers


# ---- the launched app -----------------------------------------------------------------------------------


def test_retrieval_on_returns_the_nearest_pool_passages(tiny_app, pool_index):
    _, client = tiny_app
    for k in (1, 3):
        _, _, demos, status = extract(client, QUERY, k=k)
        found, _ = pool_index.search([QUERY], top_k=k)
        expected = [pool_index.ids[i] for i in found[0]]
        assert [row[1] for row in demos] == expected
        assert [row[0] for row in demos] == list(range(1, k + 1))
        for _, pid, text, ents in demos:  # the rows are the pool's own passages and entities
            demo = pool_index.demo(pool_index.row_of(pid))
            assert text == demo.text and ents == str([{m: t} for m, t in demo.pairs])
        assert f"{k} demonstration(s) by nn.v1" in status
    assert set(expected[:2]) == {"news_0", "news_2"}  # they share two names each with the query


def test_retrieval_strategies_draw_from_the_pool(tiny_app, pool_index):
    _, client = tiny_app
    _, _, demos, status = extract(client, QUERY, strategy="diverse_nn.v1", k=2)
    assert len(demos) == 2 and {row[1] for row in demos} <= set(pool_index.ids), status
    # BM25 filter: a short query scores far below the paper's threshold of 20, so nothing survives
    _, _, demos, status = extract(client, QUERY, strategy="bm25_filter.v1", k=2)
    assert demos == [] and "0 demonstration(s) by bm25_filter.v1" in status


def test_retrieval_off_returns_no_demonstrations(tiny_app):
    _, client = tiny_app
    _, _, demos, status = extract(client, QUERY, retrieval=False)
    assert demos == [] and "retrieval off" in status


def test_uploaded_pool_is_used(tiny_app, tmp_path):
    import datasets

    from raitner_hub.retrieval import RetrievalIndex

    _, client = tiny_app
    upload = write_jsonl(tmp_path / "in_domain.jsonl", IN_DOMAIN)
    query = "She took aspirin against the fever."
    _, _, demos, status = extract(client, query, "drug, symptom", k=2, pool=upload)
    reference = RetrievalIndex.build(
        datasets.Dataset.from_list(rows(IN_DOMAIN), features=ANNOTATED_FEATURES),
        lang="en",
        embedder="hash512",
        encoder=HashingEncoder(),
        cache_dir=False,
        progress=False,
    )
    found, _ = reference.search([query], top_k=2)
    assert [row[1] for row in demos] == [reference.ids[i] for i in found[0]]
    assert {row[1] for row in demos} <= {pid for pid, _, _ in IN_DOMAIN}
    assert "uploaded file (3 passages)" in status
    # the same request without the upload goes back to the main pool
    _, _, demos, _ = extract(client, query, "drug, symptom", k=2)
    assert {row[1] for row in demos} <= {pid for pid, _, _ in POOL}


def test_tiny_model_entities_index_the_text(tiny_app, tiny_ner):
    _, client = tiny_app
    before = tiny_ner.stats["questions"]
    highlights, table, _, status = extract(client, QUERY, "person, location, organization")
    assert tiny_ner.stats["questions"] == before + 3  # one question per type really reached the model
    for start, end, text, label in table:
        assert QUERY[start:end] == text and label in ("person", "location", "organization")
    assert "".join(seg["token"] for seg in highlights) == QUERY
    assert re.match(r"\d+ entit(y|ies) found", status)


def test_entities_come_back_with_offsets_and_highlights(scripted_app):
    _, client, predictor = scripted_app
    highlights, table, demos, status = extract(client, QUERY)
    assert table == [
        [0, 5, "Obama", "person"],
        [16, 21, "Paris", "location"],
        [25, 31, "Berlin", "location"],
        [40, 46, "Merkel", "person"],
    ]
    assert all(QUERY[s:e] == t for s, e, t, _ in table)  # "Mars" is not in the text: dropped
    labelled = [(seg["token"], seg["class_or_confidence"]) for seg in highlights if seg["class_or_confidence"]]
    assert labelled == [("Obama", "person"), ("Paris", "location"), ("Berlin", "location"), ("Merkel", "person")]
    # the retrieved demonstrations are the ones the predictor was prompted with
    assert [d.id for d in predictor.seen[0].demos] == [row[1] for row in demos]
    assert status.startswith("4 entities found")


@pytest.mark.parametrize("case", ["empty", "blank", "no_types", "too_long"])
def test_bad_text_input_gives_a_message_and_the_app_keeps_serving(scripted_app, case):
    _, client, _ = scripted_app
    text, types = {
        "empty": ("", "person"),
        "blank": ("   \n", "person"),
        "no_types": (QUERY, " , "),
        "too_long": ("word " * 100, "person"),
    }[case]
    highlights, table, demos, status = extract(client, text, types)
    expected = {
        "empty": "enter a text",
        "blank": "enter a text",
        "no_types": "at least one entity type",
        "too_long": "the limit here is 200",
    }[case]
    assert expected in status and status.startswith("**⚠")
    assert highlights == [] and table == [] and demos == []
    assert extract(client, QUERY)[1]  # a valid call right after works


def test_k_out_of_range_is_refused_and_the_app_keeps_serving(scripted_app):
    demo, client, _ = scripted_app
    with pytest.raises(Exception, match="greater than maximum value 8"):  # the slider's own bound check
        extract(client, QUERY, k=50)
    assert "k must be between 1 and 8" in demo.extractor.extract(QUERY, "person", k=50).message  # direct callers
    assert extract(client, QUERY)[1]


def test_bad_uploads_give_a_message_and_the_app_keeps_serving(tiny_app, tmp_path):
    _, client = tiny_app
    big = write_jsonl(tmp_path / "big.jsonl", IN_DOMAIN * 20)  # over the 4 KB limit of this app
    malformed = tmp_path / "broken.jsonl"
    malformed.write_text(
        '{"id": "x", "text": "Paris", "entities": [{"start": 0, "end": 9, "text": "Paris", '
        '"label": "location"}]}\n{not json\n',
        encoding="utf-8",
    )
    not_ner = tmp_path / "notes.jsonl"
    not_ner.write_text("just some words\n", encoding="utf-8")
    tiny_pool = write_jsonl(tmp_path / "two.jsonl", IN_DOMAIN[:1])
    for path, expected in (
        (big, "the limit is 4 KB"),
        (malformed, "could not be read"),
        (not_ner, "could not be read"),
        (tiny_pool, "larger than the pool"),
    ):
        _, _, demos, status = extract(client, QUERY, pool=path, k=2)
        assert status.startswith("**⚠") and expected in status, status
        assert demos == []
        assert str(tmp_path) not in status  # server paths stay private
    _, _, demos, status = extract(client, QUERY)
    assert len(demos) == 2 and not status.startswith("**⚠")


def test_presets_and_examples_are_wired(tiny_app):
    demo, client = tiny_app
    api = client.view_api(return_format="dict", print_info=False)
    assert list(api["named_endpoints"]) == ["/extract"]  # helpers are not part of the public API
    extractor = demo.extractor
    assert extractor.describe_pool().startswith("Pool: test-pool, 6 passages (en)")


# ---- batching: concurrent requests decoded together, each answer the one it gets alone ---------------------


@pytest.fixture(scope="module")
def recording_ner(tiny_model_dir):
    """The real NER on the tiny model with larger random weights (answers vary per prompt), recording every
    answer by its question and the size of every decode call."""
    from raitner_hub.predict import NER
    from tests.fixtures.tiny_model import load_noisy_tiny_model

    class Recording(NER):
        def generate(self, items):
            out = super().generate(items)
            self.calls.append(len(items))
            for item, generation in zip(items, out):
                assert self.answers.setdefault(item, generation.text) == generation.text, "answer changed"
            return out

    model, tokenizer = load_noisy_tiny_model(tiny_model_dir)
    ner = Recording(model, tokenizer, model_id="noisy", max_new_tokens=6)
    ner.calls, ner.answers = [], {}
    return ner


def mixed_requests(upload):
    return [  # (text, types, lang, use_retrieval, strategy, k, pool_file)
        (QUERY, "person, location", "en", True, "nn.v1", 2, None),
        ("2018年12月，马云在杭州出席了阿里巴巴的年会。", "人物, 地点", "zh", False, "nn.v1", 2, None),
        ("马云在杭州。", "人物", "auto", False, "nn.v1", 1, None),  # detected: zh templates
        ("Google hired Merkel in London.", "organization, person", "auto", True, "diverse_nn.v1", 3, None),
        ("", "person", "en", True, "nn.v1", 2, None),  # bad: its own message, the others go on
        ("She took aspirin against the fever.", "drug, symptom", "en", True, "nn.v1", 2, str(upload)),
        (QUERY, "location", "en", True, "bm25_filter.v1", 2, None),
        (QUERY, "person, location", "en", False, "nn.v1", 2, None),
    ]


def test_a_batch_answers_each_request_as_it_is_answered_alone(recording_ner, pool_index, tmp_path):
    from raitner_hub.serve import Extractor

    extractor = Extractor(recording_ner, pool_index, pool_encoder=HashingEncoder())
    requests = mixed_requests(write_jsonl(tmp_path / "in_domain.jsonl", IN_DOMAIN))
    alone = [extractor.extract(*request) for request in requests]
    alone_answers, calls = dict(recording_ner.answers), len(recording_ner.calls)
    recording_ner.answers.clear()
    together = extractor.extract_batch(requests)
    assert len(recording_ner.calls) == calls + 1  # one decode call for the whole batch
    assert recording_ner.calls[-1] == sum(len(parse_types(r[1])) for r in requests if r[0])
    assert recording_ner.answers == alone_answers  # every question, answered token for token the same
    assert [(r.ok, r.entities, r.demos, r.message) for r in together] == [
        (r.ok, r.entities, r.demos, r.message) for r in alone
    ]
    assert not together[4].ok and "enter a text" in together[4].message
    langs = {q.text: q.lang for q in recording_ner.answers}
    assert langs[requests[1][0]] == "zh" and langs[QUERY] == "en" and langs[requests[2][0]] is None
    demos: dict[tuple, set] = {}
    for q in recording_ner.answers:
        demos.setdefault((q.text, q.label), set()).add(tuple(d.id for d in q.demos))
    assert sorted(map(len, demos[(QUERY, "person")])) == [0, 2]  # retrieval off, and nn.v1 with k = 2
    assert demos[(requests[1][0], "人物")] == {()} and len(next(iter(demos[(requests[3][0], "person")]))) == 3
    assert set(next(iter(demos[(requests[5][0], "drug")]))) <= {pid for pid, _, _ in IN_DOMAIN}
    assert recording_ner.lang is None  # nothing was set on the predictor


def test_a_failing_batch_is_retried_request_by_request(recording_ner, pool_index, monkeypatch):
    from raitner_hub.errors import InputError
    from raitner_hub.serve import Extractor

    extractor = Extractor(recording_ner, pool_index)
    real = recording_ner.predict_batch

    def fragile(texts, labels, **kw):  # a request the model cannot take makes its whole batch fail
        if any("poison" in t for t in texts):
            raise InputError("this passage cannot be decoded") if len(texts) == 1 else RuntimeError("batch failed")
        return real(texts, labels, **kw)

    monkeypatch.setattr(recording_ner, "predict_batch", fragile)
    results = extractor.extract_batch(
        [(QUERY, "person", "en", False, "nn.v1", 2, None), ("poison pill", "person", "en", False, "nn.v1", 2, None)]
    )
    assert results[0].ok and results[0].message.endswith("retrieval off: no demonstrations.")
    assert not results[1].ok and results[1].message == "this passage cannot be decoded"


def test_concurrent_gradio_requests_share_a_decode_batch(recording_ner, pool_index, tmp_path):
    requests = [r for r in mixed_requests(write_jsonl(tmp_path / "up.jsonl", IN_DOMAIN)) if r[0]]
    demo = build_demo(recording_ner, pool_index, pool_encoder=HashingEncoder(), max_batch_size=8)
    client = launch(demo)
    try:

        def call(request):
            text, types, lang, retrieval, strategy, k, pool = request
            return client.submit(
                text,
                types,
                lang,
                retrieval,
                strategy,
                k,
                gradio_client.handle_file(pool) if pool else None,
                api_name="/extract",
            )

        one_by_one = [call(r).result(timeout=120) for r in requests]
        sizes = len(recording_ner.calls)
        jobs = [call(r) for r in requests * 2]
        together = [job.result(timeout=120) for job in jobs]
        assert together == one_by_one * 2
        assert len(recording_ner.calls) - sizes < len(jobs)  # fewer decode calls than requests: batched
    finally:
        demo.close()


# ---- local serving and the Space bundle ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode("utf-8", "replace")
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no answer from {url} within {timeout} s")


def test_serve_loads_a_model_folder_and_a_pool_file(tiny_model_dir, tmp_path):
    from raitner_hub.serve import serve

    pool = write_jsonl(tmp_path / "pool.jsonl", POOL)
    demo, url = serve(
        str(tiny_model_dir), str(pool), lang="en", port=_free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        extractor = demo.extractor
        assert len(extractor.index) == 6 and not extractor.index.dense  # a jsonl pool is ranked by BM25
        _, _, demos, status = extract(gradio_client.Client(url, verbose=False), QUERY, k=1)
        assert len(demos) == 1 and demos[0][1] in {pid for pid, _, _ in POOL}, status
    finally:
        demo.close()


def test_push_space_creates_a_space_that_starts(hub_server, tiny_model_dir, tmp_path):
    # push-space reads the model's adapter_config.json and the index's manifest: both repos must exist
    import datasets
    from huggingface_hub import HfApi, SpaceCard, snapshot_download
    from typer.testing import CliRunner

    from raitner_hub.cli import app
    from raitner_hub.retrieval import RetrievalIndex

    HfApi().create_repo("tester/ra-it-lora", exist_ok=True)
    HfApi().upload_folder(folder_path=str(tiny_model_dir), repo_id="tester/ra-it-lora")
    RetrievalIndex.build(
        datasets.Dataset.from_list(rows(POOL), features=ANNOTATED_FEATURES), lang="en", embedder="bm25", progress=False
    ).push_to_hub("tester/pool-index")
    result = CliRunner().invoke(
        app,
        [
            "push-space",
            "--repo-id",
            "tester/raitner-ner",
            "--model",
            "tester/ra-it-lora",
            "--index",
            "tester/pool-index",
            "--lang",
            "en",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tester/raitner-ner" in result.output
    space = Path(snapshot_download("tester/raitner-ner", repo_type="space", local_dir=tmp_path / "space"))
    for name in (
        "app.py",
        "README.md",
        "requirements.txt",
        "raitner_space.json",
        "manifest.json",
        "raitner_hub/serve.py",
        "raitner_hub/predict.py",
        "raitner_hub/__init__.py",
    ):
        assert (space / name).is_file(), name
    assert not list(space.rglob("__pycache__"))
    card = SpaceCard.load(space / "README.md").data
    assert (card.sdk, card.sdk_version, card.app_file) == ("gradio", "6.31.0", "app.py")
    assert card.models == ["tester/ra-it-lora"] and card.datasets == ["tester/pool-index"]
    assert card.suggested_hardware in ("zero-a10g", "a10g-small")
    assert json.loads((space / "raitner_space.json").read_text()) == {
        "model": "tester/ra-it-lora",
        "index": "tester/pool-index",
        "lang": "en",
    }
    requirements = (space / "requirements.txt").read_text()
    assert "torch==2.13.0" in requirements and "trust" not in requirements
    assert (space / "raitner_hub" / "serve.py").read_bytes() == (
        Path(__file__).resolve().parent.parent / "raitner_hub" / "serve.py"
    ).read_bytes()

    # The downloaded Space starts: env points it at the tiny model and a local pool (no Hub needed).
    pool = write_jsonl(tmp_path / "pool.jsonl", POOL)
    port = _free_port()
    env = {
        **os.environ,
        "RAITNER_MODEL": str(tiny_model_dir),
        "RAITNER_INDEX": str(pool),
        "GRADIO_SERVER_PORT": str(port),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": "",
    }
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=space, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    try:
        page = _wait_for_http(f"http://127.0.0.1:{port}/", proc, log)
        assert "RA-IT open NER" in page or "gradio" in page.lower()
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
        _, _, demos, status = extract(client, QUERY, k=2)
        assert len(demos) == 2 and {row[1] for row in demos} <= {pid for pid, _, _ in POOL}, status
        # the Space runs the bundled copy of the package, not the one installed here
        assert f"from {space.resolve() / 'raitner_hub'}" in log.read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_push_space_needs_a_repo_id_and_a_model():
    from typer.testing import CliRunner

    from raitner_hub.cli import app

    result = CliRunner().invoke(app, ["push-space", "--model", "me/x"])
    assert result.exit_code != 0
    result = CliRunner().invoke(app, ["push-space", "--repo-id", "me/space"])
    assert result.exit_code != 0
