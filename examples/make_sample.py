"""Build the bundled quickstart sample (examples/data/) from ../shared/data with raitner_hub.formats.

    python examples/make_sample.py [--shared ../shared/data]

English: 300 passages of SLIMER's Pile-NER validation subset (one row per passage and type, grouped into
one passage with all its asked types). Chinese: 300 passages of the Sky-NER sample. Candidates are the
passages with at least one entity and 20+ characters; the shortest 300 are kept (so each file stays under
400 KB and the quickstart runs fast), in file order, written as AnnotatedPassage jsonl that
``raitner_hub.formats.read_annotated`` reads back unchanged. Deterministic: no seed involved.
Boson is never copied here: its license forbids redistribution.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from raitner_hub.formats import read_annotated, write_jsonl

HERE = Path(__file__).resolve().parent
MAX_BYTES = 400_000
SAMPLES = {
    "pile_ner_sample.en.jsonl": ("en/pile_ner_slimer_subset/validation_nodef.jsonl", "slimer"),
    "sky_ner_sample.zh.jsonl": ("zh/sky_ner_sample/sky_ner_examples_from_ra_it_rag.jsonl", "sky_ner"),
}


def sample_rows(source: Path, fmt: str, n: int) -> list[dict]:
    rows = list(read_annotated(source, format=fmt))
    candidates = [i for i, row in enumerate(rows) if row["entities"] and len(row["text"].strip()) >= 20]
    by_size = sorted(candidates, key=lambda i: (len(_line(rows[i])), i))
    keep, total = [], 0
    for i in by_size[:n]:
        if total + len(_line(rows[i])) > MAX_BYTES:
            break
        keep.append(i)
        total += len(_line(rows[i]))
    return [rows[i] for i in sorted(keep)]


def _line(row: dict) -> bytes:
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("-n", type=int, default=300)
    args = parser.parse_args()
    for name, (rel, fmt) in SAMPLES.items():
        rows = sample_rows(args.shared / rel, fmt, args.n)
        out = HERE / "data" / name
        write_jsonl(rows, out)
        print(
            f"{out.relative_to(HERE.parent)}: {len(rows)} passages, "
            f"{sum(len(r['entities']) for r in rows)} entities, {out.stat().st_size:,} bytes"
        )


if __name__ == "__main__":
    main()
