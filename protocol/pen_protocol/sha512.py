"""SHA-512 (FIPS 180-4) in pure Python, for runtimes without hashlib.sha512.

MicroPython's hashlib has sha256 only, and Ed25519 (RFC 8032) needs SHA-512.
Use `new()` rather than this class directly: it returns hashlib's sha512 when
the runtime has one (CPython), and this one otherwise.

Word representation, measured under the MicroPython unix port (16-bit bigint
digits like the ESP32 port): one Python int per 64-bit word, masked with
_M64, beats (hi, lo) 32-bit pairs, because a pair costs two to four
operations per 64-bit one and on a 32-bit board (31-bit small ints) every
32-bit half above 2**30 is a heap bigint anyway. Rotations use the doubled
word xx = x | x << 64 (one multiplication), so rotr(x, n) is one shift of xx.
"""

import struct

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_BLOCK = const(128)  # bytes per compression block (FIPS 180-4 section 5.1.2)
_LEN_FIELD = const(16)  # the message length is appended as a 128-bit integer
_M64 = const(0xFFFFFFFFFFFFFFFF)
_DUP = const(0x10000000000000001)  # x * _DUP = x | x << 64 for a 64-bit x

# FIPS 180-4 section 4.2.3: first 64 bits of the fractional parts of the cube
# roots of the first 80 primes.
_K = (
    0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc,
    0x3956c25bf348b538, 0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118,
    0xd807aa98a3030242, 0x12835b0145706fbe, 0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235, 0xc19bf174cf692694,
    0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
    0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5,
    0x983e5152ee66dfab, 0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2, 0xd5a79147930aa725, 0x06ca6351e003826f, 0x142929670a0e6e70,
    0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed, 0x53380d139d95b3df,
    0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
    0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30,
    0xd192e819d6ef5218, 0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8, 0x1e376c085141ab53, 0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373, 0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
    0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b,
    0xca273eceea26619c, 0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178,
    0x06f067aa72176fba, 0x0a637dc5a2c898a6, 0x113f9804bef90dae, 0x1b710b35131c471b,
    0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc, 0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
)

# FIPS 180-4 section 5.3.5: initial hash value.
_IV = (
    0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1,
    0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
)


def _compress(state, block, off):
    """Fold the 128-byte block at block[off:] into the 8-word list state.

    Only the rotation inputs (a, e and the schedule words) must be exact
    64-bit words; sums and bitwise functions keep their low 64 bits right
    whatever lies above, so the sigma results go unmasked."""
    w = list(struct.unpack_from(">16Q", block, off))
    a, b, c, d, e, f, g, h = state
    M = _M64
    K = _K
    DUP = _DUP
    bc = b ^ c  # maj(a, b, c) = ((a ^ b) & (b ^ c)) ^ b; this round's a ^ b is the next one's b ^ c
    for i in range(80):
        j = i & 15
        if i >= 16:
            # message schedule kept in a 16-word ring: w[j] is W[i-16]
            x = w[(i - 15) & 15]
            xx = x * DUP
            s0 = (xx >> 1) ^ (xx >> 8) ^ (x >> 7)
            x = w[(i - 2) & 15]
            xx = x * DUP
            s1 = (xx >> 19) ^ (xx >> 61) ^ (x >> 6)
            w[j] = (w[j] + s0 + w[(i - 7) & 15] + s1) & M
        xx = e * DUP
        t1 = h + ((xx >> 14) ^ (xx >> 18) ^ (xx >> 41)) + (g ^ (e & (f ^ g))) + K[i] + w[j]
        xx = a * DUP
        ab = a ^ b
        t2 = ((xx >> 28) ^ (xx >> 34) ^ (xx >> 39)) + ((ab & bc) ^ b)
        bc = ab
        h = g
        g = f
        f = e
        e = (d + t1) & M
        d = c
        c = b
        b = a
        a = (t1 + t2) & M
    state[0] = (state[0] + a) & M
    state[1] = (state[1] + b) & M
    state[2] = (state[2] + c) & M
    state[3] = (state[3] + d) & M
    state[4] = (state[4] + e) & M
    state[5] = (state[5] + f) & M
    state[6] = (state[6] + g) & M
    state[7] = (state[7] + h) & M


class sha512:
    """hashlib-like SHA-512: sha512(data=b"").update(data).digest()."""

    digest_size = 64
    block_size = _BLOCK
    name = "sha512"

    def __init__(self, data=b""):
        self._state = list(_IV)
        self._buf = bytearray()  # pending bytes, always fewer than one block
        self._len = 0  # message length in bytes so far
        if data:
            self.update(data)

    def update(self, data):
        n = len(data)
        self._len += n
        buf = self._buf
        i = 0
        if buf:
            take = _BLOCK - len(buf)
            if n < take:
                buf.extend(data)
                return self
            buf.extend(memoryview(data)[:take])
            _compress(self._state, buf, 0)
            i = take
            buf[:] = b""
        while n - i >= _BLOCK:
            _compress(self._state, data, i)
            i += _BLOCK
        if i < n:
            buf.extend(memoryview(data)[i:])
        return self

    def copy(self):
        other = sha512()
        other._state = list(self._state)
        other._buf = bytearray(self._buf)
        other._len = self._len
        return other

    def digest(self):
        state = list(self._state)
        tail = bytearray(self._buf)
        tail.append(0x80)
        pad = (_BLOCK - _LEN_FIELD - len(tail)) % _BLOCK
        tail.extend(bytes(pad))
        tail.extend((self._len << 3).to_bytes(_LEN_FIELD, "big"))
        for off in range(0, len(tail), _BLOCK):
            _compress(state, tail, off)
        return struct.pack(">8Q", *state)

    def hexdigest(self):
        return "".join("%02x" % b for b in self.digest())


try:
    from hashlib import sha512 as _native
except ImportError:
    _native = None


def new(data=b""):
    """hashlib.sha512 where the runtime has it, else the pure-Python one."""
    if _native is not None:
        return _native(data)
    return sha512(data)
