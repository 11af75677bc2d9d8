"""Pairing and link authentication, sans-IO, the same code on node and host.

A phone (or store PC) pairs once with its node by a short code the node shows
on its console. Pairing is CPace-style (draft-irtf-cfrg-cpace) over X25519:
both sides map the code (with the phone's key and nonce) to a curve point G
by Elligator 2, then run Diffie-Hellman on G. Someone who does not know the
code learns nothing he can test offline: an eavesdropper sees two random
points; an active attacker playing either side tests exactly one guess per
run (he must commit to a G before he sees anything keyed by the result). So
a 6-digit code is 1 in 10**6 per attempt, and the node allows MAX_ATTEMPTS
attempts per code shown (firmware/pen_node/pairing.py counts them in storage
before it answers, so a reboot gives nothing back).

Pairing binds the phone's Ed25519 public key (hashed into G and into the
transcript) to a 32-byte pairing secret both keep. Each link session then
derives fresh keys from that secret and two nonces (OPEN), and every frame
travels sealed: AES-128-CTR (cryptolib on the node) and a 16-byte
HMAC-SHA256 tag over a counter that must not repeat (a 32-frame window
accepts late frames once, never twice). The node's fresh nonce makes frames
of an earlier session useless in a later one.

Wire (payloads of link kinds, see docs/link.md):
    PAIR_START  phone_pk (32) | nonce (16) | Ya (32)  -> nonce (16) | Yb (32) | confirm_node (16)
    PAIR_FINISH phone_kid (4) | confirm_phone (16)    -> empty (paired)
    OPEN        phone_kid (4) | nonce (16)             -> nonce (16) | proof (16)
    SEALED      ctr (4, big-endian) | AES-CTR(encoded link frames) | tag (16)

LinkAuth is the serving side (a node: firmware/pen_node/pairing.py adds its
file storage; the bridge's Meshtastic gateway): storage and randomness
are passed in, frames in, bytes out.
"""

import hashlib

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from . import cbor
from . import link as L
from . import sign

P = 2 ** 255 - 19
_A = const(486662)
_A24 = const(121665)
CODE_DIGITS = const(6)
NONCE_LEN = const(16)
POINT_LEN = const(32)
KEY_LEN = const(32)
TAG_LEN = const(16)  # truncated HMAC-SHA256: 2**-128 forgery chance per try
CTR_LEN = const(4)
SEAL_OVERHEAD = const(CTR_LEN + TAG_LEN)
# encoded frames a sealed frame carries: the link's payload cap minus ctr and
# tag (a sealed SUBMIT still fits any record one LoRa frame can carry)
MAX_INNER = const(3080)
WINDOW = const(32)  # late frames accepted once within this many counters
START_LEN = const(32 + NONCE_LEN + POINT_LEN)
START_ANSWER_LEN = const(NONCE_LEN + POINT_LEN + TAG_LEN)
FINISH_LEN = const(4 + TAG_LEN)  # sign.KID_LEN
OPEN_LEN = const(4 + NONCE_LEN)  # sign.KID_LEN
OPEN_ANSWER_LEN = const(NONCE_LEN + TAG_LEN)
_PFX = b"pen/1/link/"

# SEALED open() failures (also the link's error reasons)
AUTH = L.E_AUTH
REPLAY = L.E_REPLAY


