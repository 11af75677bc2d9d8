"""What keeps a busy village moving: receipts that keep their path down after
the path memory has moved on, and the ack window kept clear by neighbours.
(Which parent a node keeps when acks are lost is test_routing.py's.)"""
import fwpath  # noqa: F401  (protocol/ and firmware/ on the path)

from pen_protocol import frame as F
from pen_protocol.airtime import PRESETS
from pen_node.mesh import MeshNode
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from medium_node import XorShift
from meshkit import Village, use_record, accounted_record, line, beacon

SF9 = PRESETS["eu868-sf9"]
MIN = 60000


def node_with_two_parents(addr=9):
    """Hears bridge 2 just above the floor (cost 8) and relay 3 well (its
    metric 4 + 4): as good a route, so 3 is feasible once 2 is penalised. Its
    own beacon (route advertisement) has gone out. The bridge's beacon says it
    hears us just above the floor too (flags 0, then our address at 0 dB)."""
    n = MeshNode(addr, SF9, Journal(MemStorage(8192)), XorShift(addr))
    n.on_frame(beacon(2, 1, 0) + bytes((0, addr & 255, 64)), -110, -48, 1000)
    n.on_frame(beacon(3, 1, 4), -90, 40, 1000)
    assert n.parent == 2 and n.metric == 8
    t = n.next_wakeup_ms(1000)
    f = n.next_tx(t)
    assert F.parse(f)[0].type == F.T_BEACON
    n.on_tx_done(t + SF9.airtime_us(len(f)) // 1000)
    return n


def test_a_one_way_link_to_the_parent_still_delivers_through_the_other_neighbour():
    # 4 hears 2 (and 2's acks to others), but 2 never hears 4
    links = {(1, 2): (30, 0), (1, 3): (30, 0), (2, 4): (30, 0), (4, 2): (30, 1000), (3, 4): (0, 0)}
    v = Village(SF9, links)
    v.run(2 * MIN)
    # 2's beacons list whom it hears ("I heard you", routing.py): not 4, so 4
    # knows before any payment that 2 does not hear it
    assert v.nodes[4].parent == 3
    for rnd in range(2):  # each payment gives up on 2 after MAX_TRIES and is offered to anyone
        for i in range(3):
            v.submit(4, use_record(rnd * 3 + i))
        v.run(30 * MIN)
    assert sorted(v.all_delivered()) == sorted(use_record(i) for i in range(6))
    assert v.nodes[4].parent == 3  # and 2, which never acks, is no longer its parent


def test_neighbours_keep_quiet_through_the_ack_of_a_frame_they_overheard():
    n = node_with_two_parents()
    n.submit(use_record(1), 5000)
    t = n.next_wakeup_ms(5000)
    # just before it was due, it heard 5 send a payment to 6: 6 acks within 20-80 ms
    other = F.pack(F.Header(10, 5, 6, 5, 3), use_record(2)[1:])
    n.on_frame(other, -90, 40, t - 1)
    ack_ms = SF9.airtime_us(F.HEADER_LEN + 2 * F.FRAME_ID_LEN) // 1000
    assert n.next_tx(t) is None
    assert n.next_tx(t - 1 + 20 + 60 + ack_ms) is None
    t2 = n.next_wakeup_ms(t)
    assert t2 >= t - 1 + 20 + 60 + ack_ms
    f = n.next_tx(t2)
    assert f is not None and F.parse(f)[0].dst == 2 and F.parse(f)[0].type == 10


def test_a_receipt_keeps_its_path_down_after_the_path_memory_moved_on():
    """The relay's reverse-path ring (2 entries here) forgets the payment's
    child while the receipt waits; the receipt still goes to that child, by
    unicast, and nobody floods it."""
    v = Village(SF9, line(3), reverse=2)
    v.run(2 * MIN)
    rec = use_record(7)
    v.submit(3, rec)
    v.run(5 * MIN)
    assert v.all_delivered() == [rec]
    v.nodes[1].broadcast(accounted_record(7), v.now)

    def forget(a):  # its ring moves on: other payments' children
        for i in range(100, 102):
            v.nodes[a].rev.put(use_record(i)[3:11], 9)
        assert rec[3:11] not in v.nodes[a].rev

    forget(1)
    while not v.nodes[2].pending:  # the relay has taken the receipt
        v.step(v.now + 10)
    forget(2)
    v.run(5 * MIN)
    assert rec[3:11] in v.receipts(3)
    assert sum(v.nodes[a].stats["floods_relayed"] for a in v.nodes) == 0
