"""Cost of collecting the chosen tokens' log-probs (for confidence scores) during shared-prefix decoding.

Decodes the same questions with ``greedy_shared_prefix(..., with_logprobs=False)`` (the baseline) and
``with_logprobs=True`` on the tiny Qwen2 test model with a vocabulary widened to ``--vocab`` rows (the
extra log-softmax is over the vocabulary, so a 600-token vocabulary would hide it), checks the tokens
are identical, and prints both times and the ratio.

    .venv/bin/python bench/score_overhead.py [--passages 16] [--vocab 32000] [--max-new-tokens 32]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.predict_prefix import LABELS, passages  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from raitner_hub import prompts
    from raitner_hub.decoding import greedy_shared_prefix, split_shared_prefix
    from raitner_hub.predict import NER
    from tests.fixtures.tiny_model import build_tiny_model, load_noisy_tiny_model

    folder = build_tiny_model(Path(tempfile.mkdtemp(prefix="bench-tiny-")) / "tiny")
    model, tokenizer = load_noisy_tiny_model(folder)
    model.resize_token_embeddings(args.vocab, mean_resizing=False)  # random rows: a realistic softmax width
    with torch.no_grad():
        model.get_input_embeddings().weight[len(tokenizer) :].normal_(0, 0.25)
    ner = NER(model, tokenizer, model_id="tiny", lang="en")
    conv = prompts.conversation_template("en")
    groups = [
        split_shared_prefix([ner._render_ids(prompts.render_query(text, label, conv)) for label in LABELS])
        for text in passages(args.passages)
    ]

    def run(with_logprobs: bool):
        return greedy_shared_prefix(
            model,
            groups,
            stop_ids=ner.stop_ids,
            pad_id=ner.pad_id,
            max_new_tokens=args.max_new_tokens,
            batch_size=64,
            with_logprobs=with_logprobs,
        )

    run(False), run(True)  # warm-up
    best = {False: float("inf"), True: float("inf")}
    outs = {}
    for _ in range(args.repeats):
        for flag in (False, True):
            start = time.perf_counter()
            outs[flag] = run(flag)
            best[flag] = min(best[flag], time.perf_counter() - start)
    plain = [rows for rows in outs[False]]
    scored = [[list(g.tokens) for g in rows] for rows in outs[True]]
    assert plain == scored, "collecting log-probs changed the decoded tokens"
    n = sum(len(g.suffixes) for g in groups)
    print(
        f"torch threads: {torch.get_num_threads()}; {n} questions; vocab {args.vocab}; "
        f"max_new_tokens={args.max_new_tokens}"
    )
    print(
        f"without log-probs: {best[False]:.3f} s  with log-probs: {best[True]:.3f} s  "
        f"ratio: {best[True] / best[False]:.3f}x  tokens identical: yes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
