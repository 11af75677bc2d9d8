"""Replica pairs for the sync tests: uniform random ids from a seeded RNG."""
import numpy as np

from pen.sync.index import SetIndex, arrays_to_bytes

SMALL_CACHE = 4096  # symbols; the 65536 default only matters for huge k


def random_arrays(rng, n):
    return (rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False),
            rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False))


def to_ids(hi, lo):
    raw = arrays_to_bytes(hi, lo)
    return sorted(raw[i:i + 16] for i in range(0, len(raw), 16))


def pair(seed, common, a_only, b_only, cache=SMALL_CACHE):
    """(index_a, index_b, ids only in a, ids only in b)."""
    rng = np.random.default_rng(seed)
    hi, lo = random_arrays(rng, common + a_only + b_only)
    c, a = slice(0, common), slice(common, common + a_only)
    b = slice(common + a_only, common + a_only + b_only)
    ia = SetIndex.from_arrays(np.r_[hi[c], hi[a]], np.r_[lo[c], lo[a]], cache_symbols=cache)
    ib = SetIndex.from_arrays(np.r_[hi[c], hi[b]], np.r_[lo[c], lo[b]], cache_symbols=cache)
    return ia, ib, to_ids(hi[a], lo[a]), to_ids(hi[b], lo[b])


def check(a, b, a_only, b_only):
    """Both reconcilers ended with exactly the true differences."""
    assert a.done and b.done
    assert a.result() == (b_only, a_only)
    assert b.result() == (a_only, b_only)
