"""The receipt digest (frame.T_DIGEST): many accounted payments in one
signed frame, so receipts come back under load.

An ACCOUNTED receipt is a 102-byte record sent hop by hop down the payment's
path: 112 B on air, 0.59 s at SF9, and a bridge's duty budget carries at most
~450 of them an hour after its acks (docs/mesh.md). A digest names up to
MAX_ENTRIES accounted payments under one signature of the CTB node:

    digest = T_DIGEST (1) | kid (4) | time (4) | entry * n | signature (64)
    entry  = token ref (8) | USE id prefix (USE_PREFIX = 4)

    kid        the CTB node key's id (sign.kid), as in ACCOUNTED's node field
    time       big-endian u32, seconds, the signer's clock when it signed;
               a store refuses one far older than the newest it has seen
               from that key (its replay window, pen.storeclient)
    entry      a payment the CTB node has accounted: its token and the first
               4 bytes of the effective USE's record id. The prefix binds the
               entry to one USE: without it, a payer who spent a token twice
               would see the losing store read "accounted" too. To match a
               store's USE of the same token the other USE's id must share
               its 4-byte prefix, a 2^-32 chance the payer cannot grind (the
               store fixes product and account)
    signature  Ed25519 over sign.domain(b"digest") || digest[1:-64]: the exact
               bytes received, under a domain no record type uses

One digest fills at most one frame: 1 + 8 + 14 * 12 + 64 = 241 B, a 251-byte
frame (1.25 s at SF9, 89 ms a receipt against 590 ms for one ACCOUNTED). It
is flooded (managed flooding, downlink.py), so every node also learns the
refs for its spent set.

The node only reads the shape (frame.digest_entries, then the refs: no
allocation per entry, no Ed25519, 0.5-1.3 s on an ESP32, and no module of
its own: this one with sign.py is ~6 KB of a 64 KB node's heap); the store
parses and verifies (here) against its pinned CTB node keys before it
believes a word. Runs on CPython and MicroPython (golden vectors on both).
"""

from . import sign
from .frame import T_DIGEST, digest_entries

# the layout (frame.py reads it with private constants: tests/protocol/test_digest.py checks they agree)
KID_LEN = 4
TIME_LEN = 4
HEAD_LEN = 1 + KID_LEN + TIME_LEN
REF_LEN = 8
USE_PREFIX = 4
ENTRY_LEN = REF_LEN + USE_PREFIX
SIG_LEN = 64
MAX_ENTRIES = 14  # (frame.MAX_PAYLOAD 244 - kid 4 - time 4 - signature 64) // ENTRY_LEN
MIN_LEN = HEAD_LEN + ENTRY_LEN + SIG_LEN  # one entry
MAX_LEN = HEAD_LEN + MAX_ENTRIES * ENTRY_LEN + SIG_LEN


def shape(raw):
    """The number of entries of a well-formed digest (its type byte first),
    or the reason it is not one: what a node reads (frame.digest_entries)."""
    if len(raw) == 0 or raw[0] != T_DIGEST:
        return "not-a-digest"
    return digest_entries(memoryview(raw)[1:])


DOMAIN = b"pen/1/digest\x00"  # sign.domain(b"digest"): no record type is named "digest"


class DigestError(ValueError):
    """A digest that is not well formed; .reason is a short code."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def message(raw):
    """The exact bytes the signature covers."""
    return DOMAIN + bytes(memoryview(raw)[1:len(raw) - SIG_LEN])


def _u32(b, i):
    return (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]


class Digest:
    """A parsed digest: raw (exact bytes), kid, time, entries [(ref, prefix)], sig."""

    __slots__ = ("raw", "kid", "time", "entries", "sig")

    def __init__(self, raw):
        n = shape(raw)
        if type(n) is str:
            raise DigestError(n)
        self.raw = bytes(raw)
        self.kid = self.raw[1:5]
        self.time = _u32(self.raw, 5)
        out = []
        for i in range(n):
            j = HEAD_LEN + i * ENTRY_LEN
            e = (self.raw[j:j + REF_LEN], self.raw[j + REF_LEN:j + ENTRY_LEN])
            if e in out:
                raise DigestError("duplicate-entry")  # a signer never names a payment twice
            out.append(e)
        self.entries = out
        self.sig = self.raw[-SIG_LEN:]

    def id(self):
        """What a store remembers a digest by (replays): 16 bytes of SHA-256
        over the signed bytes, as a record's id."""
        import hashlib
        return hashlib.sha256(self.raw[:-SIG_LEN]).digest()[:16]

    def names(self, token, use_id):
        """True when an entry names this token with this USE's id."""
        return (bytes(token), bytes(use_id[:USE_PREFIX])) in self.entries


def parse(raw):
    """Digest of raw; raises DigestError."""
    return Digest(raw)


def body(kid, time_s, entries):
    """The digest without its signature. entries: [(token ref, USE id)]
    (the id whole or its prefix); raises DigestError for what no signer
    should ever send."""
    if len(kid) != KID_LEN:
        raise DigestError("bad-kid")
    if not 0 <= time_s <= 0xFFFFFFFF:
        raise DigestError("bad-time")
    if not 1 <= len(entries) <= MAX_ENTRIES:
        raise DigestError("bad-count")
    out = bytearray((T_DIGEST,))
    out += kid
    out += bytes(((time_s >> 24) & 255, (time_s >> 16) & 255, (time_s >> 8) & 255, time_s & 255))
    for ref, use_id in entries:
        if len(ref) != REF_LEN or len(use_id) < USE_PREFIX:
            raise DigestError("bad-entry")
        out += ref
        out += use_id[:USE_PREFIX]
    return bytes(out)


def verify(raw, keys):
    """(Digest, None) when raw is a well-formed digest signed by one of keys
    (pinned CTB node public keys), else (None, why): "malformed: <reason>",
    "unpinned-key" or "bad-signature". Nothing about it is believed before."""
    try:
        d = Digest(raw)
    except DigestError as e:
        return None, "malformed: " + e.reason
    for pk in keys:
        if sign.kid(pk) == d.kid:
            if sign.verify(pk, message(d.raw), d.sig):
                return d, None
            return None, "bad-signature"
    return None, "unpinned-key"
