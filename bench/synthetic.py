"""Synthetic annotated pools for the benchmarks: real BM25 tokens, given random unit embeddings.

Texts are English-like: whitespace-joined words drawn from a fixed 20K-word vocabulary with a Zipf law
(exponent 0.9, so BM25 sees frequent and rare terms; random candidate pairs then score a median ~15 and
~30% reach the paper's threshold 20, near the paper's 7.6 / 20%), 20-80 words each, and 2-5 single-word entities with
character offsets. Every draw comes from one seeded generator, so a size always gives the same pool.
"""

from __future__ import annotations

import numpy as np

VOCAB_SIZE = 20_000
TYPES = [f"type {i}" for i in range(40)]


def _vocabulary(rng: np.random.Generator) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(3, 10, size=VOCAB_SIZE)
    words = {"".join(rng.choice(letters, size=n)) for n in lengths}
    return sorted(words)


def synthetic_rows(n: int, *, seed: int = 0) -> list[dict]:
    """``n`` AnnotatedPassage dicts with ids ``syn_0``..``syn_{n-1}`` (texts are distinct)."""
    rng = np.random.default_rng(seed)
    vocab = _vocabulary(rng)
    zipf = 1.0 / np.arange(1, len(vocab) + 1) ** 0.9
    zipf /= zipf.sum()
    type_weights = 1.0 / np.arange(1, len(TYPES) + 1)
    type_weights /= type_weights.sum()
    lengths = rng.integers(20, 81, size=n)
    word_ids = rng.choice(len(vocab), size=int(lengths.sum()), p=zipf)
    rows, seen, pos = [], set(), 0
    for i, length in enumerate(lengths):
        words = [vocab[w] for w in word_ids[pos : pos + length]]
        pos += length
        n_ents = int(rng.integers(2, 6))
        chosen = sorted(rng.choice(length, size=n_ents, replace=False))
        for j in chosen:
            words[j] = words[j].capitalize()
        starts = np.concatenate(([0], np.cumsum([len(w) + 1 for w in words])[:-1]))
        entities = [
            {
                "start": int(starts[j]),
                "end": int(starts[j]) + len(words[j]),
                "text": words[j],
                "label": TYPES[int(rng.choice(len(TYPES), p=type_weights))],
            }
            for j in chosen
        ]
        text = " ".join(words) + " ."
        if text in seen:  # practically never; keeps "identical texts" out of the comparison
            text += f" {i}"
        seen.add(text)
        rows.append(
            {
                "id": f"syn_{i}",
                "text": text,
                "lang": "en",
                "source": "synthetic",
                "entities": entities,
                "annotator": "synthetic",
            }
        )
    return rows


def unit_embeddings(n: int, dim: int, *, seed: int = 1) -> np.ndarray:
    """Random L2-normalised float32 vectors (the embedder's output, given)."""
    vectors = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def pool_dataset(rows: list[dict]):
    import datasets

    from raitner_hub.records import ANNOTATED_FEATURES

    return datasets.Dataset.from_list(rows, features=ANNOTATED_FEATURES)
