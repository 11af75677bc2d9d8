"""Pure-Python Ed25519 and SHA-512 (pen_protocol.ed25519, pen_protocol.sha512).

Ground truth: RFC 8032 section 7.1 vectors, libsodium through PyNaCl, and
hashlib. verify() must accept exactly what crypto_sign_verify_detached
accepts, including its strict rules (S < L, no small-order R or key, no
non-canonical key) and its cofactorless check on keys with a torsion part.
"""

import hashlib
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from nacl import bindings as sodium
from nacl.exceptions import BadSignatureError

from conftest import run_micropython
from pen_protocol import ed25519, sha512

L = ed25519.L
P = ed25519.P

# RFC 8032 section 7.1: (secret seed, public key, message, signature), hex.
RFC8032_VECTORS = [
    ("test1",
     "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
     "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("test2",
     "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
     "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e"
     "458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("test3",
     "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
     "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290"
     "ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ("sha_abc",
     "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
     "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"),
]

# libsodium's small-order blacklist (ge25519_has_small_order), little-endian.
SMALL_ORDER = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]
ORDER8 = bytes.fromhex(SMALL_ORDER[2])


def nacl_verify(pk, msg, sig):
    try:
        sodium.crypto_sign_open(bytes(sig) + bytes(msg), bytes(pk))
        return True
    except (BadSignatureError, ValueError):
        return False


def nacl_sign(seed, msg):
    _, sk = sodium.crypto_sign_seed_keypair(seed)
    return sodium.crypto_sign(msg, sk)[:64]


def flip(data, bit):
    out = bytearray(data)
    out[(bit >> 3) % len(out)] ^= 1 << (bit & 7)
    return bytes(out)


def with_s(sig, s):
    return sig[:32] + s.to_bytes(32, "little")


def set_sign_bit(enc):
    return enc[:31] + bytes([enc[31] | 0x80])


@pytest.fixture(scope="module")
def signed():
    seed = bytes(range(32))
    msg = b"pen/1/test\x00a record body"
    return seed, ed25519.public_key(seed), msg, ed25519.sign(seed, msg)


# --- RFC 8032 vectors -------------------------------------------------------

@pytest.mark.parametrize("name,seed,pk,msg,sig", RFC8032_VECTORS, ids=[v[0] for v in RFC8032_VECTORS])
def test_rfc8032_vector(name, seed, pk, msg, sig):
    seed, pk, msg, sig = (bytes.fromhex(x) for x in (seed, pk, msg, sig))
    assert ed25519.public_key(seed) == pk
    assert ed25519.sign(seed, msg) == sig
    assert ed25519.verify(pk, msg, sig) is True
    assert nacl_verify(pk, msg, sig)  # the typed-in vector itself is right


def test_rfc8032_sha_abc_message_is_sha512_of_abc():
    assert bytes.fromhex(RFC8032_VECTORS[3][3]) == sha512.sha512(b"abc").digest()


# --- cross-check against libsodium ------------------------------------------

# each example costs a few ms of pure-Python Ed25519; 150 of each keep the file
# at a few seconds
CROSS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CROSS
@given(seed=st.binary(min_size=32, max_size=32), msg=st.binary(max_size=300))
def test_sign_and_public_key_match_libsodium(seed, msg):
    pk, _ = sodium.crypto_sign_seed_keypair(seed)
    assert ed25519.public_key(seed) == pk
    sig = ed25519.sign(seed, msg)
    assert sig == nacl_sign(seed, msg)
    assert ed25519.verify(pk, msg, sig) is True


@CROSS
@given(seed=st.binary(min_size=32, max_size=32), msg=st.binary(max_size=200),
       bit=st.integers(0, 511), where=st.sampled_from(["sig", "msg", "key"]))
def test_verify_agrees_with_libsodium_on_flipped_bits(seed, msg, bit, where):
    pk, _ = sodium.crypto_sign_seed_keypair(seed)
    sig = nacl_sign(seed, msg)
    if where == "sig":
        sig = flip(sig, bit)
    elif where == "key":
        pk = flip(pk, bit)
    else:
        msg = flip(msg, bit) if msg else b"\x00"
    assert nacl_verify(pk, msg, sig) is False
    assert ed25519.verify(pk, msg, sig) is False


