"""The fast per-row generators and weighted draws are numpy's own, stream for stream."""

from __future__ import annotations

import numpy as np
import pytest

from raitner_hub.row_random import choice_without_replacement, row_generators, row_rng


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31 + 7, 2**32 - 1])
def test_row_generators_equal_default_rng(seed):
    keys = [f"row_{i}" for i in range(3000)] + ["", "名字", "a" * 500]
    fast = [
        (g.random(3).tolist(), int(g.integers(1 << 40)), g.permutation(7).tolist()) for g in row_generators(seed, keys)
    ]
    plain = []
    for key in keys:
        g = row_rng(seed, key)
        plain.append((g.random(3).tolist(), int(g.integers(1 << 40)), g.permutation(7).tolist()))
    assert fast == plain


def test_large_seeds_and_buffered_state_do_not_leak_between_rows():
    keys = [f"k{i}" for i in range(50)]
    for seed in (2**32, 2**70 + 3):  # outside uint32: the plain path
        assert [g.random() for g in row_generators(seed, keys)] == [row_rng(seed, k).random() for k in keys]
    # a 32-bit draw buffers half a 64-bit word in the bit generator: the next row must not inherit it
    fast = [(int(g.integers(2**31, dtype=np.int32)), g.random()) for g in row_generators(5, keys)]
    assert fast == [(int(r.integers(2**31, dtype=np.int32)), r.random()) for r in (row_rng(5, k) for k in keys)]


def test_choice_without_replacement_equals_generator_choice():
    rng = np.random.default_rng(0)
    for trial in range(3000):
        n = int(rng.integers(1, 60))
        weights = rng.random(n) ** rng.choice([1, 8])  # some very skewed: repeated draws, retries
        weights[rng.random(n) < 0.3] = 0.0
        nonzero = int(np.count_nonzero(weights))
        if nonzero == 0:
            continue
        p = weights / weights.sum()
        size = int(rng.integers(1, nonzero + 1))
        a, b = np.random.default_rng([7, trial]), np.random.default_rng([7, trial])
        assert choice_without_replacement(a, p, size) == b.choice(n, size=size, replace=False, p=p).tolist()
        assert a.random() == b.random()  # the same random numbers were consumed
