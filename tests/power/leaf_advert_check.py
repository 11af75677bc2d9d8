"""A leaf says it is there (routing._LEAF): a short beacon with metric 255
and the leaf flag, sealed like every frame. Its neighbours list it in their
"I heard you" lists and answer with their own beacon (a bridge does not:
its answer would be a round), so the leaf learns in one exchange which of
them hear it.
Tried as an attacker would: a forged, malformed or replayed leaf beacon, or
a thousand of them, moves no route, starts no round and grows no table past
its bound. Runs on CPython and the unix port.

    micropython -X heapsize=256k tests/power/leaf_advert_check.py
"""
import gc

from pen_protocol import frame as F
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from pen_node.sleep import leaf_beacon, NodePower, Meter

P = PRESETS["eu868-sf9"]
SECRET = b"village secret for the leaf test"
KEY = F.net_key(SECRET)
SMALL = {"dedup": 32, "reverse": 32, "spent_capacity": 64}
LOUD = 40  # SNR x4: 22.5 dB over SF9's floor


class Rng:
    def __init__(self, s):
        self.s = s

    def getrandbits(self, k):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return self.s & ((1 << k) - 1)


def node(addr, bridge=False, leaf=False):
    gc.collect()
    n = MeshNode(addr, P, Journal(MemStorage(4096)), Rng(addr), is_bridge=bridge, net_key=SECRET, **SMALL)
    n.leaf = leaf
    return n


def sealed(src, payload, key=KEY):
    f = F.pack(F.Header(F.T_BEACON, src, F.BROADCAST, src, 0, 0), bytes(payload))
    return F.seal(f, key)


def leaf_frame(src, seq=5, flags=4, metric=255, extra=()):
    return sealed(src, (seq >> 8, seq & 255, metric, 0, flags) + tuple(extra))


def route(n, parent=1, metric=4, seq=5, now=0):
    """n hears parent's beacon (round seq, metric)."""
    n.on_frame(sealed(parent, (seq >> 8, seq & 255, metric, 0, 0)), -60, LOUD, now)


def payload_of(f):
    n = F.unseal(f, KEY)
    assert n > 0
    hdr, p = F.parse(bytes(f[:n]))
    return hdr, bytes(p)


def snapshot(n):
    return (sorted((a, list(v)) for a, v in n.nbr.items()), n.parent, n.metric, n.beacon_due, n.ask_round,
            n.round_asked, n.beacon_seq)


def a_leaf_sends_only_its_short_beacon():
    lf = node(20, leaf=True)
    route(lf, 7, 4, 5, 1000)
    assert lf.parent == 7 and lf.beacon_due > 0  # a route at last: it says it is there
    f = lf._beacon_tx(lf.beacon_due)
    hdr, p = payload_of(f)
    # metric 255, no parent, the flag, no list (it lists only neighbours advertising 255 or more)
    assert hdr.type == F.T_BEACON and p == bytes((0, 0, 255, 0, 4))
    assert lf.adv_metric == 255 and lf.fd_seq == 0  # it advertised no route: no feasibility distance
    assert leaf_beacon(f, KEY) == f  # the board's driver puts it on air as it is (metric 255: sealed again alike)
    assert NodePower(Meter(), 22, leaf=True).before_send(f, 0, KEY) == f
    # a new round heard later: a leaf does not re-advertise it
    route(lf, 7, 4, 6, 9000)
    assert lf.beacon_due < 0


def a_neighbour_lists_the_leaf_and_answers_without_a_round():
    r = node(7)
    route(r, 1, 0, 5, 0)
    r._beacon_tx(r.beacon_due)  # its own advertisement of round 5
    assert r.beacon_due < 0 and r.parent == 1
    asked = r.round_asked
    r.on_frame(leaf_frame(20), -70, -30, 5000)  # the leaf, 5 dB over the floor
    assert r.nbr[20][0] == 255 and r.parent == 1  # never a parent
    assert 5000 < r.beacon_due <= 5000 + 2200 and not r.ask_round and r.round_asked == asked
    hdr, p = payload_of(r._beacon_tx(r.beacon_due))
    assert p[:5] == bytes((0, 5, 4, 1, 0))  # the same round, no ask
    assert p[5:].find(bytes((20, 69))) >= 0  # "I heard you, leaf 20, 5 dB over the floor"


def the_bridge_lists_the_leaf_without_starting_a_round():
    b = node(1, bridge=True)
    b._beacon_tx(0)  # round 1
    b._beacon_tx(b.beacon_due)  # round 2; the next is due in 30 s
    due, seq, asked = b.beacon_due, b.beacon_seq, b.round_asked
    assert seq == 2 and due == 15000 + 30000
    b.on_frame(leaf_frame(20, seq=2), -70, -30, 16000)
    # no answer: a bridge's beacon is a round, which costs every node a beacon; the next round lists the leaf
    assert b.beacon_due == due and b.round_asked == asked and b.nbr[20][0] == 255
    hdr, p = payload_of(b._beacon_tx(due))
    assert p[:2] == bytes((0, 3)) and p[5:].find(bytes((20, 69))) >= 0


