"""Receipt digests (T_DIGEST) on the mesh: one frame from the bridge brings
many receipts back down the payments' paths, relayed only by the nodes those
payments came up through; every node that hears it fills its spent set; a
malformed or unicast digest is neither believed nor relayed."""
import fwpath  # noqa: F401  (protocol/ and firmware/ on the path)

from pen_protocol import digest as G
from pen_protocol import frame as F
from pen_protocol.airtime import PRESETS
from pen_protocol.identity import record_id
from pen_node.downlink import EV_RECEIPT
from pen_node.spent import ACCOUNTED
from meshkit import Village, use_record, line

SF9 = PRESETS["eu868-sf9"]
MIN = 60000


def ref(i):
    return use_record(i)[3:11]


def digest_naming(indexes):
    """A digest as the bridge PC sends it (the mesh never verifies: the
    signature is the store's business, zeros here)."""
    return G.body(b"\x0a\x0b\x0c\x0d", 1795000000, [(ref(i), record_id(use_record(i))) for i in indexes]) + bytes(64)


def village_with_payments():
    """1 (bridge) - 2 - 3 - 4, and 5 hanging off 2 with no payment of its own:
    4 pays 5 times; they go up 4 -> 3 -> 2 -> 1."""
    links = line(4)
    links[(2, 5)] = (20, 0)
    v = Village(SF9, links)
    v.run(2 * MIN)
    for i in range(5):
        assert v.submit(4, use_record(i))
    v.run(10 * MIN)
    assert len(v.all_delivered()) == 5
    return v


def test_one_digest_brings_every_receipt_back_down_the_path():
    v = village_with_payments()
    raw = digest_naming([0, 1, 2, 3, 4])
    assert v.nodes[1].broadcast(raw, v.now)
    v.run(2 * MIN)
    assert sorted(v.receipts(4)) == sorted(ref(i) for i in range(5))
    assert all(e[2] == raw for e in v.events[4] if e[0] == EV_RECEIPT)
    # relayed by 2 and 3 (the payments' path), not by 5 (no payment came
    # through it) nor by 4 (the origin's children: none)
    assert v.nodes[2].stats["floods_relayed"] == 1 and v.nodes[3].stats["floods_relayed"] == 1
    assert v.nodes[5].stats["floods_relayed"] == 0 and v.nodes[4].stats["floods_relayed"] == 0
    for a in (2, 3, 4, 5):  # everyone who heard it knows the tokens are spent
        assert all(v.nodes[a].spent.lookup(ref(i)) == ACCOUNTED for i in range(5))
    # the bridge sends it (its own flood queue), 2 and 3 relay: once each, no more
    assert sum(n.stats["floods_relayed"] for n in v.nodes.values()) == 3


def test_the_bridge_sends_one_frame_for_many_receipts():
    v = village_with_payments()
    before = v.nodes[1].stats["tx_frames"]
    v.nodes[1].broadcast(digest_naming([0, 1, 2, 3, 4]), v.now)
    v.run(2 * MIN)
    assert v.nodes[1].stats["tx_frames"] - before <= 2  # the digest (and maybe a beacon)


def test_a_malformed_digest_is_neither_believed_nor_relayed():
    v = village_with_payments()
    good = digest_naming([0, 1])
    for bad in (good[:-5], good[:40], good[:9] + good[9:21] * 14 + b"xyz" + good[-64:]):  # the last: oversized
        # the bridge's PC is trusted, the air is not: put the frame on air as if a bridge had sent it
        frame = F.pack(F.Header(F.T_DIGEST, 1, F.BROADCAST, 1, 7), bad[1:])
        rx_bad = v.nodes[2].stats["rx_bad"]
        v.nodes[2].on_frame(frame, -80, 20, v.now)
        assert v.nodes[2].stats["rx_bad"] == rx_bad + 1
        assert v.nodes[2].floods == []
    assert v.nodes[2].spent.lookup(ref(0)) != ACCOUNTED  # heard going up (USED), never accounted


def test_a_unicast_or_fragmented_digest_is_refused():
    v = village_with_payments()
    body = digest_naming([0])[1:]
    for hdr in (F.Header(F.T_DIGEST, 1, 2, 1, 3), F.Header(F.T_DIGEST, 1, F.BROADCAST, 1, 3, None, 0, 2, 9)):
        n = v.nodes[2].stats["rx_bad"]
        v.nodes[2].on_frame(F.pack(hdr, body), -80, 20, v.now)
        assert v.nodes[2].stats["rx_bad"] == n + 1
    assert v.nodes[2].floods == [] and v.nodes[2].spent.lookup(ref(0)) != ACCOUNTED


