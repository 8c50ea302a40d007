"""annotate.py + teacher.py against the loopback fake teacher: parsing, filters, voting, pipeline, resume, errors."""

from __future__ import annotations

import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from typer.testing import CliRunner

from raitner_hub.annotate import (
    JUNK_TYPES,
    annotate_corpus,
    annotate_passages,
    annotate_to_folder,
    filter_pairs,
    parse_response,
    strip_brackets,
    vote,
)
from raitner_hub.config import AnnotateConfig
from raitner_hub.errors import TeacherError
from raitner_hub.prompts import annotation_prompt, render_annotation
from raitner_hub.records import ANNOTATED_FEATURES
from raitner_hub.teacher import AnswerCache, TeacherSpec
from tests.fixtures.fake_teacher import FakeTeacher, wait_until_cached

REPO = Path(__file__).resolve().parent.parent


def drops_of(pairs, text, lang="zh"):
    drops = collections.Counter()
    return filter_pairs(pairs, text, lang, drops), drops


def config(fake, corpus, tmp_path, **kwargs) -> AnnotateConfig:
    models = kwargs.pop("models", ("teacher-a",))
    teachers = tuple(
        TeacherSpec(model=m, base_url=fake.base_url, key_env=None, cost_per_1k_input=0.5, cost_per_1k_output=1.5)
        for m in models
    )
    kwargs.setdefault("cache", str(tmp_path / "cache.sqlite"))
    return AnnotateConfig(
        corpus=str(corpus), lang=kwargs.pop("lang", "zh"), teachers=teachers, concurrency=4, backoff=0.01, **kwargs
    )


def subset(shared_data, lang: str, n: int, tmp_path: Path) -> Path:
    name = (
        "zh/raw_passages/skypile_chunks_from_skyner.jsonl"
        if lang == "zh"
        else "en/raw_passages/pile_passages_from_pilener.jsonl"
    )
    lines = (shared_data / name).read_text(encoding="utf-8").splitlines()[:n]
    path = tmp_path / f"{lang}-{n}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def realistic_answer(passage: str, model: str) -> str:
    """A teacher-like answer: real mentions, a fenced block, plus one item for each filter to catch."""
    if not any("\u4e00" <= ch <= "\u9fff" for ch in passage):  # English
        mention, long_mention = passage.split()[0], " ".join(["word"] * 21)
    else:
        mention, long_mention = passage[:3], "长" * 21
    items = [
        {mention: "概念"},
        {mention: "概念"},
        {"不存在的提及XYZ": "人物"},
        {mention: "misc"},
        {long_mention: "组织"},
        {f"《{mention}》": "作品"},
    ]
    return "好的，结果如下：\n```json\n" + json.dumps(items, ensure_ascii=False) + "\n```\n希望有帮助。"


# ---- parsing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("response", ["", "[]", "[{}]", "A: []", "{}", "  []\n"])
def test_empty_answers_mean_no_entities(response):
    assert parse_response(response) == []


@pytest.mark.parametrize(
    "response, expected",
    [
        ('```json\n[{"北京": "地点"}, {"新华社": "组织"}]\n```', [("北京", "地点"), ("新华社", "组织")]),
        ('[{"北京": "地点"}]\nNote: [x] is not an entity.', [("北京", "地点")]),
        ("[{'Obama': 'person'}, {'Paris': 'city'}]", [("Obama", "person"), ("Paris", "city")]),
        ('[{"entity 1": "Obama", "type of entity 1": "person"}]', [("Obama", "person")]),
        (
            '[{"实体1": "新华社", "实体1的类别": "机构"}, {"实体1": "北京", "实体1的类别": "地点"}]',
            [("新华社", "机构"), ("北京", "地点")],
        ),
        ('[{"北京": "地点", "上海": "地点"}]', [("北京", "地点"), ("上海", "地点")]),  # one multi-key dict: split
        ('[{"你好，世界：再见。": "作品"}]', [("你好，世界：再见。", "作品")]),  # untouched: no ，。： mapping
        ('[{"[1] Smith": "citation"}]', [("[1] Smith", "citation")]),  # inner brackets survive
        ('[{"北京"："地点"}，{"上海"："地点"}]', [("北京", "地点"), ("上海", "地点")]),  # fallback: mapping
        ('[{"北京": null}]', [("北京", None)]),
        ('Entities: {"北京": "地点"} and {"上海": "地点"}', [("北京", "地点"), ("上海", "地点")]),  # step 4
    ],
)
def test_parse_tolerates_what_teachers_write(response, expected):
    assert parse_response(response) == expected


