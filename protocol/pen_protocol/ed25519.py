"""Ed25519 (RFC 8032, SHA-512 variant) in pure Python, for MicroPython and CPython.

    verify(public_key, message, signature) -> bool     raises only MemoryError
    verify_reason(public_key, message, signature) -> None, or why not (R_*)
    public_key(seed) -> 32 bytes
    sign(seed, message) -> 64 bytes                    deterministic (RFC 8032)

verify() accepts exactly what libsodium's crypto_sign_verify_detached accepts
(crypto_sign/ed25519/ref10/open.c), so a record valid on a board is valid on
the host and the other way round:
  - S must be below the group order L (no malleable signatures);
  - R and the public key must not be one of libsodium's small-order
    encodings (sign bit ignored), and the key's y must be below p;
  - the key must decode to a curve point;
  - the check is cofactorless: encode([S]B - [h]A) must equal R byte for
    byte, with h = SHA-512(R || A || M) mod L.

Speed is bounded by bigint operations, each of which allocates on
MicroPython (a verify allocates about 1 MB in small objects, so on a 64 KB
heap the collector runs some 20 times per verify), so the code counts them:
  - verification is rewritten as a test on four half-size scalars (see
    _check_equation): 128 doublings instead of 253;
  - one interleaved (Straus) multi-scalar multiplication over width-w NAF
    digits, with small per-call tables for -A and -R and two affine tables
    for B and 2**128 B built once;
  - extended coordinates (Hisil, Wong, Carter, Dawson 2008), the T
    coordinate computed only when an addition follows;
  - no % in the loops: products are folded (2**255 = 19 mod p), which costs
    MicroPython less than % (see _multi);
  - inversion and square root are addition chains of Python multiplications,
    faster there than the C pow() (and pow(x, -1, m) returns 0 there);
  - the last few public keys that passed are kept decoded (_KEY_CACHE).

Measured on the MicroPython unix port built for 32 bits (31-bit small ints,
16-bit bigint digits, like the ESP32 port), 64 KB heap, 100-byte message:
verify 55 M x86 instructions (50 M with the key cached; about 5 ms here),
sign 81 M; the modules, loaded from .mpy, hold 14 KB of heap and a verify
needs 8 KB more.

sign() and public_key() are not constant time; use them on the host or
for tests, not where an attacker can time a board signing.
"""

from . import sha512 as _sha512

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

KEY_LEN = const(32)  # public key and seed (RFC 8032 section 5.1.5)
SIG_LEN = const(64)  # R (32) || S (32)

