"""Deterministic CBOR (RFC 8949 section 4.2.1), the subset Pen needs.

Supported: unsigned and negative integers to 64 bits, byte strings, text
strings, arrays, maps with integer keys, true, false, null.

Encoding is canonical: shortest heads, definite lengths, map keys sorted by
their encoded bytes. Decoding accepts exactly that form and nothing else, so
every value has one encoding and signatures can be checked over the bytes as
received. Any problem with the input raises CBORError (a ValueError) and
nothing else, for any byte string.
"""

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

# Nesting bound: Pen's records nest at most 4 deep; 16 leaves room for
# publications while keeping recursion far from the MicroPython stack limit.
MAX_DEPTH = const(16)
_U64 = const(0xFFFFFFFFFFFFFFFF)

_MT_UINT = const(0)
_MT_NINT = const(1)
_MT_BYTES = const(2)
_MT_TEXT = const(3)
_MT_ARRAY = const(4)
_MT_MAP = const(5)
_MT_SIMPLE = const(7)


class CBORError(ValueError):
    """The one error the codec raises: bad input or an unsupported value."""


def _head(out, mt, n):
    """Append the head of major type mt (already shifted left by 5) with
    argument n to the bytearray out, in its shortest form."""
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(mt | 25)
        out += n.to_bytes(2, "big")
    elif n < 0x100000000:
        out.append(mt | 26)
        out += n.to_bytes(4, "big")
    else:
        out.append(mt | 27)
        out += n.to_bytes(8, "big")


# The hot path (a CTB node encodes ~1 state value and decodes ~1 record body
# per record it ingests) dispatches on the exact type first: int, bytes and
# list cover Pen's records and state values, and within an array the leaves
# that fit a one-byte head are written or read in the array's own loop, not
# by a call each. Everything else takes the general path below, whose checks
# are those the fast paths repeat; tests/protocol/test_cbor_reference.py holds
# both to the straightforward codec they replaced, value for value and error
# for error.

def _enc(obj, out, depth):
    if depth > MAX_DEPTH:
        raise CBORError("nesting too deep")
    t = type(obj)
    if t is int:  # not bool: type(True) is bool, on both runtimes
        if 0 <= obj <= _U64:
            _head(out, 0x00, obj)
        elif -_U64 - 1 <= obj < 0:
            _head(out, 0x20, -1 - obj)
        else:
            raise CBORError("integer out of 64-bit range")
    elif t is bytes:
        _head(out, 0x40, len(obj))
        out += obj
    elif t is list or t is tuple:
        _head(out, 0x80, len(obj))
        if depth >= MAX_DEPTH and obj:
            raise CBORError("nesting too deep")  # as the first item's own check would
        for x in obj:
            tx = type(x)
            if tx is int and 0 <= x < 24:
                out.append(x)
            elif tx is bytes:
                _head(out, 0x40, len(x))
                out += x
            else:
                _enc(x, out, depth + 1)
    # the rest: bool, None, text, maps, and subclasses or views of the types above
    elif obj is True:
        out.append(0xF5)
    elif obj is False:
        out.append(0xF4)
    elif obj is None:
        out.append(0xF6)
    elif isinstance(obj, int):  # a subclass of int
        _enc(int(obj), out, depth)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _enc(bytes(obj), out, depth)
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        _head(out, 0x60, len(b))
        out += b
    elif isinstance(obj, (list, tuple)):
        _enc(list(obj), out, depth)
    elif isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if k is True or k is False or not isinstance(k, int):
                raise CBORError("map keys must be integers")
            items.append((dumps(k), v))
        items.sort(key=lambda kv: kv[0])
        _head(out, 0xA0, len(items))
        for kb, v in items:
            out += kb
            _enc(v, out, depth + 1)
    else:
        raise CBORError("unsupported type: " + type(obj).__name__)


def dumps(obj):
    """Encode obj canonically; raises CBORError for what Pen does not support."""
    out = bytearray()
    _enc(obj, out, 0)
    return bytes(out)


def _arg(data, pos, ai):
    """Read a head argument; returns (value, new position)."""
    if ai < 24:
        return ai, pos
    if ai > 27:
        raise CBORError("indefinite length or reserved head")
    size = 1 << (ai - 24)
    end = pos + size
    if end > len(data):
        raise CBORError("truncated head")
    n = int.from_bytes(bytes(data[pos:end]), "big")
    # shortest form: each wider head must be needed
    if (ai == 24 and n < 24) or (ai > 24 and n < (1 << (4 << (ai - 24)))):
        raise CBORError("non-shortest integer or length")
    return n, end


def _dec(data, pos, depth):
    if depth > MAX_DEPTH:
        raise CBORError("nesting too deep")
    size = len(data)
    if pos >= size:
        raise CBORError("truncated")
    ib = data[pos]
    mt = ib >> 5
    ai = ib & 31
    pos += 1
    if mt == _MT_SIMPLE:
        if ai == 20:
            return False, pos
        if ai == 21:
            return True, pos
        if ai == 22:
            return None, pos
        raise CBORError("unsupported simple value or float")
    if ai < 24:
        n = ai
    else:
        n, pos = _arg(data, pos, ai)
    if mt == _MT_UINT:
        return n, pos
    if mt == _MT_NINT:
        return -1 - n, pos
    if mt == _MT_BYTES or mt == _MT_TEXT:
        end = pos + n
        if end > size:
            raise CBORError("string longer than input")
        raw = bytes(data[pos:end])
        if mt == _MT_BYTES:
            return raw, end
        try:
            return str(raw, "utf-8"), end
        except Exception:
            raise CBORError("invalid UTF-8 in text string")
    if mt == _MT_ARRAY:
        # every item takes at least one byte: a count beyond the input is a lie
        if n > size - pos:
            raise CBORError("array longer than input")
        if depth >= MAX_DEPTH and n:
            raise CBORError("nesting too deep")  # as the first item's own check would
        arr = []
        for _ in range(n):
            ib = data[pos] if pos < size else 0xFF  # (0xFF: past the end, _dec says "truncated")
            if ib < 24:  # uint 0..23
                arr.append(ib)
                pos += 1
            elif 0x40 <= ib < 0x58 and pos + 1 + ib - 0x40 <= size:  # bytes of 0..23, all there
                end = pos + 1 + ib - 0x40
                arr.append(bytes(data[pos + 1:end]))
                pos = end
            else:
                x, pos = _dec(data, pos, depth + 1)
                arr.append(x)
        return arr, pos
    if mt == _MT_MAP:
        if 2 * n > size - pos:
            raise CBORError("map longer than input")
        m = {}
        prev = None
        for _ in range(n):
            kstart = pos
            k, pos = _dec(data, pos, depth + 1)
            if k is True or k is False or not isinstance(k, int):
                raise CBORError("map keys must be integers")
            kraw = bytes(data[kstart:pos])
            if prev is not None and kraw <= prev:
                raise CBORError("map keys unsorted or duplicate")
            prev = kraw
            v, pos = _dec(data, pos, depth + 1)
            m[k] = v
        return m, pos
    raise CBORError("unsupported major type (tag)")


def decode_prefix(data, pos=0):
    """Decode one item starting at pos; returns (obj, end). For self-delimiting
    records followed by a signature."""
    try:
        return _dec(data, pos, 0)
    except CBORError:
        raise
    except Exception as e:  # defensive: no other exception may escape
        raise CBORError("malformed: " + str(e))


def loads(data):
    """Decode exactly one canonical item; trailing bytes are an error."""
    obj, end = decode_prefix(data, 0)
    if end != len(data):
        raise CBORError("trailing bytes")
    return obj