def test_parse_multi_item_lists_keep_the_first_key_and_count_the_rest():
    drops = collections.Counter()
    assert parse_response('[{"a": "x", "b": "y"}, {"c": "z"}]', drops) == [("a", "x"), ("c", "z")]
    assert drops["not_a_pair"] == 1


@pytest.mark.parametrize("response", ["I cannot help with that.", '[{"北京": "地点"', "[1, 2, 3]"])
def test_unreadable_answers_are_none(response):
    assert parse_response(response) is None


# ---- filters ----------------------------------------------------------------------------------------------


def test_zh_length_threshold_is_20_characters():
    m20, m21 = "甲" * 20, "乙" * 21
    kept, drops = drops_of([(m20, "类型"), (m21, "类型")], m20 + m21)
    assert kept == [(m20, "类型")] and drops["too_long"] == 1


def test_en_length_threshold_is_20_words():
    m20, m21 = " ".join(["a"] * 20), " ".join(["b"] * 21)
    kept, drops = drops_of([(m20, "t"), (m21, "t")], m20 + " " + m21, "en")
    assert kept == [(m20, "t")] and drops["too_long"] == 1
    # a zh-length rule would keep neither 41 characters; the en rule counts split(" ") pieces
    assert drops_of([("x" * 40, "t")], "x" * 40, "en")[0] == [("x" * 40, "t")]


def test_mention_must_occur_case_insensitively():
    kept, drops = drops_of([("OBAMA", "person"), ("Biden", "person")], "obama spoke.", "en")
    assert kept == [("OBAMA", "person")] and drops["not_in_text"] == 1


@pytest.mark.parametrize("junk", sorted(JUNK_TYPES) + ["MISC", "Entity Type", "None", "NA"])
def test_all_13_junk_types_dropped(junk):
    kept, drops = drops_of([("北京", junk), ("北京", "地点")], "北京")
    assert kept == [("北京", "地点")] and drops["junk_type"] == 1


def test_junk_list_has_exactly_13_entries():
    assert len(JUNK_TYPES) == 13 and {"entity type", "entity"} <= JUNK_TYPES


def test_bracket_stripping_order_and_dedup_after():
    assert strip_brackets("《【红楼梦】》") == "红楼梦"
    assert strip_brackets("[《红楼梦》]") == "《红楼梦》"  # 《》 is checked before [], so it stays
    kept, drops = drops_of([("《红楼梦》", "书"), ("红楼梦", "书"), ("【新闻】", "栏目")], "读《红楼梦》，看【新闻】")
    assert kept == [("红楼梦", "书"), ("新闻", "栏目")]
    assert drops["duplicate_after_strip"] == 1


def test_first_occurrence_order_and_pair_level_drops():
    pairs = [
        ("上海", "地点"),
        ("北京", ["地点"]),
        ("北京", "地点"),
        ("上海", "地点"),
        ("北京", "O"),
        ("北京", None),
        ("北京", 3),
        ("", "地点"),
    ]
    kept, drops = drops_of(pairs, "北京和上海")
    assert kept == [("上海", "地点"), ("北京", "地点")]  # the unhashable pair does not empty the passage
    assert (
        drops["unhashable_type"],
        drops["duplicate"],
        drops["type_o"],
        drops["non_string"],
        drops["empty_mention"],
    ) == (1, 1, 2, 1, 1)


def test_vote_counts_teachers_not_repeats():
    a = [("北京", "地点"), ("上海", "地点"), ("张三", "人物")]
    b = [("北京", "地点"), ("张三", "人名")]
    c = [("北京", "地点"), ("上海", "地点"), ("李四", "人物")]
    assert vote([a, b, c], 1) == (a + [("张三", "人名"), ("李四", "人物")], 0)
    assert vote([a, b, c], 2) == ([("北京", "地点"), ("上海", "地点")], 3)
    assert vote([a, b, c], 3) == ([("北京", "地点")], 4)


# ---- pipeline against the fake teacher --------------------------------------------------------------------