# Reason codes from verify_reason(), one per rule, in the order libsodium tests them.
R_NOT_BYTES = "not-bytes"
R_LENGTH = "bad-length"
R_S_RANGE = "s-not-below-order"
R_SMALL_R = "small-order-r"
R_KEY_ALIAS = "non-canonical-key"
R_SMALL_KEY = "small-order-key"
R_KEY_CURVE = "key-not-on-curve"
R_MISMATCH = "bad-signature"

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493
_MASK255 = 2 ** 255 - 1
D = -121665 * pow(121666, P - 2, P) % P
D2 = 2 * D % P
SQRTM1 = pow(2, (P - 1) // 4, P)  # a square root of -1

# Width of the NAF digits, for scalars of about 128 bits. The tables of -A
# and -R are built per verify (2**(w-2) entries, each a full addition) and
# save additions in the main loop (about 128 / (w + 1) per scalar): widths
# 3 to 5 measure the same, 4 is the middle. The two base tables are built
# once and kept as bytes, 8 affine points x 96 bytes each (as ints they
# would take 3 to 5 KB of heap); width 6 doubles them and measured no faster.
_W_VAR = const(4)
_W_BASE = const(5)
_B_ENTRIES = const(1 << (_W_BASE - 2))  # odd multiples per base table
_NAF_LEN = const(257)  # a 256-bit scalar's NAF can carry into bit 256
_ENTRY = const(96)  # one base table entry: y+x, y-x, 2dxy, 32 bytes each
_ZERO_DIGITS = bytes(_NAF_LEN)
_SPLIT = const(128)  # base scalars split as k = k_lo + 2**128 k_hi
_SPLIT_MASK = 2 ** 128 - 1
_N8 = 8 * L  # the order of the whole curve group
_SHORT = 2 ** 127  # lattice reduction stops below this remainder

# libsodium's ge25519_has_small_order blacklist: y of the points of order 1,
# 2, 4 and 8 (1, p-1, 0 and two others), and p and p+1, the non-canonical
# aliases of 0 and 1; compared with the sign bit cleared.
_SMALL_ORDER_Y = (
    0,
    1,
    2707385501144840649318225287225658788936804267575313519463743609750303402022,
    55188659117513257062467267217118295137698188065244968500265048394206261417927,
    P - 1,
    P,
    P + 1,
)
_BYTES_TYPES = (bytes, bytearray, memoryview)

# Decoding a key costs a square root, a tenth of a verify. A node checks runs
# of records by a few keys (its council's, a bridge's, a busy payer's), so
# the last few decoded keys are kept: about 250 bytes of heap each.
_KEY_CACHE = const(4)
_key_x = {}  # public key bytes -> x of its point, for keys that passed every rule


def _sq_n(x, n):
    """x**(2**n) for 0 <= x < 2**256: congruent mod p and below 2**256, not
    fully reduced. Each square is folded once, which lets it grow by about
    11 bits, and every fourth twice, back below 2**256: on MicroPython that
    costs 15k instructions a square, against 17k for two folds and 22k for %."""
    M = _MASK255
    for i in range(n):
        x = x * x
        x = (x & M) + (x >> 255) * 19
        if i & 3 == 3:
            x = (x & M) + (x >> 255) * 19
    if n & 3:
        x = (x & M) + (x >> 255) * 19
    return x


def _pow_2_250(z):
    """(z**(2**250 - 1), z**11): the common head of both exponent chains."""
    z2 = z * z % P
    z9 = _sq_n(z2, 2) * z % P
    z11 = z9 * z2 % P
    t = z11 * z11 % P * z9 % P  # z**(2**5 - 1)
    t10 = _sq_n(t, 5) * t % P
    t = _sq_n(t10, 10) * t10 % P  # 2**20 - 1
    t = _sq_n(t, 20) * t % P  # 2**40 - 1
    t50 = _sq_n(t, 10) * t10 % P
    t = _sq_n(t50, 50) * t50 % P  # 2**100 - 1
    t = _sq_n(t, 100) * t % P  # 2**200 - 1
    return _sq_n(t, 50) * t50 % P, z11


def _invert(z):
    """z**(p-2) = 1/z (0 for 0)."""
    t, z11 = _pow_2_250(z)
    return _sq_n(t, 5) * z11 % P


def _recover_x(y, sign):
    """x with x**2 = (y**2 - 1) / (d y**2 + 1) and x mod 2 = sign, or None
    (RFC 8032 section 5.1.3, one exponentiation: x = u v^3 (u v^7)^((p-5)/8))."""
    yy = y * y % P
    u = (yy - 1) % P
    v = (D * yy + 1) % P
    v3 = v * v % P * v % P
    uv3 = u * v3 % P
    t, _ = _pow_2_250(uv3 * v3 % P * v % P)
    x = uv3 * (_sq_n(t, 2) * uv3 % P * v3 % P * v % P) % P  # (uv^7)**(2**252 - 3)
    vxx = v * x % P * x % P
    if vxx != u:
        if vxx != P - u:
            return None
        x = x * SQRTM1 % P
    if x & 1 != sign:
        x = (P - x) % P
    return x


_BY = 4 * _invert(5) % P
_BX = _recover_x(_BY, 0)


def _encode(X, Y, Z):
    zi = _invert(Z)
    x = X * zi % P
    y = Y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _double(X, Y, Z):
    """2(X:Y:Z) in extended coordinates (dbl-2008-hwcd, a = -1)."""
    A = X * X % P
    B = Y * Y % P
    C = 2 * Z * Z % P
    H = A + B
    t = X + Y
    E = H - t * t % P
    G = A - B
    F = C + G
    return E * F % P, G * H % P, F * G % P, E * H % P


def _add(X1, Y1, Z1, T1, X2, Y2, Z2, T2):
    """Sum of two points in extended coordinates (add-2008-hwcd-3, a = -1)."""
    A = (Y1 - X1) * (Y2 - X2) % P
    B = (Y1 + X1) * (Y2 + X2) % P
    C = T1 * D2 % P * T2 % P
    Dd = 2 * Z1 * Z2 % P
    E = B - A
    F = Dd - C
    G = Dd + C
    H = B + A
    return E * F % P, G * H % P, F * G % P, E * H % P


def _naf(k, w):
    """Width-w NAF of the scalar 0 <= k < 2**256 as a bytearray of
    _NAF_LEN digits (256-d for digit -d): each is 0 or odd of magnitude
    below 2**(w-1), and k = sum(digit_i * 2**i). Reads k as bytes so every
    step stays a small int."""
    out = bytearray(_NAF_LEN)
    kb = k.to_bytes(34, "little")  # two zero bytes so a window never runs off the end
    top = 31
    while top >= 0 and not kb[top]:
        top -= 1
    end = (top + 1) * 8 + 1  # a final carry can add one digit above the top bit
    width = 1 << w
    half = width >> 1
    mask = width - 1
    carry = 0
    pos = 0
    while pos < end:
        j = pos >> 3
        window = carry + (((kb[j] | (kb[j + 1] << 8)) >> (pos & 7)) & mask)
        if not window & 1:
            pos += 1
            continue
        if window < half:
            carry = 0
            out[pos] = window
        else:
            carry = 1
            out[pos] = window - width + 256
        pos += w
    return out


_base_table = None


def _fill_affine(table, first, X, Y, Z, T):
    """Write the odd multiples P, 3P, ... of P = (X:Y:Z:T) into table entries
    first, first + 1, ... as affine (y+x, y-x, 2dxy), little-endian; one
    inversion for all of them (Montgomery's trick)."""
    n = _B_ENTRIES
    X2, Y2, Z2, T2 = _double(X, Y, Z)
    pts = [(X, Y, Z, T)]
    for _ in range(n - 1):
        X, Y, Z, T = _add(X, Y, Z, T, X2, Y2, Z2, T2)
        pts.append((X, Y, Z, T))
    acc = [1] * (n + 1)  # prefix products of the Z coordinates
    for i in range(n):
        acc[i + 1] = acc[i] * pts[i][2] % P
    inv = _invert(acc[n])
    for i in range(n - 1, -1, -1):
        X, Y, Z, T = pts[i]
        zi = inv * acc[i] % P
        inv = inv * Z % P
        x = X * zi % P
        y = Y * zi % P
        o = (first + i) * _ENTRY
        table[o:o + 32] = ((y + x) % P).to_bytes(32, "little")
        table[o + 32:o + 64] = ((y - x) % P).to_bytes(32, "little")
        table[o + 64:o + 96] = (x * y % P * D2 % P).to_bytes(32, "little")


def _base():
    """Odd multiples of B and of B' = 2**128 B as affine points in one
    private bytearray (entries 0.. for B, _B_ENTRIES.. for B'); computed on
    first use."""
    global _base_table
    if _base_table is None:
        table = bytearray(2 * _B_ENTRIES * _ENTRY)  # first, while the heap is least fragmented
        X, Y, Z, T = _BX, _BY, 1, _BX * _BY % P
        _fill_affine(table, 0, X, Y, Z, T)
        for _ in range(_SPLIT):
            X, Y, Z, T = _double(X, Y, Z)
        _fill_affine(table, _B_ENTRIES, X, Y, Z, T)
        _base_table = table
    return _base_table


def _var_table(X, Y):
    """Odd multiples P, 3P, ... of the affine point P = (X, Y) as cached
    (Y+X, Y-X, 2Z, 2dT), the second operand of an addition."""
    X2, Y2, Z2, T2 = _double(X, Y, 1)
    Z = 1
    T = X * Y % P
    tab = []
    for i in range(1 << (_W_VAR - 2)):
        if i:
            X, Y, Z, T = _add(X, Y, Z, T, X2, Y2, Z2, T2)
        tab.append(((Y + X) % P, (Y - X) % P, 2 * Z % P, T * D2 % P))
    return tab


def _short_pair(h):
    """(c, d) with c = d h (mod 8L), d odd and both about 2**128 in size.

    Extended Euclid on (8L, h) keeps r = t h (mod 8L) for every remainder r
    and coefficient t; stopping at the first r below 2**127 leaves |t| at
    most 8L / (previous r), so about 2**128 (Lagrange reduction of the
    lattice {(c, d) : c = d h mod 8L}). Two consecutive t are coprime, so
    one of the candidates below has an odd d; the shortest odd one is kept.
    """
    r0, r1, t0, t1 = _N8, h, 0, 1
    while r1 >= _SHORT:
        q = r0 // r1
        r0, r1 = r1, r0 - q * r1
        t0, t1 = t1, t0 - q * t1
    best = None
    size = 0
    for c, d in ((r1, t1), (r0, t0), (r0 - r1, t0 - t1), (r0 + r1, t0 + t1)):
        if d & 1:
            m = abs(c) | abs(d)
            if best is None or m < size:
                best = (c, d)
                size = m
    return best


def _multi(n0, tab0, n1, tab1, n2, n3):
    """[k0]P0 + [k1]P1 + [k2]B + [k3]B' as projective (X, Y, Z), variable
    time, from the width-w NAF digits n0..n3 of the scalars (None: zero)
    and the cached odd-multiple tables tab0, tab1 of P0, P1.

    Straus: one chain of doublings, adding a table entry at every nonzero
    digit. No %: products that feed only other products are folded once,
    (x & M) + (x >> 255) * 19 (the small int on the right: small * big
    makes MicroPython allocate a temporary), to below 2**290; each
    coordinate of a result is folded twice, to below 2**256 in magnitude
    (values may be negative), so every product stays below 2**600, where
    two folds still land below 2**256. The caller reduces the result mod p.
    On the 32-bit unix port % costs 18k instructions, a fold 7k, any bigint
    operation about 2k."""
    M = _MASK255
    btab = memoryview(_base())
    z = _ZERO_DIGITS
    n0 = n0 or z
    n1 = n1 or z
    n2 = n2 or z
    n3 = n3 or z
    i = _NAF_LEN - 1
    while i >= 0 and not (n0[i] or n1[i] or n2[i] or n3[i]):
        i -= 1
    # start from the neutral point; doubling it once is cheaper in bytecode
    # than special-casing the first digit
    X, Y, Z = 0, 1, 1
    while i >= 0:
        d0 = n0[i]
        d1 = n1[i]
        d2 = n2[i]
        d3 = n3[i]
        double = True
        while True:
            if double:  # dbl-2008-hwcd, a = -1 (as _double)
                A = X * X
                A = (A & M) + (A >> 255) * 19
                B = Y * Y
                B = (B & M) + (B >> 255) * 19
                C = Z * Z
                C = (C & M) + (C >> 255) * 19
                H = A + B
                t = X + Y
                t = t * t
                E = H - ((t & M) + (t >> 255) * 19)
                G = A - B
                F = C + C + G
                double = False
            else:  # add-2008-hwcd-3 with a table entry; T of the point just made
                T = E * H
                T = (T & M) + (T >> 255) * 19
                if d0 or d1:  # cached multiple of P0 or P1
                    if d0:
                        d = d0
                        tab = tab0
                        d0 = 0
                    else:
                        d = d1
                        tab = tab1
                        d1 = 0
                    if d < 128:
                        ypx, ymx, z2, t2d = tab[d >> 1]
                    else:
                        ymx, ypx, z2, t2d = tab[(256 - d) >> 1]  # -(x, y) = (-x, y)
                        t2d = -t2d
                    Dd = Z * z2
                    Dd = (Dd & M) + (Dd >> 255) * 19
                else:  # affine multiple of B or B': its Z is 1, so 2 Z1 Z2 = 2 Z1
                    if d2:
                        d = d2
                        o = 0
                        d2 = 0
                    else:
                        d = d3
                        o = _B_ENTRIES
                        d3 = 0
                    o = (o + ((d if d < 128 else 256 - d) >> 1)) * _ENTRY
                    ypx = int.from_bytes(btab[o:o + 32], "little")
                    ymx = int.from_bytes(btab[o + 32:o + 64], "little")
                    t2d = int.from_bytes(btab[o + 64:o + 96], "little")
                    if d > 128:
                        ypx, ymx, t2d = ymx, ypx, -t2d
                    Dd = Z + Z
                A = (Y - X) * ymx
                A = (A & M) + (A >> 255) * 19
                B = (Y + X) * ypx
                B = (B & M) + (B >> 255) * 19
                C = T * t2d
                C = (C & M) + (C >> 255) * 19
                E = B - A
                F = Dd - C
                G = Dd + C
                H = B + A
            X = E * F
            X = (X & M) + (X >> 255) * 19
            X = (X & M) + (X >> 255) * 19
            Y = G * H
            Y = (Y & M) + (Y >> 255) * 19
            Y = (Y & M) + (Y >> 255) * 19
            Z = F * G
            Z = (Z & M) + (Z >> 255) * 19
            Z = (Z & M) + (Z >> 255) * 19
            if not (d0 or d1 or d2 or d3):
                break
        i -= 1
    return X, Y, Z


def _scalarmult_base(k):
    """Encoding of [k]B for 0 <= k < 2**256: [k mod 2**128]B + [k >> 128]B'."""
    X, Y, Z = _multi(None, None, None, None, _naf(k & _SPLIT_MASK, _W_BASE), _naf(k >> _SPLIT, _W_BASE))
    return _encode(X, Y, Z)


def _var_term(k, x, y):
    """NAF digits and table for [k](-P), P = (x, y), for a signed k."""
    if k < 0:
        return _naf(-k, _W_VAR), _var_table(x, y)
    return _naf(k, _W_VAR), _var_table((P - x) % P, y)


def _is_small_order(enc):
    return (int.from_bytes(enc, "little") & _MASK255) in _SMALL_ORDER_Y


def _hash_int(*parts):
    h = _sha512.new()
    for p in parts:
        h.update(p)
    return int.from_bytes(h.digest(), "little")


def verify_reason(public_key, message, signature):
    """None if signature is a valid Ed25519 signature of message by
    public_key under libsodium's rules, else the reason code (R_*) of the
    first rule it breaks. Raises nothing but MemoryError, which says
    nothing about the signature (the caller may retry when memory frees)."""
    try:
        return _check(public_key, message, signature)
    except MemoryError:
        raise
    except Exception:  # cannot happen for bytes-like input; still not valid
        return R_NOT_BYTES


def verify(public_key, message, signature):
    """True if signature is valid (see verify_reason()); False for anything else,
    including arguments of the wrong length or type. Raises nothing but
    MemoryError."""
    return verify_reason(public_key, message, signature) is None


def _check(pk, msg, sig):
    for arg in (pk, msg, sig):
        if not isinstance(arg, _BYTES_TYPES):
            return R_NOT_BYTES
    if len(pk) != KEY_LEN or len(sig) != SIG_LEN:
        return R_LENGTH
    pk = bytes(pk)
    sig = bytes(sig)
    r_enc = sig[:32]
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return R_S_RANGE
    if _is_small_order(r_enc):
        return R_SMALL_R
    y = int.from_bytes(pk, "little")
    sign = y >> 255
    y &= _MASK255
    if y >= P:
        return R_KEY_ALIAS
    if y in _SMALL_ORDER_Y:
        return R_SMALL_KEY
    x = _key_x.get(pk)
    if x is None:
        x = _recover_x(y, sign)
        if x is None:
            return R_KEY_CURVE
        if len(_key_x) >= _KEY_CACHE:
            _key_x.clear()  # dicts are unordered on MicroPython: no LRU, start over
        _key_x[pk] = x
    h = _hash_int(r_enc, pk, msg) % L
    if not _check_equation(x, y, r_enc, s, h):
        return R_MISMATCH
    return None


def _check_equation(x, y, r_enc, s, h):
    """True if encode([s]B - [h]A) == r_enc for the point A = (x, y).

    That encoding is canonical, so r_enc must decode (y < p) to a point R,
    and then the test is Q = [s]B - [h]A - R = 0. For odd d, [d]Q = 0 only
    if Q = 0 (the curve group has order 8L); and with c = d h mod 8L, not
    just mod L, [c]A = [d h]A even when A has a torsion part. So the test
    is [d s]B - [c]A - [d]R = 0 with c and d of about 128 bits
    (_short_pair), and [d s mod L]B split at 2**128: four half-size scalars,
    half the doublings, and no inversion at the end since the neutral point
    is (0 : Z : Z)."""
    ry = int.from_bytes(r_enc, "little")
    rsign = ry >> 255
    ry &= _MASK255
    if ry >= P:
        return False
    rx = _recover_x(ry, rsign)
    if rx is None or (rx == 0 and rsign):  # x = 0 encodes with sign 0 only
        return False
    c, d = _short_pair(h)
    ds = d * s % L
    na, ta = _var_term(c, x, y)
    nr, tr = _var_term(d, rx, ry)
    X, Y, Z = _multi(na, ta, nr, tr, _naf(ds & _SPLIT_MASK, _W_BASE), _naf(ds >> _SPLIT, _W_BASE))
    return X % P == 0 and (Y - Z) % P == 0


def _expand(seed):
    if not isinstance(seed, _BYTES_TYPES) or len(seed) != KEY_LEN:
        raise ValueError("seed must be %d bytes" % KEY_LEN)
    h = _sha512.new(bytes(seed)).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8  # RFC 8032 section 5.1.5: clear bits 0-2 and 255
    a |= 1 << 254  # and set bit 254
    return a, h[32:]


def public_key(seed):
    """The 32-byte public key of a 32-byte secret seed."""
    a, _ = _expand(seed)
    return _scalarmult_base(a % L)


def sign(seed, message):
    """Deterministic RFC 8032 signature (64 bytes) of message by seed."""
    a, prefix = _expand(seed)
    if not isinstance(message, _BYTES_TYPES):
        raise ValueError("message must be bytes")
    pk = _scalarmult_base(a % L)
    r = _hash_int(prefix, message) % L
    r_enc = _scalarmult_base(r)
    k = _hash_int(r_enc, pk, message) % L
    s = (r + k * a) % L
    return r_enc + s.to_bytes(32, "little")
