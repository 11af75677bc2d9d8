"""The codec's fast paths against the straightforward codec they replaced.

pen_protocol.cbor dispatches on exact types and reads or writes an array's
one-byte-head leaves in the array's own loop (a CTB node encodes and decodes
CBOR for every record it ingests: pen bench ingest --phases). REFERENCE is
the codec as it was before, one isinstance chain and one call per item: for
any value both must give the same bytes or the same refusal, and for any
input the same value and end, or the same CBORError with the same message,
so every malformed or non-canonical input still fails as it did. Run on
CPython (hypothesis) and under MicroPython (its own random inputs).
"""
import random

import pytest
from hypothesis import given, settings, strategies as st

from conftest import run_micropython
from pen_protocol import cbor
from pen_protocol.cbor import CBORError

REFERENCE = r'''
def _ref_head(mt, n):
    mt <<= 5
    if n < 24:
        return bytes((mt | n,))
    if n < 0x100:
        return bytes((mt | 24, n))
    if n < 0x10000:
        return bytes((mt | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((mt | 26,)) + n.to_bytes(4, "big")
    return bytes((mt | 27,)) + n.to_bytes(8, "big")


def _ref_enc(obj, out, depth):
    if depth > 16:
        raise CBORError("nesting too deep")
    if obj is True:
        out.append(b"\xf5")
    elif obj is False:
        out.append(b"\xf4")
    elif obj is None:
        out.append(b"\xf6")
    elif isinstance(obj, int):
        if 0 <= obj <= 0xFFFFFFFFFFFFFFFF:
            out.append(_ref_head(0, obj))
        elif -0xFFFFFFFFFFFFFFFF - 1 <= obj < 0:
            out.append(_ref_head(1, -1 - obj))
        else:
            raise CBORError("integer out of 64-bit range")
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        out.append(_ref_head(2, len(obj)))
        out.append(bytes(obj))
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        out.append(_ref_head(3, len(b)))
        out.append(b)
    elif isinstance(obj, (list, tuple)):
        out.append(_ref_head(4, len(obj)))
        for x in obj:
            _ref_enc(x, out, depth + 1)
    elif isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if k is True or k is False or not isinstance(k, int):
                raise CBORError("map keys must be integers")
            items.append((ref_dumps(k), v))
        items.sort(key=lambda kv: kv[0])
        out.append(_ref_head(5, len(items)))
        for kb, v in items:
            out.append(kb)
            _ref_enc(v, out, depth + 1)
    else:
        raise CBORError("unsupported type: " + type(obj).__name__)


def ref_dumps(obj):
    out = []
    _ref_enc(obj, out, 0)
    return b"".join(out)


def _ref_arg(data, pos, ai):
    if ai < 24:
        return ai, pos
    if ai > 27:
        raise CBORError("indefinite length or reserved head")
    size = 1 << (ai - 24)
    end = pos + size
    if end > len(data):
        raise CBORError("truncated head")
    n = int.from_bytes(bytes(data[pos:end]), "big")
    if (ai == 24 and n < 24) or (ai > 24 and n < (1 << (4 << (ai - 24)))):
        raise CBORError("non-shortest integer or length")
    return n, end


def _ref_dec(data, pos, depth):
    if depth > 16:
        raise CBORError("nesting too deep")
    if pos >= len(data):
        raise CBORError("truncated")
    ib = data[pos]
    mt = ib >> 5
    ai = ib & 31
    pos += 1
    if mt == 7:
        if ai == 20:
            return False, pos
        if ai == 21:
            return True, pos
        if ai == 22:
            return None, pos
        raise CBORError("unsupported simple value or float")
    n, pos = _ref_arg(data, pos, ai)
    if mt == 0:
        return n, pos
    if mt == 1:
        return -1 - n, pos
    if mt == 2 or mt == 3:
        end = pos + n
        if end > len(data):
            raise CBORError("string longer than input")
        raw = bytes(data[pos:end])
        if mt == 2:
            return raw, end
        try:
            return str(raw, "utf-8"), end
        except Exception:
            raise CBORError("invalid UTF-8 in text string")
    if mt == 4:
        if n > len(data) - pos:
            raise CBORError("array longer than input")
        arr = []
        for _ in range(n):
            x, pos = _ref_dec(data, pos, depth + 1)
            arr.append(x)
        return arr, pos
    if mt == 5:
        if 2 * n > len(data) - pos:
            raise CBORError("map longer than input")
        m = {}
        prev = None
        for _ in range(n):
            kstart = pos
            k, pos = _ref_dec(data, pos, depth + 1)
            if k is True or k is False or not isinstance(k, int):
                raise CBORError("map keys must be integers")
            kraw = bytes(data[kstart:pos])
            if prev is not None and kraw <= prev:
                raise CBORError("map keys unsorted or duplicate")
            prev = kraw
            v, pos = _ref_dec(data, pos, depth + 1)
            m[k] = v
        return m, pos
    raise CBORError("unsupported major type (tag)")


def ref_decode_prefix(data, pos=0):
    try:
        return _ref_dec(data, pos, 0)
    except CBORError:
        raise
    except Exception as e:
        raise CBORError("malformed: " + str(e))


def outcome(fn, *a):
    """What fn(*a) gives: ('ok', result) or ('err', message); any other
    exception escapes (the codec may raise nothing but CBORError)."""
    try:
        return ("ok", fn(*a))
    except CBORError as e:
        return ("err", str(e))


def same_encoding(v):
    a, b = outcome(C.dumps, v), outcome(ref_dumps, v)
    assert a == b, (v, a, b)
    return a


def same_decoding(data, pos=0):
    a, b = outcome(C.decode_prefix, data, pos), outcome(ref_decode_prefix, data, pos)
    assert a == b, (data, pos, a, b)
    return a


def mutations(raw, rnd, n):
    """raw with one byte changed, cut short, grown or with a byte inserted:
    the malformed and non-canonical neighbours of a valid encoding."""
    out = []
    for _ in range(n):
        k = rnd.randrange(4)
        i = rnd.randrange(len(raw)) if raw else 0
        if k == 0 and raw:
            b = raw[:i] + bytes((rnd.randrange(256),)) + raw[i + 1:]
        elif k == 1:
            b = raw[:i]
        elif k == 2:
            b = raw[:i] + bytes((rnd.choice((0x18, 0x19, 0x58, 0x59, 0x98, 0x9f, 0xf5, 0xf9, 0xc1, 0x00, 0x40, 0x80,
                                             0xff)),)) + raw[i:]
        else:
            b = raw + bytes((rnd.randrange(256),))
        out.append(b)
    return out
'''

