"""Annotation throughput against a loopback fake teacher: is the toolkit or the concurrency the bottleneck?

Runs the fake OpenAI-compatible teacher in its own process (so it does not share our GIL), annotates N
distinct passages at a given concurrency with a fresh answer cache, and prints passages/s. With a fixed
per-call latency L the ceiling is concurrency / L; the ratio measured/ceiling shows the toolkit overhead.

    python bench/annotate_throughput.py                      # 10,000 passages, instant teacher, concurrency 16
    python bench/annotate_throughput.py --latency 0.05       # ceiling 16 / 0.05 = 320 passages/s
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the fake teacher sleeps per call")
    args = parser.parse_args()

    import datasets

    from raitner_hub.annotate import annotate_passages
    from raitner_hub.config import AnnotateConfig
    from raitner_hub.teacher import TeacherSpec

    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.fake_teacher", "--delay", str(args.latency)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = server.stdout.readline().strip()
        texts = [f"第{i}段：实体出现在北京，编号{i}。" for i in range(args.passages)]
        passages = datasets.Dataset.from_dict(
            {
                "id": [f"p{i}" for i in range(len(texts))],
                "text": texts,
                "lang": ["zh"] * len(texts),
                "source": ["bench"] * len(texts),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            config = AnnotateConfig(
                corpus="bench",
                lang="zh",
                concurrency=args.concurrency,
                teachers=(TeacherSpec(model="fake", base_url=base_url, key_env=None),),
                cache=str(Path(tmp) / "cache.sqlite"),
            )
            started = time.perf_counter()
            annotated, facts = annotate_passages(passages, config, progress=False)
            elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    rate = len(annotated) / elapsed
    line = (
        f"annotate throughput: {len(annotated)} passages in {elapsed:.1f} s = {rate:.0f} passages/s"
        f" (concurrency {args.concurrency}, teacher latency {args.latency * 1000:.0f} ms"
    )
    if args.latency:
        ceiling = args.concurrency / args.latency
        line += f", ceiling {ceiling:.0f}/s, {rate / ceiling:.0%} of it"
    print(line + f", {facts['calls']['fake']['calls']} calls)")


if __name__ == "__main__":
    main()
