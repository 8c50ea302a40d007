"""Build the bundled benchmark sample (examples/data/benchmarks/) from ../shared/data, for the smoke recipe.

    python examples/make_benchmark_sample.py [--shared ../shared/data]

The first sentences of each split of two CrossNER domains, copied byte for byte (BIO, token first), and the
first test conversations of UniNER's ``test.uniner.json`` (the registry's default test gold), laid out like the
data root so ``raitner push-benchmarks --data-root examples/data/benchmarks`` reads it with the registry's own
specs. Deterministic: the first N sentences in file order, no seed involved.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "benchmarks"
SENTENCES = {"train.bio.txt": 10, "dev.bio.txt": 4, "test.bio.txt": 8}
DOMAINS = ("crossner_ai", "crossner_politics")


def first_sentences(text: str, n: int) -> str:
    blocks = [b for b in text.split("\n\n") if b.strip()]
    return "\n\n".join(blocks[:n]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = parser.parse_args()
    for domain in DOMAINS:
        for file, n in SENTENCES.items():
            source = args.shared / "en" / domain / file
            target = OUT / "en" / domain / file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(first_sentences(source.read_text(encoding="utf-8"), n), encoding="utf-8")
            print(f"{target.relative_to(HERE.parent)}: {n} sentences")
        uniner = json.loads((args.shared / "en" / domain / "test.uniner.json").read_text(encoding="utf-8"))
        target = OUT / "en" / domain / "test.uniner.json"
        target.write_text(
            json.dumps(uniner[: SENTENCES["test.bio.txt"]], ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        print(f"{target.relative_to(HERE.parent)}: {SENTENCES['test.bio.txt']} conversations")


if __name__ == "__main__":
    main()