def a_leaf_asks_after_two_unacked_frames_once_per_60_s():
    lf = node(20, leaf=True)
    route(lf, 7, 4, 5, 0)
    lf._beacon_tx(lf.beacon_due)  # its boot advert (solicit_after: 60 s on)
    route(lf, 8, 9, 5, 1000)  # a dearer neighbour: 7 stays the parent after two losses (no tie to break)
    assert lf.parent == 7 and lf.beacon_due < 0
    lf.link_failed(7, 70000)
    assert lf.beacon_due < 0  # one loss is a collision as often as not
    lf.link_acked(7)  # and the next frame went through: the run of losses is over
    lf.link_failed(7, 71000)
    assert lf.beacon_due < 0
    lf.link_failed(7, 72000)
    assert lf.parent == 7 and 72000 < lf.beacon_due <= 74200
    lf._beacon_tx(lf.beacon_due)
    lf.link_failed(lf.parent, 80000)
    lf.link_failed(lf.parent, 81000)
    assert lf.beacon_due < 0  # within 60 s of the last: no other
    assert not lf.ask_round  # a leaf has no descendants: it never asks for a round
    lf.link_failed(lf.parent, 133000)
    assert lf.beacon_due > 133000


def a_leaf_prefers_the_neighbour_that_hears_it():
    lf = node(20, leaf=True)
    lf.on_frame(sealed(7, (0, 5, 4, 1, 0)), -60, LOUD, 0)
    lf._beacon_tx(lf.beacon_due)
    aired = lf.beacon_aired
    # 7 answers without listing it (it did not hear the leaf); 8 lists it 8 dB over the floor
    lf.on_frame(sealed(7, (0, 5, 4, 1, 0, 30, 70)), -60, LOUD, aired + 3500)
    lf.on_frame(sealed(8, (0, 5, 4, 1, 0, 20, 72)), -60, LOUD, aired + 3600)
    assert lf.parent == 8


def forged_malformed_or_many_leaf_beacons_change_nothing():
    r = node(7)
    route(r, 1, 0, 5, 0)
    r._beacon_tx(r.beacon_due)
    before = snapshot(r)
    r.on_frame(leaf_frame(20)[:-1] + b"\x00", -70, -30, 5000)  # a wrong tag
    r.on_frame(sealed(20, (0, 5, 255, 0, 4), F.net_key(b"another village")), -70, -30, 5000)
    assert snapshot(r) == before and r.stats["bad_mac"] == 2
    bad = r.stats["rx_bad"]
    r.on_frame(leaf_frame(20, flags=8 | 4), -70, -30, 5000)  # an unknown flag
    r.on_frame(leaf_frame(20, extra=(7,)), -70, -30, 5000)  # half a list entry
    assert snapshot(r) == before and r.stats["rx_bad"] == bad + 2
    # the flag on a beacon that advertises a route is only that beacon: no round asked, nothing answered
    r.on_frame(leaf_frame(20, metric=9), -70, -30, 5000)
    assert r.parent == 1 and not r.ask_round and r.beacon_due < 0 and r.round_asked == before[5]
    del r.nbr[20]
    # an insider sealing leaf beacons from a thousand addresses: the table stays bounded, the parent stays,
    # no round is asked for
    for a in range(100, 1100):
        r.on_frame(leaf_frame(a), -70, -30, 6000 + a)
    assert len(r.nbr) <= 32 and r.parent == 1 and not r.ask_round and r.round_asked == before[5]
    # nor does a forged advert make a node drop its transmit power toward the "leaf" it names (txpower)
    from pen_node.txpower import TxPower
    t = TxPower(9, [14, 17, 20, 22], 22, KEY)
    t.heard(leaf_frame(20)[:-1] + b"\x00", 60, 5000)  # "20", heard 27.5 dB over the floor: a wrong tag
    t.heard(sealed(20, (0, 5, 255, 0, 4), F.net_key(b"another village")), 60, 5000)
    to20 = F.seal(F.pack(F.Header(11, 7, 20, 7, 0, 0), b"r" * 40), KEY)
    assert t.stats["forged"] == 2 and t.power_for(to20, 5001) == 22
    t.heard(leaf_frame(20), 60, 5000)  # the sealed one teaches its SNR, as any authentic broadcast
    assert t.power_for(to20, 5001) < 22
    # a parent that turns leaf is a parent no more
    c = node(9)
    route(c, 7, 4, 5, 0)
    route(c, 8, 6, 5, 0)
    assert c.parent == 7
    c.on_frame(leaf_frame(7), -60, LOUD, 1000)
    assert c.parent == 8


def check():
    a_leaf_sends_only_its_short_beacon()
    a_neighbour_lists_the_leaf_and_answers_without_a_round()
    the_bridge_lists_the_leaf_without_starting_a_round()
    a_leaf_asks_after_two_unacked_frames_once_per_60_s()
    a_leaf_prefers_the_neighbour_that_hears_it()
    forged_malformed_or_many_leaf_beacons_change_nothing()
    print("leaf advert ok")


check()
