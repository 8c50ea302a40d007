"""Rendering the RA-IT demonstrations: column-wise Arrow (``augment._with_demos``) vs row by row.

A synthetic pool (``bench/synthetic.py``) with random unit embeddings given; the demonstrations are
chosen once (``diverse_nn_bm25.v1``, K = 128, k = 2), then both renderings run on the same choices:
ours, and the previous row-by-row ``datasets.map`` with ``render_demo_messages`` per row
(``tests/fixtures/row_by_row.py``). The two tables are asserted equal before times, the ratio and each
one's peak RSS growth (in its own subprocess) are printed.

    .venv/bin/python bench/demo_render.py [--sizes 20000 50000] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def one(size: int, which: str) -> dict:
    import datasets
    import numpy as np
    from synthetic import pool_dataset, synthetic_rows, unit_embeddings

    from raitner_hub import augment
    from raitner_hub.instruct import build_conversations
    from raitner_hub.retrieval import RetrievalIndex
    from tests.fixtures.row_by_row import row_by_row

    datasets.disable_progress_bars()
    datasets.disable_caching()
    pool = pool_dataset(synthetic_rows(size))
    vanilla = build_conversations(pool, seed=42)
    index = RetrievalIndex.from_embeddings(pool, unit_embeddings(size, 384), lang="en")
    spec = augment.get_strategy("diverse_nn_bm25.v1")
    chosen = augment.select_demos(
        index,
        spec,
        vanilla["id"][:],
        k=2,
        top_k=128,
        seed=42,
        bm25_threshold=20.0,
        mixed_ratio=0.5,
        query_rows=np.array([index.row_of(s) for s in vanilla["source_id"][:]]),
    )
    index.demo(0)  # both renderings read the pool's entities column once; load it before timing
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if which == "ours":
        out = augment._with_demos(vanilla, index, chosen, spec, None)
    else:
        out = row_by_row(vanilla, index, chosen, spec.name)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    digest = out.flatten_indices().data.table
    import hashlib

    sha = hashlib.sha256()
    for batch in digest.to_batches():
        for column in batch.columns:
            sha.update(str(column.to_pylist()).encode())
    return {"seconds": seconds, "peak_rss_mib": peak, "peak_growth_mib": peak - before, "sha": sha.hexdigest()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 50_000])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "WHICH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1])))
        return 0
    for size in args.sizes:
        results = {}
        for which in ("baseline", "ours"):  # each in its own process: peak RSS is its own
            proc = subprocess.run(
                [sys.executable, __file__, "--one", str(size), which], capture_output=True, text=True, check=True
            )
            results[which] = json.loads(proc.stdout.strip().splitlines()[-1])
        base, ours = results["baseline"], results["ours"]
        assert base["sha"] == ours["sha"], "column-wise rendering differs from row-by-row rendering"
        ratio = base["seconds"] / ours["seconds"]
        print(
            f"[{size:,} rows] row by row: {base['seconds']:.2f} s (peak RSS {base['peak_rss_mib']:,.0f} MiB)  "
            f"column-wise: {ours['seconds']:.2f} s (peak RSS {ours['peak_rss_mib']:,.0f} MiB)  ratio: {ratio:.1f}x  "
            "outputs identical: yes"
        )
        if args.json:
            print(
                "BENCH "
                + json.dumps(
                    {
                        "benchmark": "Demonstration rendering (column-wise vs row by row)",
                        "size": f"{size:,} rows",
                        "baseline_s": base["seconds"],
                        "ours_s": ours["seconds"],
                        "ratio": ratio,
                        "note": f"peak RSS {base['peak_rss_mib']:,.0f} -> {ours['peak_rss_mib']:,.0f}"
                        " MiB; identical tables",
                    }
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
