"""RA-IT augmentation: every strategy on pools whose right answers are known by construction."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from raitner_hub.augment import STRATEGIES, augment_dataset, config_name, retrieve_demos
from raitner_hub.errors import ConfigError
from raitner_hub.instruct import build_conversations
from raitner_hub.prompts import demo_template, render_demo_messages
from raitner_hub.retrieval import RetrievalIndex
from tests.fixtures.hash_embedder import HashingEncoder
from tests.fixtures.pools import FRUIT_NN, FRUIT_POOL, gensim_38_bm25, make_pool


def build(texts, lang="en", embedder="hash-bow", **kwargs):
    pool = make_pool(texts, lang=lang)
    encoder = None if embedder == "bm25" else HashingEncoder()
    index = RetrievalIndex.build(
        pool, lang=lang, embedder=embedder, encoder=encoder, cache_dir=False, progress=False, **kwargs
    )
    return pool, index, build_conversations(pool, seed=42, negatives=False)


@pytest.fixture(scope="module")
def fruit():
    return build(FRUIT_POOL)


def demo_rows(ds, index):
    return [[index.row_of(i) for i in demos] for demos in ds["demos"]]


def test_nn_picks_the_two_nearest_in_rank_order_and_renders_the_exchange(fruit):
    pool, index, vanilla = fruit
    ra = augment_dataset(vanilla, index, strategy="nn.v1", k=2, progress=False)
    assert {i: rows for i, rows in enumerate(demo_rows(ra, index))} == FRUIT_NN
    row, base = ra[0], vanilla[0]
    assert row["strategy"] == "nn.v1" and row["template"] == "uniner.en.v1+ra_it.en.v1"
    assert row["demos"] == ["p1", "p2"]
    assert row["messages"][2:] == base["messages"]
    assert row["messages"][:2] == render_demo_messages([index.demo(1), index.demo(2)], demo_template("en"))
    assert row["messages"][0]["content"] == (
        "Here are some examples of named entity recognition:\n"
        "Text: apple banana cherry elder\nEntity: [{'apple': 'thing'}]\n"
        "Text: apple banana fig grape\nEntity: [{'apple': 'thing'}]"
    )
    assert row["messages"][1] == {"role": "assistant", "content": "I've read these examples."}
    assert [r["id"] for r in ra] == [r["id"] for r in vanilla]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_self_and_identical_texts_never_appear(fruit, strategy):
    pool, index, vanilla = fruit
    for seed in (1, 2, 3):
        ra = augment_dataset(
            vanilla, index, strategy=strategy, k=2, top_k=4, seed=seed, bm25_threshold=0.0, progress=False
        )
        for row, rows in zip(ra, demo_rows(ra, index)):
            own = index.row_of(row["source_id"])
            assert all(FRUIT_POOL[r] != FRUIT_POOL[own] for r in rows), (strategy, row["id"], rows)
            assert len(set(rows)) == len(rows)
            assert row["strategy"] == strategy


def test_demos_are_joined_by_id_not_row_position(fruit):
    pool, index, vanilla = fruit
    shuffled = vanilla.select([6, 3, 0, 5, 1, 4, 2])
    ra = augment_dataset(shuffled, index, strategy="nn.v1", k=2, progress=False)
    for row, rows in zip(ra, demo_rows(ra, index)):
        assert rows == FRUIT_NN[index.row_of(row["source_id"])]


def test_diverse_nn_draws_from_top_k_only_reproducibly():
    texts = [f"common w{i} " + " ".join(f"x{j}" for j in range(i)) for i in range(30)]
    pool, index, vanilla = build(texts)
    top, _ = index.search_pool(range(30), 5)
    first = augment_dataset(vanilla, index, strategy="diverse_nn.v1", k=2, top_k=5, seed=7, progress=False)
    again = augment_dataset(vanilla, index, strategy="diverse_nn.v1", k=2, top_k=5, seed=7, progress=False)
    other = augment_dataset(vanilla, index, strategy="diverse_nn.v1", k=2, top_k=5, seed=8, progress=False)
    rows = demo_rows(first, index)
    assert first["demos"] == again["demos"] and first["demos"] != other["demos"]
    for i, picked in enumerate(rows):
        assert len(picked) == 2 and set(picked) <= set(top[i].tolist())
    # Draws are not simply the top 2: over 30 rows some pick from deeper in the top 5.
    assert any(set(picked) != set(top[i, :2].tolist()) for i, picked in enumerate(rows))


def test_diverse_nn_uses_min_of_top_k_and_pool_minus_one(fruit):
    pool, index, vanilla = fruit
    ra = augment_dataset(vanilla, index, strategy="diverse_nn.v1", k=2, top_k=128, progress=False)
    assert all(len(d) == 2 for d in ra["demos"])


def test_random_excludes_self_is_seeded_and_covers_the_pool():
    texts = [f"passage number {i}" for i in range(40)]
    pool, index, vanilla = build(texts)
    a = augment_dataset(vanilla, index, strategy="random.v1", k=2, seed=1, progress=False)
    b = augment_dataset(vanilla, index, strategy="random.v1", k=2, seed=1, progress=False)
    c = augment_dataset(vanilla, index, strategy="random.v1", k=2, seed=2, progress=False)
    assert a["demos"] == b["demos"] and a["demos"] != c["demos"]
    rows = demo_rows(a, index)
    assert all(len(r) == 2 and i not in r for i, r in enumerate(rows))
    assert len({r for pair in rows for r in pair}) > 25  # spread over the pool, not the nearest neighbours


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 1.0])
def test_mixed_uses_nn_for_exactly_round_a_n_rows(ratio):
    texts = [f"topic{i // 2} shared{i // 2} word{i}" for i in range(40)]
    pool, index, vanilla = build(texts)
    nn = augment_dataset(vanilla, index, strategy="nn.v1", k=2, progress=False)["demos"]
    mixed = augment_dataset(vanilla, index, strategy="mixed.v1", k=2, mixed_ratio=ratio, seed=3, progress=False)
    same = sum(m == n for m, n in zip(mixed["demos"], nn))
    # A random pair equal to the ordered NN pair has probability 1/(39*38) per row: the count is exact here.
    assert same == round(ratio * 40)
    assert set(mixed["strategy"]) == {"mixed.v1"}


RARE = " ".join(f"r{i}" for i in range(1, 17))
BM25_TEXTS = [RARE + " alpha", RARE + " beta", "r1 r2 gamma"] + [
    " ".join(f"f{i}x{j}" for j in range(6)) for i in range(37)
]


def test_bm25_filter_keeps_scores_at_least_20_and_falls_back_to_vanilla():
    pool, index, vanilla = build(BM25_TEXTS)
    corpus = [t.split(" ") for t in BM25_TEXTS]
    assert gensim_38_bm25(corpus, corpus[0], 1) >= 20 > gensim_38_bm25(corpus, corpus[0], 2)
    assert gensim_38_bm25(corpus, corpus[2], 0) < 20 and gensim_38_bm25(corpus, corpus[2], 1) < 20
    nn = demo_rows(augment_dataset(vanilla, index, strategy="nn.v1", k=2, progress=False), index)
    assert nn[0] == [1, 2] and nn[1] == [0, 2] and nn[2] == [0, 1]
    ra = augment_dataset(vanilla, index, strategy="bm25_filter.v1", k=2, progress=False)
    rows = demo_rows(ra, index)
    assert rows[0] == [1] and rows[1] == [0]  # the weak second neighbour is dropped, no back-fill
    assert all(r == [] for r in rows[2:])  # nothing >= 20: vanilla chat
    for i in range(2, 40):
        assert ra[i]["messages"] == vanilla[i]["messages"] and ra[i]["template"] == "uniner.en.v1"
        assert ra[i]["strategy"] == "bm25_filter.v1"
    assert ra[0]["template"] == "uniner.en.v1+ra_it.en.v1" and len(ra[0]["messages"]) == len(vanilla[0]["messages"]) + 2
    # The threshold is a parameter: at 0 every NN pair is kept.
    loose = augment_dataset(vanilla, index, strategy="bm25_filter.v1", k=2, bm25_threshold=0.0, progress=False)
    assert demo_rows(loose, index) == nn


def test_diverse_nn_bm25_keeps_only_candidates_at_least_20():
    pool, index, vanilla = build(BM25_TEXTS)
    scores = index.bm25_scores(None, index.search_pool(range(40), 39)[0], query_rows=range(40))
    ra = augment_dataset(vanilla, index, strategy="diverse_nn_bm25.v1", k=2, top_k=39, seed=5, progress=False)
    rows = demo_rows(ra, index)
    full = index.bm25.scores([index.tokens[i] for i in range(40)], np.tile(np.arange(40), (40, 1)))
    for i, picked in enumerate(rows):
        assert all(full[i, r] >= 20 for r in picked)
    assert all(r == [] for r in rows[2:]) and scores.max() >= 20


def test_validation_errors():
    pool, index, vanilla = build(["a b", "a c", "b c"])
    with pytest.raises(ConfigError, match=r"unknown strategy 'knn'; known: nn.v1, diverse_nn.v1, random.v1"):
        augment_dataset(vanilla, index, strategy="knn")
    with pytest.raises(ConfigError, match=r"^k=5 is larger than the pool \(3 passages\)$"):
        augment_dataset(vanilla, index, strategy="nn.v1", k=5)
    with pytest.raises(ConfigError, match=r"k=3 is larger than the pool"):  # self-exclusion leaves 2
        augment_dataset(vanilla, index, strategy="nn.v1", k=3)
    with pytest.raises(ConfigError, match="k=0"):
        augment_dataset(vanilla, index, strategy="nn.v1", k=0)
    with pytest.raises(ConfigError, match="mixed_ratio"):
        augment_dataset(vanilla, index, strategy="mixed.v1", mixed_ratio=1.5)


def test_config_names():
    assert config_name("diverse_nn.v1", 2) == "ra-diverse_nn-k2"
    assert config_name("mixed.v1", 2, mixed_ratio=0.5) == "ra-mixed0.5-k2"
    assert config_name("nn.v1", 4) == "ra-nn-k4"
    assert config_name("bm25_filter.v1", 2, bm25_threshold=20.0) == "ra-bm25_filter-k2"
    assert config_name("diverse_nn.v1", 2, top_k=64) == "ra-diverse_nn-top64-k2"
    with pytest.raises(ConfigError):
        config_name("nope", 2)


def test_retrieve_demos_for_new_texts_has_no_self_exclusion(fruit):
    pool, index, vanilla = fruit
    demos = retrieve_demos(
        index, ["apple banana cherry date", "kiwi lemon mango", "apple banana cherry date"], strategy="nn.v1", k=2
    )
    assert [d.id for d in demos[0]] == ["p0", "p6"]  # the same text is in the pool: it is its own best example
    assert [d.id for d in demos[1]] == ["p3", "p4"] and demos[2] == demos[0]
    assert demos[1][0].pairs == (("kiwi", "thing"),)
    with pytest.raises(ConfigError, match="k=8 is larger than the pool"):
        retrieve_demos(index, ["x"], k=8)


def test_augment_rows_that_are_not_pool_passages(fruit):
    pool, index, _ = fruit
    other = make_pool(["kiwi lemon mango nut", "apple fig"], prefix="q")
    queries = build_conversations(other, seed=1, negatives=False)
    ra = augment_dataset(queries, index, strategy="nn.v1", k=2, query_is_pool=False, progress=False)
    assert ra["demos"] == [["p3", "p4"], ["p2", "p0"]]  # p3 has the same text: allowed across sets


def test_chinese_bm25_end_to_end_renders_the_paper_strings():
    texts = [
        "北京是中国的首都，故宫位于北京市中心。",
        "故宫坐落在北京，是明清两代的皇宫。",
        "华为公司在深圳发布了新手机。",
        "苹果公司发布了新款手机。",
        "上海是中国最大的经济城市。",
    ]
    pool, index, vanilla = build(texts, lang="zh", embedder="bm25")
    ra = augment_dataset(vanilla, index, strategy="nn.v1", k=1, progress=False)
    assert ra[0]["demos"] == ["p1"] and ra[0]["template"] == "uniner.zh.v1+ra_it.zh.v1"
    assert (
        ra[0]["messages"][0]["content"]
        == "以下是一些命名实体识别的例子：\n文本：故宫坐落在北京，是明清两代的皇宫。\n实体：[{'故宫': 'thing'}]"
    )
    assert ra[0]["messages"][1]["content"] == "我已读完这些例子。"
    assert ra[0]["messages"][2]["content"].startswith("文本： 北京")
    assert isinstance(ra, datasets.Dataset) and ra.features == vanilla.features
