"""MeshNode in small villages on the in-process medium (meshkit): routing,
fallback, duplicate suppression, link acks and retries, custody across
reboots, receipts and the spent set. Virtual time: hours run in seconds."""
import fwpath  # noqa: F401  (protocol/ and firmware/ on the path)
import pytest

from pen_protocol import frame as F
from pen_protocol.airtime import PRESETS
from pen_protocol.identity import record_id
from pen_node.downlink import EV_BROADCAST
from pen_node.downlink import MAX_FLOODS
from pen_node.mesh import MeshNode, ANY_ROUTE, BROADCAST
from pen_node.routing import link_cost
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from medium_node import XorShift
from meshkit import Village, use_record, accounted_record, publication_record, line, beacon

SF9 = PRESETS["eu868-sf9"]
MIN = 60000


def diamond(snr_via_2=30, snr_via_3=-30):
    # 1 bridge; 4 hears the bridge only through 2 or 3
    return {(1, 2): (30, 0), (1, 3): (30, 0), (2, 4): (snr_via_2, 0), (3, 4): (snr_via_3, 0)}


def test_nodes_learn_next_hop_towards_bridge_along_a_line():
    v = Village(SF9, line(6))
    v.run(2 * MIN)
    assert [v.nodes[a].parent for a in range(2, 7)] == [1, 2, 3, 4, 5]
    assert [v.nodes[a].metric for a in range(2, 7)] == [4, 8, 12, 16, 20]  # 4 per good hop


def test_parent_prefers_the_stronger_link():
    v = Village(SF9, diamond(snr_via_2=-30, snr_via_3=30))
    v.run(2 * MIN)
    assert v.nodes[4].parent == 3
    v2 = Village(SF9, diamond(snr_via_2=30, snr_via_3=-30))
    v2.run(2 * MIN)
    assert v2.nodes[4].parent == 2


def test_link_cost_grows_as_snr_margin_shrinks():
    # SF9's floor is -12.5 dB (-50 in dB x4): margins 22, 5, 1, 0 and -3 dB
    costs = [link_cost(snr, 9) for snr in (40, -30, -45, -50, -62)]
    assert costs == [4, 5, 6, 8, 16]


def test_uplink_is_delivered_once_each_along_a_line():
    v = Village(SF9, line(5))
    v.run(2 * MIN)
    for i in range(20):
        assert v.submit(5, use_record(i))
    v.run(30 * MIN)
    got = v.all_delivered()
    assert sorted(got) == sorted(use_record(i) for i in range(20))
    for a in v.nodes:
        assert v.nodes[a].journal.live == {} and v.nodes[a].pending == {}


def test_parent_lost_reroutes_through_the_other_neighbour():
    v = Village(SF9, diamond(snr_via_2=30, snr_via_3=0))
    v.run(2 * MIN)
    assert v.nodes[4].parent == 2
    v.down.add(2)
    for i in range(5):
        v.submit(4, use_record(i))
    v.run(20 * MIN)
    assert v.nodes[4].parent == 3
    assert v.nodes[4].stats["reroutes"] >= 1
    assert sorted(v.all_delivered()) == sorted(use_record(i) for i in range(5))


def test_without_a_route_a_record_is_offered_to_any_node_with_one():
    v = Village(SF9, line(3))
    sent = []
    n3 = v.nodes[3]
    assert n3.parent is None
    # before any beacon has reached it, node 3 offers the payment to anyone with a route
    assert v.submit(3, use_record(1))
    f = None
    t = 0
    while f is None or f[0] != 10:
        t += 100
        f = n3.next_tx(t)
        n3.on_tx_done(t)
    hdr, _ = F.parse(f)
    assert hdr.dst == ANY_ROUTE
    v.run(20 * MIN)
    assert v.all_delivered() == [use_record(1)]


def test_any_route_frame_is_ignored_by_a_node_without_route():
    lone = MeshNode(9, SF9, Journal(MemStorage(4096)), XorShift(1))
    rec = use_record(3)
    lone.on_frame(F.record_frame(rec, 8, ANY_ROUTE, 8), -90, 20, 1000)
    assert lone.pending == {} and lone.acks == []


