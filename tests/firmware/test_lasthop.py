"""The last hop the bridge schedules (firmware/pen_node/lasthop.py): grants
sized by children's backlog, acks batched into grants. Each test tries to
break a rule as an attacker or a bad channel would: grants without the
village MAC, forged and replayed batched acks, grants lost on air, a relay
busy with its own children, a thousand senders."""
import fwpath  # noqa: F401  (protocol/ and firmware/ on the path)

import pytest

from pen_protocol import frame as F
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node import lasthop as LH
from pen_node.lasthop import ScheduledNode, grant_frame, grant_acks_at
from medium_node import XorShift
from meshkit import Village, use_record, line, beacon

SF9 = PRESETS["eu868-sf9"]
MIN = 60000
SECRET = b"pen/1/test-village-secret"
KEY = F.net_key(SECRET)
OTHER = F.net_key(b"pen/1/another-village-secret")
BRIDGE = 1
ME = 2


def child(**kw):
    """A scheduling node whose parent is bridge 1 (it heard its beacon)."""
    n = ScheduledNode(ME, SF9, Journal(MemStorage(32768)), XorShift(5), net_key=SECRET, **kw)
    n.on_frame(F.seal(beacon(BRIDGE, 1, 0), KEY), -80, 40, 0)
    assert n.parent == BRIDGE
    return n


def grant(entries, ids, src=BRIDGE):
    return grant_frame(entries, ids, src)


def send_one(n, now_ms, records=(0,)):
    """n takes records and sends its custody frame: (the frame as sealed on air, its frame id)."""
    for i in records:
        assert n.submit(use_record(i), now_ms)
    t = now_ms
    while True:
        f = n.next_tx(t)
        if f is not None:
            t += 600
            n.on_tx_done(t)
            if f[0] != F.T_BEACON:  # (its route, advertised first)
                body = f[:-F.TAG_LEN]
                return f, F.frame_id(body)
        t += 50
        assert t < now_ms + 10000, "nothing sent"


def custody_state(n):
    return (sorted(n.pending), sorted(n.by_fid), n.lh_slot_left, n.lh_slot_from, sorted(n.journal.live))


# -- the frames -----------------------------------------------------------------


