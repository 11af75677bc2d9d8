"""The link between a node and a phone or PC (USB serial, UART, BLE, Meshtastic):
framed, checksummed, sans-IO.

On the wire each frame is COBS-encoded and ends with one 0x00 byte, so a
receiver that starts mid-stream or loses bytes resynchronises at the next
zero. Before COBS a frame is

    kind (1) | seq (1) | payload (0..MAX_PAYLOAD) | CRC-16/CCITT-FALSE over kind..payload (2, big-endian)

kind 0x01..0x3F is a request from the phone/PC, the node answers with
kind | 0x40 (or ERROR) and the same seq; kind 0x80..0xBF is an event the node
sends on its own (seq counts events); ERROR (0x7F) carries a reason code byte
and a short text. Corrupt, truncated or oversized input becomes an error event
from the decoder and changes nothing. See docs/link.md.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# A payload holds one record (at most records.MAX_RECORD = 3072 bytes) plus a
# few bytes of framing; the decoder never buffers more than one encoded frame.
MAX_PAYLOAD = const(3100)
MAX_ENCODED = const(3140)  # COBS adds 1 byte per 254, plus the 4 bytes of kind, seq, CRC
_FIRST_BUF = const(64)  # a decoder's buffer to start with (it doubles up to MAX_ENCODED)

# requests (phone/PC -> node)
HELLO = const(0x01)  # -> node address, role, firmware version (CBOR)
SUBMIT = const(0x02)  # record -> OK once it is in the node's custody journal
SPENT = const(0x03)  # token ref (8) -> CBOR [spent: bool, kind: 0 unknown / 1 used / 2 accounted]
STATUS = const(0x04)  # -> CBOR map of counters
DELIVERED_ACK = const(0x05)  # record id (16): the PC stored a delivered record; the node may drop it
DOWNLINK = const(0x06)  # record -> the node broadcasts it into the mesh (bridge only)
PENDING = const(0x07)  # -> the node re-sends DELIVERED events for everything not yet acked
# pairing and sealed sessions (pen_protocol.linkauth; a node with pairing
# serves only HELLO and these in the clear)
PAIR_START = const(0x08)  # phone key, nonce, CPace share -> nonce, share, node's confirmation
PAIR_FINISH = const(0x09)  # phone kid, phone's confirmation -> empty: paired
OPEN = const(0x0A)  # phone kid, nonce -> nonce, proof: a session is open
SEALED = const(0x0B)  # ctr, encrypted encoded frames, tag; the node's are kind 0x4B, seq 0
RESPONSE = const(0x40)  # added to a request kind in its answer
ERROR = const(0x7F)  # payload: reason code (1) | text
# events (node -> phone/PC)
EV_DELIVERED = const(0x81)  # (bridge node) a record that reached this bridge: record bytes
EV_RECEIPT = const(0x82)  # (origin node) an ACCOUNTED receipt for a payment it sent: record bytes
EV_LOG = const(0x83)  # text

# error reason codes
E_CRC = const(1)
E_TRUNCATED = const(2)
E_OVERSIZED = const(3)
E_COBS = const(4)
E_UNKNOWN_KIND = const(5)
E_BAD_PAYLOAD = const(6)
E_REFUSED = const(7)  # e.g. custody journal full
E_NOT_BRIDGE = const(8)
E_UNPAIRED = const(9)  # pair, then open a session: this node serves only sealed frames
E_AUTH = const(10)  # a sealed frame whose tag does not verify (tampered, forged, old session)
E_REPLAY = const(11)  # a sealed frame whose counter was seen before
E_LOCKED = const(12)  # no pairing code open, or its attempts are used up
E_PAIR = const(13)  # the pairing confirmation did not match (wrong code)
REASONS = {E_CRC: "crc", E_TRUNCATED: "truncated", E_OVERSIZED: "oversized", E_COBS: "cobs",
           E_UNKNOWN_KIND: "unknown-kind", E_BAD_PAYLOAD: "bad-payload", E_REFUSED: "refused",
           E_NOT_BRIDGE: "not-bridge", E_UNPAIRED: "unpaired", E_AUTH: "auth", E_REPLAY: "replay",
           E_LOCKED: "locked", E_PAIR: "pair-failed"}


# CRC-16/CCITT-FALSE four bits at a time: a 16-entry table (a constant
# tuple, no heap on a frozen build) and two lookups a byte instead of eight
# shifts and branches; a 256-entry table would cost 512 bytes of a node's
# heap for another 2x
_CRC_NIBBLE = (0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50A5, 0x60C6, 0x70E7,
               0x8108, 0x9129, 0xA14A, 0xB16B, 0xC18C, 0xD1AD, 0xE1CE, 0xF1EF)


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): check value 0x29B1."""
    t = _CRC_NIBBLE
    for b in data:
        crc = ((crc << 4) & 0xFFFF) ^ t[(crc >> 12) ^ (b >> 4)]
        crc = ((crc << 4) & 0xFFFF) ^ t[(crc >> 12) ^ (b & 15)]
    return crc


