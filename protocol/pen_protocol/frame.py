"""Mesh frame header, fragments and link acks (sans-IO).

Every LoRa frame Pen sends starts with an 8-byte header:

    0  type    1..31: a record of that type (records.py); 32..: control frames
    1  ctl     bits 0-2 hop_limit, bits 3-5 hop_start, bit 6 FRAG, bit 7 COMPACT
               (only on a USE: its body in compact form, compact_use)
    2  src     link-layer transmitter of this hop (big-endian u16)
    4  dst     next hop, or BROADCAST
    6  origin  node that first put the frame on air
    8  [frag]  only when FRAG: index << 4 | (count - 1)
    9  [group] only when FRAG: origin's fragment-group number

A record frame carries the record without its leading type byte (the header's
type byte is the record's), so a record costs exactly HEADER_LEN - 1 bytes more
on air than in the CTB.

A village's frames end with a TAG_LEN-byte tag: truncated HMAC-SHA256 under
the village network key, over every byte before it (seal / unseal). Each hop
seals again (the link fields change); the tag is no part of the frame id.

Duplicate suppression needs no id field: frame_id() is a hash of the bytes that
do not change from hop to hop, so retries, relays and flood copies of one frame
share one id at zero cost on air, and a link ack names a frame by it.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

import hashlib

from .airtime import MAX_FRAME

assert MAX_FRAME - 8 - 3 == 244  # MAX_PAYLOAD below is a literal for const()

HEADER_LEN = const(8)
FRAG_LEN = const(2)
BROADCAST = const(0xFFFF)
MAX_HOPS = const(7)
FRAME_ID_LEN = const(4)
MAX_FRAGMENTS = const(16)

FLAG_FRAG = const(0x40)
FLAG_COMPACT = const(0x80)
_USE = const(10)  # identity.USE: the one record type with a compact form

# control frame types (records use 1..31)
T_ACK = const(0x20)  # payload: one or more frame ids this node now holds
T_BEACON = const(0x21)  # bridge announcement / route advertisement
# a receipt digest from a bridge (digest.py has the layout): up to 14
# accounted payments under one signature of the CTB node, flooded; the
# payload is the digest without its first byte (the header's type byte is
# the digest's). The node reads only its shape (digest_entries, below)
T_DIGEST = const(0x22)
# private (folded by the compiler, no globals on a node's heap); digest.py
# repeats them as its public layout and its tests check they agree
_DIGEST_HEAD = const(9)  # type, CTB node kid (4), time (4)
_DIGEST_ENTRY = const(12)  # token ref (8), USE id prefix (4)
_DIGEST_SIG = const(64)
_DIGEST_MAX_ENTRIES = const(14)  # (MAX_PAYLOAD 244 - kid 4 - time 4 - signature 64) // _DIGEST_ENTRY
# several custody records for one next hop in one frame (bundle_frame):
# entries of origin (2) | length (1) | record. Two payments (85 B each) share
# one preamble, one header, one contention and one ack: 0.8 s on air at SF9
# instead of 2 x 0.53 s plus a second ack. Only when records queue up.
T_BUNDLE = const(0x24)
BUNDLE_ENTRY = const(3)  # origin (2) | length (1), before each record
# Types 0x23 and 0x25 are the scheduled last hop's (firmware/pen_node/lasthop.py,
# docs/mesh.md), defined there (T_GRANT, T_SBUNDLE) so that a node that does not
# schedule keeps none of it on its heap:
#   0x23 T_GRANT, a bridge's grant, broadcast: n (1) | n x (child addr (2) |
#        units (1)) | frame ids it acks (4 each); slots follow its end in order
#   0x25 T_SBUNDLE, a bundle to a scheduling parent: flags (1) | bundle entries;
#        flags bit 7 "sent in my slot, ack me in your next grant", bits 0-6 the
#        records the sender still holds for that parent after this frame
LAST_TYPE = const(0x3F)

# The tag: 24 bits. A forger without the key succeeds with probability
# 2^-24 per frame it puts on air; sending nothing but forgeries, back to back
# (the shortest, ~165 ms at SF9, ignoring the duty-cycle law), it expects one
# success after ~2^23 frames: ~16 days of continuous transmission, every
# failure counted (stats bad_mac). 3 bytes, not 4, so that a USE frame stays
# within 96 bytes on air (the P1 goal) with its compact form: 32 bits would
# make it 97 B, the same airtime at SF9 (533.5 ms) but over the goal.
TAG_LEN = const(3)
MAX_BODY = const(252)  # MAX_FRAME - TAG_LEN: the longest frame before its tag
MAX_PAYLOAD = const(244)  # MAX_BODY - HEADER_LEN
MAX_FRAG_PAYLOAD = const(242)  # MAX_BODY - HEADER_LEN - FRAG_LEN


class FrameError(ValueError):
    """A frame that cannot be parsed; .reason is a short code."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Header:
    __slots__ = ("type", "hop_limit", "hop_start", "src", "dst", "origin", "frag_index", "frag_count", "group",
                 "compact")

    def __init__(self, ftype, src, dst, origin, hop_limit=3, hop_start=None, frag_index=0, frag_count=1, group=0):
        self.type = ftype
        self.src = src
        self.dst = dst
        self.origin = origin
        self.hop_limit = hop_limit
        self.hop_start = hop_limit if hop_start is None else hop_start
        self.frag_index = frag_index
        self.frag_count = frag_count
        self.group = group
        self.compact = 0  # 1: the payload is a USE body in compact form (compact_use)


