"""The one bridge engine (pen.bridge.driver.BridgeCore): the rules the serial
bridge, the demo's bridge PC and the simulator's all follow, on both queues."""
import pytest

from pen import build as B
from pen.bridge.driver import BridgeCore, MemQueue, record_id
from pen.bridge.queue import BridgeQueue
from pen.keys import Signer
from pen_protocol import records as R


def _records(n):
    user, issuer, node = (Signer.from_phrase("core/" + x) for x in ("user", "issuer", "node"))
    uses, receipts = [], []
    for i in range(n):
        ref = R.make_ref(issuer.kid, i + 1)
        u = B.use(user, ref, "501000000001", "501000000001")
        uses.append(u.raw)
        receipts.append(B.accounted(node, ref, u.id, 1795000000 + i).raw)
    return uses, receipts


@pytest.fixture(params=["memory", "sqlite"])
def queue(request, tmp_path):
    if request.param == "memory":
        yield MemQueue()
        return
    q = BridgeQueue(tmp_path / "b.sqlite", clock=lambda: 1.0)
    yield q
    q.close()


def test_a_delivered_record_is_stored_before_its_id_is_returned_for_the_ack(queue):
    uses, _ = _records(2)
    core = BridgeCore(queue)
    assert core.delivered(uses[0]) == R.parse(uses[0]).id
    assert core.delivered(uses[0]) == R.parse(uses[0]).id  # handed over twice: one record
    if isinstance(queue, BridgeQueue):
        assert queue.has(R.parse(uses[0]).id) and not queue.has(R.parse(uses[1]).id)
    else:
        assert list(queue.uplink) == [R.parse(uses[0]).id]


def test_malformed_bytes_are_acked_and_kept_aside_never_stored(queue):
    core = BridgeCore(queue)
    junk = bytes([10]) + bytes(100)
    assert core.delivered(junk) == record_id(junk)  # acked, else the node offers it forever
    assert core.stats["malformed"] == 1
    if isinstance(queue, BridgeQueue):
        assert not queue.has(record_id(junk))
        assert queue.meta_get("malformed:" + record_id(junk).hex()) is not None
    else:
        assert queue.uplink == {}


def test_downlink_goes_oldest_first_within_the_window_and_never_twice_once_taken(queue):
    _, receipts = _records(6)
    core = BridgeCore(queue, window=4)
    for r in receipts:
        core.queue_down(r)
    first = core.downlink(0.0)
    assert [raw for _, raw in first] == receipts[:4]
    assert core.downlink(0.0) == []  # window full: nothing more until answers come
    core.down_answer(first[0][0], True, 0.1)
    nxt = core.downlink(0.1)
    assert [raw for _, raw in nxt] == [receipts[4]]
    for rid, _ in first[1:] + nxt:
        core.down_answer(rid, True, 0.2)
    last = core.downlink(0.2)
    assert [raw for _, raw in last] == [receipts[5]]
    core.down_answer(last[0][0], True, 0.3)
    core.queue_down(receipts[0])  # the CTB returns the same receipt again: not sent twice
    assert core.downlink(0.4) == [] and queue.down_backlog() == 0
    assert core.stats["downlinked"] == 6


def test_a_refusal_pauses_the_downlink_and_keeps_the_record_until_taken(queue):
    _, receipts = _records(2)
    core = BridgeCore(queue, window=4, pause=0.5)
    core.queue_down(receipts[0])
    (rid, raw), = core.downlink(10.0)
    core.down_answer(rid, False, 10.0, "queue full")
    assert core.downlink(10.4) == []  # paused
    again = core.downlink(10.5)
    assert again == [(rid, raw)]  # the refused record comes first again
    core.down_answer(rid, False, 10.5)
    core.queue_down(receipts[1])  # new records end the pause: the node may have room now
    assert [x for _, x in core.downlink(10.6)] == receipts


def test_a_lost_answer_lets_the_record_go_again():
    _, receipts = _records(1)
    core = BridgeCore(MemQueue(), window=1)
    core.queue_down(receipts[0])
    (rid, _), = core.downlink(0)
    assert core.downlink(1) == []
    core.down_forget(rid)
    assert core.downlink(2) == [(rid, receipts[0])]


