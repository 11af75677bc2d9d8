"""Difference-size estimator: tug-of-war sketches (Alon, Matias, Szegedy 1996).

Counter t of a set is sum over its ids of sign_t(id), sign = +1 or -1 from
one bit of a hash of the id. Subtracting two replicas' counters cancels every
shared id and leaves sum of +-1 over the k differing ids, whose square has
expectation exactly k. The mean of the squares over TOW_COUNTERS independent
counters estimates k with relative standard deviation sqrt(2 / TOW_COUNTERS)
(6.25 % for 512 counters), which is what sizes the first batch of coded
symbols. Counters are plain integers, so adding an id is 512 increments: the
sketch is kept up to date incrementally beside the cached symbols.

On the wire each counter is sent modulo 2**16 (2 bytes): the difference of
two counters is a sum of k signs, |d| < 2**15 unless k is in the tens of
millions, so the receiver recovers d exactly from the 16-bit difference
whatever the set sizes. 512 counters cost 1024 bytes, 6 % of the floor for
k = 1000.
"""
import numpy as np

from .riblt import K_TOW, MASK64, mix64, mix64_np

# 512 counters: 6.25 % relative error for 1 KB. With 256 the first batch needs
# a wider margin (more 20-byte symbols) or a third round trip comes in ~10 %
# of syncs; with 1024 the sketch costs more than the margin saves. Measured
# over 60 seeds in docs/sync.md.
TOW_COUNTERS = 512
TOW_WORDS = TOW_COUNTERS // 64
TOW_BYTES = 2 * TOW_COUNTERS
_MOD = 1 << 16

# bit b of byte value v, for turning byte histograms into bit counts
_BITS = ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(np.int64)


def _word_consts():
    return [(K_TOW + j) & MASK64 for j in range(TOW_WORDS)]


def signs_one(h):
    """The TOW_COUNTERS signs (+1/-1, int64 array) of one id hash."""
    words = np.array([mix64(h ^ c) for c in _word_consts()], dtype="<u8")
    bits = np.unpackbits(words.view(np.uint8), bitorder="little").astype(np.int64)
    return 2 * bits - 1


def counters_np(h):
    """Counters of many ids at once from their hashes (uint64 array)."""
    n = len(h)
    out = np.empty(TOW_COUNTERS, dtype=np.int64)
    for j, c in enumerate(_word_consts()):
        w = mix64_np(h ^ np.uint64(c)).astype("<u8").view(np.uint8).reshape(n, 8)
        for byte in range(8):
            hist = np.bincount(w[:, byte], minlength=256).astype(np.int64)
            ones = hist @ _BITS  # ones[b] = ids whose bit 8*byte+b is set
            t0 = 64 * j + 8 * byte
            out[t0:t0 + 8] = 2 * ones - n
    return out


def to_wire(counters):
    return (np.asarray(counters, dtype=np.int64) % _MOD).astype(">u2").tobytes()


def difference(wire_a, counters_b):
    """Exact per-counter differences a - b from a's wire form and b's counters."""
    a = np.frombuffer(wire_a, dtype=">u2").astype(np.int64)
    d = (a - np.asarray(counters_b, dtype=np.int64)) % _MOD
    return np.where(d >= _MOD // 2, d - _MOD, d)


def estimate(wire_a, counters_b):
    """Estimated size of the symmetric difference (a float >= 0)."""
    d = difference(wire_a, counters_b)
    return float(np.mean(d * d))
