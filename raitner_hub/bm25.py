"""BM25 exactly as the paper scored it: gensim 3.8 ``summarization.bm25`` (paper.md §4.4).

gensim 4 removed that module, so the formula is implemented here, vectorised with scipy sparse matrices:

- idf(w) = ln(N - n_w + 0.5) - ln(n_w + 0.5); a negative idf becomes ``eps`` x the mean idf (mean over all
  terms, taken before the replacement);
- score(q, d) = sum over the query's tokens (repeats included) that occur in d of
  idf(w) * f(w, d) * (k1 + 1) / (f(w, d) + k1 * (1 - b + b * |d| / avgdl)),
  with k1 = 1.5, b = 0.75, eps = 0.25 and N, n_w, avgdl taken from the whole pool.

``rank_bm25.BM25Okapi`` uses the same formula and defaults, which the tests check.

Tokens: Chinese ``jieba.lcut`` (accurate mode, HMM on), English ``text.split(" ")`` (case and punctuation
kept, as the reference did); then stop words are dropped. The reference list was never published: this
package ships the NLTK English list and the HIT Chinese list (``raitner_hub/stopwords/*.txt``), held in a
set, entries stripped, so whitespace tokens survive.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
from collections.abc import Sequence

import numpy as np
from scipy import sparse

K1, B, EPSILON = 1.5, 0.75, 0.25
STOPWORD_SOURCES = {"en": "NLTK English stopwords (179)", "zh": "HIT Chinese stopwords (goto456/stopwords)"}


@functools.cache
def stopwords(lang: str) -> frozenset[str]:
    """The shipped stop-word set of a language (``# `` lines are comments; entries are stripped)."""
    text = (importlib.resources.files("raitner_hub") / "stopwords" / f"{lang}.txt").read_text(encoding="utf-8")
    return frozenset(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("# "))


def tokenize(text: str, lang: str) -> list[str]:
    """BM25 tokens of one text: jieba (zh) or single-space split (en), stop words removed."""
    if lang == "zh":
        import jieba

        jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter would drown the one summary line
        tokens = jieba.lcut(text, cut_all=False, HMM=True)
    else:
        tokens = text.split(" ")
    stop = stopwords(lang)
    return [t for t in tokens if t not in stop]


class BM25:
    """BM25 statistics of a tokenised pool, held as one sparse (documents x vocabulary) weight matrix.

    ``weights[d, w]`` is the whole per-term contribution idf * f * (k1 + 1) / (f + k1 * norm_d), so a
    query's score against document d is its token-count row dotted with row d.

    Example:
        >>> bm25 = BM25([["a", "b"], ["b", "c", "c"]])
        >>> bm25.scores([["c"]], np.array([[1, 0]])).shape
        (1, 2)
    """

    def __init__(self, docs: Sequence[Sequence[str]], *, k1: float = K1, b: float = B, epsilon: float = EPSILON):
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self.vocab: dict[str, int] = {}
        counts = self._count_matrix(docs, grow=True)
        n_docs = counts.shape[0]
        self.doc_len = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
        self.avgdl = float(self.doc_len.mean()) if n_docs else 0.0
        doc_freq = np.bincount(counts.indices, minlength=len(self.vocab)).astype(np.float64)
        idf = np.log(n_docs - doc_freq + 0.5) - np.log(doc_freq + 0.5)
        self.average_idf = float(idf.mean()) if len(idf) else 0.0
        idf[idf < 0] = self.epsilon * self.average_idf
        self.idf = idf
        # Per-nonzero contribution; an all-empty pool (avgdl 0) has no nonzeros, so the guard changes nothing.
        norm = k1 * (1 - b + b * self.doc_len / (self.avgdl or 1.0))
        rows = np.repeat(np.arange(n_docs), np.diff(counts.indptr))
        f = counts.data.astype(np.float64)
        data = idf[counts.indices] * f * (k1 + 1) / (f + norm[rows])
        self.weights = sparse.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)
        # The pool's own counts, on the weights' sparsity pattern: pool rows as queries need no re-counting.
        # float32 holds any realistic count exactly, at half the memory.
        self.term_counts = counts.data.astype(np.float32)

    def __len__(self) -> int:
        return self.weights.shape[0]

    def _count_matrix(self, docs: Sequence[Sequence[str]], *, grow: bool) -> sparse.csr_matrix:
        """Token counts per document; unknown tokens are added (pool) or dropped (queries: they score 0)."""
        indptr, indices = [0], []
        for tokens in docs:
            for token in tokens:
                column = self.vocab.get(token)
                if column is None and grow:
                    column = self.vocab[token] = len(self.vocab)
                if column is not None:
                    indices.append(column)
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.float64)
        matrix = sparse.csr_matrix(
            (data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
            shape=(len(docs), len(self.vocab)),
        )
        matrix.sum_duplicates()  # repeated tokens become counts (query repeats count, as in gensim)
        return matrix

    def query_matrix(self, queries: Sequence[Sequence[str]]) -> sparse.csr_matrix:
        return self._count_matrix(queries, grow=False)

    def pool_query_matrix(self, rows: np.ndarray) -> sparse.csr_matrix:
        """The query matrix of pool documents themselves: their stored counts (no re-counting; equal to
        ``query_matrix`` of their tokens, since every pool token is in the vocabulary)."""
        counts = sparse.csr_matrix(
            (self.term_counts, self.weights.indices, self.weights.indptr), shape=self.weights.shape
        )
        return counts[np.asarray(rows, dtype=np.int64)].astype(np.float64)

    def scores(
        self, queries: Sequence[Sequence[str]] | sparse.csr_matrix, candidates: np.ndarray, *, block: int = 1024
    ) -> np.ndarray:
        """Scores of each query against its own candidate documents: float32[n, K].

        Candidates of -1 (padding) score -inf, so no threshold keeps them.
        """
        q: sparse.csr_matrix = queries if sparse.issparse(queries) else self.query_matrix(queries)
        candidates = np.asarray(candidates, dtype=np.int64)
        n, width = candidates.shape
        out = np.full((n, width), -np.inf, dtype=np.float32)
        if len(self) == 0 or width == 0:
            return out
        for start in range(0, n, block):
            cand = candidates[start : start + block]
            valid = cand >= 0
            rows = np.repeat(np.arange(start, start + len(cand)), width)
            docs = np.where(valid, cand, 0).ravel()
            # Row-wise dot products of (query i, candidate d) pairs without densifying the vocabulary.
            pair = q[rows].multiply(self.weights[docs])
            values = np.asarray(pair.sum(axis=1)).reshape(len(cand), width).astype(np.float32)
            out[start : start + len(cand)] = np.where(valid, values, -np.inf)
        return out

    def top_k(
        self, queries: Sequence[Sequence[str]] | sparse.csr_matrix, k: int, *, exclude_mask=None, block: int = 256
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best pool documents per query by BM25 over the whole pool, ties broken by pool index.

        ``exclude_mask(start, stop) -> bool[stop-start, N]`` marks documents a query must not get.
        Returns (idx int64[n, k], scores float32[n, k]), -1 / -inf where fewer than k documents remain.
        """
        q: sparse.csr_matrix = queries if sparse.issparse(queries) else self.query_matrix(queries)
        n, n_docs = q.shape[0], len(self)
        k_eff = min(k, n_docs)
        idx = np.full((n, k), -1, dtype=np.int64)
        val = np.full((n, k), -np.inf, dtype=np.float32)
        if k_eff == 0:
            return idx, val
        weights_t = self.weights.T.tocsr()
        for start in range(0, n, block):
            stop = min(n, start + block)
            dense = (q[start:stop] @ weights_t).toarray()
            if exclude_mask is not None:
                dense[exclude_mask(start, stop)] = -np.inf
            sel_idx, sel_val = _top_k_rows(dense, k_eff)
            idx[start:stop, :k_eff] = sel_idx
            val[start:stop, :k_eff] = sel_val
        idx[~np.isfinite(val)] = -1
        return idx, val


def _top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top k per row, descending, ties broken by column index, in O(rows x cols) (no full sort)."""
    n_cols = scores.shape[1]
    kth = np.partition(scores, n_cols - k, axis=1)[:, n_cols - k][:, None]
    above = scores > kth
    tied = scores == kth
    need = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= need))  # lowest-index ties first
    cols = np.nonzero(chosen)[1].reshape(len(scores), k)  # row-major: each row has exactly k
    vals = np.take_along_axis(scores, cols, axis=1)
    order = np.lexsort((cols, -vals), axis=-1)
    return np.take_along_axis(cols, order, axis=1), np.take_along_axis(vals, order, axis=1).astype(np.float32)