ns = {"C": cbor, "CBORError": CBORError}
exec(REFERENCE, ns)

# Shapes the fast paths take (records' bodies and state values: arrays of
# small uints, bstr 4/8/16/32/64, nested arrays) and those they hand on
# (maps, text, negatives, wide ints, bools, None), mixed.
ints = st.integers(min_value=-(2 ** 64) - 2, max_value=2 ** 64 + 1) | st.integers(0, 300)
blobs = st.binary(max_size=70) | st.sampled_from([bytes(n) for n in (4, 8, 16, 23, 24, 32, 64, 255, 256)])
leaves = ints | blobs | st.text(max_size=20) | st.booleans() | st.none()
values = st.recursive(leaves, lambda c: st.lists(c, max_size=6) | st.tuples(c, c)
                      | st.dictionaries(ints | st.booleans() | st.text(max_size=2), c, max_size=4), max_leaves=30)


@given(values)
@settings(max_examples=600, deadline=None)
def test_fast_encoder_gives_the_reference_bytes_or_refusal(v):
    kind, raw = ns["same_encoding"](v)
    if kind == "ok":
        ns["same_decoding"](raw)


@given(values, st.randoms(use_true_random=False))
@settings(max_examples=400, deadline=None)
def test_fast_decoder_agrees_on_every_mutation_of_a_valid_encoding(v, rnd):
    kind, raw = ns["same_encoding"](v)
    if kind != "ok":
        return
    for bad in ns["mutations"](raw, rnd, 12):
        ns["same_decoding"](bad)
        ns["same_decoding"](bad, 1 if bad else 0)  # a record's body starts after its type byte


@given(st.binary(max_size=80))
@settings(max_examples=2000, deadline=None)
def test_fast_decoder_agrees_on_random_bytes(data):
    ns["same_decoding"](data)


