"""BridgeCore batches receipts waiting for the village into signed digests
(pen.bridge.digests): what goes as a digest, what goes alone, and that an
answer marks exactly the receipts a digest named."""
from pen import build as B
from pen.bridge.digests import DigestSigner
from pen.bridge.driver import BridgeCore, MemQueue
from pen.bridge.queue import BridgeQueue
from pen.keys import Signer
from pen.samples import accounted_batch
from pen_protocol import digest as G
from pen_protocol import records as R

CTB = Signer.from_phrase("bridge-digest ctb node")
OTHER = Signer.from_phrase("bridge-digest other node")
USER = Signer.from_phrase("bridge-digest user")


def receipts(n, key=CTB, first=1):
    return accounted_batch(key, n, first, USER)


def core(queue=None, **kw):
    """No hold unless asked: the rules below are those of a receipt ready to go."""
    kw.setdefault("hold", 0)
    return BridgeCore(queue if queue is not None else MemQueue(), digests=DigestSigner(CTB, clock=lambda: 77), **kw)


def names(raw):
    return [e[0] for e in G.parse(raw).entries]


def test_receipts_waiting_go_down_as_digests_of_at_most_fourteen():
    c = core(repeat=1)
    rs = receipts(20)
    for r in rs:
        c.queue_down(r)
    down = c.downlink(0, 2)
    assert [raw[0] for _, raw in down] == [G.T_DIGEST, G.T_DIGEST]
    assert names(down[0][1]) == [R.parse(r).fields[0] for r in rs[:14]]
    assert names(down[1][1]) == [R.parse(r).fields[0] for r in rs[14:]]
    assert G.verify(down[0][1], [CTB.public_key])[1] is None
    assert c.downlink(0) == []  # everything is in flight: nothing twice
    c.down_answer(down[0][0], True, 0)
    assert c.queue.down_backlog() == 6
    c.down_answer(down[1][0], True, 0)
    assert c.queue.down_backlog() == 0 and c.inflight == set()
    assert c.stats["digests"] == 2 and c.stats["receipts_in_digests"] == 20


def test_a_lone_receipt_goes_alone_unless_digests_start_at_one():
    """By custody (acks, retries) while the queue is short: a digest is a
    flood with no ack (DIGEST_MIN)."""
    r = receipts(1)[0]
    c = core()
    c.queue_down(r)
    assert c.downlink(0) == [(R.parse(r).id, r)]
    c = core(digest_min=1)
    c.queue_down(r)
    (key, raw), = c.downlink(0)
    assert raw[0] == G.T_DIGEST and names(raw) == [R.parse(r).fields[0]] and len(raw) == 85


def test_other_records_go_alone():
    c2 = core()
    pub = B.publication(CTB, 1, "price", 0, {0: 1}).raw
    c2.queue_down(pub)
    c2.queue_down(receipts(1, first=5)[0])
    down = c2.downlink(0)
    assert [raw[0] for _, raw in down] == [R.PUBLICATION, R.ACCOUNTED]


def test_each_receipt_is_named_twice_the_second_time_after_the_gap_fresh_ones_first():
    c = core(repeat_gap=30)
    first = receipts(3)
    for r in first:
        c.queue_down(r)
    (k1, d1), = c.downlink(0, 1)
    c.down_answer(k1, True, 0)
    assert c.queue.down_backlog() == 3  # named once: still to be named again
    assert c.downlink(10) == []  # within the gap: nothing, and never as single ACCOUNTED frames
    fresh = receipts(13, first=10)
    for r in fresh:
        c.queue_down(r)
    (k2, d2), = c.downlink(31, 1)  # 13 fresh first, then one of the three named before
    assert names(d2) == [R.parse(r).fields[0] for r in fresh + first[:1]]
    c.down_answer(k2, True, 31)
    assert c.queue.down_backlog() == 15 and R.parse(first[0]).id in c.queue.sent  # named twice: sent
    (k3, d3), = c.downlink(32, 1)
    assert names(d3) == [R.parse(r).fields[0] for r in first[1:]]  # the fresh ones wait for their gap
    c.down_answer(k3, True, 32)
    assert c.queue.down_backlog() == 13  # the first three named twice: sent


def test_receipts_of_another_key_are_never_named_they_go_alone():
    c = core()
    theirs = receipts(3, key=OTHER)
    mine = receipts(3, first=10)
    for r in theirs + mine:
        c.queue_down(r)
    down = c.downlink(0, 4)
    assert down[0][1][0] == G.T_DIGEST and names(down[0][1]) == [R.parse(r).fields[0] for r in mine]
    assert [raw for _, raw in down[1:]] == theirs


def test_a_refused_digest_releases_its_receipts_and_names_them_again():
    c = core(pause=5, repeat=1)
    for r in receipts(4):
        c.queue_down(r)
    (key, raw), = c.downlink(0, 1)
    c.down_answer(key, False, 0)
    assert c.queue.down_backlog() == 4 and c.inflight == set()
    assert c.downlink(1) == []  # paused
    (key2, raw2), = c.downlink(6, 1)
    assert names(raw2) == names(raw)
    c.down_forget(key2)  # the link lost the request: all may go again
    assert c.inflight == set() and len(c.downlink(7, 1)) == 1


