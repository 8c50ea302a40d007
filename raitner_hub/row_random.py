"""Seeded randomness per row: every draw of a build comes from a generator seeded by (seed, row key), so
results do not depend on row order, batching or the number of worker processes.

:func:`row_rng` is the definition: ``np.random.default_rng([seed, crc32(key)])``. Making one costs more than
everything else the vanilla build does with a row (a SeedSequence hash, then a PCG64 and a Generator
object), and a build makes one per row and stage. :func:`row_generators` makes the same generators faster:
it hashes every row's SeedSequence at once (numpy's algorithm, in vectorised uint32 arithmetic), and
resets one PCG64 to each row's seeded state, so the draws are numpy's own on identical streams.
:func:`choice_without_replacement` is ``Generator.choice(n, size, replace=False, p=p)`` without its argument
checks (numpy's loop, the same random numbers consumed, the same floats). Both are checked against numpy
itself (tests/test_row_random.py).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence

import numpy as np

# numpy.random.SeedSequence's hash constants (numpy/random/bit_generator.pyx) and PCG64's multiplier
# (numpy/random/src/pcg64/pcg64.h); numpy keeps both stable (NEP 19), and tests/test_row_random.py checks them.
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R, _XSHIFT, _POOL_SIZE = 0xCA01F9DD, 0x4973F715, 16, 4
_PCG64_MULT = (2549297995355413924 << 64) + 4865540595714422341
_MASK128 = (1 << 128) - 1


def row_key(key: str) -> int:
    return zlib.crc32(key.encode("utf-8"))


def row_rng(seed: int, key: str) -> np.random.Generator:
    """A generator for one row, independent of row order."""
    return np.random.default_rng([seed, row_key(key)])


def row_generators(seed: int, keys: Sequence[str]) -> Iterator[np.random.Generator]:
    """``row_rng(seed, key)`` for each key in turn, made by resetting one generator.

    Each generator is valid until the next one is taken (it is the same object, re-seeded): draw from it,
    then move on. Seeds outside 0..2**32-1 take the plain path.
    """
    if not 0 <= seed < 2**32:
        yield from (row_rng(seed, key) for key in keys)
        return
    words = _seed_sequence_states(seed, np.fromiter((row_key(k) for k in keys), dtype=np.uint32, count=len(keys)))
    bit_generator = np.random.PCG64(0)
    generator = np.random.Generator(bit_generator)
    for hi, lo, inc_hi, inc_lo in words.tolist():
        # pcg64_set_seed: state = 0; inc = 2 * initseq + 1; step; state += initstate; step.
        inc = ((((inc_hi << 64) | inc_lo) << 1) | 1) & _MASK128
        state = ((inc + ((hi << 64) | lo)) * _PCG64_MULT + inc) & _MASK128
        bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": state, "inc": inc},
            "has_uint32": 0,
            "uinteger": 0,
        }
        yield generator


def _seed_sequence_states(seed: int, keys: np.ndarray) -> np.ndarray:
    """``SeedSequence([seed, key]).generate_state(4, np.uint64)`` for every uint32 key: uint64[n, 4]."""
    n = len(keys)
    u32 = np.uint32
    hash_const = u32(_INIT_A)

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal hash_const
        value = value ^ hash_const
        hash_const = u32(int(hash_const) * _MULT_A & 0xFFFFFFFF)
        value = value * hash_const
        return value ^ (value >> u32(_XSHIFT))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result: np.ndarray = u32(_MIX_MULT_L) * x - u32(_MIX_MULT_R) * y  # uint32 (wraps)
        return result ^ (result >> u32(_XSHIFT))

    with np.errstate(over="ignore"):  # uint32 arithmetic wraps, as in the C code
        entropy = [np.full(n, seed, dtype=u32), keys.astype(u32)]
        mixer = [hashmix(entropy[i] if i < len(entropy) else np.zeros(n, dtype=u32)) for i in range(_POOL_SIZE)]
        for i_src in range(_POOL_SIZE):
            for i_dst in range(_POOL_SIZE):
                if i_src != i_dst:
                    mixer[i_dst] = mix(mixer[i_dst], hashmix(mixer[i_src]))
        out = np.empty((n, 8), dtype=u32)
        hash_const = u32(_INIT_B)
        for i in range(8):  # 4 uint64 words = 8 uint32 words, cycling through the pool
            value = mixer[i % _POOL_SIZE] ^ hash_const
            hash_const = u32(int(hash_const) * _MULT_B & 0xFFFFFFFF)
            value = value * hash_const
            out[:, i] = value ^ (value >> u32(_XSHIFT))
    return out.astype("<u4").view("<u8")  # little-endian pairs of uint32 are numpy's uint64 words


def choice_without_replacement(rng: np.random.Generator, p: np.ndarray, size: int) -> list[int]:
    """``rng.choice(len(p), size, replace=False, p=p).tolist()``: the same loop, random numbers and floats.

    ``p`` must be a valid float64 distribution with at least ``size`` non-zero entries (the caller's
    invariant; numpy's own checks are what this skips).
    """
    found: list[int] = []
    p = p.copy()
    while len(found) < size:
        x = rng.random(size - len(found))
        if found:
            p[found] = 0
        cdf = np.cumsum(p)
        cdf /= cdf[-1]
        # numpy keeps each new index's first occurrence, in draw order (np.unique + sorted first indices)
        found.extend(dict.fromkeys(cdf.searchsorted(x, side="right").tolist()))
    return found
