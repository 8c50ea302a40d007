"""A faithful re-implementation of the reference RA-IT data build, for timing only (not in the package).

The reference code (GitHub ``Emma1066/Retrieval-Augmented-IT-OpenNER``) builds RA-IT data in three
per-row steps, and so does this module, with the same data structures and loops:

1. ``5.gen_rag_it_data.py::get_similar_examples_by_emb``: for every query, a fresh pandas DataFrame of
   the whole pool's embeddings, ``.apply`` of ``cosine_similarity`` (``openai.embeddings_utils``:
   ``dot / (norm * norm)``) to every row, a full ``argsort`` of the similarities, then a cursor walk
   that collects the top K.
2. ``gen_bm25.py``: a gensim 3.8 ``summarization.bm25.BM25`` model over the pool (dicts of term
   frequencies, pure Python), then per query ``get_score(query, index)`` for each of its K candidates,
   one document at a time; stop words held in a *list*, as the reference loads them.
3. ``add_adaptive_examp_to_multi_turn_conv_data`` + ``get_adaptive_examples``: per row, draw / filter
   the demonstrations (``diverseNN_bm25Rej``) and prepend the examples exchange to the conversation.

Deliberate differences, so that the baseline computes exactly what the package computes (equal work,
equal outputs, asserted by ``bench/ra_it_build.py``):

- the reference's self-exclusion loops forever (``continue`` without advancing, paper.md §8 item 2);
  here the cursor advances and skips the query and identical texts (the project rule);
- the full sort is ``argsort(-sim, kind="stable")``, i.e. ties broken by pool index as the project
  does, instead of ``argsort(sim)[::-1]`` (same cost: one full sort per query);
- the diverse draw uses the package's per-row generator instead of ``random.sample`` (same cost);
- rendering uses the package's templates (paper.md §4.1 strings).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

PARAM_K1, PARAM_B, EPSILON = 1.5, 0.75, 0.25


def cosine_similarity(a, b):
    """``openai.embeddings_utils.cosine_similarity``, as imported by the reference."""
    return np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))


def get_similar_examples_by_emb(
    query_emb: np.ndarray, query_text: str, src_emb: np.ndarray, src_texts: Sequence[str], example_num: int
) -> list[int]:
    """The reference's per-query retrieval: pandas apply over the whole pool, full sort, cursor walk."""
    src_emb_df = pd.DataFrame(columns=["embedding"])
    src_emb_df["embedding"] = list(src_emb)
    src_emb_df["similarity"] = src_emb_df.embedding.apply(lambda x: cosine_similarity(x, query_emb))
    cos_sims = src_emb_df["similarity"]
    sorted_idxes = np.argsort(-cos_sims.to_numpy(), kind="stable").tolist()
    selected: list[int] = []
    cnt = 0
    while len(selected) < example_num and cnt < len(sorted_idxes):
        candidate = sorted_idxes[cnt]
        cnt += 1  # the reference forgot this before `continue` (infinite loop on self)
        if src_texts[candidate] == query_text:  # the query itself and identical texts
            continue
        selected.append(candidate)
    return selected


def split_and_rm_stopwords(text: str, stopwords: list[str], lang: str = "en") -> list[str]:
    """``gen_bm25.split_and_rm_stopwords`` (English branch: single-space split; list membership)."""
    if lang == "zh":
        import jieba

        words = jieba.lcut(text)
    else:
        words = text.split(" ")
    words_no_stopwords = []
    for w in words:
        if w not in stopwords:
            words_no_stopwords.append(w)
    return words_no_stopwords