def test_retransmitted_frame_is_acked_again_but_delivered_once():
    b = MeshNode(1, SF9, Journal(MemStorage(4096)), XorShift(1), is_bridge=True)
    f = F.record_frame(use_record(1), 2, 1, 2)
    b.on_frame(f, -90, 20, 1000)
    b.on_frame(f, -90, 20, 5000)  # our ack was lost: the child tries again
    assert b.take_delivered() == [use_record(1)]
    assert b.stats["dup_dropped"] == 1
    assert b.acks == [F.frame_id(f)]  # acked (again), not taken again


def test_one_ack_carries_the_ids_of_frames_from_several_children():
    b = MeshNode(1, SF9, Journal(MemStorage(4096)), XorShift(1), is_bridge=True)
    f1 = F.record_frame(use_record(1), 2, 1, 2)
    f2 = F.record_frame(use_record(2), 3, 1, 3)
    b.on_frame(f1, -90, 20, 1000)
    b.on_frame(f2, -90, 20, 1001)
    t = 1001
    ack = None
    while ack is None or ack[0] != F.T_ACK:  # the bridge's first beacon may go first
        t += 10
        ack = b.next_tx(t)
        b.on_tx_done(t)
    hdr, payload = F.parse(ack)
    assert hdr.type == F.T_ACK and hdr.dst == BROADCAST
    assert F.ack_ids(payload) == [F.frame_id(f1), F.frame_id(f2)]


def test_lossy_links_are_crossed_by_retries_without_duplicates():
    v = Village(SF9, line(4, loss=300), seed=3)
    v.run(5 * MIN)
    for i in range(15):
        v.submit(4, use_record(i))
    v.run(60 * MIN)
    got = v.all_delivered()
    assert sorted(got) == sorted(use_record(i) for i in range(15))
    assert sum(v.nodes[a].stats["retries"] for a in v.nodes) > 0


def test_relays_rebooting_mid_traffic_lose_nothing_and_duplicate_nothing():
    for seed in range(20):
        v = Village(SF9, line(5, loss=100), seed=seed)
        v.run(2 * MIN)
        for i in range(12):
            v.submit(5, use_record(i))
            v.run(v.rng.getrandbits(14))
            v.reboot(2 + v.rng.getrandbits(8) % 3)
        v.run(90 * MIN)
        got = v.all_delivered()
        assert sorted(got) == sorted(use_record(i) for i in range(12)), seed


def test_power_cut_mid_write_anywhere_loses_no_acknowledged_payment():
    """Journals of the origin and the relays die at random bytes of random
    writes while payments flow: every payment the origin acknowledged
    reaches the bridge, exactly once."""
    cuts = 0
    for seed in range(25):
        v = Village(SF9, line(5, loss=50), seed=seed)
        v.run(2 * MIN)
        acked = []
        for i in range(10):
            if v.submit(5, use_record(i)):
                acked.append(use_record(i))
            a = 2 + v.rng.getrandbits(8) % 4
            v.storage[a].cut_after = v.rng.getrandbits(10)
            v.run(v.rng.getrandbits(15))
        for a in v.storage:
            v.storage[a].cut_after = None
        v.run(120 * MIN)
        got = v.all_delivered()
        assert len(got) == len(set(got)), seed
        assert set(acked) <= set(got), seed
        cuts += v.cuts
    assert cuts > 50  # most trials really did cut power mid-write


def test_bridge_power_cut_redelivers_and_the_pc_dedups_by_record_id():
    v = Village(SF9, line(3), seed=4)
    v.run(2 * MIN)
    for i in range(6):
        v.submit(3, use_record(i))
    v.storage[1].cut_after = 400  # the bridge dies a few records in
    v.run(60 * MIN)
    got = v.all_delivered()
    assert v.cuts == 1
    assert set(got) == set(use_record(i) for i in range(6))  # none lost; the PC keeps one per record id


def test_broadcast_floods_each_node_relays_at_most_once_and_hop_limit_bounds_it():
    v = Village(SF9, line(10))
    rec = publication_record(77)
    assert v.nodes[1].broadcast(rec, v.now)
    v.run(5 * MIN)
    got = [a for a in range(2, 11) if (EV_BROADCAST, rec) in v.events.get(a, [])]
    # hop limit 7: the bridge's frame plus 7 relays reach 8 hops, node 10 is 9 hops away
    assert got == list(range(2, 10))
    for a in range(2, 11):
        assert v.nodes[a].stats["floods_relayed"] <= 1


