"""Routing on links that work one way (issue 15, item 3), tried as an
attacker or a bad antenna would, on either runtime:
tests/firmware/test_routing.py calls run() on CPython and runs this file
under MicroPython, where it prints the same figures.

    micropython -X heapsize=256k -m routing_check
"""
import gc

from pen_protocol import frame as F
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from mpykit import Rng

P = PRESETS["eu868-sf9"]
ME = 9
LOUD = 40  # SNR x4: 10 dB, 22.5 dB over SF9's floor: a prior of one transmission
SMALL = {"dedup": 32, "reverse": 32, "spent_capacity": 64}


def use(i):
    # canonical CBOR by hand (the node never decodes CBOR): array(3), bstr 8
    # token, bstr 4 product, bstr 4 account, then a signature nobody checks
    return b"\x0a\x83\x48" + bytes((0, 0, 0, 1, 0, 0, 0, i)) + b"\x44\x12\x34\x56\x78\x44\x12\x34\x56\x79" + bytes(64)


def beacon(src, seq, metric, parent=0, extra=None):
    payload = bytes((seq >> 8, seq & 255, metric, parent))
    if extra is not None:
        payload += bytes(extra)
    return F.pack(F.Header(F.T_BEACON, src, F.BROADCAST, src, 0, 0), payload)


def node(addr=ME, bridge=False):
    gc.collect()
    return MeshNode(addr, P, Journal(MemStorage(8192)), Rng(addr), is_bridge=bridge, **SMALL)


AIRED = []  # beacon payloads custody_try saw go out on its way


def send_next(n, now):
    """Run n until it puts a frame on air; returns (frame, time it ended)."""
    for _ in range(1000):
        now = n.next_wakeup_ms(now)
        f = n.next_tx(now)
        if f is not None:
            now += P.airtime_us(len(f)) // 1000
            n.on_tx_done(now)
            return f, now
    raise AssertionError("nothing sent")


def advertise(n, now):
    """Let n send the beacon it has due; returns its payload and the time."""
    f, now = send_next(n, now)
    hdr, payload = F.parse(f)
    assert hdr.type == F.T_BEACON
    return bytes(payload), now


def custody_try(n, now, acked):
    """n sends its custody frame; the next hop acks it or not. Returns
    (next hop, time after the ack timeout)."""
    while True:
        f, now = send_next(n, now)
        hdr, payload = F.parse(f)
        if hdr.type != F.T_BEACON:
            break
        AIRED.append(bytes(payload))
    if acked:
        n.on_frame(F.ack_frame([F.frame_id(f)], hdr.dst, ME), -90, LOUD, now + 100)
    now += 2000  # past the wait for the ack
    n.tick(now)
    return hdr.dst, now


def one_way_parent_is_dropped():
    """The bridge (2) is heard loudly, but never hears us; relay 3 (metric
    4) is heard loudly too and acks. Before we advertised anything, every
    neighbour is feasible: how many unacked tries until 2 is left, and
    where the payment goes then."""
    n = node()
    n.on_frame(beacon(2, 1, 0), -80, LOUD, 1000)
    n.on_frame(beacon(3, 1, 4, 2), -80, LOUD, 1000)
    first = n.parent
    n.beacon_due = -1  # (its beacon not sent yet: nothing advertised)
    n.submit(use(1), 2000)
    now = 2000
    tries = 0
    while n.parent == 2 and tries < 50:
        dst, now = custody_try(n, now, False)
        tries += 1
    dst, now = custody_try(n, now, True)
    return first, tries, n.parent, dst, n.held_ids() == []


def one_way_parent_after_advertising_asks_for_a_round():
    """As above, but we had advertised our route through the bridge
    (metric 4): relay 3, which advertised 4 too, is not feasible (it might
    be our descendant) until a new round. After a few unacked tries our
    beacon asks for one; the relay's beacon of the new round makes it our
    parent, and the payment goes there. Never the relay before."""
    n = node()
    n.on_frame(beacon(2, 1, 0), -80, LOUD, 1000)
    n.on_frame(beacon(3, 1, 4, 2), -80, LOUD, 1000)
    adv, now = advertise(n, 1000)
    n.submit(use(1), now)
    dsts = []
    while n.beacon_due < 0 and len(dsts) < 50:
        dst, now = custody_try(n, now, False)
        dsts.append(dst)
    ask, now = advertise(n, now)
    n.on_frame(beacon(3, 2, 4, 2), -80, LOUD, now + 100)  # the round the request started
    dst, now = custody_try(n, now + 200, True)
    return adv, len(dsts), sorted(set(dsts)), ask, n.parent, dst


