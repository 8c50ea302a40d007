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
    return RetrievalIndex.build(pool, lang="en", embedder="hash512", encoder=HashingEncoder(),
                                cache_dir=str(tmp_path_factory.mktemp("emb")), progress=False, pool_source="test-pool")


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
    highlights, table, demos, status = client.predict(text, types, lang, retrieval, strategy, k, pool,
                                                      api_name="/extract")
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
    assert segments == [("Obama", "person / politician"), (" met ", None), ("Merkel", "person"), (" in ", None),
                        ("Paris", "location")]
    assert "".join(piece for piece, _ in segments) == text
    assert to_highlights("abc", []) == [("abc", None)]
    # a longer span starting at the same place wins over the shorter one
    assert to_highlights("New York City", [{"start": 0, "end": 8, "label": "city"},
                                           {"start": 0, "end": 13, "label": "place"}]) == [("New York City", "place")]


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
    RetrievalIndex.build(datasets.Dataset.from_list(rows(POOL), features=ANNOTATED_FEATURES), lang="en",
                         embedder="bm25", progress=False).push_to_hub("me/pool-index")

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
    reference = RetrievalIndex.build(datasets.Dataset.from_list(rows(IN_DOMAIN), features=ANNOTATED_FEATURES),
                                     lang="en", embedder="hash512", encoder=HashingEncoder(), cache_dir=False,
                                     progress=False)
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
    assert table == [[0, 5, "Obama", "person"], [16, 21, "Paris", "location"], [25, 31, "Berlin", "location"],
                     [40, 46, "Merkel", "person"]]
    assert all(QUERY[s:e] == t for s, e, t, _ in table)  # "Mars" is not in the text: dropped
    labelled = [(seg["token"], seg["class_or_confidence"]) for seg in highlights if seg["class_or_confidence"]]
    assert labelled == [("Obama", "person"), ("Paris", "location"), ("Berlin", "location"), ("Merkel", "person")]
    # the retrieved demonstrations are the ones the predictor was prompted with
    assert [d.id for d in predictor.seen[0].demos] == [row[1] for row in demos]
    assert status.startswith("4 entities found")


@pytest.mark.parametrize("case", ["empty", "blank", "no_types", "too_long"])
def test_bad_text_input_gives_a_message_and_the_app_keeps_serving(scripted_app, case):
    _, client, _ = scripted_app
    text, types = {"empty": ("", "person"), "blank": ("   \n", "person"), "no_types": (QUERY, " , "),
                   "too_long": ("word " * 100, "person")}[case]
    highlights, table, demos, status = extract(client, text, types)
    expected = {"empty": "enter a text", "blank": "enter a text", "no_types": "at least one entity type",
                "too_long": "the limit here is 200"}[case]
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
    malformed.write_text('{"id": "x", "text": "Paris", "entities": [{"start": 0, "end": 9, "text": "Paris", '
                         '"label": "location"}]}\n{not json\n', encoding="utf-8")
    not_ner = tmp_path / "notes.jsonl"
    not_ner.write_text("just some words\n", encoding="utf-8")
    tiny_pool = write_jsonl(tmp_path / "two.jsonl", IN_DOMAIN[:1])
    for path, expected in ((big, "the limit is 4 KB"), (malformed, "could not be read"),
                           (not_ner, "could not be read"), (tiny_pool, "larger than the pool")):
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
    demo, url = serve(str(tiny_model_dir), str(pool), lang="en", port=_free_port(), prevent_thread_lock=True,
                      quiet=True)
    try:
        extractor = demo.extractor
        assert len(extractor.index) == 6 and not extractor.index.dense  # a jsonl pool is ranked by BM25
        _, _, demos, status = extract(gradio_client.Client(url, verbose=False), QUERY, k=1)
        assert len(demos) == 1 and demos[0][1] in {pid for pid, _, _ in POOL}, status
    finally:
        demo.close()


def test_push_space_creates_a_space_that_starts(hub_server, tiny_model_dir, tmp_path):
    from huggingface_hub import SpaceCard, snapshot_download
    from typer.testing import CliRunner

    from raitner_hub.cli import app

    # push-space reads the model's adapter_config.json and the index's manifest: both repos must exist
    import datasets
    from huggingface_hub import HfApi

    from raitner_hub.retrieval import RetrievalIndex

    HfApi().create_repo("tester/ra-it-lora", exist_ok=True)
    HfApi().upload_folder(folder_path=str(tiny_model_dir), repo_id="tester/ra-it-lora")
    RetrievalIndex.build(datasets.Dataset.from_list(rows(POOL), features=ANNOTATED_FEATURES),
                         lang="en", embedder="bm25", progress=False).push_to_hub("tester/pool-index")
    result = CliRunner().invoke(app, ["push-space", "--repo-id", "tester/raitner-ner", "--model", "tester/ra-it-lora",
                                      "--index", "tester/pool-index", "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "tester/raitner-ner" in result.output
    space = Path(snapshot_download("tester/raitner-ner", repo_type="space", local_dir=tmp_path / "space"))
    for name in ("app.py", "README.md", "requirements.txt", "raitner_space.json", "manifest.json",
                 "raitner_hub/serve.py", "raitner_hub/predict.py", "raitner_hub/__init__.py"):
        assert (space / name).is_file(), name
    assert not list(space.rglob("__pycache__"))
    card = SpaceCard.load(space / "README.md").data
    assert (card.sdk, card.sdk_version, card.app_file) == ("gradio", "6.31.0", "app.py")
    assert card.models == ["tester/ra-it-lora"] and card.datasets == ["tester/pool-index"]
    assert card.suggested_hardware in ("zero-a10g", "a10g-small")
    assert json.loads((space / "raitner_space.json").read_text()) == {
        "model": "tester/ra-it-lora", "index": "tester/pool-index", "lang": "en"}
    requirements = (space / "requirements.txt").read_text()
    assert "torch==2.13.0" in requirements and "trust" not in requirements
    assert (space / "raitner_hub" / "serve.py").read_bytes() == (
        Path(__file__).resolve().parent.parent / "raitner_hub" / "serve.py").read_bytes()

    # The downloaded Space starts: env points it at the tiny model and a local pool (no Hub needed).
    pool = write_jsonl(tmp_path / "pool.jsonl", POOL)
    port = _free_port()
    env = {**os.environ, "RAITNER_MODEL": str(tiny_model_dir), "RAITNER_INDEX": str(pool),
           "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=env, stdout=out, stderr=subprocess.STDOUT,
                                text=True)
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
