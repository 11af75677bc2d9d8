"""pen.fastparse.parse against pen_protocol.records.parse: the same Record
(every slot) or the same RecordError (reason and detail), for the golden
vectors, the bench's workload and every one-byte change, deletion and
insertion of payments built at each width of their uints and product ids."""
import json
import random
from pathlib import Path

import pytest

from pen import fastparse
from pen_protocol import cbor, ids, records as R

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
SIG = bytes(range(64))
REF = bytes.fromhex("b622d06400000007")
RID = bytes(range(16))
PK = bytes(range(32, 64))
KID = b"\x01\x02\x03\x04"
UINTS = (0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 64 - 1)
PRODUCTS = ("12", "123", "1234", "43211503", "432115031", "999999999999")


def outcome(fn, raw):
    try:
        rec = fn(raw)
    except R.RecordError as e:
        return ("refused", e.reason, e.detail)
    assert isinstance(rec, R.Record)
    return ("record", rec.signed_message()) + tuple(getattr(rec, s) for s in R.Record.__slots__)


def same(raw):
    want = outcome(R.parse, raw)
    assert outcome(fastparse.parse, raw) == want, raw.hex()
    return want


def payments():
    out = []
    for v in UINTS:
        out.append(R.encode(R.ISSUE, [REF, v, REF, R.NORMAL], lambda m: SIG).raw)
        out.append(R.encode(R.ACCOUNTED, [REF, RID, KID, v], lambda m: SIG).raw)
    out.append(R.encode(R.ISSUE, [REF, 5, REF, R.CHANGE], lambda m: SIG).raw)
    out.append(R.encode(R.SET_USER, [REF, PK], lambda m: SIG).raw)
    for p in PRODUCTS:
        for a in ("77", "7777777"):
            out.append(R.encode(R.USE, [REF, ids.pack(p), ids.pack(a)], lambda m: SIG).raw)
    return out


def test_payments_of_every_width_parse_alike():
    for raw in payments():
        assert same(raw)[0] == "record"


def test_golden_vectors_parse_alike():
    cases = json.loads((VECTORS / "records.json").read_text())
    kinds = {same(bytes.fromhex(c["hex"]))[0] for c in cases}
    assert kinds == {"record", "refused"}


def test_workload_parses_alike():
    from pen.ingest_bench import workload
    base, recs = workload(60)
    for r in base + recs:
        assert same(r.raw)[0] == "record"


def mutations(raw):
    for i in range(len(raw)):
        for b in {0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x40, 0x41, 0x47, 0x48, 0x49, 0x58, 0x5f,
                  0x80, 0x83, 0x84, 0x9f, 0xf5, 0xf6, 0xff, raw[i] ^ 1, raw[i] ^ 0x10, (raw[i] + 1) & 255}:
            yield raw[:i] + bytes((b,)) + raw[i + 1:]
        yield raw[:i] + raw[i + 1:]
        yield raw[:i] + b"\x00" + raw[i:]
        yield raw[:i]
    yield raw + b"\x00"


def test_every_one_byte_change_is_answered_alike():
    seen = set()
    for raw in payments():
        for bad in mutations(raw):
            seen.add(same(bad)[:2])
    # the mutations reach the refusals the payments can meet, and some still parse
    assert {("refused", r) for r in ("unknown-type", "malformed", "not-array", "field-count", "bad-field",
                                     "bad-length", "empty")} <= seen
    assert ("record",) in {s[:1] for s in seen}


def test_random_payment_shaped_bytes_are_answered_alike():
    rnd = random.Random(14)
    heads = [bytes((t, n)) for t in (R.ISSUE, R.SET_USER, R.USE, R.ACCOUNTED) for n in (0x82, 0x83, 0x84)]
    for _ in range(3000):
        raw = rnd.choice(heads) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 120)))
        same(raw)


def test_non_canonical_uints_are_refused_as_the_decoder_does():
    good = R.encode(R.ACCOUNTED, [REF, RID, KID, 5], lambda m: SIG).raw
    head = good[:-65]  # up to the time's byte
    for wide in (b"\x18\x05", b"\x19\x00\x05", b"\x1a\x00\x00\x00\x05", b"\x1b" + bytes(7) + b"\x05"):
        assert same(head + wide + SIG)[:2] == ("refused", "malformed")


@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_any_bytes_like_input_gives_bytes(wrap):
    raw = payments()[0]
    rec = fastparse.parse(wrap(raw))
    assert type(rec.raw) is bytes and rec.raw == raw and type(rec.body) is bytes
    assert outcome(fastparse.parse, wrap(raw)) == outcome(R.parse, raw)


# -- the state values' encoder --------------------------------------------------------

def encoded(fn, v):
    try:
        return ("bytes", fn(v))
    except cbor.CBORError as e:
        return ("refused", str(e))


def same_bytes(v):
    want = encoded(cbor.dumps, v)
    assert encoded(fastparse.dumps, v) == want, repr(v)[:200]
    return want


EDGES = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 64 - 1, 2 ** 64, -1, -24, -25, -2 ** 64,
         -2 ** 64 - 1, True, False, None, b"", b"x" * 23, b"x" * 24, b"x" * 255, b"x" * 256, "", "text", {}, {1: 2},
         {True: 1}, 1.5, (), (1, 2), bytearray(b"ab"), memoryview(b"cd"), [], [[]], [None, True, False]]


def test_every_edge_value_encodes_alike():
    for v in EDGES:
        same_bytes(v)
        same_bytes([v])
        same_bytes([[b"k", v], v, [v, [v]]])


def test_long_and_deep_lists_encode_alike():
    for n in (23, 24, 255, 256, 300):
        assert same_bytes([1] * n)[0] == "bytes"
    v = 5
    for depth in range(1, 40):  # past the fast encoder's depth and past cbor.MAX_DEPTH
        v = [v, b"ab"]
        same_bytes(v)


def test_random_state_shaped_values_encode_alike():
    rnd = random.Random(3)
    leaves = [None, True, 0, 7, 24, 300, 70000, 2 ** 40, 2 ** 64 - 1, 2 ** 64, -3, b"", b"\x00" * 4, b"\x01" * 16,
              b"\x02" * 32, b"\x03" * 255, b"\x04" * 256, "s", {2: b"x"}]

    def tree(depth):
        if depth > 5 or rnd.random() < 0.4:
            return rnd.choice(leaves)
        return [tree(depth + 1) for _ in range(rnd.randrange(0, 9))]
    for _ in range(3000):
        same_bytes(tree(0))


def test_the_workloads_state_values_encode_alike():
    from pen.ingest_bench import batch_rows, workload
    base, recs = workload(60)
    rows = batch_rows(base, recs, 100)
    values = [cbor.loads(v) for r in rows for _, v in r[1]]
    assert len(values) > 100
    for v in values:
        assert same_bytes(v)[0] == "bytes"
