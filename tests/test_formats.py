"""Readers reproduce the counts in ../shared/data/README.md; malformed input fails with file:line; writers round-trip."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path

import datasets
import pytest
from typer.testing import CliRunner

from raitner_hub import readers
from raitner_hub.errors import ConfigError, InputError
from raitner_hub.formats import (
    FORMATS,
    bio_to_entities,
    detect_format,
    input_questions,
    label_set,
    labels_queried,
    read_annotated,
    write_jsonl,
    write_uniner,
)
from raitner_hub.records import ANNOTATED_FEATURES, distinct_mentions

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "data"


@cache
def _read(path: str, fmt: str = "auto") -> datasets.Dataset:
    return read_annotated(path, format=fmt)


@pytest.fixture
def read(shared_data):
    return lambda rel, fmt="auto": _read(str(shared_data / rel), fmt)


def mention_counts(ds) -> Counter:
    return Counter(e["label"] for row in ds for e in row["entities"])


def distinct_counts(ds) -> Counter:
    return Counter(label for row in ds for _, label in distinct_mentions(row["entities"]))


def assert_offsets_index_text(ds) -> None:
    assert ds.features == ANNOTATED_FEATURES
    for row in ds:
        for ent in row["entities"]:
            assert row["text"][ent["start"] : ent["end"]] == ent["text"], (row["id"], ent)
            assert 0 <= ent["start"] < ent["end"] <= len(row["text"])
    assert len(set(ds["id"])) == len(ds)


def unaligned(ds) -> int:
    return sum(len(json.loads(a).get("unaligned", [])) for a in ds["annotator"])


# ---- real data: the counts the data README states --------------------------------------------------------

CROSSNER = {  # domain: (train, dev, test, types incl. misc)
    "ai": (100, 350, 431, 14),
    "literature": (100, 400, 416, 12),
    "music": (100, 380, 465, 13),
    "politics": (200, 541, 651, 9),
    "science": (200, 450, None, 17),
}


@pytest.mark.parametrize("domain", sorted(CROSSNER))
def test_crossner_bio_counts(read, domain):
    *sizes, n_types = CROSSNER[domain]
    labels = set()
    for split, size in zip(("train", "dev", "test"), sizes):
        if size is None:
            continue
        ds = read(f"en/crossner_{domain}/{split}.bio.txt")
        assert len(ds) == size
        assert set(ds["lang"]) == {"en"} and ds[0]["id"] == f"crossner_{domain}_{split}_0"
        assert_offsets_index_text(ds)
        labels |= set(mention_counts(ds))
    assert len(labels) == n_types and "misc" in labels


def test_english_bio_text_is_tokens_joined_by_spaces(read):
    row = read("en/crossner_ai/train.bio.txt")[0]
    assert row["text"].startswith("Popular approaches of opinion-based recommender system utilize")
    first = row["entities"][0]
    assert (first["text"], first["label"], first["start"]) == ("opinion-based recommender system", "product", 22)
    assert row["source"] == "crossner_ai_train"


def test_mit_movie_train(read):
    ds = read("en/mit_movie/train.bio.txt")
    assert len(ds) == 9775
    assert mention_counts(ds) == {
        "ACTOR": 3220,
        "CHARACTER": 385,
        "DIRECTOR": 1720,
        "GENRE": 4354,
        "PLOT": 1927,
        "RATING": 2007,
        "RATINGS_AVERAGE": 1869,
        "REVIEW": 221,
        "SONG": 245,
        "TITLE": 2376,
        "TRAILER": 113,
        "YEAR": 2858,
    }
    assert ds[0]["text"] == "what movies star bruce willis"
    assert ds[0]["entities"] == [{"start": 17, "end": 29, "text": "bruce willis", "label": "ACTOR"}]
    assert_offsets_index_text(ds)


def test_mit_restaurant_test(read):
    ds = read("en/mit_restaurant/test.bio.txt")
    assert len(ds) == 1521
    assert mention_counts(ds) == {
        "Amenity": 533,
        "Cuisine": 532,
        "Dish": 288,
        "Hours": 212,
        "Location": 812,
        "Price": 171,
        "Rating": 201,
        "Restaurant_Name": 402,
    }
    assert len(read("en/mit_restaurant/train.bio.txt")) == 7660


def test_weibo_train(read):
    ds = read("zh/weibo/train.conll")
    assert len(ds) == 1350 and len(read("zh/weibo/dev.conll")) == 270
    assert set(ds["lang"]) == {"zh"}
    assert ds[0]["text"].startswith("科技全方位资讯智能，快捷的汽车生活")  # segmentation digits stripped, no spaces
    # The README counts B- tags. 10 entities start with an I- tag after O or another type (e.g. "粉丝"
    # tagged I-PER.NOM after O); the conlleval rule makes each an entity: +4 PER.NAM, +6 PER.NOM.
    assert mention_counts(ds) == {
        "PER.NAM": 574 + 4,
        "PER.NOM": 766 + 6,
        "LOC.NAM": 56,
        "LOC.NOM": 51,
        "ORG.NAM": 183,
        "ORG.NOM": 42,
        "GPE.NAM": 205,
        "GPE.NOM": 8,
    }
    assert_offsets_index_text(ds)


def test_weibo_multi_digit_positions_and_broken_emoji():
    assert readers.weibo_char("李0") == "李"
    assert readers.weibo_char("e12") == "e"
    assert readers.weibo_char("011") == "0"
    assert readers.weibo_char("\ufffd\ufffd0") == "\ufffd\ufffd"


def test_msra_test(read):
    ds = read("zh/msra/test.bio.txt")
    assert len(ds) == 3442
    assert mention_counts(ds) == {"LOC": 2886, "ORG": 1331, "PER": 1973}
    assert ds[0]["text"].startswith("中共中央致中国致公党十一大的贺词") and " " not in ds[0]["text"]
    assert ds[0]["entities"][0] == {"start": 0, "end": 4, "text": "中共中央", "label": "ORG"}
    assert_offsets_index_text(ds)


def test_cluener_dev(read):
    ds = read("zh/cluener/dev.jsonl")
    assert len(ds) == 1343
    assert mention_counts(ds) == {
        "address": 373,
        "book": 154,
        "company": 378,
        "game": 295,
        "government": 247,
        "movie": 151,
        "name": 465,
        "organization": 367,
        "position": 433,
        "scene": 209,
    }
    assert ds[0]["entities"][0] == {"start": 0, "end": 3, "text": "彭小军", "label": "name"}  # sorted by position
    assert_offsets_index_text(ds)


def test_cmeee_dev_nested(read):
    ds = read("zh/cmeee_v2/dev.json")
    assert len(ds) == 5000
    assert mention_counts(ds) == {
        "bod": 7361,
        "dis": 6328,
        "sym": 5297,
        "pro": 3319,
        "dru": 1566,
        "ite": 1339,
        "mic": 621,
        "equ": 164,
        "dep": 86,
    }
    assert_offsets_index_text(ds)
    spans = [(e["start"], e["end"]) for e in ds[0]["entities"]]
    assert spans == sorted(spans) and (30, 34) in spans and (30, 32) in spans  # nested: 细胞下降 ⊃ 细胞


def test_yidu_sample(read):
    for name, size in (("dev_100", 100), ("train_10", 10)):
        ds = read(f"zh/yidu_s4k_sample/{name}.jsonl")
        assert len(ds) == size
        assert set(mention_counts(ds)) <= {"解剖部位", "疾病和诊断", "实验室检验", "影像检查", "手术", "药物"}
        assert_offsets_index_text(ds)


def test_boson_splits_and_test_mentions(read):
    assert [len(read(f"zh/boson/{s}.jsonl")) for s in ("train", "dev", "test")] == [1637, 184, 179]
    ds = read("zh/boson/test.jsonl")
    # label is {mention: type}: each distinct mention once per passage; alignment finds every occurrence
    assert distinct_counts(ds) == {
        "公司名称": 122,
        "时间": 335,
        "组织名称": 151,
        "人名": 293,
        "地点名称": 273,
        "产品名称": 308,
    }
    assert unaligned(ds) == 0 and ds[0]["id"] == "boson_test_0"
    assert ds[0]["text"].endswith("\n")  # kept raw: retrieval embeds the sentence as stored
    assert_offsets_index_text(ds)


def test_sky_ner_sample(read, shared_data):
    ds = read("zh/sky_ner_sample/sky_ner_examples_from_ra_it_rag.jsonl")
    assert len(ds) == 938 and ds[0]["id"] == "skyner_rag_0"
    # The README's 12,104 mentions count list entries; one entry repeats a (mention, type) pair, which
    # is aligned once, so 12,103 distinct pairs remain.
    source = shared_data / "zh/sky_ner_sample/sky_ner_examples_from_ra_it_rag.jsonl"
    raw = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    assert sum(len(r["entities"]) for r in raw) == 12104
    assert sum(distinct_counts(ds).values()) == 12103
    assert len(distinct_counts(ds)) == 1203 and unaligned(ds) == 0
    # teacher order is kept: the first entity is the teacher's first mention at its first occurrence
    first = ds[0]["entities"][0]
    assert (first["text"], first["label"]) == ("美国", "国家")
    assert_offsets_index_text(ds)


def test_slimer_grouped_by_passage(read, shared_data):
    ds = read("en/pile_ner_slimer_subset/validation_nodef.jsonl")
    assert len(ds) == 882
    raw = (shared_data / "en/raw_passages/pile_passages_from_pilener.jsonl").read_text(encoding="utf-8")
    passages = {r["id"]: r["text"] for r in map(json.loads, raw.splitlines())}
    assert dict(zip(ds["id"], ds["text"])) == passages  # same ids and texts as the derived raw passages
    asked = [labels_queried(row) for row in ds]
    assert sum(map(len, asked)) == 1320 and len(label_set(ds)) == 384
    positive = sum(len({e["label"] for e in row["entities"]}) for row in ds)
    assert positive == 717 and unaligned(ds) == 0
    assert_offsets_index_text(ds)


@pytest.mark.parametrize(
    "rel",
    [
        "en/crossner_ai/test.uniner.json",
        "en/crossner_music/test.uniner.json",
        "en/mit_restaurant/test.uniner.json",
        "zh/boson/test.it_conversation.json",
    ],
)
def test_uniner_keeps_every_question_repeated_sentences_included(shared_data, rel):
    """UniNER scores each item: a sentence that occurs twice is asked twice. Our passages keep every question:
    the count equals the file's question turns (CrossNER AI: 431 sentences over 430 distinct texts)."""
    items = json.loads((shared_data / rel).read_text(encoding="utf-8"))
    turns = sum((len(item["conversations"]) - 2) // 2 for item in items)
    ds = read_annotated(shared_data / rel)
    qa = [input_questions(row) for row in ds]
    assert sum(map(len, qa)) == turns
    n_types = len({item["conversations"][2]["value"] for item in items})
    assert len(ds) == len(items) // n_types  # one passage per sentence, repeated sentences included
    # the answers are the file's, in its order
    file_answers = [json.loads(item["conversations"][3]["value"], strict=False) for item in items]
    assert sorted(map(json.dumps, file_answers)) == sorted(json.dumps(a) for q in qa for _, a in q)


def test_uniner_crossner_ai_one_passage_per_sentence(read):
    ds = read("en/crossner_ai/test.uniner.json")
    assert len(ds) == 431  # 431 sentences, two share a text: each is asked (and scored) on its own
    assert all(len(labels_queried(row)) == 13 for row in ds)
    types = label_set(ds)
    assert len(types) == 13 and "organization" in types and "program language" in types and "misc" not in types
    assert unaligned(ds) == 0 and set(ds["lang"]) == {"en"}
    assert_offsets_index_text(ds)


def test_uniner_chinese_conversations(read):
    boson = read("zh/boson/test.it_conversation.json")
    assert len(boson) == 179 and set(boson["lang"]) == {"zh"}  # 179 sentences, 176 distinct texts
    assert set(label_set(boson)) == {"人名", "地点名称", "组织名称", "公司名称", "产品名称", "时间"}
    sky = read("zh/sky_ner_sample/sky_10_samples.it_conversation.json")
    assert len(sky) == 17 and sum(len(labels_queried(r)) for r in sky) == 106
    assert_offsets_index_text(boson)
    assert_offsets_index_text(sky)


@pytest.mark.parametrize(
    "rel, expected",
    [
        ("en/crossner_ai/test.bio.txt", "bio"),
        ("zh/msra/test.bio.txt", "bio"),
        ("en/mit_movie/train.bio.txt", "bio_tag_first"),
        ("zh/weibo/dev.conll", "weibo"),
        ("zh/cluener/dev.jsonl", "cluener"),
        ("zh/cmeee_v2/dev.json", "cmeee"),
        ("zh/yidu_s4k_sample/train_10.jsonl", "yidu"),
        ("zh/boson/dev.jsonl", "boson"),
        ("zh/sky_ner_sample/sky_ner_examples_from_ra_it_rag.jsonl", "sky_ner"),
        ("en/pile_ner_slimer_subset/validation_nodef.jsonl", "slimer"),
        ("en/mit_restaurant/test.uniner.json", "uniner"),
        ("zh/sky_ner_sample/sky_10_samples.it_conversation.json", "uniner"),
    ],
)
def test_detect_format(shared_data, rel, expected):
    assert detect_format(shared_data / rel) == expected


def test_formats_list():
    assert set(FORMATS) == {
        "bio",
        "bio_tag_first",
        "weibo",
        "cluener",
        "cmeee",
        "yidu",
        "boson",
        "sky_ner",
        "slimer",
        "uniner",
        "annotated",
        "token_classification",
    }


# ---- bundled quickstart sample -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, size, lang", [("pile_ner_sample.en.jsonl", 300, "en"), ("sky_ner_sample.zh.jsonl", 299, "zh")]
)
def test_bundled_sample(name, size, lang, tmp_path):
    path = EXAMPLES / name
    assert path.stat().st_size < 400_000
    assert detect_format(path) == "annotated"
    ds = read_annotated(path)
    assert len(ds) == size and set(ds["lang"]) == {lang} and all(ds["entities"])
    assert_offsets_index_text(ds)
    write_jsonl(ds, tmp_path / "copy.jsonl")
    assert (tmp_path / "copy.jsonl").read_bytes() == path.read_bytes()  # byte-stable round trip


