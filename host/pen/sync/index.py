"""A replica's id index for reconciliation, kept up to date as records arrive.

Holds the ids (sorted uint64 halves plus a small unsorted tail of recent
adds), the first CACHE_SYMBOLS coded symbols of the rateless IBLT and the
tug-of-war counters. Building it for 1 M ids takes about a second (numpy);
after that, add() updates symbols and counters in place (about 2*ln(m/2)+1 =
21 symbol updates and 256 counter increments per id), so a CTB node never
rebuilds anything for a sync.
"""
import numpy as np

from . import estimate, riblt

# Cached prefix of the symbol sequence: 65536 symbols decode differences up
# to about 45 000 ids without touching the id set; the cache is 1.3 MB and
# costs only ~25 % more to build than a 2048-symbol one (the work grows with
# ln m). Symbols past it are computed on demand from all ids.
CACHE_SYMBOLS = 1 << 16
# Recent adds wait in a set and are merged into the sorted arrays once the
# tail reaches this size or 1/64 of the set: an amortised O(log n) add.
_TAIL_MIN = 1024


def ids_to_arrays(ids):
    """Iterable of 16-byte ids -> (hi, lo) uint64 arrays (big-endian halves)."""
    raw = b"".join(ids)
    if len(raw) % 16:
        raise ValueError("ids must be 16 bytes each")
    arr = np.frombuffer(raw, dtype=">u8").reshape(-1, 2)
    return arr[:, 0].astype(np.uint64), arr[:, 1].astype(np.uint64)


def arrays_to_bytes(hi, lo):
    """(hi, lo) arrays -> concatenated 16-byte ids."""
    out = np.empty((len(hi), 2), dtype=">u8")
    out[:, 0] = hi
    out[:, 1] = lo
    return out.tobytes()


def member(q_hi, q_lo, s_hi, s_lo):
    """Which of the ids (q_hi, q_lo) are in the lexicographically sorted ids
    (s_hi, s_lo): bool array."""
    q_hi = np.asarray(q_hi, dtype=np.uint64)
    q_lo = np.asarray(q_lo, dtype=np.uint64)
    out = np.zeros(len(q_hi), dtype=bool)
    if not len(s_hi) or not len(q_hi):
        return out
    a = np.searchsorted(s_hi, q_hi, "left")
    b = np.searchsorted(s_hi, q_hi, "right")
    single = (b - a) == 1
    out[single] = s_lo[a[single]] == q_lo[single]
    for i in np.nonzero((b - a) > 1)[0]:  # equal high halves: ~never
        out[i] = bool(np.any(s_lo[a[i]:b[i]] == q_lo[i]))
    return out


def strictly_sorted(hi, lo):
    """True if the ids are in strictly increasing order (so also distinct)."""
    if len(hi) < 2:
        return True
    return bool(np.all((hi[1:] > hi[:-1]) | ((hi[1:] == hi[:-1]) & (lo[1:] > lo[:-1]))))


def _merge_sorted(hi, lo, new_hi, new_lo):
    """Merge two sorted, disjoint id arrays. Inserting a few thousand ids into
    a million is a copy (~10 ms), not a re-sort (~150 ms); equal high halves,
    which searchsorted on hi alone cannot place, fall back to the sort."""
    if not len(hi):
        return new_hi, new_lo
    at = np.searchsorted(hi, new_hi, "left")
    inside = at < len(hi)
    if np.any(hi[at[inside]] == new_hi[inside]) or (len(new_hi) > 1 and np.any(new_hi[1:] == new_hi[:-1])):
        all_hi, all_lo = np.concatenate([hi, new_hi]), np.concatenate([lo, new_lo])
        order = np.lexsort((all_lo, all_hi))
        return all_hi[order], all_lo[order]
    return np.insert(hi, at, new_hi), np.insert(lo, at, new_lo)


