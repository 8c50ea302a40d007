"""Run every benchmark with modest default sizes and print one table (``make bench``).

Each script runs in its own process; its own report is echoed as it runs, and its ``BENCH {json}`` lines
(or, for ``predict_prefix.py``, its ``[...] naive: ... ratio:`` lines) become the table rows. The table is
Markdown, headed by the machine and the date, ready for the README's Performance section.

    .venv/bin/python bench/run_all.py [--sizes 5000 20000 50000] [--quick] [--only ra_it_build bm25 ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PREDICT_LINE = re.compile(
    r"\[(?P<name>[^\]]+)\] naive: (?P<base>[\d.]+) s \((?P<bq>[\d.]+) q/s\)\s+shared-prefix "
    r"batched: (?P<ours>[\d.]+) s \((?P<oq>[\d.]+) q/s\)\s+ratio: (?P<ratio>[\d.]+)x"
)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}"


def run(name: str, argv: list[str], predict_passages: int = 16) -> list[dict]:
    print(f"\n=== {name}: {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *argv],
        cwd=BENCH.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    rows = []
    for line in proc.stdout:
        if line.startswith("BENCH "):
            rows.append(json.loads(line[6:]))
            continue
        print("  " + line.rstrip(), flush=True)
        match = PREDICT_LINE.search(line)
        if match:
            rows.append(
                {
                    "benchmark": f"Inference, 8 types/passage ({match['name']})",
                    "size": f"{predict_passages} passages x 8 questions",
                    "baseline_s": float(match["base"]),
                    "ours_s": float(match["ours"]),
                    "ratio": float(match["ratio"]),
                    "note": f"tiny Qwen2; naive {match['bq']} q/s -> ours {match['oq']} q/s; same outputs",
                }
            )
    if proc.wait() != 0:
        rows.append(
            {
                "benchmark": name,
                "size": "",
                "baseline_s": None,
                "ours_s": None,
                "ratio": None,
                "note": f"FAILED (exit {proc.returncode})",
            }
        )
    print(f"=== {name} done in {time.perf_counter() - start:.0f} s", flush=True)
    return rows


def fmt(seconds) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:,.0f}" if seconds >= 100 else f"{seconds:.2f}" if seconds >= 0.1 else f"{seconds:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000, 50_000])
    parser.add_argument("--baseline-queries", type=int, nargs="+", default=[200, 100, 50])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--bm25-pool", type=int, default=20_000)
    parser.add_argument("--embed-passages", type=int, default=200)
    parser.add_argument("--predict-passages", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run, ~2 minutes)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["ra_it_build", "bm25", "embedding", "predict", "serve", "openai", "demo_render", "build_floor"],
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.baseline_queries, args.bm25_pool = [2_000], [50], 2_000
        args.embed_passages, args.predict_passages = 50, 4
    jobs = {
        "ra_it_build": [
            "bench/ra_it_build.py",
            "--json",
            "--dim",
            str(args.dim),
            "--sizes",
            *map(str, args.sizes),
            "--baseline-queries",
            *map(str, args.baseline_queries),
        ],
        "bm25": ["bench/bm25_batch.py", "--json", "--pool", str(args.bm25_pool), "--queries", "300"],
        "embedding": ["bench/embedding.py", "--json", "--passages", str(args.embed_passages)],
        "predict": ["bench/predict_prefix.py", "--passages", str(args.predict_passages), "--repeats", "1"],
        "serve": ["bench/serve_concurrency.py", "--json", "--repeats", "1"],
        "openai": ["bench/openai_backend.py", "--json", "--passages", str(args.predict_passages)],
        "demo_render": ["bench/demo_render.py", "--json", "--sizes", *map(str, args.sizes[-1:])],
        "build_floor": ["bench/build_floor.py", "--json", "--size", str(args.sizes[-1]), "--dim", str(args.dim)],
    }
    started = time.perf_counter()
    rows = []
    for name, argv in jobs.items():
        if args.only and name not in args.only:
            continue
        rows += run(name, argv, args.predict_passages)

    print(
        f"\nraitner-hub benchmarks, {datetime.date.today().isoformat()}, {machine()}; "
        f"total {time.perf_counter() - started:.0f} s\n"
    )
    print("| benchmark | size | baseline s | ours s | ratio | note |")
    print("|---|---|---:|---:|---:|---|")
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:,.0f}x" if r["ratio"] >= 10 else f"{r['ratio']:.1f}x"
        print(
            f"| {r['benchmark']} | {r['size']} | {fmt(r['baseline_s'])} | {fmt(r['ours_s'])} | {ratio} | {r['note']} |"
        )
    return 1 if any(r["ratio"] is None for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