def test_without_a_signer_every_receipt_goes_alone():
    c = BridgeCore(MemQueue())
    rs = receipts(5)
    for r in rs:
        c.queue_down(r)
    assert [raw for _, raw in c.downlink(0)] == rs[:4]


def test_digests_on_the_durable_queue_mark_every_named_receipt_sent(tmp_path):
    q = BridgeQueue(tmp_path / "b.sqlite")
    c = core(q, repeat=1)
    rs = receipts(3)
    for r in rs:
        c.queue_down(r)
    (key, raw), = c.downlink(0, 1)
    c.down_answer(key, True, 0)
    assert all(q.was_sent(R.parse(r).id) for r in rs)
    assert q.next_down() == []


def busy(c):
    """The core as after HOLD_BUSY + 1 fresh receipts at time 0: a busy
    village, where receipts wait their hold for company."""
    from pen.bridge.driver import HOLD_BUSY
    c.recent = [0] * (HOLD_BUSY + 1)
    return c


def test_in_a_quiet_village_a_receipt_waits_for_no_company():
    c = core(hold=40, repeat=1, quiet_repeat=None)
    lone = receipts(1)[0]
    c.queue_down(lone)
    assert c.downlink(0) == [(R.parse(lone).id, lone)]  # at once, by custody: acked, retried a hop
    c = core(hold=40, repeat=1, quiet_repeat=None)
    two = receipts(2)
    for r in two:
        c.queue_down(r)
    (k, d), = c.downlink(0)  # two waiting: one digest, at once
    assert names(d) == [R.parse(r).fields[0] for r in two]


def test_a_fresh_receipt_waits_its_hold_for_company_a_full_digest_goes_at_once():
    c = busy(core(hold=40, repeat=1, quiet_repeat=None))
    first = receipts(2)
    for r in first:
        c.queue_down(r)
    assert c.downlink(0) == [] and c.downlink(39.9) == []  # nobody has waited the hold: more may come
    more = receipts(12, first=10)
    for r in more[:11]:
        c.queue_down(r)
    assert c.downlink(10) == []  # 13: not full yet
    c.queue_down(more[11])
    (k, d), = c.downlink(10.5)  # 14: a full digest goes at once
    assert names(d) == [R.parse(r).fields[0] for r in first + more]
    c.down_answer(k, True, 10.5)
    assert c.queue.down_backlog() == 0


def test_after_its_hold_a_lone_receipt_goes_alone_two_go_as_one_digest():
    c = busy(core(hold=40, repeat=1, quiet_repeat=None))
    lone = receipts(1)[0]
    c.queue_down(lone)
    assert c.downlink(0) == [] and c.downlink(39) == []
    assert c.downlink(40) == [(R.parse(lone).id, lone)]  # by custody: acked, retried a hop
    c = busy(core(hold=40, repeat=1, quiet_repeat=None))
    two = receipts(2)
    c.queue_down(two[0])
    assert c.downlink(0) == []
    c.queue_down(two[1])
    assert c.downlink(30) == []  # the second came later; the first's hold decides
    (k, d), = c.downlink(40)
    assert names(d) == [R.parse(r).fields[0] for r in two]


def test_namings_fall_with_the_load_five_quiet_two_busy_one_overloaded():
    from pen.bridge.driver import HOLD_BUSY, HOLD_OVERLOAD, HOLD_WINDOW, QUIET_REPEAT
    hold = 40

    def namings(count):
        c = core(hold=hold, repeat_gap=30)
        rs = receipts(count, first=1000 + count)
        for r in rs:
            c.queue_down(r)
        rid, ref = R.parse(rs[0]).id, R.parse(rs[0]).fields[0]
        n, t = 0, 0
        while rid in c.queue.down:
            for k, raw in c.downlink(t):
                n += raw[0] == G.T_DIGEST and ref in names(raw)
                c.down_answer(k, True, t)
            t += 1
        return n, c

    assert namings(2)[0] == QUIET_REPEAT == 5
    assert namings(HOLD_BUSY + 1)[0] == 2
    n, c = namings(HOLD_OVERLOAD + 1)
    assert n == 1
    # once they are HOLD_WINDOW holds old, the village is quiet again
    assert c._namings(hold * HOLD_WINDOW) == 1 and c._namings(hold * HOLD_WINDOW + 1) == QUIET_REPEAT


def test_the_load_count_is_bounded_whatever_comes():
    from pen.bridge.driver import HOLD_OVERLOAD
    c = core(hold=40)
    for r in receipts(10 * HOLD_OVERLOAD):
        c.queue_down(r)
    c.downlink(0)
    assert len(c.recent) <= HOLD_OVERLOAD + 1 and c._namings(0) == 1
