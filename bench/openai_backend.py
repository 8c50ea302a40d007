"""The ``openai`` backend against a loopback OpenAI-compatible server: token-identical to ``hf``, q/s in flight.

Builds the tiny Qwen2 test model (random weights scaled up so answers vary), starts the loopback
completions server (``tests/fixtures/openai_server.py``: transformers' greedy ``generate``, requests that
arrive together batched) in its own process, then asks 8 entity types about each passage through
``NER(backend="openai")`` with 1, 8 and 32 requests in flight. Every run's generated token ids are
asserted equal to the in-process ``hf`` backend's before its time is printed; the ratios are q/s at 8
and 32 in flight over q/s at 1 (the in-process ``hf`` q/s is printed for scale).

    .venv/bin/python bench/openai_backend.py [--passages 8] [--max-new-tokens 16] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.predict_prefix import LABELS, passages  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--json", action="store_true", help="also print BENCH {json} rows (bench/run_all.py)")
    args = parser.parse_args()

    from raitner_hub.predict import NER, Query
    from tests.fixtures.tiny_model import build_tiny_model, load_noisy_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="bench-openai-"))
    model, tokenizer = load_noisy_tiny_model(build_tiny_model(tmp / "tiny"))
    model.save_pretrained(tmp / "noisy")
    tokenizer.save_pretrained(tmp / "noisy")
    items = [Query(text, label) for text in passages(args.passages) for label in LABELS]
    hf = NER.from_pretrained(tmp / "noisy", backend="hf", device="cpu", lang="en", max_new_tokens=args.max_new_tokens)
    hf.generate(items[:8])  # warm-up
    start = time.perf_counter()
    reference = [g.token_ids for g in hf.generate(items)]
    hf_s = time.perf_counter() - start
    n = len(items)
    print(
        f"{args.passages} passages x {len(LABELS)} types = {n} questions; max_new_tokens={args.max_new_tokens}; "
        f"in-process hf backend: {hf_s:.2f} s ({n / hf_s:.1f} q/s)"
    )

    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.openai_server", str(tmp / "noisy"), "--name", "tiny"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = server.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise SystemExit("the loopback server did not start")
        times = {}
        for in_flight in args.in_flight:
            remote = NER.from_pretrained(
                tmp / "noisy",
                backend="openai",
                base_url=base_url,
                served_model="tiny",
                lang="en",
                max_new_tokens=args.max_new_tokens,
                max_concurrency=in_flight,
            )
            remote.generate(items[:8])  # warm-up (connections, server threads)
            start = time.perf_counter()
            got = [g.token_ids for g in remote.generate(items)]
            times[in_flight] = time.perf_counter() - start
            assert got == reference, f"openai backend outputs differ from hf at {in_flight} in flight"
            print(
                f"[{in_flight} in flight] {times[in_flight]:.2f} s ({n / times[in_flight]:.1f} q/s)  "
                f"vs 1 in flight: {times[args.in_flight[0]] / times[in_flight]:.1f}x  token-identical to hf: yes"
            )
        if args.json:
            base = args.in_flight[0]
            for in_flight in args.in_flight[1:]:
                print(
                    "BENCH "
                    + json.dumps(
                        {
                            "benchmark": f"openai backend, {in_flight} requests in flight vs {base}",
                            "size": f"{n} questions",
                            "baseline_s": times[base],
                            "ours_s": times[in_flight],
                            "ratio": times[base] / times[in_flight],
                            "note": f"loopback server, tiny Qwen2; {n / times[base]:.1f} -> {n / times[in_flight]:.1f} q/s "
                            f"(hf in-process {n / hf_s:.1f} q/s); token-identical to hf",
                        }
                    )
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
