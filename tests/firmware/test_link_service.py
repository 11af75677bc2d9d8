"""The node's side of the link under corrupt, truncated and oversized input:
an error frame with the exact reason, and nothing changed in the node."""
import fwpath  # noqa: F401
import pytest

from pen_protocol import link as L
from pen_protocol import cbor
from pen_protocol.airtime import PRESETS
from pen_protocol.identity import record_id
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from pen_node.service import LinkService
from medium_node import XorShift
from meshkit import use_record

SF9 = PRESETS["eu868-sf9"]


def service(bridge=False):
    st = MemStorage(8192)
    return LinkService(MeshNode(2, SF9, Journal(st), XorShift(1), is_bridge=bridge)), st


def answers(data):
    return L.Decoder().feed(data)


def snapshot(svc, st):
    n = svc.node
    return bytes(st.buf), sorted(n.pending), len(n.spent), n.stats["refused"]


def error_reason(frame):
    assert frame.kind == L.ERROR
    return frame.payload[0]


GOOD = L.encode(L.SUBMIT, 7, use_record(1))


@pytest.mark.parametrize("wire,reason", [
    (GOOD[:5] + bytes([GOOD[5] ^ 0x40]) + GOOD[6:], L.E_CRC),  # one flipped bit
    (bytes([0x03, 0x02, 0x07, 0x00]), L.E_TRUNCATED),  # kind, seq and nothing else
    (bytes([0x09, 0x02, 0x07, 0x00]), L.E_COBS),  # block claims 8 bytes, has 2
    (b"\x01" * (L.MAX_ENCODED + 10) + b"\x00", L.E_OVERSIZED),
])
def test_bad_frame_gets_an_error_with_its_reason_and_changes_nothing(wire, reason):
    svc, st = service()
    before = snapshot(svc, st)
    out = answers(svc.feed(wire, 1000))
    assert [error_reason(f) for f in out] == [reason]
    assert snapshot(svc, st) == before


def test_truncated_submit_then_a_good_one_resynchronises_at_the_zero():
    svc, st = service()
    out = answers(svc.feed(GOOD[:40] + b"\x00" + GOOD, 1000))
    assert error_reason(out[0]) in (L.E_CRC, L.E_COBS)
    assert out[1].kind == L.SUBMIT | L.RESPONSE and out[1].seq == 7 and len(out[1].payload) == 16
    assert len(svc.node.pending) == 1


def test_submit_byte_by_byte_is_the_same_as_whole():
    svc, st = service()
    out = []
    for b in GOOD:
        out += answers(svc.feed(bytes([b]), 1000))
    assert [f.kind for f in out] == [L.SUBMIT | L.RESPONSE]


@pytest.mark.parametrize("kind,payload,reason", [
    (L.SPENT, b"\x01" * 7, L.E_BAD_PAYLOAD),
    (L.SUBMIT, b"\x0a\x80", L.E_BAD_PAYLOAD),
    (L.SUBMIT, bytes([11]) + bytes(90), L.E_REFUSED),  # a receipt is not an uplink record
    (L.DOWNLINK, use_record(1), L.E_NOT_BRIDGE),
    (L.DELIVERED_ACK, bytes(16), L.E_NOT_BRIDGE),
    (0x3E, b"", L.E_UNKNOWN_KIND),
])
def test_bad_request_gets_its_reason_and_changes_nothing(kind, payload, reason):
    svc, st = service()
    before = snapshot(svc, st)[:3]
    out = answers(svc.feed(L.encode(kind, 9, payload), 1000))
    assert [(f.seq, error_reason(f)) for f in out] == [(9, reason)]
    assert snapshot(svc, st)[:3] == before


def test_spent_answers_from_the_village_set():
    svc, st = service()
    rec = use_record(5)
    svc.feed(L.encode(L.SUBMIT, 1, rec), 1000)
    out = answers(svc.feed(L.encode(L.SPENT, 2, rec[3:11]) + L.encode(L.SPENT, 3, bytes(8)), 1000))
    assert cbor.loads(out[0].payload) == [True, 1, False]
    assert cbor.loads(out[1].payload) == [False, 0, False]


def test_bridge_delivers_an_event_and_drops_it_only_on_the_pcs_ack():
    svc, st = service(bridge=True)
    from pen_protocol import frame as F
    rec = use_record(9)
    svc.node.on_frame(F.record_frame(rec, 3, 2, 3), -90, 20, 1000)
    ev = answers(svc.poll(1000))
    assert [(f.kind, f.payload) for f in ev] == [(L.EV_DELIVERED, rec)]
    rid = record_id(rec)
    assert rid in svc.node.journal.live
    out = answers(svc.feed(L.encode(L.DELIVERED_ACK, 4, rid) + L.encode(L.DELIVERED_ACK, 5, rid), 2000))
    assert [f.payload for f in out] == [b"\x01", b"\x00"]
    assert rid not in svc.node.journal.live