@CROSS
@given(seed=st.binary(min_size=32, max_size=32), msg=st.binary(max_size=64), k=st.integers(1, 15))
def test_rejects_s_not_below_group_order(seed, msg, k):
    pk, _ = sodium.crypto_sign_seed_keypair(seed)
    sig = nacl_sign(seed, msg)
    s = int.from_bytes(sig[32:], "little")
    assert ed25519.verify_reason(pk, msg, with_s(sig, L)) == ed25519.R_S_RANGE
    assert ed25519.verify_reason(pk, msg, with_s(sig, (1 << 256) - k)) == ed25519.R_S_RANGE
    if s + L < 1 << 256:  # S + L satisfies the same equation: only the range rule rejects it
        bad = with_s(sig, s + L)
        assert ed25519.verify_reason(pk, msg, bad) == ed25519.R_S_RANGE
        assert nacl_verify(pk, msg, bad) is False


def small_multiple(k):
    """k * (a point of order 8), as an encoding, or None for the neutral point."""
    acc = None
    for _ in range(k % 8):
        acc = ORDER8 if acc is None else sodium.crypto_core_ed25519_add(acc, ORDER8)
    return acc


def add_torsion(enc, k):
    t = small_multiple(k)
    return enc if t is None else sodium.crypto_core_ed25519_add(enc, t)


def forge(a, r, msg, key_torsion, r_torsion):
    """Signature by scalar a on a key with a torsion part, R = rB + torsion.
    libsodium accepts it exactly when r_torsion = -h * key_torsion (mod 8)."""
    A = add_torsion(sodium.crypto_scalarmult_ed25519_base_noclamp(a.to_bytes(32, "little")), key_torsion)
    R = add_torsion(sodium.crypto_scalarmult_ed25519_base_noclamp(r.to_bytes(32, "little")), r_torsion)
    h = int.from_bytes(hashlib.sha512(R + A + msg).digest(), "little") % L
    return A, R + ((r + h * a) % L).to_bytes(32, "little"), h


@CROSS
@given(a=st.integers(1, L - 1), r=st.integers(1, L - 1), msg=st.binary(max_size=40),
       kt=st.integers(0, 7), rt=st.integers(0, 7))
def test_torsion_in_key_or_r_judged_as_libsodium(a, r, msg, kt, rt):
    A, sig, _ = forge(a, r, msg, kt, rt)
    assert ed25519.verify(A, msg, sig) is nacl_verify(A, msg, sig)


def test_mixed_order_key_accepted_only_when_torsion_cancels():
    # cofactorless check with h reduced mod L: [S]B - [h]A = rB - [h]T, so a
    # key A = aB + T (T of order 8) passes exactly when 8 divides 3h
    a = 0x1234567890ABCDEF * 7 + 5
    seen = set()
    for r in range(2, 200):
        A, sig, h = forge(a, r, b"m", 3, 0)
        ok = ed25519.verify(A, b"m", sig)
        assert ok is nacl_verify(A, b"m", sig)
        assert ok is ((h * 3) % 8 == 0)
        if not ok:
            assert ed25519.verify_reason(A, b"m", sig) == ed25519.R_MISMATCH
        seen.add(ok)
        if seen == {True, False}:
            break
    assert seen == {True, False}


def test_rejects_r_off_by_the_point_of_order_two():
    # R = rB + T2 with T2 of order 2: Q = [S]B - [h]A - R = T2, and
    # [d]Q = 0 for every even d, so the half-size check must use odd d only
    a = 0x5EED
    for r in range(2, 14):
        A, sig, _ = forge(a, r, b"two", 0, 4)
        assert ed25519.verify_reason(A, b"two", sig) == ed25519.R_MISMATCH
        assert nacl_verify(A, b"two", sig) is False


@settings(max_examples=300, deadline=None)
@given(h=st.one_of(st.integers(0, L - 1), st.sampled_from([0, 1, 2, L - 1, L - 2, 1 << 127, 1 << 250])))
def test_short_pair_solves_c_equals_d_h_mod_8l_with_odd_d(h):
    c, d = ed25519._short_pair(h)
    assert (c - d * h) % (8 * L) == 0
    assert d & 1
    assert abs(c) < 8 * L and abs(d) < 8 * L


