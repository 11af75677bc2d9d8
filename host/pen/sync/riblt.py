"""Rateless invertible Bloom lookup table (Yang et al., SIGCOMM 2024): the maths.

A set of 16-byte ids is encoded into an endless sequence of coded symbols.
Symbol i is the XOR of every id mapped to it and the XOR of their 32-bit
checksums. Each id maps to symbol 0 and then to a random subset of later
symbols, symbol i with probability 2/(i+2) (the paper's rho(i) = 1/(1+i/2)),
so an id lands in about 2*ln(m/2)+1 of the first m symbols. The sequence is the
same for every set size and every difference size: a replica keeps one cached
prefix, updated in place as ids arrive, and a peer streams as much of it as
the difference needs. Subtracting (XOR) two replicas' symbols leaves the
symbols of the symmetric difference; about 1.35-1.45 symbols per difference
decode it by peeling.

Everything here is integer arithmetic modulo 2**64 plus one IEEE-754 square
root, which every conforming implementation (CPython's math.sqrt, numpy's
sqrt) rounds the same way, so the scalar path (one id at a time, for
incremental adds and decoding) and the numpy path (a million ids at once) give
bit-identical symbols. tests/sync/test_riblt.py pins that.

Per id, with the id read as two big-endian 64-bit halves (hi, lo):
    h        = mix64(hi ^ mix64(lo ^ K_ID))           64-bit id hash
    checksum = h & 0xFFFFFFFF
    mapping  : index 0, then repeatedly
               s += GOLDEN;  r = mix64(s)  (s starts at h)
               u = (r >> 32) + 1                       uniform in [1, 2**32]
               q = floor(sqrt(float(u)) * 65536)       2**16 * sqrt(u), in [2**16, 2**32]
               gap = max(1, ceil((2*i + 3) * (2**32 - q) / (2*q)))
               i += gap
The gap draws the next index j > i with P(j > t) = ((i+1.5)/(t+1.5))**2, the
continuous form of prod_{v=i+1..t} (1 - 2/(v+2)).
mix64 is the SplitMix64 finaliser (Steele, Lea, Flood 2014).
"""
import math

import numpy as np

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1
GOLDEN = 0x9E3779B97F4A7C15
K_ID = 0x5045_4E2F_5359_4E43  # "PEN/SYNC": domain separation of the id hash
# distinct from K_ID and from every s = h + j*GOLDEN the mapping visits in practice
K_TOW = 0x7465_7374_696D_6174

ID_BYTES = 16
CHECKSUM_BYTES = 4
# one coded symbol on the wire: XOR of ids (16 B) + XOR of checksums (4 B).
# No count field: the decoder tells which side a recovered id came from by
# looking it up in its own set, so a count would buy nothing but bytes.
SYMBOL_BYTES = ID_BYTES + CHECKSUM_BYTES

_U64 = np.uint64