def pack(hdr, payload):
    """Header + payload as bytes; raises FrameError if it cannot be sent.
    A USE body goes in its compact form when it has one (hdr.compact says
    the payload is compact already, as parse leaves it)."""
    if hdr.type == _USE and not hdr.compact and hdr.frag_count == 1:
        small = compact_use(payload)
        if small is not None:
            hdr.compact = 1
            out, i = frame_buffer(hdr, len(small))
            hdr.compact = 0
            out[i:] = small
            return bytes(out)
    out, i = frame_buffer(hdr, len(payload))
    out[i:] = payload
    return bytes(out)


def compact_use(body):
    """A USE body (without its type byte) in compact form, 3 bytes shorter,
    or None when it has none. The canonical body is

        83 48 <token 8> 4a <product a> 4b <account b> <signature 64>

    (array of 3, bstr 8, bstr a, bstr b; ids are 1..6 bytes); the compact
    form drops what the type implies and packs both lengths in one byte:

        <token 8> <a << 4 | b> <product a> <account b> <signature 64>

    expand_use gives back the exact bytes, which the signature covers."""
    n = len(body)
    if n < 14 or body[0] != 0x83 or body[1] != 0x48 or body[10] & 0xE0 != 0x40:
        return None
    a = body[10] & 0x1F
    if not 1 <= a <= 15 or 12 + a > n or body[11 + a] & 0xE0 != 0x40:
        return None
    b = body[11 + a] & 0x1F
    if not 1 <= b <= 15 or n != 12 + a + b + 64:
        return None
    out = bytearray(n - 3)
    out[0:8] = body[2:10]
    out[8] = (a << 4) | b
    out[9:9 + a] = body[11:11 + a]
    out[9 + a:] = body[12 + a:]
    return out


def expand_use(small):
    """The canonical USE body of a compact one, or None if it is malformed."""
    n = len(small)
    if n < 9:
        return None
    a = small[8] >> 4
    b = small[8] & 15
    if not a or not b or n != 9 + a + b + 64:
        return None
    out = bytearray(n + 3)
    out[0] = 0x83
    out[1] = 0x48
    out[2:10] = small[0:8]
    out[10] = 0x40 | a
    out[11:11 + a] = small[9:9 + a]
    out[11 + a] = 0x40 | b
    out[12 + a:] = small[9 + a:]
    return out


