"""The 50K RA-IT build end to end against the hardware floor: a bare GEMM of the same shapes, same run.

An exact top-K search over N pool passages must at least multiply the (N x dim) query matrix by the
(dim x N) pool matrix; nothing else in the build is irreducible. So the floor is that product alone:
numpy (BLAS) ``queries[block] @ pool.T`` into a preallocated buffer, in the search's own blocks
(``retrieval.QUERY_BLOCK`` rows), float32, every thread BLAS wants.

**Ours, end to end** = everything ``raitner build-data`` does in memory after reading the input and
embedding it (embeddings are given, as in ``ra_it_build.py``): the vanilla conversations
(``instruct.build_conversations``, negatives drawn), the index (``RetrievalIndex.from_embeddings``: BM25
statistics and FAISS), and ``augment_dataset`` with ``diverse_nn_bm25.v1`` (K = 128, k = 2, BM25 >= 20):
search with self-exclusion, the seeded draws, BM25 of the drawn candidates, every row rendered.

Each measurement runs in its own subprocess, so ``peak RSS`` is that of the data and our build alone. The
floor is timed before and after ours and the faster of the two is used (the conservative ratio). After the
timing, and before anything is printed, the outputs are asserted equal, byte for byte, to the previous
row-by-row implementations (``tests/fixtures/row_by_row.py``): the vanilla conversations, and the RA-IT
rows rendered row by row from the same demonstrations.

    .venv/bin/python bench/build_floor.py [--size 50000] [--dim 384] [--json]
"""

from __future__ import annotations

import argparse
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

from ra_it_build import SEED, STRATEGY, THRESHOLD, TOP_K, K, timed_build  # noqa: E402  (bench/ on sys.path)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gemm_floor(size: int, dim: int) -> dict:
    from synthetic import unit_embeddings

    from raitner_hub.retrieval import QUERY_BLOCK

    pool = unit_embeddings(size, dim)
    out = np.empty((QUERY_BLOCK, size), dtype=np.float32)
    pool_t = pool.T
    start = time.perf_counter()
    for first in range(0, size, QUERY_BLOCK):
        block = pool[first : first + QUERY_BLOCK]
        np.matmul(block, pool_t, out=out[: len(block)])
    return {"seconds": time.perf_counter() - start}


def ours(size: int, dim: int) -> dict:
    import datasets
    from synthetic import pool_dataset, synthetic_rows, unit_embeddings

    datasets.disable_progress_bars()
    datasets.disable_caching()
    pool = pool_dataset(synthetic_rows(size))
    embeddings = unit_embeddings(size, dim)
    rss_data = peak_rss_mib()
    vanilla, index, ra, (t0, t1, t2, t3) = timed_build(pool, embeddings)  # the same build ra_it_build.py times
    peak = peak_rss_mib()
    checked = check_equal(pool, vanilla, index, ra)
    return {
        "seconds": t3 - t0,
        "vanilla_s": t1 - t0,
        "index_s": t2 - t1,
        "augment_s": t3 - t2,
        "peak_rss_mib": peak,
        "rss_after_data_mib": rss_data,
        "demos_kept_0_1_2": np.bincount([len(d) for d in ra["demos"][:]], minlength=K + 1).tolist(),
        **checked,
    }


def check_equal(pool, vanilla, index, ra) -> dict:
    """Ours equals the previous row-by-row builds byte for byte (every column of every row)."""
    from tests.fixtures.row_by_row import row_by_row, row_by_row_conversations

    reference = row_by_row_conversations(pool, seed=SEED, negatives="resample")
    assert vanilla.data.table.equals(reference.data.table), "vanilla conversations differ from the row-by-row build"
    chosen = [[index.row_of(d) for d in demos] for demos in ra["demos"][:]]
    rendered = row_by_row(vanilla, index, chosen, STRATEGY)
    assert ra.data.table.equals(rendered.data.table), "RA-IT rows differ from the row-by-row rendering"
    return {"rows_checked": len(ra)}


def run_worker(which: str, size: int, dim: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", which, "--size", str(size), "--dim", str(dim)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(done.returncode)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=384, help="embedding width (MiniLM 384; GTE-large 1024)")
    parser.add_argument("--json", action="store_true", help="also print one 'BENCH {json}' line")
    parser.add_argument("--worker", choices=["gemm", "ours"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one measurement, in a fresh process (clean peak RSS)
        fn = gemm_floor if args.worker == "gemm" else ours
        print(json.dumps(fn(args.size, args.dim)))
        return 0
    before = run_worker("gemm", args.size, args.dim)
    r = run_worker("ours", args.size, args.dim)
    after = run_worker("gemm", args.size, args.dim)
    floor = min(before["seconds"], after["seconds"])
    ratio = r["seconds"] / floor
    print(
        f"RA-IT build end to end, N={args.size:,} (dim {args.dim}, {STRATEGY}, K={TOP_K}, k={K}, BM25>={THRESHOLD:g})"
    )
    print(
        f"  floor (bare GEMM {args.size:,} x {args.dim} @ {args.dim} x {args.size:,}): {floor:.1f} s "
        f"(before {before['seconds']:.1f} s, after {after['seconds']:.1f} s)"
    )
    print(
        f"  ours: {r['seconds']:.1f} s [vanilla {r['vanilla_s']:.1f} s + index {r['index_s']:.1f} s + augment "
        f"{r['augment_s']:.1f} s]  =  {ratio:.2f}x the floor (target <= 2x)"
    )
    print(
        f"  peak RSS (data + our build): {r['peak_rss_mib']:,.0f} MiB (data alone {r['rss_after_data_mib']:,.0f} MiB); "
        f"rows keeping 0/1/2 demos: {r['demos_kept_0_1_2']}"
    )
    print(f"  equal to the row-by-row builds, byte for byte: {r['rows_checked']:,} vanilla and RA-IT rows", flush=True)
    if args.json:
        print(
            "BENCH "
            + json.dumps(
                {
                    "benchmark": "RA-IT build end to end vs bare GEMM floor",
                    "size": f"{args.size:,} passages",
                    "baseline_s": floor,
                    "ours_s": r["seconds"],
                    "ratio": ratio,
                    "note": f"ratio = ours / bare GEMM (lower is better, target <= 2x); peak RSS "
                    f"{r['peak_rss_mib']:,.0f} MiB; byte-equal to the row-by-row builds",
                    "details": {**r, "floor_before_s": before["seconds"], "floor_after_s": after["seconds"]},
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