def test_no_boson_in_examples():
    assert not any("boson" in p.name.lower() for p in EXAMPLES.iterdir())


# ---- own format, folders, writers ---------------------------------------------------------------------------

ROWS = [
    {
        "id": "a",
        "text": "Ada Lovelace met Babbage in London.",
        "lang": "en",
        "source": "t",
        "entities": [
            {"start": 0, "end": 12, "text": "Ada Lovelace", "label": "person"},
            {"start": 17, "end": 24, "text": "Babbage", "label": "person"},
            {"start": 28, "end": 34, "text": "London", "label": "city"},
        ],
        "annotator": '{"teacher": "x"}',
    },
    {"id": "b", "text": "Nothing here.", "lang": "en", "source": "t", "entities": [], "annotator": "{}"},
]


def test_hub_layout_folder_and_parquet(tmp_path):
    ds = datasets.Dataset.from_list(ROWS, features=ANNOTATED_FEATURES)
    (tmp_path / "data").mkdir()
    ds.select([0]).to_parquet(str(tmp_path / "data" / "train-00000-of-00001.parquet"))
    ds.select([1]).to_parquet(str(tmp_path / "data" / "validation-00000-of-00001.parquet"))
    (tmp_path / "README.md").write_text("---\n---\n")
    assert detect_format(tmp_path) == "annotated"
    assert read_annotated(tmp_path).to_list() == ROWS
    assert read_annotated(tmp_path, split="validation")["id"] == ["b"]
    assert read_annotated(tmp_path / "data" / "train-00000-of-00001.parquet")["id"] == ["a"]
    with pytest.raises(InputError, match="no data files"):
        read_annotated(tmp_path, split="test")