class GensimBM25:
    """gensim 3.8 ``summarization.bm25.BM25`` (removed in gensim 4), line for line."""

    def __init__(self, corpus, k1=PARAM_K1, b=PARAM_B, epsilon=EPSILON):
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self.corpus_size = 0
        self.avgdl = 0
        self.doc_freqs = []
        self.idf = {}
        self.doc_len = []
        self._initialize(corpus)

    def _initialize(self, corpus):
        nd = {}  # word -> number of documents with word
        num_doc = 0
        for document in corpus:
            self.corpus_size += 1
            self.doc_len.append(len(document))
            num_doc += len(document)
            frequencies = {}
            for word in document:
                if word not in frequencies:
                    frequencies[word] = 0
                frequencies[word] += 1
            self.doc_freqs.append(frequencies)
            for word in frequencies:
                if word not in nd:
                    nd[word] = 0
                nd[word] += 1
        self.avgdl = float(num_doc) / self.corpus_size
        idf_sum = 0
        negative_idfs = []
        for word, freq in nd.items():
            idf = math.log(self.corpus_size - freq + 0.5) - math.log(freq + 0.5)
            self.idf[word] = idf
            idf_sum += idf
            if idf < 0:
                negative_idfs.append(word)
        self.average_idf = float(idf_sum) / len(self.idf)
        eps = self.epsilon * self.average_idf
        for word in negative_idfs:
            self.idf[word] = eps

    def get_score(self, document, index):
        score = 0.0
        doc_freqs = self.doc_freqs[index]
        numerator_constant = self.k1 + 1
        denominator_constant = self.k1 * (1 - self.b + self.b * self.doc_len[index] / self.avgdl)
        for word in document:
            if word in doc_freqs:
                df = self.doc_freqs[index][word]
                idf = self.idf[word]
                score += (idf * df * numerator_constant) / (df + denominator_constant)
        return score


def reference_build(
    pool_rows: list[dict],
    embeddings: np.ndarray,
    vanilla_rows: Sequence[dict],
    query_rows: Sequence[int],
    *,
    k: int = 2,
    top_k: int = 128,
    threshold: float = 20.0,
    seed: int = 42,
    lang: str = "en",
) -> dict:
    """Run the reference steps for ``query_rows`` (pool rows that are also the queries).

    Returns timings (``bm25_model_s`` over the whole pool, a fixed cost; per-query phases summed over
    the given queries) and outputs: ``neighbours`` (K pool rows per query), ``bm25`` (their scores),
    ``demos`` (chosen pool rows) and ``messages`` (the augmented conversations).
    """
    from raitner_hub.bm25 import stopwords as package_stopwords
    from raitner_hub.prompts import Demo, demo_template, render_demo_messages
    from raitner_hub.records import distinct_mentions
    from raitner_hub.row_random import row_rng

    texts = [row["text"] for row in pool_rows]
    stopword_list = sorted(package_stopwords(lang))  # the reference holds them in a list
    start = time.perf_counter()
    corpus = [split_and_rm_stopwords(t, stopword_list, lang) for t in texts]
    bm25_model = GensimBM25(corpus)
    bm25_model_s = time.perf_counter() - start

    retrieval_s = scoring_s = render_s = 0.0
    neighbours, scores, demos, messages = [], [], [], []
    template = demo_template(lang)
    for q in query_rows:
        t0 = time.perf_counter()
        found = get_similar_examples_by_emb(embeddings[q], texts[q], embeddings, texts, top_k)
        t1 = time.perf_counter()
        query = split_and_rm_stopwords(texts[q], stopword_list, lang)
        cand_scores = [bm25_model.get_score(query, c) for c in found]
        t2 = time.perf_counter()
        # diverseNN_bm25Rej: k of the top K, then keep those with BM25 >= threshold (no back-fill).
        row = vanilla_rows[q]
        rng = row_rng(seed, f"demos:{row['id']}")
        drawn = rng.choice(len(found), size=min(k, len(found)), replace=False)
        kept = [found[i] for i in drawn if cand_scores[i] >= threshold]
        chosen = [
            Demo(id=pool_rows[i]["id"], text=texts[i], pairs=tuple(distinct_mentions(pool_rows[i]["entities"])))
            for i in kept
        ]
        conversation = render_demo_messages(chosen, template) + list(row["messages"])
        t3 = time.perf_counter()
        retrieval_s += t1 - t0
        scoring_s += t2 - t1
        render_s += t3 - t2
        neighbours.append(found)
        scores.append(cand_scores)
        demos.append(kept)
        messages.append(conversation)
    return {
        "bm25_model_s": bm25_model_s,
        "retrieval_s": retrieval_s,
        "scoring_s": scoring_s,
        "render_s": render_s,
        "neighbours": neighbours,
        "bm25": scores,
        "demos": demos,
        "messages": messages,
    }