def test_flood_relay_is_cancelled_when_a_neighbour_relays_first():
    # 2 and 3 both hear the bridge and each other; 4 hears both
    links = {(1, 2): (0, 0), (1, 3): (30, 0), (2, 3): (30, 0), (2, 4): (30, 0), (3, 4): (30, 0)}
    v = Village(SF9, links)
    v.run(2 * MIN)
    assert v.nodes[1].broadcast(publication_record(5), v.now)
    v.run(2 * MIN)
    relayed = v.nodes[2].stats["floods_relayed"] + v.nodes[3].stats["floods_relayed"]
    assert relayed == 1  # 2 (weaker SNR: farther) goes first, 3 hears it and stays quiet
    assert v.nodes[3].stats["floods_cancelled"] == 1


def test_receipt_comes_back_to_the_origin_and_fills_the_spent_set():
    v = Village(SF9, line(4))
    v.run(2 * MIN)
    rec = use_record(42)
    v.submit(4, rec)
    v.run(10 * MIN)
    assert v.all_delivered() == [rec]
    receipt = accounted_record(42)
    v.nodes[1].broadcast(receipt, v.now)
    v.run(10 * MIN)
    ref = rec[3:11]
    assert ref in v.receipts(4)
    for a in (2, 3, 4):
        assert v.nodes[a].spent.lookup(ref) == 2  # accounted


def test_a_receipt_without_a_path_is_never_flooded():
    # the bridge never carried this payment (or forgot its path while the PC
    # held the receipt back under load): one store's receipt must not cost
    # every node airtime; the PC and the CTB keep it, the store can ask
    v = Village(SF9, line(4))
    v.run(2 * MIN)
    receipt = accounted_record(9)
    assert v.nodes[1].broadcast(receipt, v.now)
    v.run(5 * MIN)
    for a in (2, 3, 4):  # nobody heard it, nobody relayed anything
        assert not v.nodes[a].spent.lookup(receipt[3:11])
        assert v.nodes[a].stats["floods_relayed"] == 0
    assert v.nodes[1].stats["receipts_dropped"] == 1
    assert not v.nodes[1].pending and not v.nodes[1].floods


def test_the_bridge_refuses_downlink_while_its_queues_are_full():
    v = Village(SF9, line(3))
    v.run(2 * MIN)
    bridge = v.nodes[1]
    for i in range(MAX_FLOODS):
        assert bridge.broadcast(publication_record(i), v.now)
    assert not bridge.broadcast(publication_record(99), v.now)  # the PC keeps it and offers it again
    assert len(bridge.floods) == MAX_FLOODS
    v.run(2 * MIN)  # the floods go out
    assert bridge.broadcast(publication_record(99), v.now)


def test_bad_frames_are_counted_and_change_nothing():
    n = MeshNode(2, SF9, Journal(MemStorage(4096)), XorShift(1))
    for junk in (b"", b"\x00" * 8, b"\x0a\x80" + bytes(10), bytes([F.T_ACK, 0, 0, 1, 0, 2, 0, 1, 1, 2, 3]),
                 bytes([F.T_BEACON, 0, 0, 1, 0xFF, 0xFF, 0, 1, 9])):
        n.on_frame(junk, -90, 0, 10)
    assert n.stats["rx_bad"] == 5
    assert n.pending == {} and n.acks == [] and n.parent is None and n.journal.live == {}


def test_submit_refuses_what_is_not_an_uplink_record_and_stores_nothing():
    st = MemStorage(4096)
    n = MeshNode(2, SF9, Journal(st), XorShift(1))
    before = bytes(st.buf)
    assert n.submit(accounted_record(1), 0) is False  # receipts come from bridges, not stores
    assert n.submit(b"", 0) is False
    assert n.submit(bytes([10]) + bytes(300), 0) is False  # does not fit one frame
    assert bytes(st.buf) == before and n.stats["refused"] == 3


def test_full_journal_refuses_new_payments_and_keeps_the_old():
    n = MeshNode(2, SF9, Journal(MemStorage(2048)), XorShift(1))
    ok = [n.submit(use_record(i), 0) for i in range(40)]
    k = ok.index(False)
    assert k > 0 and all(ok[:k]) and not any(ok[k:])
    assert len(n.journal.live) == k