def hmac(key, msg):
    """HMAC-SHA256 (RFC 2104) on hashlib alone: MicroPython has no hmac."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = bytes(key) + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + msg).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).digest()


def derive(secret, label, *parts):
    return hmac(secret, _PFX + label + b"\x00" + b"".join(parts))


def equal(a, b):
    """Compare MACs without an early exit."""
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0


# -- X25519 (RFC 7748) and Elligator 2 (RFC 9380 section 6.7.1) --------------

def _inv(x):
    return pow(x, P - 2, P)  # pow(x, -1, P) returns 0 on MicroPython


def x25519(scalar, u):
    """RFC 7748 scalar multiplication on the u-coordinate (bytes in, bytes out)."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    k = int.from_bytes(bytes(k), "little")
    x1 = int.from_bytes(bytes(u), "little") & ((1 << 255) - 1)
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in range(254, -1, -1):
        kt = (k >> t) & 1
        if swap ^ kt:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a = x2 + z2
        aa = a * a % P
        b = x2 - z2
        bb = b * b % P
        e = aa - bb
        c = x3 + z3
        d = x3 - z3
        da = d * a % P
        cb = c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + _A24 * e) % P
    if swap:
        x2, z2 = x3, z3
    return (x2 * _inv(z2) % P).to_bytes(32, "little")