def _sorted_unique(hi, lo):
    order = np.lexsort((lo, hi))
    hi, lo = hi[order], lo[order]
    if len(hi) > 1:
        keep = np.ones(len(hi), dtype=bool)
        keep[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
        hi, lo = hi[keep], lo[keep]
    return hi, lo


class SetIndex:
    """The id set of one replica, with its reconciliation sketches."""

    def __init__(self, cache_symbols=CACHE_SYMBOLS):
        self.cache_symbols = cache_symbols
        self._hi = np.zeros(0, dtype=np.uint64)
        self._lo = np.zeros(0, dtype=np.uint64)
        self._tail = set()  # (hi, lo) int pairs not yet merged
        self.sym_hi = np.zeros(cache_symbols, dtype=np.uint64)
        self.sym_lo = np.zeros(cache_symbols, dtype=np.uint64)
        self.sym_chk = np.zeros(cache_symbols, dtype=np.uint32)
        self.tow = np.zeros(estimate.TOW_COUNTERS, dtype=np.int64)

    @classmethod
    def from_arrays(cls, hi, lo, cache_symbols=CACHE_SYMBOLS):
        idx = cls(cache_symbols)
        idx.add_arrays(hi, lo)
        return idx

    @classmethod
    def from_ids(cls, ids, cache_symbols=CACHE_SYMBOLS):
        return cls.from_arrays(*ids_to_arrays(list(ids)), cache_symbols=cache_symbols)

    def __len__(self):
        return len(self._hi) + len(self._tail)

    # -- adding ----------------------------------------------------------

    def add(self, id16):
        """Add one id; returns False if it was already there."""
        if len(id16) != 16:
            raise ValueError("id must be 16 bytes")
        hi, lo = riblt.split(id16)
        if (hi, lo) in self._tail or self._contains_sorted(hi, lo):
            return False
        self._tail.add((hi, lo))
        riblt.encode_one(self.sym_hi, self.sym_lo, self.sym_chk, hi, lo)
        self.tow += estimate.signs_one(riblt.id_hash(hi, lo))
        if len(self._tail) >= max(_TAIL_MIN, len(self._hi) >> 6):
            self._merge()
        return True

    def add_many(self, ids):
        """Add many 16-byte ids at once (numpy path); returns how many were new."""
        ids = list(ids)
        if not ids:
            return 0
        return self.add_arrays(*ids_to_arrays(ids))

    def add_arrays(self, hi, lo):
        self._merge()
        hi, lo = _sorted_unique(np.asarray(hi, dtype=np.uint64), np.asarray(lo, dtype=np.uint64))
        if len(self._hi):
            new = ~self.contains_arrays(hi, lo)
            hi, lo = hi[new], lo[new]
        added = len(hi)
        if not added:
            return 0
        s_hi, s_lo, s_chk = riblt.encode_np(hi, lo, self.cache_symbols)
        self.sym_hi ^= s_hi
        self.sym_lo ^= s_lo
        self.sym_chk ^= s_chk
        self.tow += estimate.counters_np(riblt.id_hash_np(hi, lo))
        self._hi, self._lo = _merge_sorted(self._hi, self._lo, hi, lo)
        return added

    def _merge(self):
        if not self._tail:
            return
        pairs = list(self._tail)
        self._tail = set()
        hi = np.array([p[0] for p in pairs], dtype=np.uint64)
        lo = np.array([p[1] for p in pairs], dtype=np.uint64)
        order = np.lexsort((lo, hi))
        self._hi, self._lo = _merge_sorted(self._hi, self._lo, hi[order], lo[order])

    # -- queries ---------------------------------------------------------

    def _contains_sorted(self, hi, lo):
        a = int(np.searchsorted(self._hi, np.uint64(hi), "left"))
        n = len(self._hi)
        while a < n and int(self._hi[a]) == hi:
            if int(self._lo[a]) == lo:
                return True
            a += 1
        return False

    def __contains__(self, id16):
        hi, lo = riblt.split(id16)
        return (hi, lo) in self._tail or self._contains_sorted(hi, lo)

    def contains_arrays(self, hi, lo):
        """Membership of many ids at once: bool array."""
        self._merge()
        return member(hi, lo, self._hi, self._lo)

    def snapshot(self):
        """A frozen copy for one sync: later adds do not change it. Shares the
        sorted id arrays (a merge replaces them, never writes into them) and
        copies the 1.3 MB of cached symbols and counters."""
        self._merge()
        snap = SetIndex.__new__(SetIndex)
        snap.cache_symbols = self.cache_symbols
        snap._hi, snap._lo, snap._tail = self._hi, self._lo, set()
        snap.sym_hi, snap.sym_lo, snap.sym_chk = self.sym_hi.copy(), self.sym_lo.copy(), self.sym_chk.copy()
        snap.tow = self.tow.copy()
        return snap

    def arrays(self):
        """All ids, sorted: (hi, lo) uint64 arrays."""
        self._merge()
        return self._hi, self._lo

    def bucket(self, bits, number):
        """Sorted ids whose top `bits` bits equal `number`."""
        self._merge()
        shift = 64 - bits
        lo_key = np.uint64(number << shift) if bits else np.uint64(0)
        a = int(np.searchsorted(self._hi, lo_key, "left"))
        if bits == 0 or number + 1 == (1 << bits):
            b = len(self._hi)
        else:
            b = int(np.searchsorted(self._hi, np.uint64((number + 1) << shift), "left"))
        return self._hi[a:b], self._lo[a:b]

    def fingerprint(self):
        """Symbol 0, the XOR of every id and checksum (20 bytes)."""
        return riblt.symbols_to_bytes(self.sym_hi, self.sym_lo, self.sym_chk, 0, 1)

    def symbols(self, start, stop):
        """Coded symbols start..stop-1 as arrays (computed past the cache)."""
        c = self.cache_symbols
        if stop <= c:
            return self.sym_hi[start:stop], self.sym_lo[start:stop], self.sym_chk[start:stop]
        hi, lo = self.arrays()
        extra = riblt.encode_np(hi, lo, stop, max(start, c))
        if start >= c:
            return extra
        return tuple(np.concatenate([a[start:c], e]) for a, e in
                     zip((self.sym_hi, self.sym_lo, self.sym_chk), extra))

    def symbols_bytes(self, start, stop):
        return riblt.symbols_to_bytes(*self.symbols(start, stop), 0, stop - start)