def test_the_simulator_and_the_demo_use_the_bridge_engine():
    import pen.sim  # noqa: F401
    from pen.sim.engine import Run
    from pen.sim.medium import Topology
    from pen_protocol.airtime import PRESETS
    t = Topology.generate(8, 1, PRESETS["eu868-sf9"], 2)
    r = Run(t, "pen", 60, 10, 2)
    m = r.run()
    pc = r.pcs[0]
    assert isinstance(pc, BridgeCore)
    assert pc.stats["delivered"] == m["delivered"] > 0
    # every receipt went down: alone, or in signed digests when several wait (pen.bridge.digests);
    # what still waits at the end waits only to be named again (a quiet village names each 3 times)
    assert len(pc.queue.sent) + len(pc.named) == m["delivered"] and pc.queue.down_backlog() == len(pc.named)
    assert pc.stats["downlinked"] - pc.stats["digests"] + pc.stats["receipts_in_digests"] >= m["delivered"]


def test_one_sqlite_queue_cannot_serve_two_bridge_pcs(tmp_path):
    import pen.sim  # noqa: F401
    from pen.sim.engine import Run
    from pen.sim.medium import Topology
    from pen_protocol.airtime import PRESETS
    t = Topology.generate(8, 2, PRESETS["eu868-sf9"], 2)
    q = BridgeQueue(tmp_path / "b.sqlite")
    with pytest.raises(ValueError, match="one bridge_queue serves one bridge PC: this village has 2 bridges"):
        Run(t, "pen", 60, 10, 2, bridge_queue=q)
    q.close()


class _ScriptedNode:
    """The node's side of the serial link, in memory: answers each request
    the bridge writes (DOWNLINK refused while `refuse` > 0, OK otherwise),
    and sends events put in `events`. What the bridge wrote is in `seen`."""

    def __init__(self, queue, refuse=0):
        from pen_protocol import link as L
        self.L = L
        self.dec = L.Decoder()
        self.queue = queue
        self.refuse = refuse
        self.out = b""
        self.seen = []  # (kind, payload, record stored at the moment it was written)
        self.name = "scripted"

    def write(self, data):
        L = self.L
        for f in self.dec.feed(data):
            rid = bytes(f.payload)
            self.seen.append((f.kind, rid, f.kind == L.DELIVERED_ACK and self.queue.has(rid)))
            if f.kind == L.DOWNLINK and self.refuse:
                self.refuse -= 1
                self.out += L.error(f.seq, L.E_REFUSED, "queue full")
            else:
                self.out += L.encode(f.kind | L.RESPONSE, f.seq)

    def event(self, kind, payload):
        self.out += self.L.encode(kind, 0, payload)

    def read(self, timeout_s):
        data, self.out = self.out, b""
        return data


def test_the_serial_bridge_follows_the_same_rules(tmp_path):
    # the serial Bridge over an in-memory node: it stores a delivered
    # record before the ack leaves, acks and sets aside malformed bytes, and
    # after a refused DOWNLINK waits its pause before sending the same one again
    from pen.bridge.driver import DOWN_PAUSE_S, Bridge
    from pen_protocol import link as L
    uses, receipts = _records(2)
    now = [100.0]
    q = BridgeQueue(tmp_path / "b.sqlite", clock=lambda: now[0])
    node = _ScriptedNode(q, refuse=1)
    bridge = Bridge(node, q, clock=lambda: now[0])
    assert isinstance(bridge.core, BridgeCore)
    junk = bytes([10]) + bytes(100)
    node.event(L.EV_DELIVERED, uses[0])
    node.event(L.EV_DELIVERED, junk)
    bridge.step(0)
    acks = [(rid, stored) for kind, rid, stored in node.seen if kind == L.DELIVERED_ACK]
    assert acks == [(R.parse(uses[0]).id, True), (record_id(junk), False)]
    assert bridge.stats["malformed"] == 1 and q.meta_get("malformed:" + record_id(junk).hex())
    q.queue_down(receipts[0])
    bridge.step(0)  # sent, refused
    bridge.step(0)
    downs = [rid for kind, rid, _ in node.seen if kind == L.DOWNLINK]
    assert downs == [receipts[0]] and q.down_backlog() == 1
    now[0] += DOWN_PAUSE_S / 2
    bridge.step(0)
    assert [rid for kind, rid, _ in node.seen if kind == L.DOWNLINK] == [receipts[0]]  # still paused
    now[0] += DOWN_PAUSE_S / 2
    bridge.step(0)  # the same record again, taken
    bridge.step(0)
    assert [rid for kind, rid, _ in node.seen if kind == L.DOWNLINK] == [receipts[0]] * 2
    assert q.was_sent(R.parse(receipts[0]).id) and q.down_backlog() == 0 and bridge.stats["downlinked"] == 1
    q.close()