def test_an_hour_of_mesh_time_runs_in_seconds():
    import time
    v = Village(SF9, line(6))
    t0 = time.time()
    for m in range(60):
        v.submit(6, use_record(m))
        v.run(MIN)
    v.run(10 * MIN)
    assert len(v.all_delivered()) == 60
    assert time.time() - t0 < 10


def test_queued_payments_share_one_bundle_frame_and_one_ack():
    from pen_node.mesh import T_BUNDLE
    v = Village(SF9, line(3))
    v.run(2 * MIN)
    for i in range(6):
        v.submit(3, use_record(i))
    v.run(10 * MIN)
    assert sorted(v.all_delivered()) == sorted(use_record(i) for i in range(6))
    assert v.nodes[3].stats["bundled"] >= 4


def _bundle(records, src=3, dst=2):
    from pen_node.mesh import T_BUNDLE
    parts = b"".join(bytes((0, src, len(r))) + r for r in records)
    return F.pack(F.Header(T_BUNDLE, src, dst, src, 7), parts)


def test_malformed_bundle_is_counted_and_not_acked():
    n = MeshNode(2, SF9, Journal(MemStorage(8192)), XorShift(1))
    n.parent = 1
    good = _bundle([use_record(1)])
    for bad in (good[:-5], good[:8] + b"\x00\x03\xff" + good[11:], _bundle([accounted_record(1)])):
        n.on_frame(bad, -90, 20, 1000)
    assert n.stats["rx_bad"] == 3 and n.acks == [] and n.pending == {}


def test_bundle_is_acked_only_when_every_record_in_it_is_held():
    n = MeshNode(2, SF9, Journal(MemStorage(8192), max_live=1), XorShift(1))
    n.parent = 1
    b = _bundle([use_record(1), use_record(2)])
    n.on_frame(b, -90, 20, 1000)
    assert len(n.pending) == 1 and n.acks == []  # one taken, one refused: no ack, the sender keeps both
    n.journal.max_live = 2
    n.on_frame(b, -90, 20, 5000)  # the retry: the first is a duplicate, the second fits now
    assert len(n.pending) == 2 and n.acks == [F.frame_id(b)]


def test_bundles_respect_the_dwell_limit():
    us = PRESETS["us915-sf9"]
    n = MeshNode(2, us, Journal(MemStorage(8192)), XorShift(1))
    n.parent = 1
    n.nbr[1] = [0, 40, 0, 0]
    for i in range(4):
        assert n.submit(use_record(i), 0)
    t = 0
    frames = []
    while len(frames) < 2 and t < 60000:
        f = n.next_tx(t)
        if f is not None:
            frames.append(f)
            n.on_tx_done(t)
        t += 100
    assert frames and all(len(f) <= us.max_frame() for f in frames)
    assert frames[0][0] == 10  # two payments do not fit 156 bytes: sent one by one


def test_a_payment_handed_back_round_a_loop_is_taken_again_not_dropped_as_a_retry():
    # 3 hands us a payment, we pass it to our parent 1, which acks; then,
    # round a routing loop (stale routes, ANY_ROUTE), the same payment comes
    # back from 3. Its frame looks just like a late retry of the first
    # transfer, and dropping it as one lost the payment (seen in overloaded
    # villages): the node takes it again, at least once
    n = MeshNode(2, SF9, Journal(MemStorage(8192)), XorShift(1))
    n.on_frame(beacon(1, 1, 0), -90, 40, 0)
    assert n.parent == 1
    f = F.record_frame(use_record(5), 3, 2, 3)
    n.on_frame(f, -90, 20, 1000)
    rid = record_id(use_record(5))
    assert rid in n.pending
    t = 1000
    out = None
    while out is None or out[0] != 10:
        t += 50
        out = n.next_tx(t)
        if out is not None:
            n.on_tx_done(t)
    n.on_frame(F.ack_frame([F.frame_id(out)], 1, 2), -90, 40, t + 100)
    assert rid not in n.pending and rid not in n.journal.live  # passed on
    n.on_frame(f, -90, 20, t + 60000)  # back from 3
    assert rid in n.pending and rid in n.journal.live
    assert n.stats["custody_in"] == 2


