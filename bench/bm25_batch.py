"""BM25: ``rank_bm25`` one query at a time versus raitner-hub's batched sparse scoring, at equal scores.

The paper scored BM25 with gensim 3.8 (k1 1.5, b 0.75, a negative idf replaced by 0.25 x the mean idf).
``rank_bm25.BM25Okapi`` implements that same formula, and so does ``raitner_hub.bm25.BM25``; this script
asserts all three agree (gensim's formula via ``bench/reference_baseline.GensimBM25``) before timing.
``bm25s`` is not compared: none of its variants floors negative idfs at epsilon x mean idf, so its
scores differ whenever a term occurs in more than half the documents (stop-word-like terms).

Two workloads over a synthetic pool (``bench/synthetic.py``), the queries being pool passages:

- ``candidates``: each query scored against its own K = 128 candidates (what RA-IT's BM25 filter
  does): ``BM25Okapi.get_batch_scores(query, ids)`` per query versus one ``BM25.scores`` call;
- ``whole pool``: each query against every document, top 128 kept: ``get_scores`` + ``argsort`` per
  query versus one ``BM25.top_k`` call. ``get_scores`` walks every document in Python per query term
  (seconds per query), so it is timed on ``--whole-pool-queries`` queries and both sides are compared
  per query.

    .venv/bin/python bench/bm25_batch.py [--pool 20000] [--queries 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TOP_K = 128


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--whole-pool-queries",
        type=int,
        default=3,
        help="rank_bm25 whole-pool scoring is timed on this many queries (seconds each)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from rank_bm25 import BM25Okapi
    from reference_baseline import GensimBM25
    from synthetic import synthetic_rows

    from raitner_hub.bm25 import BM25, tokenize

    tokens = [tokenize(row["text"], "en") for row in synthetic_rows(args.pool)]
    rng = np.random.default_rng(0)
    query_rows = rng.choice(args.pool, size=min(args.queries, args.pool), replace=False)
    queries = [tokens[i] for i in query_rows]
    candidates = np.stack([rng.choice(args.pool, size=TOP_K, replace=False) for _ in query_rows])

    start = time.perf_counter()
    theirs = BM25Okapi(tokens)
    their_build = time.perf_counter() - start
    start = time.perf_counter()
    ours = BM25(tokens)
    our_build = time.perf_counter() - start
    gensim = GensimBM25(tokens)
    negative = sum(1 for v in theirs.idf.values() if v == theirs.epsilon * theirs.average_idf)
    print(
        f"BM25 over {args.pool:,} passages ({len(ours.vocab):,} terms, {negative} floored negative idfs), "
        f"{len(queries)} queries; index build: rank_bm25 {their_build:.1f} s, ours {our_build:.1f} s"
    )

    results = []
    # 1. each query against its own 128 candidates
    start = time.perf_counter()
    base = np.array([theirs.get_batch_scores(q, c.tolist()) for q, c in zip(queries, candidates)])
    base_s = time.perf_counter() - start
    start = time.perf_counter()
    mine = ours.scores(queries, candidates)
    ours_s = time.perf_counter() - start
    assert np.allclose(mine, base, rtol=1e-5, atol=1e-4), "batched BM25 differs from rank_bm25"
    ref = np.array([[gensim.get_score(q, int(d)) for d in c] for q, c in zip(queries[:20], candidates[:20])])
    assert np.allclose(ref, base[:20], rtol=1e-9), "rank_bm25 differs from the gensim 3.8 formula"
    results.append(
        ("candidates", f"{len(queries)} q x {TOP_K} candidates", base_s, ours_s, "rank_bm25 get_batch_scores")
    )

    # 2. each query against the whole pool, top 128 kept
    few = queries[: args.whole_pool_queries]
    start = time.perf_counter()
    base_idx, base_val = [], []
    for q in few:
        scores = theirs.get_scores(q)
        order = np.argsort(-scores, kind="stable")[:TOP_K]
        base_idx.append(order)
        base_val.append(scores[order])
    base_s = (time.perf_counter() - start) * len(queries) / len(few)  # scaled to all queries
    start = time.perf_counter()
    idx, val = ours.top_k(queries, TOP_K)
    ours_s = time.perf_counter() - start
    idx, val = idx[: len(few)], val[: len(few)]
    assert np.allclose(val, np.array(base_val), rtol=1e-5, atol=1e-4), "whole-pool top-128 scores differ"
    same = np.mean([np.array_equal(a, b) for a, b in zip(idx, base_idx)])
    assert same >= 0.99, f"only {same:.0%} of rows have the same top-128 ids"  # float32 near-ties may swap
    results.append(
        (
            "whole pool top-128",
            f"{len(queries)} q x {args.pool:,} docs",
            base_s,
            ours_s,
            f"rank_bm25 timed on {len(few)} queries, scaled",
        )
    )

    for name, size, base_s, ours_s, how in results:
        print(
            f"  [{name}] rank_bm25 per query: {base_s:.2f} s   ours batched: {ours_s:.3f} s   "
            f"ratio: {base_s / ours_s:.0f}x   scores equal (rtol 1e-5): yes  ({how})"
        )
        if args.json:
            print(
                "BENCH "
                + json.dumps(
                    {
                        "benchmark": f"BM25 ({name})",
                        "size": size,
                        "baseline_s": base_s,
                        "ours_s": ours_s,
                        "ratio": base_s / ours_s,
                        "note": f"{how}, one query at a time; equal scores",
                    }
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