def check_offsets(dataset):
    for row in dataset:
        for ent in row["entities"]:
            assert row["text"][ent["start"] : ent["end"]] == ent["text"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_full_pipeline_on_shared_raw_passages(shared_data, tmp_path, fake_teacher, lang):
    corpus = subset(shared_data, lang, 60, tmp_path)
    fake_teacher.default = realistic_answer
    cfg = config(fake_teacher, corpus, tmp_path, lang=lang, chunk=False)
    result = annotate_to_folder(cfg, tmp_path / "out", progress=False)
    ds = datasets.load_dataset(str(tmp_path / "out"), split="train", cache_dir=str(tmp_path / "hf"))
    assert len(ds) == 60 and ds.features == ANNOTATED_FEATURES
    check_offsets(ds)
    expected_ids = [json.loads(line)["id"] for line in corpus.read_text(encoding="utf-8").splitlines()]
    assert ds["id"] == expected_ids  # ids kept through annotation
    assert all(row["entities"] for row in ds)  # the real mention survives, once per occurrence
    labels = {e["label"] for row in ds for e in row["entities"]}
    assert labels <= {"概念", "作品"}
    drops = result.counts["drops"]
    assert drops["duplicate"] == 60 and drops["not_in_text"] >= 60 and drops["too_long"] == 60
    assert drops["junk_type"] == 60
    calls = result.manifest["calls"]["teacher-a"]
    assert calls["calls"] == 60 and calls["cost_usd"] > 0
    # every request is the paper's prompt at temperature 0
    first = fake_teacher.requests[0]
    assert first["temperature"] == 0
    texts = {json.loads(line)["text"].strip() for line in corpus.read_text(encoding="utf-8").splitlines()}
    assert any(first["messages"] == render_annotation(t, annotation_prompt(lang)) for t in texts)
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "token-classification" in card and f"annotate.{lang}.v1" in card and "| `junk_type` | 60 |" in card
    from raitner_hub.formats import read_annotated

    assert len(read_annotated(str(tmp_path / "out"))) == 60  # build-data can read it


def test_chunked_zh_pipeline_and_cache_reuse(shared_data, tmp_path, fake_teacher):
    corpus = shared_data / "zh" / "raw_passages" / "skypile_10_docs.jsonl"
    fake_teacher.default = realistic_answer
    cfg = config(fake_teacher, corpus, tmp_path, sample=20, seed=7)
    first, facts = annotate_corpus(cfg, progress=False)
    assert len(first) == 20 and facts["corpus"]["chunks"] == 48
    check_offsets(first)
    again, facts2 = annotate_corpus(cfg, progress=False)  # all cached: no call, same result
    assert fake_teacher.total_answered == 20 and facts2["calls"]["teacher-a"]["cached"] == 20
    assert again.to_list() == first.to_list()


def test_three_teachers_vote(tmp_path, fake_teacher):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        json.dumps({"id": "p1", "text": "张三和李四在北京和上海。"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    answers = {
        "a": [{"北京": "地点"}, {"上海": "地点"}, {"张三": "人物"}],
        "b": [{"北京": "地点"}, {"张三": "人名"}],
        "c": [{"北京": "地点"}, {"上海": "地点"}, {"李四": "人物"}],
    }
    fake_teacher.default = lambda passage, model: json.dumps(answers[model], ensure_ascii=False)
    cfg = config(fake_teacher, corpus, tmp_path, models=("a", "b", "c"), min_votes=2, chunk=False)
    ds, facts = annotate_corpus(cfg, progress=False)
    assert [(e["text"], e["label"]) for e in ds[0]["entities"]] == [("北京", "地点"), ("上海", "地点")]
    assert ds[0]["entities"][0]["start"] == 6
    annotator = json.loads(ds[0]["annotator"])
    assert annotator["teachers"] == ["a", "b", "c"] and annotator["min_votes"] == 2
    assert annotator["per_teacher"]["b"] == [["北京", "地点"], ["张三", "人名"]]
    assert facts["drops"]["below_min_votes"] == 3
    assert collections.Counter(r["model"] for r in fake_teacher.requests) == {"a": 1, "b": 1, "c": 1}


def test_empty_passage_gets_no_call(tmp_path, fake_teacher):
    passages = datasets.Dataset.from_dict(
        {"id": ["x", "y"], "text": ["", "北京"], "lang": ["zh"] * 2, "source": ["s"] * 2}
    )
    fake_teacher.answers = {"北京": '[{"北京": "地点"}]'}
    ds, facts = annotate_passages(passages, config(fake_teacher, "unused", tmp_path), progress=False)
    assert fake_teacher.total_answered == 1 and facts["empty_passages_not_sent"] == 1
    assert ds[0]["entities"] == [] and ds[1]["entities"][0]["text"] == "北京"


# ---- endpoint misbehaviour --------------------------------------------------------------------------------


def tiny_corpus(tmp_path, n=6) -> Path:
    path = tmp_path / "tiny.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": f"第{i}段：北京。"}, ensure_ascii=False) + "\n" for i in range(n)),
        encoding="utf-8",
    )
    return path