def busy_parent_that_acks_most_frames_is_kept():
    """Lost acks under load are collisions, not a dead link: a parent that
    acks two frames of three (then three of four) stays the parent, though
    a feasible relay one hop further is there."""
    n = node()
    n.on_frame(beacon(2, 1, 0), -80, LOUD, 1000)
    n.on_frame(beacon(3, 1, 4, 2), -80, LOUD, 1000)
    n.beacon_due = -1
    now = 2000
    out = []
    for pattern in ((True, True, False), (True, True, True, False)):
        for k in range(30):
            n.submit(use(k + 1), now)
            dst, now = custody_try(n, now, pattern[k % len(pattern)])
        out.append((n.parent, n.stats["reroutes"]))
    return out


def no_descendant_is_ever_taken():
    """Our link to the bridge fails for good. Neighbour 5 advertises a low
    metric, but no lower than ours: it may route through us (a grandchild),
    so it is never our parent in this round, however bad our link gets;
    neighbour 6 advertises less but in an older round (a stale metric from
    before it may have moved under us): never either. The bridge (metric 0)
    stays feasible, and we ask for a new round instead."""
    n = node()
    n.on_frame(beacon(2, 3, 0), -80, LOUD, 1000)
    adv, now = advertise(n, 1000)
    n.on_frame(beacon(5, 3, 4, 77), -80, LOUD, now)
    n.on_frame(beacon(6, 2, 1, 78), -80, LOUD, now)
    n.submit(use(1), now)
    seen = []
    del AIRED[:]
    for _ in range(20):
        dst, now = custody_try(n, now, False)
        seen.append(n.parent)
    # every beacon it sent meanwhile: the round request, the metric it advertised
    return adv, sorted(set(seen)), n.metric > 40, AIRED[0], len(set(AIRED))


def metric_never_grows_within_a_round():
    """A beacon answering a solicitation after our link got worse keeps the
    metric we advertised in this round (our children keep us feasible);
    the next round carries the real cost."""
    n = node()
    n.on_frame(beacon(2, 1, 0), -80, LOUD, 1000)
    first, now = advertise(n, 1000)
    n.submit(use(1), now)
    for _ in range(6):
        dst, now = custody_try(n, now, False)
    n.on_frame(beacon(7, 1, 255), -80, LOUD, now)  # a routeless neighbour asks: we answer
    same_round, now = advertise(n, now)
    n.on_frame(beacon(2, 2, 0), -80, LOUD, now)  # the bridge's next round
    next_round, now = advertise(n, now)
    return first[2], same_round[2], next_round[2] == n.metric and next_round[2] > first[2]


def round_requests_go_up_not_round():
    """A request from a child is passed on (our next beacon carries it); one
    from a neighbour nearer the bridge is not; the bridge starts a round
    on the first and not again within its gap."""
    n = node()
    n.on_frame(beacon(2, 1, 0), -80, LOUD, 1000)
    adv, now = advertise(n, 1000)
    n.on_frame(beacon(11, 1, 8, ME, (1,)), -80, LOUD, now)  # our child asks
    up, now = advertise(n, now)
    m = node(12)
    m.on_frame(beacon(2, 1, 0), -80, LOUD, 1000)
    madv, mnow = advertise(m, 1000)
    m.on_frame(beacon(13, 1, 0, 2, (1,)), -80, LOUD, mnow)  # nearer the bridge than us: not ours to pass
    b = node(2, bridge=True)
    first, bnow = advertise(b, 0)
    b.on_frame(beacon(9, first[1], 4, 2, (1,)), -80, LOUD, bnow)
    started, bnow = advertise(b, bnow)
    due = b.beacon_due  # the trickle's next
    b.on_frame(beacon(9, first[1] + 1, 4, 2, (1,)), -80, LOUD, bnow + 1000)
    return len(up) >= 5 and up[4] & 1 == 1, m.beacon_due, started[1] == first[1] + 1, b.beacon_due == due