def test_write_uniner_round_trip(tmp_path):
    from raitner_hub.instruct import build_conversations

    annotated = datasets.Dataset.from_list(ROWS, features=ANNOTATED_FEATURES)
    it = build_conversations(annotated, seed=1)
    path = tmp_path / "it.json"
    assert write_uniner(it, path) == 2
    items = json.loads(path.read_text(encoding="utf-8"))
    assert items[0]["id"] == "a" and [t["from"] for t in items[0]["conversations"][:2]] == ["human", "gpt"]
    assert items[0]["conversations"][0]["value"] == "Text: Ada Lovelace met Babbage in London."
    back = read_annotated(path)  # the reader takes it back: same text, types asked and mentions
    assert back[0]["text"] == ROWS[0]["text"]
    assert labels_queried(back[0]) == it[0]["labels_queried"]
    assert sorted(distinct_mentions(back[0]["entities"])) == sorted(distinct_mentions(ROWS[0]["entities"]))
    assert {(e["start"], e["end"]) for e in back[0]["entities"]} == {
        (e["start"], e["end"]) for e in ROWS[0]["entities"]
    }


def test_write_uniner_system_and_demo_turns(tmp_path):
    example = {
        "id": "x",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Here are some examples of named entity recognition:\nText: A\nEntity: []"},
            {"role": "assistant", "content": "I've read these examples."},
            {"role": "user", "content": "Text: Paris is big."},
            {"role": "assistant", "content": "I've read this text."},
            {"role": "user", "content": "What describes city in the text?"},
            {"role": "assistant", "content": '["Paris"]'},
        ],
    }
    write_uniner([example], tmp_path / "x.json")
    item = json.loads((tmp_path / "x.json").read_text())[0]
    assert item["system"] == "You are a helpful assistant." and len(item["conversations"]) == 6
    row = read_annotated(tmp_path / "x.json")[0]  # the RA-IT example exchange is skipped
    assert row["text"] == "Paris is big." and row["entities"] == [
        {"start": 0, "end": 5, "text": "Paris", "label": "city"}
    ]