def mix64(z):
    """SplitMix64 finaliser on a Python int (0 <= z < 2**64)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def mix64_np(z):
    """SplitMix64 finaliser on a uint64 array (multiplication wraps mod 2**64)."""
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def split(id16):
    """16-byte id -> (hi, lo) big-endian halves."""
    return int.from_bytes(id16[:8], "big"), int.from_bytes(id16[8:16], "big")


def join(hi, lo):
    return hi.to_bytes(8, "big") + lo.to_bytes(8, "big")


def id_hash(hi, lo):
    return mix64(hi ^ mix64(lo ^ K_ID))


def id_hash_np(hi, lo):
    return mix64_np(hi ^ mix64_np(lo ^ _U64(K_ID)))


def checksum_of(value128):
    """Checksum of an id given as one 128-bit int (hi << 64 | lo)."""
    return id_hash(value128 >> 64, value128 & MASK64) & MASK32


def _gap(i, r):
    u = (r >> 32) + 1
    q = math.floor(math.sqrt(float(u)) * 65536.0)
    g = ((2 * i + 3) * ((1 << 32) - q) + 2 * q - 1) // (2 * q)
    return g if g > 1 else 1


class Mapping:
    """The symbol indices of one id, in increasing order, generated lazily."""
    __slots__ = ("index", "state")

    def __init__(self, h):
        self.index = 0
        self.state = h

    def advance(self):
        """Move to the next index and return it."""
        self.state = (self.state + GOLDEN) & MASK64
        self.index += _gap(self.index, mix64(self.state))
        return self.index


def _gap_np(i, r):
    u = (r >> _U64(32)) + _U64(1)
    q = np.floor(np.sqrt(u.astype(np.float64)) * 65536.0).astype(np.uint64)
    two_q = q + q
    g = ((i.astype(np.uint64) * _U64(2) + _U64(3)) * ((_U64(1) << _U64(32)) - q) + two_q - _U64(1)) // two_q
    return np.maximum(g, _U64(1)).astype(np.int64)


def encode_np(hi, lo, stop, start=0):
    """Coded symbols start..stop-1 of the ids given as uint64 arrays.

    Returns (sym_hi, sym_lo, sym_chk): uint64, uint64, uint32 arrays of length
    stop - start. Work is about N * (2*ln(stop/2) + 1) element updates, done a
    whole "round" of indices at a time so numpy carries the loop; symbols past
    a cached prefix cost a pass over every id from index 0.
    """
    m = stop - start
    sym_hi = np.zeros(m, dtype=np.uint64)
    sym_lo = np.zeros(m, dtype=np.uint64)
    sym_chk = np.zeros(m, dtype=np.uint64)
    if len(hi) == 0 or m <= 0:
        return sym_hi, sym_lo, sym_chk.astype(np.uint32)
    hi = np.asarray(hi, dtype=np.uint64)
    lo = np.asarray(lo, dtype=np.uint64)
    h = id_hash_np(hi, lo)
    chk = h & _U64(MASK32)
    if start == 0:  # every id is in symbol 0
        sym_hi[0] = np.bitwise_xor.reduce(hi)
        sym_lo[0] = np.bitwise_xor.reduce(lo)
        sym_chk[0] = np.bitwise_xor.reduce(chk)
    idx = np.zeros(len(hi), dtype=np.int64)
    state = h
    while len(idx):
        state = state + _U64(GOLDEN)
        idx = idx + _gap_np(idx, mix64_np(state))
        keep = idx < stop
        if not keep.all():
            idx, state, hi, lo, chk = idx[keep], state[keep], hi[keep], lo[keep], chk[keep]
        if start:
            inside = idx >= start
            at = idx[inside] - start
            np.bitwise_xor.at(sym_hi, at, hi[inside])
            np.bitwise_xor.at(sym_lo, at, lo[inside])
            np.bitwise_xor.at(sym_chk, at, chk[inside])
        else:
            np.bitwise_xor.at(sym_hi, idx, hi)
            np.bitwise_xor.at(sym_lo, idx, lo)
            np.bitwise_xor.at(sym_chk, idx, chk)
    return sym_hi, sym_lo, sym_chk.astype(np.uint32)


def encode_one(sym_hi, sym_lo, sym_chk, hi, lo):
    """XOR one id into cached symbol arrays in place (adding and removing are
    the same operation). About 2*ln(m/2)+1 updates."""
    m = len(sym_hi)
    h = id_hash(hi, lo)
    c = h & MASK32
    mp = Mapping(h)
    i = 0
    while i < m:
        sym_hi[i] ^= hi
        sym_lo[i] ^= lo
        sym_chk[i] ^= c
        i = mp.advance()


def symbols_to_bytes(sym_hi, sym_lo, sym_chk, start, stop):
    """Wire form of symbols start..stop-1: per symbol 16 B id-XOR then 4 B
    checksum-XOR, all big-endian."""
    n = stop - start
    out = np.empty(n, dtype=[("hi", ">u8"), ("lo", ">u8"), ("chk", ">u4")])
    out["hi"] = sym_hi[start:stop]
    out["lo"] = sym_lo[start:stop]
    out["chk"] = sym_chk[start:stop]
    return out.tobytes()


def symbols_from_bytes(raw):
    """Inverse of symbols_to_bytes; len(raw) must be a multiple of SYMBOL_BYTES."""
    arr = np.frombuffer(raw, dtype=[("hi", ">u8"), ("lo", ">u8"), ("chk", ">u4")])
    return (arr["hi"].astype(np.uint64), arr["lo"].astype(np.uint64), arr["chk"].astype(np.uint32))


class Decoder:
    """Peels the difference out of coded-symbol differences, as they stream in.

    add_symbols() takes the next batch of (theirs XOR ours) symbols. After
    each batch, `complete` says whether the whole difference is out; `ids`
    holds the recovered ids as 128-bit ints. All of it is pure Python over
    about k ids and 1.4*k symbols, so its cost is independent of the set size.
    """

    def __init__(self):
        self.cell_id = []  # XOR of ids, as 128-bit ints
        self.cell_chk = []
        self.ids = []  # recovered, as 128-bit ints
        self._maps = []  # their Mapping, parked at their first index >= len(cells)
        self._seen = set()
        # A false pure cell (a 32-bit checksum collision, or symbols made up
        # by a hostile peer) puts a wrong id into every cell it maps to; more
        # symbols cannot undo that, so the decoder stops for good and the
        # caller falls back to lists. Seen as an id recovered twice, or as
        # more ids than cells, which also bounds the work a peer can cause.
        self.stalled = False

    @property
    def count(self):
        return len(self.cell_id)

    @property
    def complete(self):
        """All cells empty: every difference recovered (cell 0 holds all ids)."""
        return self.count > 0 and not any(self.cell_id) and not any(self.cell_chk)

    def add_symbols(self, ids128, chks):
        if self.stalled:
            return
        m_old = len(self.cell_id)
        self.cell_id.extend(ids128)
        self.cell_chk.extend(chks)
        m = len(self.cell_id)
        cid, cchk = self.cell_id, self.cell_chk
        # ids already recovered also sit in the new cells: take them out
        for n, mp in enumerate(self._maps):
            x = self.ids[n]
            c = checksum_of(x)
            while mp.index < m:
                cid[mp.index] ^= x
                cchk[mp.index] ^= c
                mp.advance()
        self._peel(list(range(m_old, m)))

    def _pure(self, i):
        x = self.cell_id[i]
        return x != 0 and checksum_of(x) == self.cell_chk[i]

    def _peel(self, candidates):
        cid, cchk = self.cell_id, self.cell_chk
        m = len(cid)
        stack = [i for i in candidates if self._pure(i)]
        while stack:
            i = stack.pop()
            if not self._pure(i):
                continue
            x = cid[i]
            if x in self._seen or len(self.ids) >= m:
                self.stalled = True
                return
            self._seen.add(x)
            c = checksum_of(x)
            self.ids.append(x)
            mp = Mapping(id_hash(x >> 64, x & MASK64))
            j = 0
            while j < m:
                cid[j] ^= x
                cchk[j] ^= c
                if cid[j] and j != i:
                    stack.append(j)
                j = mp.advance()
            self._maps.append(mp)
