"""StoreClient and its outbox on the in-memory kit: which receipts count
(only an ACCOUNTED for this payment's token and USE, signed by a pinned CTB
key), what is refused before a byte goes out, and states that move only
forward."""
import pytest

import kit  # noqa: F401
from kit import CTB_KEY, USER, receipt_event, use, token
from pen import build as B
from pen.keys import Signer
from pen.storeclient import ACCOUNTED, SENT, SIGNED, Outbox, StoreClient, receipt_problem
from pen.transport.testing import VirtualClock, served_port
from pen_protocol import link as L
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from kit import MemStorage
from pen_node.mesh import MeshNode
from pen_node.service import LinkService
from medium_node import XorShift

OTHER = Signer.from_phrase("some other ctb node")


def rig(tmp_path):
    clock = VirtualClock()
    svc = LinkService(MeshNode(5, PRESETS["eu868-sf9"], Journal(MemStorage(8192)), XorShift(5)))
    port = served_port(clock, lambda d: svc.feed(d, clock.ms()), poll=lambda: svc.poll(clock.ms()))
    return StoreClient(port, Outbox(tmp_path / "o.sqlite"), [CTB_KEY.public_key], clock=clock, wall=clock), svc


@pytest.mark.parametrize("make,why", [
    (lambda u: B.accounted(CTB_KEY, u.fields[0], u.id, 1).raw, None),
    (lambda u: B.accounted(OTHER, u.fields[0], u.id, 1).raw, "signed by a key not pinned as a CTB node"),
    (lambda u: B.accounted(CTB_KEY, u.fields[0], bytes(16), 1).raw, "for another payment"),
    (lambda u: B.accounted(CTB_KEY, token(999), u.id, 1).raw, "for another payment"),
    (lambda u: B.accounted(CTB_KEY, u.fields[0], u.id, 1).raw[:-1] + b"\x00", "bad signature"),
    (lambda u: u.raw, "not an accounted record"),
    (lambda u: b"\x0b\x80", "malformed: field-count"),
])
def test_which_receipts_count(make, why):
    u = use(1)
    assert receipt_problem(make(u), u, [CTB_KEY.public_key]) == why


def test_a_forged_receipt_event_leaves_the_payment_sent(tmp_path):
    sc, svc = rig(tmp_path)
    u = use(2)
    p = sc.pay(u.raw, wait_s=1)
    assert p.state == SENT
    svc.node.events.append(receipt_event(B.accounted(OTHER, u.fields[0], u.id, 1).raw))
    sc.listen(1)
    assert sc.outbox.get(u.id).state == SENT
    assert sc.rejected[-1][1] == "signed by a key not pinned as a CTB node"
    svc.node.events.append(receipt_event(B.accounted(CTB_KEY, u.fields[0], u.id, 1).raw))
    sc.listen(1)
    assert sc.outbox.get(u.id).state == ACCOUNTED


def test_not_a_use_is_refused_before_anything_is_stored_or_sent(tmp_path):
    sc, svc = rig(tmp_path)
    for bad in (B.set_user(USER, token(1), USER).raw, b"\x0a\x00", b""):
        with pytest.raises(ValueError):
            sc.pay(bad, wait_s=1)
    assert sc.receipts() == [] and svc.stats["link_frames"] == 0


def test_a_payment_twice_is_one_payment_and_states_only_move_forward(tmp_path):
    sc, svc = rig(tmp_path)
    u = use(3)
    sc.pay(u.raw, wait_s=0.5)
    sc.pay(u.raw, wait_s=0.5)
    assert [p.state for p in sc.receipts()] == [SENT]
    sc.outbox.mark(u.id, ACCOUNTED, 5, b"r")
    assert sc.outbox.mark(u.id, SENT, 6).state == ACCOUNTED
    assert sc.outbox.mark(u.id, SIGNED, 7).state == ACCOUNTED


def test_resume_sends_only_what_is_not_accounted(tmp_path):
    sc, svc = rig(tmp_path)
    a, b = use(4), use(5)
    sc.outbox.add(a.id, a.fields[0], a.raw, 1)  # signed, then the phone died
    sc.outbox.add(b.id, b.fields[0], b.raw, 1)
    sc.outbox.mark(b.id, ACCOUNTED, 2, b"r")
    done = sc.resume(wait_s=0.5)
    assert [p.id for p in done] == [a.id] and done[0].state == SENT and svc.stats["link_submits"] == 1


def test_after_the_node_loses_the_session_the_store_opens_a_new_one(tmp_path):
    import os
    from pen.transport.secure import open_session, pair
    from pen_node.pairing import LinkAuth, MemStore
    clock = VirtualClock()
    svc = LinkService(MeshNode(5, PRESETS["eu868-sf9"], Journal(MemStorage(8192)), XorShift(5)),
                      LinkAuth(MemStore(), os.urandom))
    code = svc.auth.new_code()
    port = served_port(clock, lambda d: svc.feed(d, clock.ms()), poll=lambda: svc.poll(clock.ms()))
    client = open_session(port, pair(port, code, USER.public_key))
    sc = StoreClient(port, Outbox(tmp_path / "o.sqlite"), [CTB_KEY.public_key], client=client, clock=clock,
                     wall=clock)
    assert sc.check(token(1)).kind == 0
    svc.auth.session = None  # the node rebooted: its session is gone, the pairing is not
    assert sc.check(token(1)).kind == 0
    assert [f.payload[0] for f in client.refusals] == [L.E_UNPAIRED] and not client.lost


def test_an_error_in_the_clear_never_answers_a_sealed_request(tmp_path):
    import os
    from pen.transport.secure import open_session, pair
    from pen.storeclient import NoAnswer
    from pen_node.pairing import LinkAuth, MemStore
    clock = VirtualClock()
    svc = LinkService(MeshNode(5, PRESETS["eu868-sf9"], Journal(MemStorage(8192)), XorShift(5)),
                      LinkAuth(MemStore(), os.urandom))
    code = svc.auth.new_code()
    port = served_port(clock, lambda d: svc.feed(d, clock.ms()))
    client = open_session(port, pair(port, code, USER.public_key))
    seq, _ = client.request(L.STATUS)
    forged = L.error(seq + 1, L.E_REFUSED, "journal full")  # someone on the line, guessing the next seq
    assert [type(x).__name__ for x in client.feed(forged)] == ["LinkError"]
    port.on_write = lambda d: forged  # a line that only ever answers with forged refusals
    sc = StoreClient(port, Outbox(tmp_path / "o.sqlite"), [CTB_KEY.public_key], client=client, clock=clock,
                     wall=clock)
    with pytest.raises(NoAnswer):
        sc.pay(use(9).raw, wait_s=5)
    assert sc.outbox.get(use(9).id).state == SIGNED