def test_429_honours_retry_after(tmp_path, fake_teacher):
    fake_teacher.default = lambda passage, model: '[{"北京": "地点"}]'
    fake_teacher.rate_limit_first, fake_teacher.retry_after = 3, "0.2"
    # a 30 s backoff would make this test take minutes: finishing fast shows Retry-After was used
    cfg = dataclass_replace(config(fake_teacher, tiny_corpus(tmp_path), tmp_path, chunk=False), backoff=30.0)
    started = time.monotonic()
    ds, facts = annotate_corpus(cfg, progress=False)
    assert time.monotonic() - started < 15
    calls = facts["calls"]["teacher-a"]
    assert (calls["rate_limited"], calls["retries"], calls["calls"]) == (3, 3, 6)
    assert fake_teacher.status_log.count(429) == 3 and all(row["entities"] for row in ds)


def test_5xx_is_retried_with_backoff(tmp_path, fake_teacher):
    fake_teacher.default = lambda passage, model: '[{"北京": "地点"}]'
    fake_teacher.server_errors_first = 2
    ds, facts = annotate_corpus(config(fake_teacher, tiny_corpus(tmp_path), tmp_path, chunk=False), progress=False)
    calls = facts["calls"]["teacher-a"]
    assert (calls["retries"], calls["calls"]) == (2, 6) and fake_teacher.status_log.count(500) == 2
    assert all(row["entities"] for row in ds)


def test_rejected_requests_are_not_cached_and_are_asked_again(tmp_path, fake_teacher):
    fake_teacher.default = lambda passage, model: '[{"北京": "地点"}]'
    fake_teacher.bad_requests_first = 2
    cfg = config(fake_teacher, tiny_corpus(tmp_path), tmp_path, chunk=False)
    ds, facts = annotate_corpus(cfg, progress=False)
    assert facts["calls"]["teacher-a"]["rejected"] == 2
    assert sum(1 for row in ds if not row["entities"]) == 2  # empty for now, counted
    ds, facts = annotate_corpus(cfg, progress=False)  # same cache: only the two rejected passages are asked
    assert facts["calls"]["teacher-a"]["calls"] == 2 and facts["calls"]["teacher-a"]["cached"] == 4
    assert all(row["entities"] for row in ds)


