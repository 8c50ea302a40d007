"""Questions/s of shared-prefix batched decoding vs naive one-question-per-call greedy generation.

Builds the tiny Qwen2 test model (random weights, scaled up so outputs vary), asks 8 entity types about
each passage, with and without 2 demonstrations, checks that both paths give identical tokens, and prints
the baseline time, ours and the ratio.

    .venv/bin/python bench/predict_prefix.py [--passages 16] [--max-new-tokens 32] [--repeats 3] [--device cuda]

On a GPU (``--device cuda``) batched and one-at-a-time kernels may round differently, so there the share
of identical answers is printed instead of asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LABELS = ["person", "location", "organization", "date", "event", "product", "programming language", "award"]
WORDS = (
    "Barack Obama visited Paris with Google engineers in 2015 and met the team of the Louvre museum "
    "before flying to Berlin for the Python conference where Linux won an award"
).split()


def passages(n: int) -> list[str]:
    return [" ".join(WORDS[(i * 5 + j) % len(WORDS)] for j in range(20 + (i % 4) * 8)) + " ." for i in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    args = parser.parse_args()

    import torch

    from raitner_hub import prompts
    from raitner_hub.decoding import greedy_naive
    from raitner_hub.predict import NER, Query
    from tests.fixtures.tiny_model import build_tiny_model, load_noisy_tiny_model

    folder = build_tiny_model(Path(tempfile.mkdtemp(prefix="bench-tiny-")) / "tiny")
    model, tokenizer = load_noisy_tiny_model(folder)
    model = model.to(args.device)
    ner = NER(
        model, tokenizer, model_id="tiny", lang="en", max_new_tokens=args.max_new_tokens, batch_size=args.batch_size
    )
    demos = (
        prompts.Demo("d1", " ".join(WORDS[:25]), (("Barack Obama", "person"), ("Paris", "location"))),
        prompts.Demo("d2", " ".join(WORDS[10:40]), (("Google", "organization"),)),
    )
    print(
        f"device {args.device}; torch threads: {torch.get_num_threads()}; {args.passages} passages x {len(LABELS)} types; "
        f"max_new_tokens={args.max_new_tokens}"
    )
    for name, with_demos in (("no demos", ()), ("2 demos", demos)):
        items = [Query(text, label, with_demos) for text in passages(args.passages) for label in LABELS]
        conv, demo_tmpl = ner.templates_for(items[0].text)
        full = [ner._render_ids(prompts.render_query(q.text, q.label, conv, q.demos, demo_tmpl)) for q in items]

        def naive(full=full):
            return [
                ner.tokenizer.decode(t, skip_special_tokens=True)
                for t in greedy_naive(
                    model, full, stop_ids=ner.stop_ids, pad_id=ner.pad_id, max_new_tokens=args.max_new_tokens
                )
            ]

        ours_out, base_out = ner.generate_answers(items[:8]), naive()[:8]  # warm-up
        best_naive = best_ours = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            base_out = naive()
            best_naive = min(best_naive, time.perf_counter() - start)
            start = time.perf_counter()
            ours_out = ner.generate_answers(items)
            best_ours = min(best_ours, time.perf_counter() - start)
        same = sum(a == b for a, b in zip(ours_out, base_out))
        if args.device == "cpu":
            assert ours_out == base_out, "shared-prefix outputs differ from naive greedy generation"
        n = len(items)
        print(
            f"[{name}] naive: {best_naive:.3f} s ({n / best_naive:.1f} q/s)  shared-prefix batched: "
            f"{best_ours:.3f} s ({n / best_ours:.1f} q/s)  ratio: {best_naive / best_ours:.1f}x  "
            + ("outputs identical: yes" if same == n else f"outputs identical: {same}/{n}")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