def test_short_pair_halves_the_scalars_for_hash_outputs():
    # h is a hash output, uniform mod L: its pair is about 2**128 (the
    # lattice has determinant 8L); an h built to be unbalanced only costs
    # the verifier time, never a wrong answer (previous test)
    rng = random.Random(8032)
    sizes = []
    for _ in range(2000):
        c, d = ed25519._short_pair(rng.randrange(L))
        sizes.append(max(abs(c), abs(d)).bit_length())
    assert max(sizes) <= 144  # 139 seen once in these 2000
    assert sorted(sizes)[len(sizes) // 2] <= 129


@settings(max_examples=200, deadline=None)
@given(x=st.integers(0, (1 << 256) - 1), n=st.integers(0, 260))
def test_repeated_squaring_is_right_and_stays_below_2_256(x, n):
    r = ed25519._sq_n(x, n)
    assert 0 <= r < 1 << 256
    assert r % P == pow(x, 1 << n, P)


def test_invert_and_square_root():
    for z in (1, 2, 5, P - 1, 0x1234567890ABCDEF << 200, (1 << 256) - 1):
        assert z * ed25519._invert(z) % P == 1
    assert ed25519._invert(0) == 0
    for y in (ed25519._BY, 3, 4, 12345):
        x = ed25519._recover_x(y, 0)
        if x is not None:
            assert 0 <= x < P and x & 1 == 0
            assert (-x * x + y * y - 1 - ed25519.D * x * x * y * y) % P == 0  # on the curve


@settings(max_examples=300, deadline=None)
@given(k=st.integers(0, (1 << 256) - 1), w=st.integers(2, 7))
def test_naf_digits_sum_to_the_scalar(k, w):
    digits = ed25519._naf(k, w)
    total = 0
    for i, d in enumerate(digits):
        if d:
            d = d - 256 if d > 128 else d
            assert d & 1 and abs(d) < 1 << (w - 1)
            total += d << i
    assert total == k


@settings(max_examples=100, deadline=None)
@given(k=st.integers(1, L - 1), c=st.integers(-(1 << 140), 1 << 140), d=st.integers(-(1 << 140), 1 << 140))
def test_multi_stays_below_2_256_and_matches_libsodium(k, c, d):
    # _multi never reduces with %: its results are only folded, and must
    # stay below 2**256 in magnitude (the bound its products rely on)
    E = ed25519
    base = lambda n: sodium.crypto_scalarmult_ed25519_base_noclamp((n % L).to_bytes(32, "little"))
    # P0 = [k]B and P1 = B as affine points, from their encodings
    p0 = base(k)
    y0 = int.from_bytes(p0, "little") & ((1 << 255) - 1)
    x0 = E._recover_x(y0, p0[31] >> 7)
    na, ta = E._var_term(c, x0, y0)
    nr, tr = E._var_term(d, E._BX, E._BY)
    s = (k * 3 + 1) % L
    X, Y, Z = E._multi(na, ta, nr, tr, E._naf(s & E._SPLIT_MASK, E._W_BASE), E._naf(s >> E._SPLIT, E._W_BASE))
    assert max(abs(X), abs(Y), abs(Z)) < 1 << 256
    # [s]B - [c]P0 - [d]B = [s - c k - d]B
    n = (s - c * k - d) % L
    assert E._encode(X, Y, Z) == (base(n) if n else bytes.fromhex(SMALL_ORDER[1]))


@pytest.mark.parametrize("enc", SMALL_ORDER)
@pytest.mark.parametrize("sign_bit", [False, True])
def test_rejects_small_order_r(signed, enc, sign_bit):
    seed, pk, msg, sig = signed
    r = bytes.fromhex(enc)
    if sign_bit:
        r = set_sign_bit(r)
    bad = r + sig[32:]
    assert ed25519.verify_reason(pk, msg, bad) == ed25519.R_SMALL_R
    assert nacl_verify(pk, msg, bad) is False


def test_rejects_neutral_r_even_when_the_equation_holds():
    # R = neutral, S = h * a gives [S]B - [h]A = neutral = R: only the
    # small-order rule rejects it
    a = 99991
    A = sodium.crypto_scalarmult_ed25519_base_noclamp(a.to_bytes(32, "little"))
    R = bytes.fromhex(SMALL_ORDER[1])
    h = int.from_bytes(hashlib.sha512(R + A + b"x").digest(), "little") % L
    sig = R + (h * a % L).to_bytes(32, "little")
    assert ed25519.verify_reason(A, b"x", sig) == ed25519.R_SMALL_R
    assert nacl_verify(A, b"x", sig) is False


@pytest.mark.parametrize("enc", SMALL_ORDER)
@pytest.mark.parametrize("sign_bit", [False, True])
def test_rejects_small_order_public_key(signed, enc, sign_bit):
    _, _, msg, sig = signed
    pk = bytes.fromhex(enc)
    if sign_bit:
        pk = set_sign_bit(pk)
    # libsodium tests "y < p" and "not small order" together; y = p, p + 1
    # are both, and verify_reason() names the alias rule first
    y = int.from_bytes(bytes.fromhex(enc), "little")
    expected = ed25519.R_KEY_ALIAS if y >= P else ed25519.R_SMALL_KEY
    assert ed25519.verify_reason(pk, msg, sig) == expected
    assert nacl_verify(pk, msg, sig) is False


@pytest.mark.parametrize("k", range(2, 19))
def test_rejects_non_canonical_public_key(signed, k):
    # y = p + k is an alias of y = k
    _, _, msg, sig = signed
    pk = (P + k).to_bytes(32, "little")
    assert ed25519.verify_reason(pk, msg, sig) == ed25519.R_KEY_ALIAS
    assert nacl_verify(pk, msg, sig) is False


def test_rejects_public_key_not_on_curve(signed):
    _, _, msg, sig = signed
    y = 2  # (y**2 - 1) / (d y**2 + 1) is not a square for y = 2
    bad = y.to_bytes(32, "little")
    assert ed25519.verify_reason(bad, msg, sig) == ed25519.R_KEY_CURVE
    assert nacl_verify(bad, msg, sig) is False


def test_rejects_r_with_sign_bit_flipped(signed):
    # -R instead of R: same y, so only the full byte comparison catches it
    _, pk, msg, sig = signed
    bad = bytes(sig[:31]) + bytes([sig[31] ^ 0x80]) + sig[32:]
    assert ed25519.verify_reason(pk, msg, sig) is None
    assert ed25519.verify_reason(pk, msg, bad) == ed25519.R_MISMATCH
    assert nacl_verify(pk, msg, bad) is False


@pytest.mark.parametrize("pk_len,sig_len", [(0, 64), (31, 64), (33, 64), (32, 0), (32, 63), (32, 65), (64, 32)])
def test_rejects_wrong_lengths(signed, pk_len, sig_len):
    _, pk, msg, sig = signed
    pk = (pk * 3)[:pk_len]
    sig = (sig * 2)[:sig_len]
    assert ed25519.verify_reason(pk, msg, sig) == ed25519.R_LENGTH
    assert ed25519.verify(pk, msg, sig) is False


@pytest.mark.parametrize("bad", [None, 5, "x" * 32, 1.5, [0] * 32, object()])
def test_rejects_non_bytes_arguments(signed, bad):
    _, pk, msg, sig = signed
    for args in ((bad, msg, sig), (pk, bad, sig), (pk, msg, bad)):
        assert ed25519.verify_reason(*args) == ed25519.R_NOT_BYTES
        assert ed25519.verify(*args) is False


def test_accepts_bytearray_and_memoryview(signed):
    _, pk, msg, sig = signed
    assert ed25519.verify(bytearray(pk), memoryview(msg), memoryview(bytearray(sig))) is True


@settings(max_examples=200, deadline=None)
@given(pk=st.binary(max_size=40), msg=st.binary(max_size=40), sig=st.binary(max_size=70))
def test_random_bytes_never_raise(pk, msg, sig):
    ok = ed25519.verify(pk, msg, sig)
    if len(pk) == 32 and len(sig) == 64:
        assert ok is nacl_verify(pk, msg, sig)
    else:
        assert ok is False


def test_decoded_keys_are_cached_but_only_a_few_and_only_valid_ones(signed, monkeypatch):
    decoded = []
    real = ed25519._recover_x

    def counting(y, sign):
        decoded.append(y)
        return real(y, sign)

    monkeypatch.setattr(ed25519, "_recover_x", counting)
    monkeypatch.setattr(ed25519, "_key_x", {})
    seed, pk, msg, sig = signed
    assert ed25519.verify(pk, msg, sig)
    assert len(decoded) == 2  # the key, then R
    assert ed25519.verify(pk, msg, sig)
    assert len(decoded) == 3  # R only: the key came from the cache
    for i in range(3 * ed25519._KEY_CACHE):
        other = bytes([i + 1]) * 32
        assert ed25519.verify(ed25519.public_key(other), msg, ed25519.sign(other, msg))
        assert len(ed25519._key_x) <= ed25519._KEY_CACHE
    off_curve = (2).to_bytes(32, "little")
    assert ed25519.verify_reason(off_curve, msg, sig) == ed25519.R_KEY_CURVE
    assert off_curve not in ed25519._key_x
    assert ed25519.verify_reason(off_curve, msg, sig) == ed25519.R_KEY_CURVE


def test_memory_error_propagates_instead_of_a_false_verdict(signed, monkeypatch):
    _, pk, msg, sig = signed

    def exhausted(*parts):
        raise MemoryError

    monkeypatch.setattr(ed25519, "_hash_int", exhausted)
    with pytest.raises(MemoryError):
        ed25519.verify(pk, msg, sig)


def test_sign_rejects_wrong_seed_length_or_message_type():
    with pytest.raises(ValueError):
        ed25519.sign(bytes(31), b"")
    with pytest.raises(ValueError):
        ed25519.public_key(bytes(33))
    with pytest.raises(ValueError):
        ed25519.sign(bytes(32), "text")


# --- SHA-512 ----------------------------------------------------------------

@pytest.mark.parametrize("n", list(range(0, 301)))
def test_sha512_matches_hashlib(n):
    data = bytes((i * 7 + n) & 0xFF for i in range(n))
    assert sha512.sha512(data).digest() == hashlib.sha512(data).digest()


@pytest.mark.parametrize("n", [111, 112, 113, 127, 128, 129, 239, 240, 255, 256, 257])
def test_sha512_block_boundaries_incremental(n):
    data = os.urandom(n)
    for cut in (0, 1, n // 2, n - 1, n):
        h = sha512.sha512(data[:cut])
        h.update(data[cut:])
        assert h.digest() == hashlib.sha512(data).digest()


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(st.binary(max_size=300), max_size=6))
def test_sha512_update_in_pieces(parts):
    h = sha512.sha512()
    ref = hashlib.sha512()
    for p in parts:
        h.update(p)
        ref.update(p)
        assert h.copy().digest() == ref.digest()
    assert h.digest() == ref.digest()
    assert h.digest() == h.digest()  # digest() does not disturb the state


def test_sha512_new_is_native_on_cpython():
    assert sha512.new(b"abc").digest() == hashlib.sha512(b"abc").digest()


# --- under MicroPython, heap capped at 64 KB ------------------------------

MPY_VECTORS = "VECTORS = %r\n" % ([tuple(v[1:]) for v in RFC8032_VECTORS],)

MPY_SCRIPT = MPY_VECTORS + """
from binascii import unhexlify as ux
import hashlib
from pen_protocol import ed25519
assert not hasattr(hashlib, "sha512")  # so the pure-Python SHA-512 is in use
for seed, pk, msg, sig in VECTORS:
    seed, pk, msg, sig = ux(seed), ux(pk), ux(msg), ux(sig)
    assert ed25519.public_key(seed) == pk, "public_key"
    assert ed25519.sign(seed, msg) == sig, "sign"
    assert ed25519.verify(pk, msg, sig) is True, "verify"
    for bit in (0, 7, 255, 256, 300, 511):
        bad = bytearray(sig)
        bad[bit >> 3] ^= 1 << (bit & 7)
        assert ed25519.verify(pk, msg, bytes(bad)) is False, "flipped sig bit %d" % bit
    bad = bytearray(pk)
    bad[5] ^= 2
    assert ed25519.verify(bytes(bad), msg, sig) is False, "flipped key bit"
    assert ed25519.verify(pk, msg + b"\\x00", sig) is False, "longer message"
    s = int.from_bytes(sig[32:], "little") + ed25519.L
    assert ed25519.verify(pk, msg, sig[:32] + s.to_bytes(32, "little")) is False, "S >= L"
    assert ed25519.verify(pk[:31], msg, sig) is False, "short key"
    assert ed25519.verify(pk, msg, sig[:63]) is False, "short sig"
    assert ed25519.verify(pk, None, sig) is False, "None message"
    print("ok", len(msg))
"""


@pytest.mark.micropython
def test_rfc8032_vectors_and_rejections_under_micropython_64k_heap():
    out = run_micropython(MPY_SCRIPT, heap="64k")
    assert out.split() == ["ok", "0", "ok", "1", "ok", "2", "ok", "64"]


@pytest.mark.micropython
def test_sha512_under_micropython_matches_hashlib():
    lengths = [0, 1, 55, 111, 112, 127, 128, 129, 200, 255, 256, 300]
    code = (
        "from pen_protocol.sha512 import sha512\n"
        "for n in %r:\n"
        "    d = bytes((i * 7 + n) & 0xFF for i in range(n))\n"
        "    h = sha512(d[:n // 3])\n"
        "    h.update(d[n // 3:])\n"
        "    print(h.hexdigest())\n" % (lengths,)
    )
    out = run_micropython(code, heap="64k").split()
    expected = [hashlib.sha512(bytes((i * 7 + n) & 0xFF for i in range(n))).hexdigest() for n in lengths]
    assert out == expected


@pytest.mark.micropython
def test_torsion_cases_judged_as_libsodium_under_micropython():
    # the half-size check's lattice pair, negative d and the 8L reduction
    # on MicroPython's bigints, against libsodium's verdicts
    a = 0x1234567890ABCDEF * 7 + 5
    cases = []
    for r in range(2, 60):
        for kt, rt in ((3, 0), (0, 4), (5, 2)):
            A, sig, h = forge(a, r, b"mpy", kt, rt)
            cases.append((A, sig, ed25519._short_pair(h)[1] < 0, nacl_verify(A, b"mpy", sig)))
    accepted = [c for c in cases if c[3]][:6]
    rejected = [c for c in cases if not c[3]][:6]
    assert len(accepted) == 6 and len(rejected) == 6
    assert any(c[2] for c in accepted) and any(c[2] for c in rejected)  # both signs of d
    code = (
        "import sys\n"
        "from binascii import unhexlify as ux\n"
        "from pen_protocol import ed25519\n"
        "for arg in sys.argv[1:]:\n"
        "    k, s = arg.split(':')\n"
        "    print(ed25519.verify_reason(ux(k), b'mpy', ux(s)))\n"
    )
    args = [A.hex() + ":" + sig.hex() for A, sig, _, _ in accepted + rejected]
    out = run_micropython(code, heap="64k", args=args).split()
    assert out == ["None"] * 6 + [ed25519.R_MISMATCH] * 6


@pytest.mark.micropython
def test_exhausted_heap_raises_memory_error_not_a_false_verdict():
    # out of memory says nothing about the signature: verify must not turn
    # it into "invalid" (a node would drop a good record)
    code = MPY_VECTORS + """
import gc
from binascii import unhexlify as ux
from pen_protocol import ed25519
seed, pk, msg, sig = [ux(x) for x in VECTORS[0]]
print(ed25519.verify(pk, msg, sig))
ballast = []
try:
    while True:
        ballast.append(bytearray(256))
except MemoryError:
    pass
for _ in range(4):
    ballast.pop()
gc.collect()
try:
    print(ed25519.verify(pk, msg, sig))
except MemoryError:
    print("MemoryError")
ballast = None
gc.collect()
print(ed25519.verify(pk, msg, sig))
"""
    assert run_micropython(code, heap="64k").split() == ["True", "MemoryError", "True"]
