"""One conformance suite, every transport (in-memory, pty, TCP, BLE over
bumble's GATT, Meshtastic over the stream API): the same cases for framing,
loss, reorder, corruption and a disconnect mid-frame. Faults are applied to
whole link frames at the far end (pen.transport.testing.FrameFaults), so
each case means the same on every transport; the client is StoreClient's
request loop (a request not answered within resend_s goes again with a new
seq), the far end the firmware's LinkService."""
import pytest

import rigs
from pen.bridge.serial import LinkClient
from pen.storeclient import Outbox, StoreClient
from pen_protocol import cbor, link as L
from meshkit import use_record

REF = use_record(1)[3:11]


@pytest.fixture(params=rigs.TRANSPORTS)
def rig(request, tmp_path):
    r = rigs.make(request.param)
    r.sc = StoreClient(r.port, Outbox(tmp_path / "o.sqlite"), [], clock=r.clock, resend_s=r.resend_s)
    yield r
    r.close()


def collect(rig, client, seqs, timeout_s=10.0):
    """Frames answering the given seqs (and errors), until all came."""
    got = {}
    errors = []
    end = rig.clock() + timeout_s
    while rig.clock() < end and len(got) < len(seqs):
        for f in client.feed(rig.port.read(0.05)):
            if isinstance(f, L.Frame) and f.kind == L.ERROR:
                errors.append(f)
                if f.seq in seqs:
                    got[f.seq] = f
            elif isinstance(f, L.Frame) and f.seq in seqs:
                got[f.seq] = f
    return got, errors


def test_a_frame_goes_whole_and_comes_back(rig):
    f = rig.sc._ask(L.STATUS, b"", 10)
    assert dict(cbor.loads(f.payload))["addr"] == 4


def test_a_frame_written_one_byte_at_a_time_is_one_frame(rig):
    c = LinkClient()
    seq, data = c.request(L.SPENT, REF)
    for i in range(len(data)):
        rig.port.write(data[i:i + 1])
    got, errors = collect(rig, c, {seq})
    assert got[seq].kind == L.SPENT | L.RESPONSE and not errors


def test_five_frames_in_one_write_are_five_answers_in_order(rig):
    c = LinkClient()
    reqs = [c.request(L.SPENT, REF) for _ in range(5)]
    rig.port.write(b"".join(d for _, d in reqs))
    got, errors = collect(rig, c, {s for s, _ in reqs})
    assert sorted(got) == sorted(s for s, _ in reqs) and not errors


def test_a_lost_frame_is_sent_again_and_answered(rig):
    rig.faults.drop(1)
    s = rig.sc.check(REF, timeout_s=15)
    assert s.kind == 0 and rig.faults.applied["drop"] == 1


def test_two_frames_reordered_are_both_answered(rig):
    c = LinkClient()
    rig.faults.swap()
    a, b = c.request(L.SPENT, REF), c.request(L.STATUS)
    rig.port.write(a[1])
    rig.port.write(b[1])
    got, errors = collect(rig, c, {a[0], b[0]})
    assert got[a[0]].kind == L.SPENT | L.RESPONSE and got[b[0]].kind == L.STATUS | L.RESPONSE
    assert rig.faults.applied["swap"] == 1 and not errors


def test_a_corrupted_frame_is_refused_and_changes_nothing(rig):
    c = LinkClient()
    rig.faults.corrupt(1)
    seq, data = c.request(L.SUBMIT, use_record(2))
    rig.port.write(data)
    got, errors = collect(rig, c, {0}, timeout_s=5)
    assert [e.payload[0] for e in errors] in ([L.E_CRC], [L.E_COBS])
    assert not rig.svc.node.pending
    f = rig.sc._ask(L.SUBMIT, use_record(2), 10)  # the same request, whole
    assert f.kind == L.SUBMIT | L.RESPONSE and len(rig.svc.node.pending) == 1


def test_a_disconnect_mid_frame_costs_one_frame_and_nothing_is_half_done(rig):
    c = LinkClient()
    rig.faults.cut()
    seq, data = c.request(L.SUBMIT, use_record(3))
    rig.port.write(data)  # half of it reaches the node, then the line drops
    f = rig.sc._ask(L.SPENT, REF, 15)  # the next request: glued to the half frame once, then answered
    assert f.kind == L.SPENT | L.RESPONSE
    assert not rig.svc.node.pending  # the cut SUBMIT did not happen
    assert rig.svc.stats["link_errors"] >= 1