def cobs_encode(data):
    """Each run of non-zero bytes (cut at 254) behind its length + 1: whole
    runs are copied by slices, not byte by byte."""
    data = bytes(data)
    out = bytearray()
    n = len(data)
    i = 0
    while True:
        z = data.find(b"\x00", i)
        end = n if z < 0 else z
        while end - i >= 0xFE:  # a full block: no zero implied after it
            out.append(0xFF)
            out += data[i:i + 0xFE]
            i += 0xFE
        out.append(end - i + 1)
        out += data[i:end]
        if z < 0:
            return bytes(out)
        i = z + 1


def _unstuff(data):
    """COBS decoding into one buffer of the input's size (the output is never
    longer): -> (bytearray, length). Raises ValueError on a malformed block."""
    n = len(data)
    out = bytearray(n)  # zeros: each block's implied zero is already in place
    i = j = 0
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or end > n:
            raise ValueError("cobs")
        m = code - 1
        out[j:j + m] = data[i + 1:end]
        j += m
        i = end
        if code != 0xFF and i < n:
            j += 1
    return out, j


def cobs_decode(data):
    """Raises ValueError on a malformed block."""
    out, j = _unstuff(data)
    return bytes(memoryview(out)[:j])


class Frame:
    __slots__ = ("kind", "seq", "payload")

    def __init__(self, kind, seq, payload):
        self.kind = kind
        self.seq = seq
        self.payload = payload

    def __repr__(self):
        return "Frame(0x%02x seq=%d %d B)" % (self.kind, self.seq, len(self.payload))


class LinkError:
    """What the decoder yields for bad input: a reason code, never an exception."""
    __slots__ = ("reason",)

    def __init__(self, reason):
        self.reason = reason

    def __repr__(self):
        return "LinkError(%s)" % REASONS.get(self.reason, self.reason)


def encode(kind, seq, payload=b""):
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload too long")
    body = bytes((kind, seq & 0xFF)) + bytes(payload)
    c = crc16(body)
    return cobs_encode(body + bytes((c >> 8, c & 0xFF))) + b"\x00"


def pieces(data, n):
    """Cut encoded frames into pieces of at most n bytes, each ending at a
    frame's end where one fits (a carrier that may reorder pieces then never
    reorders the inside of a frame); a frame longer than n is cut anyway and
    the far end's decoder rejoins it."""
    out = []
    start = 0
    while start < len(data):
        end = min(start + n, len(data))
        if end < len(data):
            z = data.rfind(b"\x00", start, end)
            if z >= start:
                end = z + 1
        out.append(data[start:end])
        start = end
    return out


def error(seq, reason, text=""):
    return encode(ERROR, seq, bytes((reason,)) + text.encode()[:60])


class Decoder:
    """Feed bytes as they arrive; get Frames and LinkErrors. Buffers at most
    one encoded frame: bytes beyond MAX_ENCODED before a delimiter are
    dropped up to the next zero and reported once as oversized.

    The frame being received goes into one buffer that doubles when it must
    (64 bytes up to MAX_ENCODED) and is kept for the next frame: a 3 KB
    frame arriving a few bytes at a time makes a handful of allocations, not
    one per chunk, so it does not fragment a 64 KB heap."""

    def __init__(self):
        self._buf = bytearray(_FIRST_BUF)
        self._n = 0  # bytes of the current frame in _buf
        self._overflow = False

    def feed(self, data):
        # by runs between delimiters (find), not byte by byte: the same
        # frames and errors in the same order, a fraction of the work
        out = []
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)  # find() needs bytes; a board's UART read already is
        mv = memoryview(data)
        n = len(data)
        i = 0
        while i < n:
            z = data.find(b"\x00", i)
            end = n if z < 0 else z
            if end > i and not self._overflow:
                m = self._n + end - i
                if m > MAX_ENCODED:
                    self._overflow = True
                    self._n = 0
                    out.append(LinkError(E_OVERSIZED))
                else:
                    if m > len(self._buf):
                        cap = len(self._buf)
                        while cap < m:
                            cap *= 2
                        grown = bytearray(min(cap, MAX_ENCODED))
                        grown[:self._n] = self._buf[:self._n]
                        self._buf = grown
                    memoryview(self._buf)[self._n:m] = mv[i:end]
                    self._n = m
            if z < 0:
                break
            if self._overflow:
                self._overflow = False
            elif self._n:
                out.append(self._frame(memoryview(self._buf)[:self._n]))
                self._n = 0
            i = z + 1
        return out

    def _frame(self, enc):
        # two allocations a frame (the unstuffed bytes, the payload), not six
        try:
            raw, n = _unstuff(enc)
        except ValueError:
            return LinkError(E_COBS)
        if n < 4:
            return LinkError(E_TRUNCATED)
        mv = memoryview(raw)
        if crc16(mv[:n - 2]) != (raw[n - 2] << 8) | raw[n - 1]:
            return LinkError(E_CRC)
        return Frame(raw[0], raw[1], bytes(mv[2:n - 2]))
