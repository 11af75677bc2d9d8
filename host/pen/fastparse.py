"""Record parsing for a CTB node's hot path: the payments (ISSUE, SET_USER,
USE, ACCOUNTED) recognised whole by one regular expression each, everything
else by pen_protocol.records.parse.

Host only: the node on a board keeps records.parse alone (its 64 KB heap
tests bound the protocol's modules); here a payment costs ~1 us to parse
instead of ~3.5 (pen bench ingest --phases).

Why it gives exactly what records.parse gives: each pattern matches only the
canonical CBOR of a well-formed record of its type (an array head of the
schema's length; every byte string with its one exact head; every uint in
its shortest form; a product id or account only as valid packed BCD, the
bytes ids.is_valid accepts; an enum within its bound; then exactly the 64
signature bytes and nothing after). A record that matches is one
records.parse accepts, and its fields are those the decoder yields; a record
that does not match goes to records.parse, which accepts it or raises its
own RecordError. tests/node/test_fastparse.py holds the two to the same
answers, Record for Record and refusal for refusal, over the golden vectors
and mutations of every byte.
"""
import hashlib
import re

from pen_protocol import cbor, records as R, sign
from pen_protocol.identity import ID_LEN

_BCD = b"".join(bytes((h << 4 | l,)) for h in range(10) for l in range(10))  # both nibbles digits
_PAD = b"".join(bytes((h << 4 | 15,)) for h in range(10))  # a last byte may end in the pad nibble


def _cls(bs):
    return b"[" + b"".join(b"\\x%02x" % b for b in bs) + b"]"


_V = _cls(_BCD)
_L = _cls(_BCD + _PAD)
# packed BCD of 1..6 bytes (ids.MAX_BYTES) behind its CBOR head 0x41..0x46;
# one byte must be two digits (ids.is_valid: a lone pad is one digit)
_P = b"(\\x41" + _V + b"|" + b"|".join(
    b"\\x%02x" % (0x40 + n) + _V + b"{%d}" % (n - 1) + _L for n in range(2, 7)) + b")"
# a uint in its shortest form (cbor._arg): 0..23 in the head, then 1, 2, 4, 8
# bytes each needed
_U = (b"([\\x00-\\x17]|\\x18[\\x18-\\xff]|\\x19[\\x01-\\xff].|\\x1a(?!\\x00\\x00).{4}"
      b"|\\x1b(?!\\x00\\x00\\x00\\x00).{8})")
_REF = b"\\x48(.{8})"
_SIG = b"(.{64})\\Z"

_PATTERNS = {
    R.ISSUE: b"\\x84" + _REF + _U + _REF + b"([\\x00\\x01])",  # kind: NORMAL or CHANGE
    R.SET_USER: b"\\x82" + _REF + b"\\x58\\x20(.{32})",
    R.USE: b"\\x83" + _REF + _P + _P,
    R.ACCOUNTED: b"\\x84" + _REF + b"\\x50(.{16})\\x44(.{4})" + _U,
}
_MATCH = {t: re.compile(p + _SIG, re.DOTALL).match for t, p in _PATTERNS.items()}


def _uint(g):
    return g[0] if len(g) == 1 else int.from_bytes(g[1:], "big")


# a match's groups -> the record's fields (a product or account group keeps
# its head byte, a uint group is decoded, an enum is its one byte)
_FIELDS = {
    R.ISSUE: lambda g: [g[0], _uint(g[1]), g[2], g[3][0]],
    R.SET_USER: lambda g: [g[0], g[1]],
    R.USE: lambda g: [g[0], g[1][1:], g[2][1:]],
    R.ACCOUNTED: lambda g: [g[0], g[1], g[2], _uint(g[3])],
}
for _t, _p in _PATTERNS.items():
    # the patterns follow the schema: one group a field
    assert len(R.SCHEMA[_t]) == re.compile(_p, re.DOTALL).groups
del _t, _p


class Payment(R.Record):
    """A Record parsed here: the same slots; its signed message is built
    from the type's domain prefix computed once (records.Record makes it
    again on each call: the validator asks once a record, ~0.25 us)."""

    __slots__ = ()

    def signed_message(self):
        return _DOMAIN[self.type] + self.body


_DOMAIN = {t: sign.domain(R.NAMES[t].encode()) for t in _PATTERNS}
_new = Payment.__new__
_sha256 = hashlib.sha256


def parse(raw):
    """records.parse(raw), faster for the payments; the same Record or the
    same RecordError."""
    if type(raw) is not bytes:
        raw = bytes(raw)
    match = _MATCH.get(raw[0]) if raw else None
    m = match(raw, 1) if match is not None else None
    if m is None:
        return R.parse(raw)
    rtype = raw[0]
    groups = m.groups()
    end = len(raw) - 64
    rec = _new(Payment)
    rec.raw = raw
    rec.type = rtype
    rec.body = raw[1:end]
    rec.fields = _FIELDS[rtype](groups)
    rec.sig = groups[-1]
    rec.id = _sha256(raw[:end]).digest()[:ID_LEN]
    rec.token_ref = groups[0]
    return rec


# -- state values -------------------------------------------------------------------

_UINT1 = [bytes((i,)) for i in range(24)] + [b"\x18" + bytes((i,)) for i in range(24, 256)]
_BYTES = [bytes((0x40 + n,)) for n in range(24)] + [b"\x58" + bytes((n,)) for n in range(24, 256)]
_ARRAY = [bytes((0x80 + n,)) for n in range(24)] + [b"\x98" + bytes((n,)) for n in range(24, 256)]
_DEPTH = 4  # state values nest 3 deep (a token's uses); deeper goes to cbor.dumps


class _General(Exception):
    """A value the fast encoder leaves to cbor.dumps."""


def _uint_bytes(v):
    if v < 256:
        return _UINT1[v]
    if v < 0x10000:
        return b"\x19" + v.to_bytes(2, "big")
    if v < 0x100000000:
        return b"\x1a" + v.to_bytes(4, "big")
    if v < 0x10000000000000000:
        return b"\x1b" + v.to_bytes(8, "big")
    raise _General


def _items(v, out, depth):
    if depth > _DEPTH or len(v) > 255:
        raise _General
    out.append(_ARRAY[len(v)])
    for x in v:
        t = type(x)
        if t is bytes and len(x) < 256:
            out.append(_BYTES[len(x)])
            out.append(x)
        elif t is int and x >= 0:  # not bool: its own type
            out.append(_uint_bytes(x))
        elif x is None:
            out.append(b"\xf6")
        elif t is list:
            _items(x, out, depth + 1)
        else:
            raise _General


def dumps(v):
    """cbor.dumps(v), faster for what a payment's state values are made of
    (lists of byte strings under 256 bytes, uints and None, a few deep: a
    token, an account's credits), whose canonical CBOR is one head a leaf;
    anything else (maps, text, bools, longer strings or lists, deeper
    nesting) goes to cbor.dumps, which also says what it refuses."""
    try:
        if type(v) is int and v >= 0:
            return _uint_bytes(v)
        if type(v) is list:
            out = []
            _items(v, out, 1)
            return b"".join(out)
    except _General:
        pass
    return cbor.dumps(v)