def elligator2(r):
    """A curve25519 u-coordinate from a field element (Z = 2)."""
    den = (1 + 2 * r * r) % P
    if den == 0:
        den = 1
    u = -_A * _inv(den) % P
    gx = (u * u * u + _A * u * u + u) % P
    if pow(gx, (P - 1) // 2, P) > 1:  # not a square: the other candidate is
        u = (-u - _A) % P
    return u.to_bytes(32, "little")


def generator(code, phone_pk, nonce):
    """The pairing's curve point from the code (CPace's calculate_generator)."""
    h = hashlib.sha256(_PFX + b"g\x00" + bytes(code) + b"\x00" + bytes(phone_pk) + bytes(nonce)).digest()
    return elligator2(int.from_bytes(h, "little") & ((1 << 255) - 1))


def _dh(scalar, point):
    k = x25519(scalar, point)
    if k == bytes(32):  # a small-order point from the peer: abort
        return None
    return k


class Pairing:
    """One side's pairing run. The phone calls start() then finish(); the
    node answer(). Results: .psk (32) and .phone_pk once confirmed."""

    def __init__(self, code, phone_pk, rand):
        self.code = code.encode() if isinstance(code, str) else bytes(code)
        self.phone_pk = bytes(phone_pk)
        self.rand = rand  # rand(n) -> n random bytes
        self.psk = None

    def start(self):
        """Phone: PAIR_START payload."""
        self.nonce_p = self.rand(NONCE_LEN)
        self._y = self.rand(32)
        self.ya = x25519(self._y, generator(self.code, self.phone_pk, self.nonce_p))
        return self.phone_pk + self.nonce_p + self.ya

    def _keys(self, k, nonce_n, yb):
        th = hashlib.sha256(_PFX + b"th\x00" + self.phone_pk + self.nonce_p + self.ya + nonce_n + yb).digest()
        self._confirm_node = derive(k, b"confirm-node", th)[:TAG_LEN]
        self._confirm_phone = derive(k, b"confirm-phone", th)[:TAG_LEN]
        self._psk = derive(k, b"psk", th)

    def answer(self, start_payload):
        """Node: PAIR_START answer payload, or None (malformed or small-order
        point: the run fails)."""
        p = bytes(start_payload)
        if len(p) != START_LEN or p[:32] != self.phone_pk:
            return None
        self.nonce_p = p[32:48]
        self.ya = p[48:80]
        y = self.rand(32)
        g = generator(self.code, self.phone_pk, self.nonce_p)
        yb = x25519(y, g)
        k = _dh(y, self.ya)
        if k is None:
            return None
        nonce_n = self.rand(NONCE_LEN)
        self._keys(k, nonce_n, yb)
        return nonce_n + yb + self._confirm_node

    def finish(self, answer_payload):
        """Phone: PAIR_FINISH payload, or None when the node's confirmation
        is wrong (a wrong code, or not our node)."""
        p = bytes(answer_payload)
        if len(p) != START_ANSWER_LEN:
            return None
        k = _dh(self._y, p[16:48])
        if k is None:
            return None
        self._keys(k, p[:16], p[16:48])
        if not equal(p[48:], self._confirm_node):
            return None
        self.psk = self._psk
        return sign.kid(self.phone_pk) + self._confirm_phone

    def confirm(self, finish_payload):
        """Node: True (and .psk set) when the phone proved the same code."""
        p = bytes(finish_payload)
        if len(p) != FINISH_LEN or p[:4] != sign.kid(self.phone_pk) or not hasattr(self, "_psk"):
            return False
        if not equal(p[4:], self._confirm_phone):
            return False
        self.psk = self._psk
        return True


def state_bytes(code, attempts, phones):
    """A node's pairing state as it keeps it (firmware/pen_node/pairing.py):
    CBOR [code or None, attempts left, [[kid, public key, secret]...]].
    Provisioning writes one with a fresh code and prints the code, for a
    board whose console is the link itself."""
    return cbor.dumps([code, attempts, phones])


def new_code(rand):
    """CODE_DIGITS decimal digits from rand(4) (the bias of 2**32 mod 10**6
    is below 10**-3 per code)."""
    n = int.from_bytes(rand(4), "big") % 1000000
    return ("000000" + str(n))[-CODE_DIGITS:]


def open_proof(psk, kid, nonce_p, nonce_n):
    """The node's answer to OPEN proves it holds the pairing secret."""
    return derive(psk, b"open", kid, nonce_p, nonce_n)[:TAG_LEN]


def _aes_ecb(key):
    try:
        import cryptolib
        return cryptolib.aes(key, 1).encrypt
    except ImportError:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()
        return enc.update


class HashRand:
    """rand(n) for golden vectors and tests only: SHA-256 chained from a
    seed, the same bytes on every runtime. Never for keys: a node is given
    os.urandom."""

    def __init__(self, seed):
        self.s = hashlib.sha256(b"pen/1/vector-rand\x00" + seed).digest()

    def __call__(self, n):
        out = b""
        while len(out) < n:
            self.s = hashlib.sha256(self.s).digest()
            out += self.s
        return out[:n]


class Session:
    """Sealing for one link session. role is b"phone" or b"node": each
    direction has its own keys, so a frame cannot be reflected back."""

    def __init__(self, psk, nonce_p, nonce_n, role, aes=_aes_ecb):
        k = derive(psk, b"session", nonce_p, nonce_n)
        me, peer = (b"p2n", b"n2p") if role == b"phone" else (b"n2p", b"p2n")
        self._tx_enc = aes(derive(k, b"enc-" + me)[:16])
        self._tx_mac = derive(k, b"mac-" + me)
        self._rx_enc = aes(derive(k, b"enc-" + peer)[:16])
        self._rx_mac = derive(k, b"mac-" + peer)
        self.tx_ctr = 0
        self.rx_top = 0
        self.rx_seen = 0  # bit i: counter rx_top - i seen

    @staticmethod
    def _xor(ecb, ctr, data):
        n = len(data)
        if n == 0:
            return b""
        blocks = bytearray()
        for i in range((n + 15) // 16):
            blocks += ctr + bytes(10) + bytes(((i >> 8) & 255, i & 255))
        ks = ecb(bytes(blocks))
        return (int.from_bytes(bytes(data), "big") ^ int.from_bytes(ks[:n], "big")).to_bytes(n, "big")

    def seal(self, inner):
        """Encoded link frames -> a SEALED payload."""
        if len(inner) > MAX_INNER:
            raise ValueError("too long to seal")
        self.tx_ctr += 1
        ctr = self.tx_ctr.to_bytes(CTR_LEN, "big")
        body = ctr + self._xor(self._tx_enc, ctr, inner)
        return body + hmac(self._tx_mac, body)[:TAG_LEN]

    def open(self, payload):
        """A SEALED payload -> the encoded frames inside, or AUTH (tampered,
        forged, another session's) or REPLAY (a counter seen before)."""
        p = bytes(payload)
        if len(p) < SEAL_OVERHEAD:
            return AUTH
        body = p[:-TAG_LEN]
        if not equal(hmac(self._rx_mac, body)[:TAG_LEN], p[-TAG_LEN:]):
            return AUTH
        c = int.from_bytes(p[:CTR_LEN], "big")
        if not self._fresh(c):
            return REPLAY
        return self._xor(self._rx_enc, p[:CTR_LEN], body[CTR_LEN:])

    def _fresh(self, c):
        if c > self.rx_top:
            shift = c - self.rx_top
            self.rx_seen = ((self.rx_seen << shift) | 1) & 0xFFFFFFFF if shift < WINDOW else 1
            self.rx_top = c
            return True
        back = self.rx_top - c
        if c == 0 or back >= WINDOW or (self.rx_seen >> back) & 1:
            return False
        self.rx_seen |= 1 << back
        return True


# -- the serving side: a node (or the bridge's Meshtastic gateway) ------------

MAX_ATTEMPTS = const(5)  # state_bytes(code, 5, []) is a provisioned node's file
# after the n-th attempt on a code the next waits 2**n s (2, 4, 8, 16): a
# person who mistyped barely notices, a script gets its 5 tries in 30 s at
# best. In RAM (a reboot resets the wait, never the count)
_GAP_MS = const(1000)
MAX_PHONES = const(8)  # pairings kept; the oldest goes first
# events buffered while no session is open (a receipt arriving while the
# phone is away waits for it); beyond this the oldest go
_HELD_BYTES = const(2048)
_NODE_SEALED = const(0x4B)  # L.SEALED | L.RESPONSE


class MemStore:
    def __init__(self, data=None):
        self.data = data

    def load(self):
        return self.data

    def save(self, data):
        self.data = bytes(data)


class LinkAuth:
    def __init__(self, storage, rand):
        self.storage = storage
        self.rand = rand  # rand(n) -> n random bytes (os.urandom on a board)
        self.code = None
        self.attempts = 0
        self.phones = []  # [kid, pk, psk]
        self.run = None  # the pairing run in progress
        self.session = None
        self.held = []
        self.dec = L.Decoder()  # frames inside sealed ones
        self.damaged = False
        self.next_try_ms = None  # no PAIR_START before this (None: any time)
        self.reload()

    def reload(self):
        """Read the state again (the bridge's gateway keeps one LinkAuth per
        Meshtastic peer over one file: each reads what the others saved)."""
        raw = self.storage.load()
        if raw:
            try:
                self.code, self.attempts, self.phones = cbor.loads(raw)
            except (ValueError, TypeError):
                # a damaged file (power cut mid-write on a filesystem that
                # does not rename atomically): no pairing is trusted and no
                # code is open; the operator shows a new one, phones re-pair
                self.code, self.attempts, self.phones = None, 0, []
                self.damaged = True

    def _save(self):
        self.storage.save(state_bytes(self.code, self.attempts, self.phones))

    def new_code(self):
        """A fresh code with MAX_ATTEMPTS attempts (the console shows it)."""
        self.code = new_code(self.rand)
        self.attempts = MAX_ATTEMPTS
        self.next_try_ms = None
        self._save()
        return self.code

    def paired(self):
        return [p[0] for p in self.phones]

    # -- serving ------------------------------------------------------------

    def serve(self, f, now_ms, request):
        """One frame from the link. request(frame, now_ms) -> answer bytes is
        the service's own dispatch. Returns the bytes to write."""
        k = f.kind
        if k == L.HELLO:
            return request(f, now_ms)
        if k == L.PAIR_START:
            return self._start(f, now_ms)
        if k == L.PAIR_FINISH:
            return self._finish(f)
        if k == L.OPEN:
            return self._open(f)
        if k == L.SEALED:
            return self._sealed(f, now_ms, request)
        return L.error(f.seq, L.E_UNPAIRED, "pair, then open a session")

    def _start(self, f, now_ms):
        p = bytes(f.payload)
        if len(p) != START_LEN:
            return L.error(f.seq, L.E_BAD_PAYLOAD, "pair start is 80 bytes")
        if self.code is None or self.attempts <= 0:
            return L.error(f.seq, L.E_LOCKED, "no pairing code open: show one on the node")
        if self.next_try_ms is not None and now_ms - self.next_try_ms < 0:
            return L.error(f.seq, L.E_LOCKED, "too soon: try again in %d s" % ((self.next_try_ms - now_ms + 999) // 1000))
        self.attempts -= 1
        self._save()  # before answering: a reboot gives no attempt back
        self.next_try_ms = now_ms + (_GAP_MS << (MAX_ATTEMPTS - self.attempts))
        run = Pairing(self.code, p[:32], self.rand)
        ans = run.answer(p)
        if ans is None:
            self.run = None
            return L.error(f.seq, L.E_PAIR, "bad share")
        self.run = run
        return L.encode(L.PAIR_START | L.RESPONSE, f.seq, ans)

    def _finish(self, f):
        run = self.run
        self.run = None  # one confirmation per run, right or wrong
        if run is None or not run.confirm(f.payload):
            return L.error(f.seq, L.E_PAIR, "pairing failed: wrong code?")
        kid = sign.kid(run.phone_pk)
        self.phones = [p for p in self.phones if p[0] != kid][-(MAX_PHONES - 1):]
        self.phones.append([kid, run.phone_pk, run.psk])
        self.code = None  # one pairing per code shown
        self.attempts = 0
        self._save()
        return L.encode(L.PAIR_FINISH | L.RESPONSE, f.seq, b"")

    def _open(self, f):
        p = bytes(f.payload)
        if len(p) != OPEN_LEN:
            return L.error(f.seq, L.E_BAD_PAYLOAD, "open is 20 bytes")
        for kid, pk, psk in self.phones:
            if kid == p[:4]:
                nonce_n = self.rand(NONCE_LEN)
                self.session = Session(psk, p[4:], nonce_n, b"node")
                self.dec = L.Decoder()
                out = L.encode(L.OPEN | L.RESPONSE, f.seq, nonce_n + open_proof(psk, kid, p[4:], nonce_n))
                held = b"".join(self.held)
                self.held = []
                return out + self.seal(held)
        return L.error(f.seq, L.E_UNPAIRED, "this phone is not paired here")

    def _sealed(self, f, now_ms, request):
        if self.session is None:
            return L.error(f.seq, L.E_UNPAIRED, "no session open")
        inner = self.session.open(f.payload)
        if inner == AUTH:
            return L.error(f.seq, L.E_AUTH, "sealed frame does not verify")
        if inner == REPLAY:
            return L.error(f.seq, L.E_REPLAY, "sealed frame seen before")
        out = []
        for item in self.dec.feed(inner):
            if isinstance(item, L.LinkError):
                out.append(L.error(0, item.reason, L.REASONS.get(item.reason, "")))
            elif item.kind in (L.PAIR_START, L.PAIR_FINISH, L.OPEN, L.SEALED):
                out.append(L.error(item.seq, L.E_UNKNOWN_KIND, "not inside a sealed frame"))
            else:
                out.append(request(item, now_ms))
        return self.seal(b"".join(out))

    def seal(self, data):
        """Bytes for the phone -> sealed frames (several when long). With no
        session open, events wait (at most _HELD_BYTES)."""
        if not data:
            return b""
        if self.session is None:
            self.held.append(bytes(data))
            while sum(len(h) for h in self.held) > _HELD_BYTES and len(self.held) > 1:
                del self.held[0]
            return b""
        out = []
        for chunk in L.pieces(bytes(data), MAX_INNER):
            out.append(L.encode(_NODE_SEALED, 0, self.session.seal(chunk)))
        return b"".join(out)