def test_a_routeless_pair_asks_for_routes_instead_of_waiting_for_the_bridges_round():
    # 1 (bridge) - 2 - 3 - 4. Relays 2 and 3 reboot and lose their routes;
    # 3 holds payments and offers them to ANY_ROUTE, which only 2 hears, and
    # 2 has no route either. 2 solicits, the bridge answers with a beacon,
    # and the payments flow within a minute, not at the next round (20 min)
    v = Village(SF9, line(4))
    v.run(30 * MIN)  # the bridge's beacons are on their slowest interval by now
    for i in range(3):
        assert v.submit(3, use_record(i))
    v.reboot(2)
    v.reboot(3)
    v.run(1 * MIN)
    assert sorted(v.all_delivered()) == sorted(use_record(i) for i in range(3))
    assert v.nodes[1].beacon_interval == 1200000  # one answer, the round's timer unchanged


# -- issue 15: receipts on links that work one way ------------------------------

def test_a_receipt_whose_next_hop_stopped_hearing_goes_round_it_by_one_relay_and_on_down_its_path():
    # 3 paid through 2 to the bridge; then the bridge's frames stop reaching 2
    # (links are not symmetric: 2 still reaches the bridge). 4 hears both, 5
    # hears only 4. After 8 unacked tries the bridge floods the receipt with
    # one relay: 4 relays it, 2 (which passed the payment up) takes it back
    # into custody down to 3; 5 hears 4's relay and passes nothing on
    v = Village(SF9, {(1, 2): (30, 0), (2, 3): (30, 0), (1, 4): (30, 0), (2, 4): (30, 0), (4, 5): (30, 0)})
    v.run(2 * MIN)
    assert v.nodes[2].parent == 1 and v.nodes[3].parent == 2
    rec = use_record(77)
    assert v.submit(3, rec)
    v.run(2 * MIN)
    assert v.all_delivered() == [rec]
    v.links[(1, 2)] = (30, 1000)
    assert v.nodes[1].broadcast(accounted_record(77), v.now)
    v.run(15 * MIN)
    assert rec[3:11] in v.receipts(3)
    assert v.nodes[1].stats["receipts_flooded"] == 1 and not v.nodes[1].pending
    assert v.nodes[4].stats["floods_relayed"] == 1 and not v.nodes[4].pending
    assert v.nodes[5].stats["floods_relayed"] == 0 and not v.nodes[5].floods
    assert v.nodes[2].stats["receipts_flooded"] == 0  # its own hop to 3 worked


def test_a_flooded_receipt_is_not_taken_by_nodes_off_its_path_nor_twice_by_one_on_it():
    # an insider floods a sealed-looking receipt for a payment nobody here
    # carried: relayed at most by its hop limit, taken into custody by none;
    # the same frame again is a duplicate everywhere
    v = Village(SF9, line(4))
    v.run(2 * MIN)
    f = F.record_frame(accounted_record(5), 1, BROADCAST, 1, 1)
    for a in (2,):
        v.nodes[a].on_frame(f, -80, 40, v.now)
        v.nodes[a].on_frame(f, -80, 40, v.now + 10)
    v.run(2 * MIN)
    for a in (2, 3, 4):
        assert not v.nodes[a].pending
    assert v.nodes[2].stats["dup_dropped"] >= 1
    assert v.nodes[2].stats["floods_relayed"] <= 1 and v.nodes[3].stats["floods_relayed"] == 0


def test_a_receipt_held_a_minute_goes_on_a_busy_channel_one_every_20_s():
    # a relay near a loaded bridge hears the channel busy all the time: a
    # receipt waits for a calm minute, but never past its patience (60 s),
    # and overdue receipts go one per 20 s, not all at once
    n = MeshNode(1, SF9, Journal(MemStorage(8192)), XorShift(3), is_bridge=True)
    for t in range(0, 60000, 1000):
        n.heard.add(400000, t)  # 0.4 s of others' frames heard every second: ~40 % busy
    for i in (1, 2):
        n.rev.put(use_record(i)[3:11], 7)
        assert n.broadcast(accounted_record(i), 60000)
    sent = []
    t = 60000
    while t < 180000:
        n.heard.add(400000, t)
        f = n.next_tx(t)
        if f is not None:
            hdr, _ = F.parse(f)
            if hdr.type == 11:
                sent.append(t)
            n.on_tx_done(t + 700)
        t += 1000
    assert n.heard.permille(t) > 120
    assert len(sent) >= 2
    assert 120000 <= sent[0] < 122000  # its patience, not before
    assert sent[1] - sent[0] >= 20000  # the next overdue one 20 s later at the earliest