def test_grant_frame_round_trips_and_refuses_malformed_payloads():
    g = grant([(2, 3), (0x1234, 1)], [b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"])
    hdr, payload = F.parse(g)
    assert hdr.type == LH.T_GRANT and hdr.dst == F.BROADCAST and hdr.hop_limit == 0
    i = grant_acks_at(payload)
    assert i == 1 + 2 * 3
    assert bytes(payload[i:]) == b"\x01\x02\x03\x04\x05\x06\x07\x08"
    assert grant_acks_at(b"") == "truncated"
    assert grant_acks_at(b"\x02\x00\x02\x01") == "truncated"  # two entries announced, one byte of them
    assert grant_acks_at(b"\x01\x00\x02\x01\x01\x02") == "bad-grant"  # ids not whole
    assert grant_acks_at(b"\x01\x00\x02\x00") == "bad-grant"  # a slot of zero units
    assert grant_acks_at(b"\x00") == "bad-grant"  # names nothing and acks nothing
    with pytest.raises(F.FrameError):
        grant([(2, 0)], [])
    with pytest.raises(F.FrameError):
        grant([], [b"\x00" * 4] * 61)  # over one frame


def test_a_scheduled_childs_bundle_carries_its_backlog():
    n = child()
    f, fid = send_one(n, 1000, records=(0, 1, 2))
    hdr, payload = F.parse(f[:-F.TAG_LEN])
    assert hdr.type == LH.T_SBUNDLE and hdr.dst == BRIDGE
    carried = len(F.bundle_records(payload[1:]))
    assert payload[0] == 3 - carried  # what it still holds for the bridge; no slot flag: random access


def test_a_child_with_nothing_more_to_tell_sends_the_plain_frame():
    n = child()
    f, fid = send_one(n, 1000)
    hdr, payload = F.parse(f[:-F.TAG_LEN])
    # a USE alone in compact form (3 bytes shorter), as random access sends it
    assert hdr.type == 10 and hdr.compact and len(f) == F.HEADER_LEN + len(use_record(0)) - 1 - 3 + F.TAG_LEN
    assert n.lh_hold_until == 0  # nothing told: no wait for a slot


# -- authenticity ------------------------------------------------------------------


def test_a_grant_or_batched_ack_without_the_village_mac_changes_nothing():
    n = child()
    f, fid = send_one(n, 1000)
    before = custody_state(n)
    lbt = n.lbt_until
    g = grant([(ME, 4)], [fid])
    for bad in (g, F.seal(g, OTHER), F.seal(g, KEY)[:-1] + b"\x00", F.seal(g, KEY)[:-2]):
        n.on_frame(bad, -80, 40, 2000)
    assert custody_state(n) == before  # custody kept, no slot granted
    assert n.lbt_until == lbt  # and no air reserved
    assert n.stats["bad_mac"] == 4
    n.on_frame(F.seal(g, KEY), -80, 40, 2000)  # the same grant sealed: acked, and a slot
    assert fid not in n.by_fid and not n.pending and n.lh_slot_left


def test_a_forged_or_replayed_batched_ack_never_releases_custody_the_bridge_did_not_take():
    n = child()
    # a genuine grant of the bridge, recorded earlier, acking frames long gone
    old = F.seal(grant([(ME, 1)], [b"\xaa\xbb\xcc\xdd"]), KEY)
    f, fid = send_one(n, 1000)
    before = custody_state(n)
    n.on_frame(old, -80, 40, 1500)  # replayed: names no frame of ours in flight
    assert sorted(n.pending) == before[0] and fid in n.by_fid
    # an insider's grant from a neighbour that is not our parent, naming our frame
    n.on_frame(F.seal(beacon(7, 1, 3), KEY), -80, 0, 1600)
    assert n.parent == BRIDGE
    n.on_frame(F.seal(grant([], [fid], src=7), KEY), -80, 40, 1700)
    assert sorted(n.pending) == before[0] and fid in n.by_fid
    # a grant from our parent naming a frame id one bit off ours
    off = bytes((fid[0] ^ 1,)) + fid[1:]
    n.on_frame(F.seal(grant([], [off]), KEY), -80, 40, 1800)
    assert sorted(n.pending) == before[0] and fid in n.by_fid
    assert sorted(n.journal.live) == before[4]


def test_a_bridge_never_acks_in_a_grant_a_slot_frame_it_could_not_hold():
    b = ScheduledNode(BRIDGE, SF9, Journal(MemStorage(32768), max_live=1), XorShift(3), is_bridge=True,
                      net_key=SECRET)
    entries = [(9, 10, use_record(i)[1:]) for i in range(2)]  # two records, room for one
    f = LH.sbundle(F.bundle_frame(F.Header(F.T_BUNDLE, 9, BRIDGE, 9, 7), entries), LH._SLOT_FLAG | 4)
    b.on_frame(F.seal(f, KEY), -80, 40, 1000)
    assert len(b.journal.live) == 1
    assert b.lh_acks == [] and b.acks == []  # neither batched nor acked now: the child keeps them all
    assert b.lh_kids[9][0] == 4  # its backlog is still news


# -- bad channels ------------------------------------------------------------------


def star(n_kids, seed=1, **kw):
    links = {}
    for c in range(2, 2 + n_kids):
        links[(1, c)] = (20, 0)  # the children hear the bridge, not each other: hidden terminals
    return Village(SF9, links, seed=seed, cls=ScheduledNode, **kw)


def lose(v, ftype, share=1000):
    """Frames of type ftype never arrive (share per mille of them)."""
    deliver = v._deliver
    rng = XorShift(99)

    def lossy(t):
        if t[1][0] == ftype and rng.getrandbits(10) % 1000 < share:
            v.lost = getattr(v, "lost", 0) + 1
            return
        deliver(t)
    v._deliver = lossy


def load(v, kids, rounds, gap_ms, start=0):
    k = start
    for _ in range(rounds):
        for c in kids:
            assert v.submit(c, use_record(k))
            k += 1
        v.run(gap_ms)
    return k


def test_grants_batch_the_acks_of_a_busy_last_hop():
    v = star(6)
    v.run(2 * MIN)
    k = load(v, range(2, 8), 20, 5000)
    v.run(10 * MIN)
    got = v.all_delivered()
    assert len(got) == len(set(got)) == k
    b = v.nodes[1]
    assert b.stats["grants"] > 0 and b.stats["batched_acks"] > 0
    # every batched ack names a slot frame (a lost one is sent again, not acked)
    assert sum(v.nodes[c].stats["slot_frames"] for c in range(2, 8)) >= b.stats["batched_acks"]
    # fewer frames from the bridge than payments it acked: grants name many
    assert b.stats["grants"] + b.stats["acks_sent"] < k


def test_a_child_whose_grants_are_all_lost_still_delivers_by_random_access():
    v = star(4)
    lose(v, LH.T_GRANT)
    v.run(2 * MIN)
    k = load(v, range(2, 6), 15, 4000)
    v.run(15 * MIN)
    got = v.all_delivered()
    assert len(set(got)) == k  # every payment, by random access after the wait for a slot
    assert v.lost > 0 and sum(v.nodes[c].stats["slot_frames"] for c in range(2, 6)) == 0
    assert all(not v.nodes[c].pending for c in range(2, 6))


def test_lost_batched_acks_are_repaired_and_custody_is_released_only_by_an_ack():
    v = star(4, seed=3)
    lose(v, LH.T_GRANT, share=400)  # 40 % of grants lost: slot frames' acks with them
    v.run(2 * MIN)
    k = load(v, range(2, 6), 20, 3000)
    v.run(20 * MIN)
    got = v.all_delivered()
    assert len(set(got)) == k and v.lost > 0
    assert sum(v.nodes[c].stats["slot_frames"] for c in range(2, 6)) > 0
    for c in range(2, 6):  # nothing left behind, nothing released without its ack
        assert not v.nodes[c].pending and not v.nodes[c].journal.live


def test_a_child_with_its_own_children_is_not_starved():
    """Relay 2 carries leaf 8's payments (8 hears only 2) while five other
    children of the bridge keep the last hop busy: 8's payments all arrive,
    and in time."""
    links = {(1, c): (20, 0) for c in range(2, 8)}
    links[(2, 8)] = (20, 0)
    v = Village(SF9, links, cls=ScheduledNode)
    v.run(3 * MIN)
    assert v.nodes[8].parent == 2
    t0 = v.now
    k = 0
    for _ in range(20):
        for c in (3, 4, 5, 6, 7, 8, 8):
            assert v.submit(c, use_record(k))
            k += 1
        v.run(4000)
    v.run(10 * MIN)
    got = set(v.all_delivered())
    assert len(got) == k
    assert v.nodes[1].stats["grants"] > 0 and v.nodes[2].stats["slot_frames"] > 0
    assert v.now - t0 < 15 * MIN


# -- bounded state -----------------------------------------------------------------


def test_tables_stay_bounded_under_1000_distinct_senders():
    b = ScheduledNode(BRIDGE, SF9, Journal(MemStorage(32768)), XorShift(3), is_bridge=True, net_key=SECRET)
    rec = use_record(1)
    for s in range(1000):
        src = 100 + s
        f = LH.sbundle(F.bundle_frame(F.Header(F.T_BUNDLE, src, BRIDGE, src, 7), [(src, 10, rec[1:])]),
                       LH._SLOT_FLAG | 9)
        b.on_frame(F.seal(f, KEY), -80, 40, 1000 + s)
    assert len(b.lh_kids) == LH.MAX_KIDS
    assert len(b.lh_acks) <= 12  # _MAX_GRANT_ACKS
    t = 10 ** 6
    while True:  # its acks first (the frames past a cycle's batch are acked at once), then the grant
        g = b.next_tx(t)
        if g is not None:
            b.on_tx_done(t)
            if g[0] == LH.T_GRANT:
                break
        t += 100
        assert t < 10 ** 6 + 60000
    hdr, payload = F.parse(g[:-F.TAG_LEN])
    assert hdr.type == LH.T_GRANT and len(payload) <= 109  # _GRANT_MAX_PAYLOAD
    n = child()
    for s in range(1000):  # a thousand schedulers' grants at a child: nothing grows
        n.on_frame(F.seal(grant([(ME, 1)], [bytes((s & 255, s >> 8, 0, 0))], src=100 + s), KEY), -80, 40, 2000 + s)
    assert n.lh_slot_left == 0 and not n.lh_slot_fids and len(n.nbr) <= 32


@pytest.mark.micropython
def test_a_scheduled_village_runs_under_micropython():
    """The scheduler and its children are the same code on a board's
    runtime: a star of four hidden children under load, every payment once,
    grants sent and acks batched (no CPython-only construct on the path)."""
    from conftest import run_micropython
    code = """
from pen_protocol.airtime import PRESETS
from pen_node.lasthop import ScheduledNode
from meshkit import Village, use_record
links = {}
for c in range(2, 6):
    links[(1, c)] = (20, 0)
v = Village(PRESETS["eu868-sf9"], links, journal_bytes=8192, cls=ScheduledNode)
v.run(120000)
k = 0
for r in range(12):
    for c in range(2, 6):
        v.submit(c, use_record(k))
        k += 1
    v.run(3000)
v.run(900000)
got = v.all_delivered()
b = v.nodes[1]
print(k, len(got), len(set(got)), b.stats["grants"] > 0, b.stats["batched_acks"] > 0)
"""
    out = run_micropython("import sys\nsys.path.append('tests/firmware')\n" + code, heap="512k", timeout=300)
    assert out.split() == ["48", "48", "48", "True", "True"]