def frame_buffer(hdr, payload_len):
    """(out, i): a bytearray for a whole frame with its header written and
    payload_len bytes from index i for the payload, so a sender can build a
    payload in place (a bundle, on a 64 KB heap) instead of in a second
    buffer. Raises FrameError as pack does."""
    if not 1 <= hdr.type <= LAST_TYPE:
        raise FrameError("bad-type")
    if not (0 <= hdr.hop_limit <= hdr.hop_start <= MAX_HOPS):
        raise FrameError("bad-hops")
    frag = hdr.frag_count > 1
    ctl = hdr.hop_limit | (hdr.hop_start << 3) | (FLAG_FRAG if frag else 0) | (FLAG_COMPACT if hdr.compact else 0)
    n = HEADER_LEN + (FRAG_LEN if frag else 0) + payload_len
    if n > MAX_BODY:
        raise FrameError("too-long")
    out = bytearray(n)
    out[0] = hdr.type
    out[1] = ctl
    out[2] = hdr.src >> 8
    out[3] = hdr.src & 0xFF
    out[4] = hdr.dst >> 8
    out[5] = hdr.dst & 0xFF
    out[6] = hdr.origin >> 8
    out[7] = hdr.origin & 0xFF
    i = HEADER_LEN
    if frag:
        if not (0 <= hdr.frag_index < hdr.frag_count <= MAX_FRAGMENTS):
            raise FrameError("bad-fragment")
        out[i] = (hdr.frag_index << 4) | (hdr.frag_count - 1)
        out[i + 1] = hdr.group & 0xFF
        i += FRAG_LEN
    return out, i


def parse(frame):
    """(Header, payload) of a received frame; raises FrameError."""
    hdr = Header(0, 0, 0, 0)
    i = read(frame, hdr)
    if type(i) is str:
        raise FrameError(i)
    return hdr, memoryview(frame)[i:]


def read(frame, hdr):
    """Fill hdr (a Header, reused from frame to frame by a node: no object
    per frame) from a received frame. Returns where the payload starts, or
    the reason the frame is refused (a str: an error is a value here, not
    an exception, since any bytes may come from the air)."""
    n = len(frame)
    if n > MAX_BODY:
        return "too-long"
    if n < HEADER_LEN:
        return "truncated"
    ftype = frame[0]
    ctl = frame[1]
    if not 1 <= ftype <= LAST_TYPE:
        return "bad-type"
    if ctl & FLAG_COMPACT and (ftype != _USE or ctl & FLAG_FRAG):
        return "bad-ctl"
    hl = ctl & 7
    hs = (ctl >> 3) & 7
    if hl > hs:
        return "bad-hops"
    hdr.type = ftype
    hdr.src = (frame[2] << 8) | frame[3]
    hdr.dst = (frame[4] << 8) | frame[5]
    hdr.origin = (frame[6] << 8) | frame[7]
    hdr.hop_limit = hl
    hdr.hop_start = hs
    hdr.frag_index = 0
    hdr.frag_count = 1
    hdr.group = 0
    hdr.compact = ctl >> 7
    i = HEADER_LEN
    if ctl & FLAG_FRAG:
        if n < HEADER_LEN + FRAG_LEN:
            return "truncated"
        f = frame[i]
        hdr.frag_index = f >> 4
        hdr.frag_count = (f & 15) + 1
        hdr.group = frame[i + 1]
        if hdr.frag_count < 2 or hdr.frag_index >= hdr.frag_count:
            return "bad-fragment"
        i += FRAG_LEN
    if i == n:
        return "empty-payload"
    return i


def frame_id(frame):
    """Hop-invariant id: hash of type, origin and everything after the
    header (fragment fields included), never of hop count or link addresses."""
    m = memoryview(frame)  # views, not copies: no per-frame garbage
    h = hashlib.sha256(m[0:1])
    h.update(m[6:8])
    h.update(m[HEADER_LEN:])
    return h.digest()[:FRAME_ID_LEN]