def malformed_beacons_change_nothing():
    """A beacon's payload is 4 bytes, or a flags byte (bits 1: round
    request, 2: its list cut short, 4: a leaf's) then "I heard you" pairs,
    at most 24: any other length or flag is counted and changes nothing."""
    n = node()
    n.on_frame(beacon(2, 1, 0), -80, LOUD, 1000)
    before = (sorted(n.nbr), [list(v) for v in n.nbr.values()], n.parent, n.metric, n.beacon_due, n.ask_round)
    bad = [beacon(3, 1, 0, 0, (8,)), beacon(3, 1, 0, 0, (1, 1)), beacon(3, 5, 0, 0, (0, ME)),
           beacon(3, 1, 0, 0, (0,) + (ME, 99) * 25), beacon(3, 1, 0, 0, (0x80, ME, 99)),
           F.pack(F.Header(F.T_BEACON, 3, F.BROADCAST, 3, 0, 0), b"\x00\x01\x00")]
    for f in bad:
        n.on_frame(f, -80, LOUD, 2000)
    after = (sorted(n.nbr), [list(v) for v in n.nbr.values()], n.parent, n.metric, n.beacon_due, n.ask_round)
    return after == before, n.stats["rx_bad"]


def a_thousand_neighbours_stay_bounded():
    """Beacons from 1,000 addresses (an insider can seal any), each saying
    it hears us: the table stays at its bound, keeps the parent, and every
    entry is small ints (its packed fourth field too, with the heard-us
    report in its top bits: a heap object there would cost an allocation
    per frame on a 32-bit board)."""
    n = node()
    n.on_frame(beacon(2, 1, 0), -80, LOUD, 1000)
    n.submit(use(1), 1000)
    n.beacon_due = -1
    custody_try(n, 1000, False)  # measured: the packed field is in use
    gc.collect()
    grown = None
    for i in range(1000):
        n.on_frame(beacon(100 + i, 1, 8, 0, (0, ME, 127)), -80, 20, 2000 + i)  # each says it hears us well
        if i == 39:
            gc.collect()
            grown = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    gc.collect()
    late = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    small = True
    for v in n.nbr.values():
        small = small and v[3] < (1 << 30) and v[0] < 256
    return len(n.nbr), n.parent, small, late - grown < 2048


def heard_us(n, addr):
    """The margin (dB) neighbour addr's beacons say it hears node n at, or
    None (not said)."""
    up = (n.nbr[addr][3] >> 22) & 0x7F
    return up - 64 if up else None


def ihu(seq, metric, parent, heard, flags=0):
    """A beacon payload's tail: flags, then (address, margin dB) pairs."""
    out = [flags]
    for a, margin in heard:
        out += [a & 0xFF, margin + 64]
    return tuple(out)


def one_way_known_before_any_payment():
    """The bridge (2) is heard loudly but, its beacon says, does not hear
    us: we had beaconed before it, and it lists everyone it hears. Relay 3
    (metric 4) lists us at 20 dB. The first payment goes to the relay: no
    try is wasted on the bridge. And a bridge that lists us at 20 dB is the
    parent (against 4 + 4 through the relay)."""
    n = node()
    n.on_frame(beacon(3, 1, 4, 2, ihu(1, 4, 2, [(ME, 20)])), -80, LOUD, 1000)
    n.beacon_due = 1000
    adv, now = advertise(n, 1000)  # our beacon (routeless so far, or through 3)
    n.on_frame(beacon(2, 2, 0, 0, ihu(2, 0, 0, [(5, 10), (7, 12)])), -80, LOUD, now + 5000)
    n.on_frame(beacon(3, 2, 4, 2, ihu(2, 4, 2, [(ME, 20)])), -80, LOUD, now + 6000)
    n.submit(use(1), now + 7000)
    dst, now = custody_try(n, now + 7000, True)
    m = node(10)
    m.on_frame(beacon(3, 1, 4, 2, ihu(1, 4, 2, [(10, 20)])), -80, LOUD, 1000)
    m.on_frame(beacon(2, 1, 0, 0, ihu(1, 0, 0, [(10, 20)])), -80, LOUD, 1000)
    return heard_us(n, 2), heard_us(n, 3), n.parent, dst, n.held_ids() == [], m.parent