def test_a_digest_heard_twice_is_taken_once_and_a_siblings_relay_does_not_cancel_ours():
    """Only nodes with the named payments' children relay a digest; a
    neighbour relaying it for its own children does not reach ours."""
    v = village_with_payments()
    n = v.nodes[2]
    frame = F.pack(F.Header(F.T_DIGEST, 1, F.BROADCAST, 1, 7), digest_naming([0, 1])[1:])
    dups = n.stats["dup_dropped"]
    n.on_frame(frame, -80, 20, v.now)
    assert len(n.floods) == 1
    n.on_frame(F.relay(frame, 5, F.BROADCAST), -80, 20, v.now)  # a sibling relayed it
    assert len(n.floods) == 1 and n.stats["floods_cancelled"] == 0 and n.stats["dup_dropped"] == dups + 1
    assert [e[1] for e in n.events if e[0] == EV_RECEIPT] == []  # 2 paid nothing itself


def test_digests_yield_to_payments_at_relays_for_a_while_at_the_bridge_one_per_gap():
    """The bridge takes a digest however busy its channel, one forced receipt
    per RECEIPT_FORCE_GAP_MS (its air is where receipts waited past their 10
    minutes); a relay holds one while payments pass through it, in its
    bounded flood queue, and sends it once overdue as a custody receipt
    (RECEIPT_PATIENCE_MS, then RECEIPT_QUIET_MS without a payment going up),
    busy channel or not (dropped at once, a loaded village lost a third of
    its digests' relays)."""
    from pen_node.downlink import RECEIPT_FORCE_GAP_MS, RECEIPT_PATIENCE_MS, RECEIPT_QUIET_MS
    v = village_with_payments()
    raw = digest_naming([0, 1])
    b, r = v.nodes[1], v.nodes[2]
    b.heard.add(30000000, v.now)  # the bridge's channel sounds busy
    b.receipt_forced_ms = v.now - RECEIPT_FORCE_GAP_MS + 1000  # a receipt was forced through a moment ago
    assert b.broadcast(raw, v.now) is False and b.floods == []  # the PC offers it again
    assert b.broadcast(raw, v.now + 1000) and len(b.floods) == 1
    frame = F.pack(F.Header(F.T_DIGEST, 1, F.BROADCAST, 1, 7), raw[1:])
    r.on_frame(frame, -80, 20, v.now)
    assert len(r.floods) == 1
    dropped = r.stats["floods_dropped"]
    t = v.now + 2000
    while t < v.now + RECEIPT_PATIENCE_MS + 5000:
        r.last_uplink_ms = t - 100  # payments keep passing before the relay's slot
        r.heard.add(2000000, t)  # and the channel sounds busy
        assert r.next_tx(t) is None
        t += 1000
    assert len(r.floods) == 1 and r.stats["floods_dropped"] == dropped  # held, not dropped
    t += RECEIPT_QUIET_MS  # no payment for RECEIPT_QUIET_MS: overdue, it goes on a busy channel
    f = r.next_tx(t)
    assert f is not None and f[0] == F.T_DIGEST and r.floods == []
    assert r.receipt_forced_ms == t


def test_a_relay_busy_with_payments_holds_at_most_max_floods_digests_the_oldest_goes():
    """Past the service level payments keep the air: digests a busy relay
    cannot send wait in its flood queue, bounded; a new one drops the oldest."""
    from pen_node.downlink import MAX_FLOODS
    v = village_with_payments()
    r = v.nodes[2]
    frames = [F.pack(F.Header(F.T_DIGEST, 1, F.BROADCAST, 1, 7), digest_naming([0, k])[1:]) for k in range(1, 11)]
    dropped = r.stats["floods_dropped"]
    for k, frame in enumerate(frames):
        r.last_uplink_ms = v.now + k * 1000  # payments keep going up through it
        r.on_frame(frame, -80, 20, v.now + k * 1000)
        assert r.next_tx(v.now + k * 1000 + 900) is None
    assert len(r.floods) == MAX_FLOODS and r.stats["floods_dropped"] == dropped + len(frames) - MAX_FLOODS
    assert [fl[1][F.HEADER_LEN:] for fl in r.floods] == [F.relay(f, r.addr, F.BROADCAST)[F.HEADER_LEN:] for f in frames[2:]]