def relay(frame, src, dst):
    """The same frame with one hop used and new link addresses, for relaying.
    Returns None when the hop limit is spent."""
    hl = frame[1] & 7
    if hl == 0:
        return None
    out = bytearray(frame)
    out[1] = (frame[1] & 0xF8) | (hl - 1)
    out[2] = src >> 8
    out[3] = src & 0xFF
    out[4] = dst >> 8
    out[5] = dst & 0xFF
    return bytes(out)


def record_frame(record, src, dst, origin, hop_limit=3):
    """Frame for a record that fits one frame: its type byte becomes the header's."""
    return pack(Header(record[0], src, dst, origin, hop_limit), memoryview(record)[1:])


def record_of(hdr, payload):
    """The record bytes carried by an unfragmented record frame, or None
    when the frame's type is not a record type (a control frame) or its
    compact form is malformed: a frame from the air is never trusted to be
    what its caller expected."""
    if hdr.type >= T_ACK:
        return None
    if hdr.compact:
        payload = expand_use(payload)
        if payload is None:
            return None
    return bytes((hdr.type,)) + bytes(payload)


def net_key(secret):
    """The village's frame key from its network secret (provisioned to every
    node, 16 bytes or more): the HMAC-SHA256 inner and outer pads of a key
    derived for frames only (domain separated, so the same secret used
    elsewhere never yields this key)."""
    k = hashlib.sha256(b"pen/1/frame-mac\x00" + bytes(secret)).digest() + bytes(32)
    return bytes(x ^ 0x36 for x in k), bytes(x ^ 0x5C for x in k)


def _tag(key, frame, n):
    inner = hashlib.sha256(key[0])
    inner.update(memoryview(frame)[:n])
    outer = hashlib.sha256(key[1])
    outer.update(inner.digest())
    return outer.digest()[:TAG_LEN]


def seal(frame, key):
    """The frame with its tag (truncated HMAC-SHA256 under key, net_key's)."""
    return bytes(frame) + _tag(key, frame, len(frame))


def unseal(frame, key):
    """Length of the frame before its tag if the tag is right, else -1.
    Nothing in an unauthentic frame is looked at."""
    n = len(frame) - TAG_LEN
    if n < HEADER_LEN:
        return -1
    t = _tag(key, frame, n)
    ok = 0
    for i in range(TAG_LEN):
        ok |= t[i] ^ frame[n + i]
    return -1 if ok else n


def bundle_frame(hdr, entries):
    """A T_BUNDLE frame (hdr.type must be T_BUNDLE) carrying entries
    [(origin, type, body), ...], body being a record without its type byte.
    Written in place in the frame's own buffer (frame_buffer): on a 64 KB
    heap, parts, their join and a copy were allocations too many while
    records wait in custody. Raises FrameError as pack does."""
    n = 0
    for e in entries:
        n += BUNDLE_ENTRY + 1 + len(e[2])
    out, i = frame_buffer(hdr, n)
    for origin, rtype, body in entries:
        ln = len(body)
        out[i] = (origin >> 8) & 255
        out[i + 1] = origin & 255
        out[i + 2] = 1 + ln
        out[i + 3] = rtype
        out[i + 4:i + 4 + ln] = body
        i += BUNDLE_ENTRY + 1 + ln
    return out


def bundle_records(payload):
    """[(origin, record), ...] from a bundle's payload, or None when it is
    malformed (an entry running past the end, a record shorter than a type
    byte and one body byte, or of a type that is not a record's). An error
    is a value here, not an exception: the frame came from the air."""
    out = []
    i = 0
    n = len(payload)
    while i < n:
        if i + BUNDLE_ENTRY > n:
            return None
        ln = payload[i + 2]
        if ln < 2 or i + BUNDLE_ENTRY + ln > n or not 1 <= payload[i + 3] < T_ACK:
            return None
        out.append(((payload[i] << 8) | payload[i + 1], bytes(payload[i + 3:i + 3 + ln])))
        i += BUNDLE_ENTRY + ln
    return out if out else None