def test_export_cli(tmp_path):
    from raitner_hub.cli import app
    from raitner_hub.instruct import build_conversations

    it = build_conversations(datasets.Dataset.from_list(ROWS, features=ANNOTATED_FEATURES), seed=1)
    folder = tmp_path / "it"
    (folder / "data" / "vanilla").mkdir(parents=True)
    it.to_parquet(str(folder / "data" / "vanilla" / "train-00000-of-00001.parquet"))
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: vanilla\n  data_files:\n  - split: train\n"
        "    path: data/vanilla/train-*.parquet\n---\n"
    )
    out = tmp_path / "vanilla.json"
    result = CliRunner().invoke(
        app, ["export", str(folder), "--config", "vanilla", "--split", "train", "--format", "uniner", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote 2 conversations to {out}"
    assert [item["id"] for item in json.loads(out.read_text())] == ["a", "b"]
    bad = CliRunner().invoke(app, ["export", str(folder), "--config", "nope", "--out", str(tmp_path / "n.json")])
    assert bad.exit_code == 1 and bad.output.startswith("error: ") and len(bad.output.strip().splitlines()) == 1
    assert not (tmp_path / "n.json").exists()


# ---- malformed input: one line naming file:line -------------------------------------------------------------


def _write(tmp_path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_bio_line_without_tab(tmp_path):
    path = _write(tmp_path, "x.bio.txt", "Paris\tB-city\nis\tO\nbig O\n")
    with pytest.raises(InputError) as err:
        read_annotated(path)
    assert str(err.value).startswith(f"{path}:3: expected one 'token<TAB>tag' per line")


def test_bio_bad_tag(tmp_path):
    path = _write(tmp_path, "x.bio.txt", "Paris\tB-city\nis\tX-foo\n")
    with pytest.raises(InputError, match=r":2: bad BIO tag 'X-foo'"):
        read_annotated(path, format="bio")


def test_bio_i_after_o_starts_an_entity():
    text, ents = bio_to_entities(["a", "b", "c", "d"], ["O", "I-X", "I-Y", "I-Y"])
    assert text == "a b c d"
    assert [(e["text"], e["label"]) for e in ents] == [("b", "X"), ("c d", "Y")]


def test_bad_json_line(tmp_path):
    path = _write(tmp_path, "x.jsonl", '{"text": "a", "label": {}}\n{"text": "b", "label": \n')
    with pytest.raises(InputError, match=rf"^{path}:2: invalid JSON"):
        read_annotated(path, format="cluener")


def test_offsets_that_do_not_match_text(tmp_path):
    row = dict(ROWS[0], entities=[{"start": 1, "end": 12, "text": "Ada Lovelace", "label": "person"}])
    path = _write(tmp_path, "own.jsonl", json.dumps(ROWS[1]) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(InputError, match=rf"^{path}:2: entity 'Ada Lovelace' \(person\) does not match text\[1:12\]"):
        read_annotated(path)
    cluener = _write(
        tmp_path, "c.jsonl", json.dumps({"text": "彭小军认为", "label": {"name": {"彭小军": [[1, 3]]}}}) + "\n"
    )
    with pytest.raises(InputError, match=rf"^{cluener}:1: entity '彭小军'"):
        read_annotated(cluener)


def test_empty_and_blank_files(tmp_path):
    for name, content in (("e.jsonl", ""), ("b.bio.txt", "\n\n  \n")):
        path = _write(tmp_path, name, content)
        with pytest.raises(InputError, match=f"no passages in {path}"):
            read_annotated(path)


def test_not_utf8(tmp_path):
    path = _write(tmp_path, "x.bio.txt", b"Paris\tB-city\n" + "é\tO\n".encode("latin-1"))
    with pytest.raises(InputError, match=rf"^{path}:2: not UTF-8"):
        read_annotated(path)


def test_other_errors(tmp_path):
    own = _write(tmp_path, "dup.jsonl", json.dumps(ROWS[1]) + "\n" + json.dumps(ROWS[1]) + "\n")
    with pytest.raises(InputError, match="duplicate passage id 'b'"):
        read_annotated(own)
    with pytest.raises(ConfigError, match="unknown format 'conll'"):
        read_annotated(own, format="conll")
    with pytest.raises(InputError, match="no such file"):
        read_annotated(tmp_path / "missing.jsonl")
    raw = _write(tmp_path, "raw.jsonl", '{"id": "p1", "text": "just text"}\n')
    with pytest.raises(InputError, match="raw passages"):
        read_annotated(raw)
    conv = [
        {
            "id": "1",
            "conversations": [
                {"from": "human", "value": "Text: a"},
                {"from": "gpt", "value": "ok"},
                {"from": "human", "value": "What describes x in the text?"},
                {"from": "gpt", "value": "not json"},
            ],
        }
    ]
    bad = _write(tmp_path, "bad.json", json.dumps(conv))
    with pytest.raises(InputError, match=r"item 0: answer is not a JSON list of strings"):
        read_annotated(bad)


@pytest.mark.parametrize(
    "name, fmt, content, where",
    [
        ("c.jsonl", "cluener", '{"text": "abc", "label": {"X": ["a"]}}\n', ":1: malformed cluener entities"),
        ("m.json", "cmeee", '[{"text": "abc", "entities": [{"start_idx": 0}]}]', ":item 0: malformed cmeee entities"),
        ("m2.json", "cmeee", '[["abc"]]', ":item 0: expected a JSON object"),
        ("y.jsonl", "yidu", '{"text": "abc", "entity_list": [{"entity": "a"}]}\n', ":1: malformed yidu entities"),
        (
            "s.jsonl",
            "sky_ner",
            '{"id": "1", "text": "abc", "entities": [{"mention": "a"}]}\n',
            ":1: malformed sky_ner entities",
        ),
        ("b.jsonl", "boson", '{"sentence": "abc", "label": ["a"]}\n', ":1: malformed boson entities"),
        ("u.json", "uniner", '[{"conversations": ["Text: abc"]}]', ": item 0: turn 0 is not an object"),
    ],
)
def test_malformed_entity_structures_are_one_line_errors(tmp_path, name, fmt, content, where):
    path = _write(tmp_path, name, content)
    with pytest.raises(InputError) as err:
        read_annotated(path, format=fmt)
    assert str(err.value).startswith(f"{path}{where}")
    assert "\n" not in str(err.value)


def test_pool_language_is_the_one_language_of_the_rows_or_the_given_one():
    import datasets as hf_datasets

    from raitner_hub.errors import ConfigError
    from raitner_hub.formats import pool_language

    mixed = hf_datasets.Dataset.from_list([{"lang": "en"}, {"lang": "zh"}])
    assert pool_language(mixed, "zh", where="p.jsonl") == "zh"
    assert pool_language(mixed.select([0, 0]), None, where="p.jsonl") == "en"
    with pytest.raises(ConfigError, match=r"^p.jsonl: mixed languages \['en', 'zh'\]; pass --lang$"):
        pool_language(mixed, None, where="p.jsonl")
