"""SHA-512 (FIPS 180-4) in pure Python, for runtimes without hashlib.sha512.

MicroPython's hashlib has sha256 only, and Ed25519 (RFC 8032) needs SHA-512.
Use `new()` rather than this class directly: it returns hashlib's sha512 when
the runtime has one (CPython), and this one otherwise.

Word representation: one Python int per 64-bit word, masked with _M64, not
(hi, lo) 32-bit pairs. Measured per 128-byte block on the MicroPython unix
port: built for 32 bits (31-bit small ints, like the ESP32 port) 430 us
against 1300 us for pairs, since there every half above 2**30 is a heap
bigint and a pair costs two to four operations per 64-bit one; the stock
64-bit build (63-bit small ints) favours pairs, 265 us against 160 us, but
no board has small ints that wide. Rotations use the doubled word
xx = x | x << 64 (one multiplication), so rotr(x, n) is one shift of xx.
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
# roots of the first 80 primes, as 80 big-endian 64-bit words. Bytes, not a
# tuple of ints: loaded from .mpy a tuple costs 3 to 5 KB of heap as bigints,
# the bytes 640, and unpacking one word per round measured no slower.
_K = (
    b"\x42\x8a\x2f\x98\xd7\x28\xae\x22\x71\x37\x44\x91\x23\xef\x65\xcd\xb5\xc0\xfb\xcf\xec\x4d\x3b\x2f"
    b"\xe9\xb5\xdb\xa5\x81\x89\xdb\xbc\x39\x56\xc2\x5b\xf3\x48\xb5\x38\x59\xf1\x11\xf1\xb6\x05\xd0\x19"
    b"\x92\x3f\x82\xa4\xaf\x19\x4f\x9b\xab\x1c\x5e\xd5\xda\x6d\x81\x18\xd8\x07\xaa\x98\xa3\x03\x02\x42"
    b"\x12\x83\x5b\x01\x45\x70\x6f\xbe\x24\x31\x85\xbe\x4e\xe4\xb2\x8c\x55\x0c\x7d\xc3\xd5\xff\xb4\xe2"
    b"\x72\xbe\x5d\x74\xf2\x7b\x89\x6f\x80\xde\xb1\xfe\x3b\x16\x96\xb1\x9b\xdc\x06\xa7\x25\xc7\x12\x35"
    b"\xc1\x9b\xf1\x74\xcf\x69\x26\x94\xe4\x9b\x69\xc1\x9e\xf1\x4a\xd2\xef\xbe\x47\x86\x38\x4f\x25\xe3"
    b"\x0f\xc1\x9d\xc6\x8b\x8c\xd5\xb5\x24\x0c\xa1\xcc\x77\xac\x9c\x65\x2d\xe9\x2c\x6f\x59\x2b\x02\x75"
    b"\x4a\x74\x84\xaa\x6e\xa6\xe4\x83\x5c\xb0\xa9\xdc\xbd\x41\xfb\xd4\x76\xf9\x88\xda\x83\x11\x53\xb5"
    b"\x98\x3e\x51\x52\xee\x66\xdf\xab\xa8\x31\xc6\x6d\x2d\xb4\x32\x10\xb0\x03\x27\xc8\x98\xfb\x21\x3f"
    b"\xbf\x59\x7f\xc7\xbe\xef\x0e\xe4\xc6\xe0\x0b\xf3\x3d\xa8\x8f\xc2\xd5\xa7\x91\x47\x93\x0a\xa7\x25"
    b"\x06\xca\x63\x51\xe0\x03\x82\x6f\x14\x29\x29\x67\x0a\x0e\x6e\x70\x27\xb7\x0a\x85\x46\xd2\x2f\xfc"
    b"\x2e\x1b\x21\x38\x5c\x26\xc9\x26\x4d\x2c\x6d\xfc\x5a\xc4\x2a\xed\x53\x38\x0d\x13\x9d\x95\xb3\xdf"
    b"\x65\x0a\x73\x54\x8b\xaf\x63\xde\x76\x6a\x0a\xbb\x3c\x77\xb2\xa8\x81\xc2\xc9\x2e\x47\xed\xae\xe6"
    b"\x92\x72\x2c\x85\x14\x82\x35\x3b\xa2\xbf\xe8\xa1\x4c\xf1\x03\x64\xa8\x1a\x66\x4b\xbc\x42\x30\x01"
    b"\xc2\x4b\x8b\x70\xd0\xf8\x97\x91\xc7\x6c\x51\xa3\x06\x54\xbe\x30\xd1\x92\xe8\x19\xd6\xef\x52\x18"
    b"\xd6\x99\x06\x24\x55\x65\xa9\x10\xf4\x0e\x35\x85\x57\x71\x20\x2a\x10\x6a\xa0\x70\x32\xbb\xd1\xb8"
    b"\x19\xa4\xc1\x16\xb8\xd2\xd0\xc8\x1e\x37\x6c\x08\x51\x41\xab\x53\x27\x48\x77\x4c\xdf\x8e\xeb\x99"
    b"\x34\xb0\xbc\xb5\xe1\x9b\x48\xa8\x39\x1c\x0c\xb3\xc5\xc9\x5a\x63\x4e\xd8\xaa\x4a\xe3\x41\x8a\xcb"
    b"\x5b\x9c\xca\x4f\x77\x63\xe3\x73\x68\x2e\x6f\xf3\xd6\xb2\xb8\xa3\x74\x8f\x82\xee\x5d\xef\xb2\xfc"
    b"\x78\xa5\x63\x6f\x43\x17\x2f\x60\x84\xc8\x78\x14\xa1\xf0\xab\x72\x8c\xc7\x02\x08\x1a\x64\x39\xec"
    b"\x90\xbe\xff\xfa\x23\x63\x1e\x28\xa4\x50\x6c\xeb\xde\x82\xbd\xe9\xbe\xf9\xa3\xf7\xb2\xc6\x79\x15"
    b"\xc6\x71\x78\xf2\xe3\x72\x53\x2b\xca\x27\x3e\xce\xea\x26\x61\x9c\xd1\x86\xb8\xc7\x21\xc0\xc2\x07"
    b"\xea\xda\x7d\xd6\xcd\xe0\xeb\x1e\xf5\x7d\x4f\x7f\xee\x6e\xd1\x78\x06\xf0\x67\xaa\x72\x17\x6f\xba"
    b"\x0a\x63\x7d\xc5\xa2\xc8\x98\xa6\x11\x3f\x98\x04\xbe\xf9\x0d\xae\x1b\x71\x0b\x35\x13\x1c\x47\x1b"
    b"\x28\xdb\x77\xf5\x23\x04\x7d\x84\x32\xca\xab\x7b\x40\xc7\x24\x93\x3c\x9e\xbe\x0a\x15\xc9\xbe\xbc"
    b"\x43\x1d\x67\xc4\x9c\x10\x0d\x4c\x4c\xc5\xd4\xbe\xcb\x3e\x42\xb6\x59\x7f\x29\x9c\xfc\x65\x7e\x2a"
    b"\x5f\xcb\x6f\xab\x3a\xd6\xfa\xec\x6c\x44\x19\x8c\x4a\x47\x58\x17"
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
    unpack = struct.unpack_from
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
        t1 = h + ((xx >> 14) ^ (xx >> 18) ^ (xx >> 41)) + (g ^ (e & (f ^ g))) + unpack(">Q", K, i << 3)[0] + w[j]
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
