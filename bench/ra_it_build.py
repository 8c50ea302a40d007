"""RA-IT data build: raitner-hub versus the reference per-row pipeline, with peak memory.

For each pool size, a synthetic annotated pool (``bench/synthetic.py``) with random unit embeddings
*given* (embedding time excluded) is turned into RA-IT conversations with diverse nearest neighbours
(K = 128, k = 2) and the BM25 filter (threshold 20), i.e. ``diverse_nn_bm25.v1`` /
the reference's ``diverseNN_bm25Rej``. Every query is a pool row (training: self-exclusion).

What is timed:

- **ours** = ``RetrievalIndex.from_embeddings`` (BM25 tokens and statistics, FAISS index) +
  ``augment`` (batched exact top-K search, batched BM25 of the candidates, per-row draw and filter,
  rendering every augmented conversation into a ``datasets.Dataset``), for all N rows.
  ``e2e`` adds building the vanilla conversations (``instruct.build_conversations``) from the pool.
- **baseline** = ``bench/reference_baseline.py``: the BM25 model over the whole pool (timed in full)
  plus, per query, the pandas cosine + full sort, the per-document BM25 scores and the rendering.
  The per-query part is timed on ``--baseline-queries`` evenly spaced rows and scaled linearly to N
  (its cost per query does not depend on which row is asked); when that number is >= N it is exact.

Before any number is printed, the baseline's results on its timed rows are asserted equal to ours on
the same inputs: the same top-K ids in the same order (a swap of two neighbours whose exact float64
cosines differ by < 1e-5, float32 rounding, is allowed and counted), the same BM25 scores (rtol 1e-5),
the same demonstrations and the same rendered messages.

Each size runs in its own subprocess, so ``peak_rss_mib`` (``ru_maxrss`` after our build, before the
baseline runs) is the peak of that size's data + our build alone.

    .venv/bin/python bench/ra_it_build.py [--sizes 5000 20000 50000] [--baseline-queries 200 100 50]
                                           [--dim 384] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

K, TOP_K, THRESHOLD, SEED, STRATEGY = 2, 128, 20.0, 42, "diverse_nn_bm25.v1"
TIE_TOLERANCE = 1e-5


def _exact_cosine(embeddings: np.ndarray, q: int, rows) -> np.ndarray:
    return embeddings[np.asarray(rows)].astype(np.float64) @ embeddings[q].astype(np.float64)


def check_equal(embeddings, query_rows, ours_idx, ours_bm25, ra_rows, base) -> dict:
    """Assert the baseline found what we found; returns counts of checked rows and tie swaps."""
    swaps = rows_with_swaps = 0
    for n, q in enumerate(query_rows):
        mine, theirs = [int(x) for x in ours_idx[n]], base["neighbours"][n]
        assert len(mine) == len(theirs), f"row {q}: {len(mine)} vs {len(theirs)} neighbours"
        if mine != theirs:
            differ = [j for j in range(len(mine)) if mine[j] != theirs[j]]
            gaps = np.abs(
                _exact_cosine(embeddings, q, [mine[j] for j in differ])
                - _exact_cosine(embeddings, q, [theirs[j] for j in differ])
            )
            assert gaps.max() < TIE_TOLERANCE, f"row {q}: neighbours differ beyond float32 ties ({gaps.max():.2e})"
            assert sorted(mine) == sorted(theirs) or _boundary_tie(embeddings, q, mine, theirs), (
                f"row {q}: neighbour sets differ"
            )
            swaps += len(differ)
            rows_with_swaps += 1
        mine_scores = dict(zip(mine, ours_bm25[n].tolist()))
        for doc, score in zip(theirs, base["bm25"][n]):
            if doc in mine_scores:
                assert np.isclose(mine_scores[doc], score, rtol=1e-5, atol=1e-4), (
                    f"row {q}, doc {doc}: BM25 {mine_scores[doc]} vs reference {score}"
                )
        if mine == theirs:  # the draw then sees the same candidates: identical output rows
            demo_ids = [ra_rows["demos"][n][i] for i in range(len(ra_rows["demos"][n]))]
            assert demo_ids == [f"syn_{d}" for d in base["demos"][n]], f"row {q}: demonstrations differ"
            assert ra_rows["messages"][n] == [dict(m) for m in base["messages"][n]], f"row {q}: messages differ"
    return {"checked": len(query_rows), "rows_with_tie_swaps": rows_with_swaps, "tie_swaps": swaps}


def _boundary_tie(embeddings, q, mine, theirs) -> bool:
    """Sets may differ only by near-tied items at the K boundary."""
    extra = sorted(set(mine) ^ set(theirs))
    scores = _exact_cosine(embeddings, q, extra)
    return bool(scores.max() - scores.min() < TIE_TOLERANCE)


def timed_build(pool, embeddings):
    """Our build, timed: vanilla conversations, the index, the augmented rows (progress bars must be off).
    Returns (vanilla, index, augmented, (t0, t1, t2, t3)): perf_counter before and after each part."""
    from raitner_hub.augment import augment_dataset
    from raitner_hub.instruct import build_conversations
    from raitner_hub.retrieval import RetrievalIndex

    gc.collect()
    t0 = time.perf_counter()
    vanilla = build_conversations(pool, seed=SEED)
    t1 = time.perf_counter()
    index = RetrievalIndex.from_embeddings(pool, embeddings, lang="en")
    t2 = time.perf_counter()
    ra = augment_dataset(vanilla, index, strategy=STRATEGY, k=K, top_k=TOP_K, seed=SEED, bm25_threshold=THRESHOLD)
    return vanilla, index, ra, (t0, t1, t2, time.perf_counter())


def run_size(size: int, baseline_queries: int, dim: int) -> dict:
    """One pool size, in this process: ours for all rows, the baseline on a subset, equality, memory."""
    import datasets
    from reference_baseline import reference_build
    from synthetic import pool_dataset, synthetic_rows, unit_embeddings

    datasets.disable_progress_bars()
    datasets.disable_caching()
    rows = synthetic_rows(size)
    embeddings = unit_embeddings(size, dim)
    pool = pool_dataset(rows)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    vanilla, index, ra, times = timed_build(pool, embeddings)
    t0, t1, t2, t3 = times
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kept = np.bincount([len(d) for d in ra["demos"]], minlength=K + 1).tolist()

    # The baseline on evenly spaced query rows, and our intermediate results for the same rows.
    query_rows = np.unique(np.linspace(0, size - 1, min(baseline_queries, size)).astype(np.int64))
    ours_idx, _ = index.search_pool(query_rows, min(TOP_K, size - 1))
    ours_bm25 = index.bm25_scores(None, ours_idx, query_rows=query_rows)
    ra_rows = ra.select(query_rows.tolist())[:]
    vanilla_rows = {int(q): vanilla[int(q)] for q in query_rows}
    base = reference_build(
        rows, embeddings, vanilla_rows, query_rows.tolist(), k=K, top_k=TOP_K, threshold=THRESHOLD, seed=SEED
    )
    equal = check_equal(embeddings, query_rows.tolist(), ours_idx, ours_bm25, ra_rows, base)
    per_query = (base["retrieval_s"] + base["scoring_s"] + base["render_s"]) / len(query_rows)
    baseline_s = base["bm25_model_s"] + per_query * size
    ours_s = t3 - t1
    return {
        "size": size,
        "dim": dim,
        "ours_s": ours_s,
        "index_s": t2 - t1,
        "augment_s": t3 - t2,
        "vanilla_s": t1 - t0,
        "e2e_s": t3 - t0,
        "baseline_s": baseline_s,
        "baseline_queries": len(query_rows),
        "baseline_scaled": len(query_rows) < size,
        "baseline_bm25_model_s": base["bm25_model_s"],
        "baseline_per_query_s": per_query,
        "baseline_retrieval_share": base["retrieval_s"] / (per_query * len(query_rows)),
        "ratio": baseline_s / ours_s,
        "peak_rss_mib": peak_rss,
        "rss_after_data_mib": rss_data,
        "demos_kept_0_1_2": kept,
        **equal,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000, 50_000])
    parser.add_argument(
        "--baseline-queries",
        type=int,
        nargs="+",
        default=[200, 100, 50],
        help="baseline rows timed per size (one value = every size); the rest is scaled",
    )
    parser.add_argument("--dim", type=int, default=384, help="embedding width (MiniLM 384; GTE-large 1024)")
    parser.add_argument("--json", action="store_true", help="also print one 'BENCH {json}' line per result")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one size, in a fresh process (clean peak RSS)
        print(json.dumps(run_size(args.sizes[0], args.baseline_queries[0], args.dim)))
        return 0
    queries = args.baseline_queries
    queries = queries * len(args.sizes) if len(queries) == 1 else queries
    for size, n_queries in zip(args.sizes, queries):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                "--sizes",
                str(size),
                "--baseline-queries",
                str(n_queries),
                "--dim",
                str(args.dim),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            return done.returncode
        r = json.loads(done.stdout.strip().splitlines()[-1])
        how = (
            f"timed on {r['baseline_queries']} queries, scaled x{size / r['baseline_queries']:.0f}"
            if r["baseline_scaled"]
            else "timed in full"
        )
        print(f"RA-IT build, N={size:,} (dim {r['dim']}, {STRATEGY}, K={TOP_K}, k={K}, BM25>={THRESHOLD:g})")
        print(
            f"  baseline (reference per-row): {r['baseline_s']:9.1f} s  [{how}; BM25 model "
            f"{r['baseline_bm25_model_s']:.1f} s + {r['baseline_per_query_s'] * 1e3:.1f} ms/query, "
            f"{r['baseline_retrieval_share']:.0%} of it the pandas cosine + sort]"
        )
        print(
            f"  ours:                         {r['ours_s']:9.1f} s  [index {r['index_s']:.1f} s + augment "
            f"{r['augment_s']:.1f} s]; with vanilla conversations (e2e): {r['e2e_s']:.1f} s"
        )
        print(
            f"  ratio: {r['ratio']:.0f}x   peak RSS (data + our build): {r['peak_rss_mib']:.0f} MiB "
            f"(data alone {r['rss_after_data_mib']:.0f} MiB)"
        )
        print(
            f"  equal outputs on {r['checked']} rows: neighbours, BM25, demos, messages "
            f"({r['tie_swaps']} float32 tie swaps in {r['rows_with_tie_swaps']} rows); "
            f"rows keeping 0/1/2 demos: {r['demos_kept_0_1_2']}",
            flush=True,
        )
        if args.json:
            note = f"{'baseline ' + how}; e2e {r['e2e_s']:.0f} s; peak RSS {r['peak_rss_mib']:.0f} MiB"
            print(
                "BENCH "
                + json.dumps(
                    {
                        "benchmark": "RA-IT build (DNN+BM25)",
                        "size": f"{size:,} passages",
                        "baseline_s": r["baseline_s"],
                        "ours_s": r["ours_s"],
                        "ratio": r["ratio"],
                        "note": note,
                        "details": r,
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
