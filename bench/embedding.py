"""Embedding: passages/s with the offline MiniLM embedder, and a cached rebuild over unchanged input.

Real English passages (``../shared/data/en/raw_passages``, else the bundled Pile-NER sample) are embedded
by ``raitner_hub.embedder.Embedder("minilm")`` into an empty cache folder (cold), then a *new* embedder
over the same folder embeds them again (a rebuild with unchanged input). The rebuild must send no text
to the model and return the same vectors (asserted). Model loading is excluded from both times.

    .venv/bin/python bench/embedding.py [--passages 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SOURCES = [
    ROOT.parent / "shared" / "data" / "en" / "raw_passages" / "pile_passages_from_pilener.jsonl",
    ROOT / "examples" / "data" / "pile_ner_sample.en.jsonl",
]


def load_passages(n: int) -> list[str]:
    texts: list[str] = []
    for source in SOURCES:
        if source.is_file():
            with source.open(encoding="utf-8") as f:
                texts.extend(json.loads(line)["text"] for line in f if line.strip())
    texts = list(dict.fromkeys(texts))[:n]
    if not texts:
        raise SystemExit("no English passages found (need ../shared/data or examples/data)")
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from raitner_hub.embedder import Embedder

    texts = load_passages(args.passages)
    with tempfile.TemporaryDirectory(prefix="bench-emb-") as cache:
        cold = Embedder("minilm", lang="en", cache_dir=cache, batch_size=args.batch_size, progress=False)
        start = time.perf_counter()
        first = cold.encode(texts)
        cold_s = time.perf_counter() - start
        warm = Embedder("minilm", lang="en", cache_dir=cache, batch_size=args.batch_size, progress=False)
        start = time.perf_counter()
        again = warm.encode(texts)
        warm_s = time.perf_counter() - start
    assert cold.encode_calls == len(texts) and warm.encode_calls == 0, "the rebuild re-encoded texts"
    assert np.array_equal(first, again), "cached vectors differ from the encoded ones"
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(
        f"Embedding {len(texts)} real English passages (mean {words:.0f} words) with offline MiniLM "
        f"(max_seq_length {cold.max_seq_length}, batch {args.batch_size}, {torch.get_num_threads()} threads)"
    )
    print(
        f"  cold: {cold_s:.1f} s ({len(texts) / cold_s:.1f} passages/s)   rebuild from cache: {warm_s:.3f} s "
        f"(0 texts encoded, same vectors)   ratio: {cold_s / warm_s:.0f}x"
    )
    if args.json:
        print(
            "BENCH "
            + json.dumps(
                {
                    "benchmark": "Embedding: cold vs cached rebuild",
                    "size": f"{len(texts)} passages",
                    "baseline_s": cold_s,
                    "ours_s": warm_s,
                    "ratio": cold_s / warm_s,
                    "note": f"MiniLM {len(texts) / cold_s:.1f} passages/s cold; rebuild encodes 0 texts",
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