def ack_frame(ids, src, dst):
    """A link ack naming one or more frame ids this node has in custody.
    Acks go one hop: hop limit 0."""
    if not ids or len(ids) * FRAME_ID_LEN > MAX_PAYLOAD:
        raise FrameError("bad-ack")
    return pack(Header(T_ACK, src, dst, src, 0, 0), b"".join(ids))


def ack_ids(payload):
    """The frame ids in an ack payload; raises FrameError if malformed."""
    n = len(payload)
    if n == 0 or n % FRAME_ID_LEN:
        raise FrameError("bad-ack")
    return [bytes(payload[i:i + FRAME_ID_LEN]) for i in range(0, n, FRAME_ID_LEN)]


def fragment(record, src, dst, origin, group, hop_limit=3):
    """Frames for a record too long for one frame (publications, digests,
    votation openings with a large electorate). One frame if it fits."""
    if len(record) - 1 <= MAX_PAYLOAD:
        return [record_frame(record, src, dst, origin, hop_limit)]
    body = memoryview(record)[1:]
    count = (len(body) + MAX_FRAG_PAYLOAD - 1) // MAX_FRAG_PAYLOAD
    if count > MAX_FRAGMENTS:
        raise FrameError("too-long")
    out = []
    for i in range(count):
        hdr = Header(record[0], src, dst, origin, hop_limit, None, i, count, group)
        out.append(pack(hdr, body[i * MAX_FRAG_PAYLOAD:(i + 1) * MAX_FRAG_PAYLOAD]))
    return out


class Reassembler:
    """Collects fragments keyed by (origin, group, type). Bounded: at most
    `slots` records in progress; the oldest is dropped when a new one starts
    (an incomplete fragment set was never acknowledged, so nothing accepted is
    lost: the sender retries), and at most `budget` bytes held: fragments of
    four 16-fragment groups (an insider can seal them) were 15 KB of a 64 KB
    node's heap. The default holds a largest record (records.MAX_RECORD)."""

    def __init__(self, slots=4, budget=3200):
        self.slots = slots
        self.budget = budget
        self.held = 0
        self._parts = {}
        self._order = []

    def _drop(self, key):
        for p in self._parts.pop(key, ()):
            if p is not None:
                self.held -= len(p)
        self._order.remove(key)

    def add(self, hdr, payload):
        """Returns the whole record once every fragment is in, else None."""
        if hdr.frag_count < 2:
            return record_of(hdr, payload)
        key = (hdr.origin, hdr.group, hdr.type)
        parts = self._parts.get(key)
        if parts is None or len(parts) != hdr.frag_count:
            if key in self._order:
                self._drop(key)
            if len(self._order) >= self.slots:
                self._drop(self._order[0])
            parts = [None] * hdr.frag_count
            self._parts[key] = parts
            self._order.append(key)
        old = parts[hdr.frag_index]
        if old is not None:
            self.held -= len(old)
        while self.held + len(payload) > self.budget and self._order[0] != key:
            self._drop(self._order[0])
        if self.held + len(payload) > self.budget:
            self._drop(key)  # alone it does not fit: never reassembled here
            return None
        parts[hdr.frag_index] = bytes(payload)
        self.held += len(payload)
        for p in parts:
            if p is None:
                return None
        self._drop(key)
        return bytes((hdr.type,)) + b"".join(parts)


def digest_entries(payload):
    """The number of entries of a well-formed receipt digest carried as a
    frame's payload (the digest without its type byte, which the header
    holds), or the reason it is not one (a str: the bytes may come from the
    air). Entry i's token ref is payload[8 + 12 * i:16 + 12 * i]. The node's
    whole reading of a digest, in place; digest.py parses it."""
    n = len(payload) + 1 - _DIGEST_HEAD - _DIGEST_SIG
    if n < _DIGEST_ENTRY:
        return "truncated"
    if n > _DIGEST_MAX_ENTRIES * _DIGEST_ENTRY:
        return "too-long"
    if n % _DIGEST_ENTRY:
        return "bad-length"
    return n // _DIGEST_ENTRY
