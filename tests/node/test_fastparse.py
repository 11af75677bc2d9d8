"""pen.fastparse.parse against pen_protocol.records.parse: the same Record
(every slot) or the same RecordError (reason and detail), for the golden
vectors, the bench's workload and every one-byte change, deletion and
insertion of payments built at each width of their uints and product ids."""
import json
import random
from pathlib import Path

import pytest

from pen import fastparse
from pen_protocol import ids, records as R

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