@pytest.mark.parametrize("data", [
    b"\x83\x18\x17\x00\x00",  # a leaf with a non-shortest 1-byte head inside an array
    b"\x83\x58\x17" + bytes(23) + b"\x00\x00",  # bstr of 23 with a 1-byte length: non-shortest
    b"\x82\x58",  # bstr head cut before its length
    b"\x82\x58\x20" + bytes(31),  # bstr longer than the input
    b"\x82\x44\x00\x00",  # a leaf longer than the input
    b"\x81" * 17 + b"\x00",  # a leaf one level too deep (an array at depth 16 may hold nothing)
    b"\x81" * 17 + b"\x44abcd",
    b"\x81" * 17 + b"\x80",
    b"\x81" * 16 + b"\x00",
    b"\x83\x00\x00",  # an item missing
    b"\x82\xf9\x00\x00\x00",  # a float inside an array
])
def test_fast_decoder_refuses_what_the_reference_refuses(data):
    assert ns["same_decoding"](data) == ns["outcome"](ns["ref_decode_prefix"], data)


def test_fast_encoder_refuses_deep_leaves_and_odd_types_as_before():
    deep = 1
    for _ in range(17):
        deep = [deep]
    for v in (deep, deep[0], [b"ab", 1.5], [[True, 2, b"x"], memoryview(b"mv"), bytearray(b"ba")], (1, (2, b"t")),
              {1: [2, 3]}, [{"a": 1}], [2 ** 64], [-(2 ** 64) - 1]):
        ns["same_encoding"](v)
    with pytest.raises(CBORError, match="too deep"):
        cbor.dumps(deep)


def test_fast_paths_agree_on_every_record_and_state_value_of_the_sample_economy():
    from pen.samples import economy
    from pen_protocol import ctb
    _, ordered, _ = economy()
    st_ = ctb.MemoryState()
    for r in ordered:
        ns["same_decoding"](r.raw, 1)
        ctb.apply_batch(st_, [r])  # (the batch's overlay is dropped; each record sees the base)
    for r in ordered:
        ns["same_encoding"](r.fields)
    ov, _ = ctb.apply_batch(st_, ordered)
    assert ov.kv
    for v in ov.kv.values():
        assert ns["same_encoding"](v)[0] == ("ok" if v is not None else "ok")


@pytest.mark.micropython
def test_fast_codec_equals_the_reference_under_micropython_64k():
    code = "from pen_protocol import cbor as C\nfrom pen_protocol.cbor import CBORError\nimport random\n" + REFERENCE + """
import gc
class Rnd:
    def randrange(self, a, b=None):
        return random.randrange(a, b) if b is not None else random.randrange(a)
    def choice(self, xs):
        return xs[random.randrange(len(xs))]
random.seed(7)
rnd = Rnd()
def value(d):
    k = rnd.randrange(9 if d < 4 else 5)
    if k == 0:
        return rnd.choice((0, 23, 24, 255, 256, 65535, 65536, 2 ** 32, 2 ** 64 - 1, -1, -24, -25, -(2 ** 64)))
    if k == 1:
        return bytes(rnd.choice((0, 4, 8, 16, 23, 24, 32, 64, 255, 256)))
    if k == 2:
        return rnd.choice((True, False, None, "pen", ""))
    if k == 3:
        return rnd.randrange(30)
    if k == 4:
        return b"k" * rnd.randrange(40)
    if k == 8:
        return {rnd.randrange(40) - 5: value(d + 1) for _ in range(rnd.randrange(3))}
    return [value(d + 1) for _ in range(rnd.randrange(5))]
n = 0
for i in range(300):
    gc.collect()
    v = value(0)
    kind, raw = same_encoding(v)
    if kind == "ok":
        same_decoding(raw)
        for bad in mutations(raw, rnd, 6):
            same_decoding(bad)
        n += 1
print(n > 150)
"""
    assert run_micropython(code, heap="64k").strip() == "True"


def test_mutations_cover_refusals_of_each_kind():
    # the differential tests above are only as good as the malformed inputs they meet
    rnd = random.Random(3)
    seen = set()
    raw = cbor.dumps([b"\x01" * 8, 1000, b"\x02" * 32, [1, 2, [b"abcd"]], {1: 2}, "t", -5])
    for bad in ns["mutations"](raw, rnd, 3000):
        kind, res = ns["same_decoding"](bad)
        if kind == "err":
            seen.add(res.split(":")[0])
    assert {"truncated", "truncated head", "non-shortest integer or length", "string longer than input",
            "indefinite length or reserved head", "unsupported simple value or float",
            "unsupported major type (tag)"} <= seen