def dataclass_replace(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def test_timeouts_fail_with_one_line_and_keep_cache(tmp_path, fake_teacher):
    fake_teacher.delay = 1.0
    cfg = dataclass_replace(
        config(fake_teacher, tiny_corpus(tmp_path, 2), tmp_path, chunk=False), timeout=0.2, max_retries=1
    )
    with pytest.raises(TeacherError, match="timed out after 2 tries.*re-run the same command to resume"):
        annotate_corpus(cfg, progress=False)


def test_malformed_json_counts_unparseable(tmp_path, fake_teacher):
    fake_teacher.malformed = True
    ds, facts = annotate_corpus(config(fake_teacher, tiny_corpus(tmp_path), tmp_path, chunk=False), progress=False)
    assert facts["drops"]["unparseable_response"] == 6 and facts["entities"] == 0 and len(ds) == 6


def test_failure_mid_run_then_resume_pays_each_call_once(tmp_path, fake_teacher):
    fake_teacher.default = lambda passage, model: '[{"北京": "地点"}]'
    fake_teacher.hold_after, fake_teacher.drop_held = 3, True
    fake_teacher.release()  # held requests are dropped at once: the client sees connection errors
    cfg = dataclass_replace(config(fake_teacher, tiny_corpus(tmp_path, 10), tmp_path, chunk=False), max_retries=1)
    with pytest.raises(TeacherError, match="answers are cached"):
        annotate_corpus(cfg, progress=False)
    with AnswerCache(cfg.cache) as cache:
        assert cache.count() == fake_teacher.total_answered >= 3
    fake_teacher.hold_after = None
    ds, _ = annotate_corpus(cfg, progress=False)
    assert len(ds) == 10 and max(fake_teacher.answered.values()) == 1 and fake_teacher.total_answered == 10


def test_kill_9_and_resume_equals_uninterrupted_run(shared_data, tmp_path, fake_teacher):
    corpus = subset(shared_data, "zh", 40, tmp_path)
    fake_teacher.default = realistic_answer
    fake_teacher.hold_after = 15
    cache = tmp_path / "kill-cache.sqlite"
    args = [
        sys.executable,
        "-m",
        "raitner_hub",
        "annotate",
        str(corpus),
        "--lang",
        "zh",
        "--no-chunk",
        "--no-api-key",
        "--teacher-model",
        "teacher-a",
        "--base-url",
        fake_teacher.base_url,
        "--concurrency",
        "4",
        "--cache",
        str(cache),
        "--quiet",
    ]
    proc = subprocess.Popen(
        [*args, "--out", str(tmp_path / "killed")], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stored = wait_until_cached(fake_teacher, cache, at_least=15, timeout=60)  # everything answered is cached
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert 15 <= stored < 40 and not (tmp_path / "killed").exists()
    fake_teacher.drop_held = True
    fake_teacher.release()
    fake_teacher.hold_after = None
    resumed = subprocess.run(
        [*args, "--out", str(tmp_path / "resumed")], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert max(fake_teacher.answered.values()) == 1 and fake_teacher.total_answered == 40  # no call repeated
    manifest = json.loads((tmp_path / "resumed" / "manifest.json").read_text())
    assert manifest["calls"]["teacher-a"]["cached"] == stored
    with FakeTeacher(default=realistic_answer) as fresh:  # the uninterrupted reference run
        cfg = config(fresh, corpus, tmp_path, chunk=False, cache=str(tmp_path / "fresh.sqlite"))
        uninterrupted, _ = annotate_corpus(cfg, progress=False)
    resumed_rows = datasets.Dataset.from_parquet(
        str(tmp_path / "resumed" / "data" / "train-00000-of-00001.parquet"), cache_dir=str(tmp_path / "hf")
    ).to_list()
    assert resumed_rows == uninterrupted.to_list()


# ---- bad input through the CLI ----------------------------------------------------------------------------


def run_cli(*args: str, env: dict | None = None):
    from raitner_hub.cli import app

    return CliRunner().invoke(app, ["annotate", *args], env=env)


def test_missing_api_key_is_one_line(tmp_path, fake_teacher, monkeypatch):
    monkeypatch.delenv("RAITNER_TEST_KEY", raising=False)
    result = run_cli(
        str(tiny_corpus(tmp_path)),
        "--lang",
        "zh",
        "--base-url",
        fake_teacher.base_url,
        "--api-key-env",
        "RAITNER_TEST_KEY",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--out",
        str(tmp_path / "out"),
        "-q",
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: no API key: environment variable RAITNER_TEST_KEY is not set (set it, or pass --api-key-env NAME /"
        " --no-api-key for endpoints without keys)"
    ]
    assert not (tmp_path / "out").exists() and fake_teacher.requests == []


def test_api_key_is_sent_and_never_recorded(tmp_path, monkeypatch):
    secret = "sk-raitner-secret-0123456789"
    monkeypatch.setenv("RAITNER_TEST_KEY", secret)
    with FakeTeacher(require_key=secret) as fake:
        result = run_cli(
            str(tiny_corpus(tmp_path, 2)),
            "--lang",
            "zh",
            "--base-url",
            fake.base_url,
            "--api-key-env",
            "RAITNER_TEST_KEY",
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--out",
            str(tmp_path / "out"),
            "-q",
        )
    assert result.exit_code == 0, result.output
    for name in ("README.md", "manifest.json"):
        assert secret not in (tmp_path / "out" / name).read_text(encoding="utf-8")
    assert "annotated 2 passages" in result.output


def test_unreachable_endpoint_leaves_a_valid_cache(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = tmp_path / "c.sqlite"
    result = run_cli(
        str(tiny_corpus(tmp_path)),
        "--lang",
        "zh",
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        "--no-api-key",
        "--max-retries",
        "1",
        "--backoff",
        "0.01",
        "--cache",
        str(cache),
        "--out",
        str(tmp_path / "out"),
        "-q",
    )
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "cannot connect" in result.output and "re-run the same command to resume" in result.output
    db = sqlite3.connect(str(cache))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 0
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "no text to annotate"),
        (b'{"text": "   "}\n', "no text to annotate"),
        (b'{"text": "\xc3\x28"}\n', "bad.jsonl:1: not valid UTF-8"),
    ],
)
def test_bad_corpus_is_one_line(tmp_path, fake_teacher, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    result = run_cli(
        str(path),
        "--lang",
        "zh",
        "--base-url",
        fake_teacher.base_url,
        "--no-api-key",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--out",
        str(tmp_path / "out"),
        "-q",
    )
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and fake_teacher.requests == []


def test_bad_options_are_config_errors(tmp_path, fake_teacher):
    result = run_cli(
        str(tiny_corpus(tmp_path)),
        "--lang",
        "zh",
        "--base-url",
        fake_teacher.base_url,
        "--no-api-key",
        "--min-votes",
        "2",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.exit_code == 1 and "--min-votes must be between 1 and the number of teachers (1)" in result.output


# ---- the Hub at both ends -----------------------------------------------------------------------------------


def test_stream_corpus_from_hub_and_push_annotated(tmp_path, hub_server, fake_teacher):
    import uuid

    from huggingface_hub import DatasetCard, HfApi

    corpus_repo, out_repo = f"user/raw-{uuid.uuid4().hex[:8]}", f"user/sky-ner-{uuid.uuid4().hex[:8]}"
    api = HfApi()
    api.create_repo(corpus_repo, repo_type="dataset")
    api.upload_file(
        path_or_fileobj=tiny_corpus(tmp_path, 5).read_bytes(),
        path_in_repo="data/train.jsonl",
        repo_id=corpus_repo,
        repo_type="dataset",
    )
    fake_teacher.default = lambda passage, model: '[{"北京": "地点"}]'
    result = run_cli(
        corpus_repo,
        "--lang",
        "zh",
        "--base-url",
        fake_teacher.base_url,
        "--no-api-key",
        "--no-chunk",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--out",
        str(tmp_path / "out"),
        "-q",
        "--push",
        "--repo-id",
        out_repo,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("annotated 5 passages (5 entities, 1 types")
    remote = hub_server.files(out_repo, "dataset")
    assert {"README.md", "manifest.json", "data/train-00000-of-00001.parquet"} <= set(remote)
    manifest = json.loads(remote["manifest.json"])
    pinned = api.dataset_info(corpus_repo).sha  # the corpus is read and recorded at a commit, not a branch
    assert manifest["inputs"]["corpus"] == f"{corpus_repo}@{pinned}"
    card = DatasetCard(remote["README.md"].decode()).data
    assert card.source_datasets == [corpus_repo]  # a bare Hub id; the pinned revision is in raitner.input
    assert card.raitner["input"] == f"{corpus_repo}@{pinned}"
    ds = datasets.load_dataset(out_repo, split="train", cache_dir=str(tmp_path / "hf"))
    assert ds["id"] == [f"d{i}" for i in range(5)] and ds[0]["entities"][0]["text"] == "北京"


def test_reference_ids_renumber_rows(tmp_path, fake_teacher):
    cfg = config(fake_teacher, tiny_corpus(tmp_path, 3), tmp_path, chunk=False, ids="reference")
    ds, _ = annotate_corpus(cfg, progress=False)
    assert ds["id"] == ["ner_zh_0", "ner_zh_1", "ner_zh_2"] and ds["source"][0] == "tiny.jsonl:d0[0:7]"


def test_urls_in_the_recorded_command_lose_their_credentials(tmp_path, fake_teacher):
    command = (
        "raitner annotate tiny.jsonl --base-url 'http://me:sk-userinfo-secret@127.0.0.1/v1?api_key=sk-query'"
        " --teacher other@https://host/v1?key=sk-teacher-secret"
    )
    result = annotate_to_folder(
        config(fake_teacher, tiny_corpus(tmp_path, 2), tmp_path), tmp_path / "out", command=command, progress=False
    )
    card = (result.out / "README.md").read_text(encoding="utf-8")
    assert "raitner annotate tiny.jsonl --base-url 'http://127.0.0.1/v1' --teacher other@https://host/v1" in card
    assert "sk-" not in card