def forged_or_replayed_reports_change_nothing():
    """In a village with a network key: a beacon not sealed with it, saying
    the bridge hears us at 40 dB, is dropped unread. A replay of the
    bridge's beacon of an older round (it said it did not hear us) after
    its newer one (which lists us at 10 dB) leaves the report as it was; a
    replay of the newer one changes nothing either."""
    key = b"routing-check-village-key-16b"
    n = MeshNode(ME, P, Journal(MemStorage(8192)), Rng(ME), net_key=key, **SMALL)
    sealed = lambda f: F.seal(f, F.net_key(key))
    n.on_frame(sealed(beacon(2, 1, 0, 0, ihu(1, 0, 0, [(5, 10)]))), -80, LOUD, 1000)
    n.beacon_due = 1000
    adv, now = advertise(n, 1000)
    newer = sealed(beacon(2, 2, 0, 0, ihu(2, 0, 0, [(ME, 10)])))
    n.on_frame(newer, -80, LOUD, now + 5000)
    state = lambda: ([list(v) for v in n.nbr.values()], n.parent, n.metric)
    before = state()
    forged = beacon(2, 3, 0, 0, ihu(3, 0, 0, [(ME, 40)]))  # unsealed
    n.on_frame(forged, -80, LOUD, now + 6000)
    n.on_frame(sealed(beacon(2, 1, 0, 0, ihu(1, 0, 0, [(5, 10)]))), -80, LOUD, now + 7000)  # an old round replayed
    after_old = heard_us(n, 2)
    n.on_frame(newer, -80, LOUD, now + 8000)
    return heard_us(n, 2), n.stats["bad_mac"], after_old, [list(v)[3] for v in n.nbr.values()] == [v[3] for v in before[0]]


def liar_cannot_capture_payments():
    """Neighbour 4, an insider, advertises metric 1 and says (before every
    one of our tries) that it hears us at 40 dB, but never acks. Relay 3
    (metric 4) acks. The payment stays in our custody until an ack, goes
    to 3 after a few tries, and none after: the liar's beacons do not pull
    its cost back down while it keeps failing."""
    n = node()
    n.on_frame(beacon(3, 1, 4, 2, ihu(1, 4, 2, [(ME, 20)])), -80, LOUD, 1000)
    lie = beacon(4, 1, 1, 2, ihu(1, 1, 2, [(ME, 40)]))
    n.on_frame(lie, -80, LOUD, 1000)
    n.beacon_due = -1
    now = 2000
    liar_tries = 0
    held = True
    for k in range(12):
        n.submit(use(k + 1), now)
        for _ in range(40):
            n.on_frame(lie, -80, LOUD, now)
            dst, now = custody_try(n, now, False) if n.parent == 4 else custody_try(n, now, True)
            if dst == 4:
                liar_tries += 1
                held = held and len(n.held_ids()) > 0  # custody stays while only the liar was tried
            else:
                break
    return liar_tries <= 4, n.parent, n.held_ids() == [], held


def run():
    return {"ihu_one_way": one_way_known_before_any_payment(), "ihu_forged": forged_or_replayed_reports_change_nothing(),
            "liar": liar_cannot_capture_payments(), "one_way": one_way_parent_is_dropped(), "one_way_advertised": one_way_parent_after_advertising_asks_for_a_round(),
            "busy": busy_parent_that_acks_most_frames_is_kept(), "no_descendant": no_descendant_is_ever_taken(),
            "no_growth": metric_never_grows_within_a_round(), "requests": round_requests_go_up_not_round(),
            "malformed": malformed_beacons_change_nothing(), "bounded": a_thousand_neighbours_stay_bounded()}


if __name__ == "__main__":
    r = run()
    for k in ("ihu_one_way", "ihu_forged", "liar", "one_way", "one_way_advertised", "busy", "no_descendant", "no_growth", "requests", "malformed",
              "bounded"):
        print(k, r[k])
