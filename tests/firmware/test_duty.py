"""Duty-cycle and dwell law per region, on its own and inside MeshNode."""
import fwpath  # noqa: F401  (protocol/ and firmware/ on the path)
import pytest

from pen_protocol.airtime import PRESETS
from pen_node import duty as D
from pen_node.dutyrecord import DutyRecord, RECORD_BYTES
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage, PowerCut
from pen_node.mesh import MeshNode
from pen_protocol import frame as F
from medium_node import XorShift
from meshkit import use_record

HOUR = 3600000


def saturate(preset, seconds=3 * 3600, frame_len=94, priority=D.P_PAYMENT):
    """Send frame_len-byte frames as fast as the law allows; return the
    largest airtime found in any rolling hour (checked each minute) and the
    number of frames refused."""
    d = D.DutyCycle(preset.duty_permille, preset.dwell_ms)
    air = preset.airtime_us(frame_len)
    sent = []  # (end_ms, airtime_us)
    t = 0
    refused = 0
    while t < seconds * 1000:
        if d.allows(air, t, priority):
            d.spend(air, t)
            sent.append((t, air))
            t += air // 1000 + 1
        else:
            refused += 1
            w = d.wait_ms(air, t, priority)
            assert w > 0
            t += w
    worst = 0
    for start in range(0, seconds * 1000 - HOUR + 1, 60000):
        used = sum(a for (s, a) in sent if start <= s < start + HOUR)
        worst = max(worst, used)
    return worst, refused, len(sent)


@pytest.mark.parametrize("name,limit_s", [("eu868-sf9", 360), ("eu868-sf9-1pct", 36)])
def test_eu868_sub_band_budget_holds_in_every_rolling_hour(name, limit_s):
    worst, refused, sent = saturate(PRESETS[name])
    assert worst <= limit_s * 1000000
    assert worst >= limit_s * 1000000 * 9 // 10  # and it is used, not wasted
    assert refused > 0


def test_publications_stop_at_their_share_leaving_room_for_payments():
    p = PRESETS["eu868-sf9-1pct"]
    worst, _, _ = saturate(p, seconds=3600, priority=D.P_BULK)
    assert worst <= 36 * 1000000 * 70 // 100
    d = D.DutyCycle(p.duty_permille)
    air = p.airtime_us(94)
    while d.allows(air, 1000, D.P_BULK):
        d.spend(air, 1000)
    assert not d.allows(air, 1000, D.P_BULK)
    assert d.allows(air, 1000, D.P_PAYMENT)  # money still goes


def test_us915_refuses_a_frame_longer_than_the_dwell_time():
    p = PRESETS["us915-sf9"]
    d = D.DutyCycle(p.duty_permille, p.dwell_ms)
    assert d.allows(p.airtime_us(p.max_frame()), 0)
    assert p.airtime_us(p.max_frame()) <= 400000 < p.airtime_us(p.max_frame() + 1)
    assert not d.allows(p.airtime_us(p.max_frame() + 1), 0)
    assert d.wait_ms(p.airtime_us(255), 0) == -1  # never


def test_us915_longfast_cannot_carry_a_payment_and_says_so():
    p = PRESETS["us915-longfast"]
    n = MeshNode(2, p, Journal(MemStorage(4096)), XorShift(1))
    assert n.submit(use_record(1), 0) is False
    assert n.stats["refused"] == 1


@pytest.mark.parametrize("name", ["eu868-sf9", "eu868-sf9-1pct"])
def test_node_relaying_and_originating_never_exceeds_budget(name):
    p = PRESETS[name]
    n = MeshNode(2, p, Journal(MemStorage(65536)), XorShift(1))
    n.parent = 1
    n.metric = 1
    n.nbr[1] = [0, 40, 0, 0]
    t = 0
    on_air = []
    i = 0
    while t < 2 * HOUR:
        # keep it busy: a fresh payment whenever custody has room (acks never come)
        if len(n.pending) < 10:
            n.submit(use_record(i), t)
            i += 1
        f = n.next_tx(t)
        if f is not None:
            on_air.append((t, p.airtime_us(len(f))))
            t += p.airtime_us(len(f)) // 1000 + 1
            n.on_tx_done(t)
        else:
            t = max(t + 1, n.next_wakeup_ms(t))
        n.tick(t)
    limit = p.duty_permille * 3600 * 1000
    for start in range(0, HOUR + 1, 60000):
        assert sum(a for (s, a) in on_air if start <= s < start + HOUR) <= limit
    assert n.stats["duty_blocked"] > 0 or name == "eu868-sf9"


def test_channel_load_counts_the_last_minute_only():
    c = D.ChannelLoad()
    c.add(6000000, 1000)  # 6 s heard in the first 10 s
    assert c.permille(5000) == 100
    assert c.permille(59999) == 100
    assert c.permille(60000) == 0  # its bucket has left the minute
    c.add(3000000, 3600000)
    assert c.permille(3600000) == 50


def test_receipt_waits_while_the_channel_is_busy_and_goes_when_it_calms():
    from pen_protocol import frame as F
    from meshkit import accounted_record
    p = PRESETS["eu868-sf9"]
    n = MeshNode(2, p, Journal(MemStorage(8192)), XorShift(1))
    ref = accounted_record(1)[3:11]
    n.rev.put(ref, 3)  # 3 handed us that payment: the receipt goes back to it
    t = 100000
    # a busy minute: someone else's long frames fill a fifth of the air
    for k in range(20):
        n.on_frame(F.pack(F.Header(F.T_BEACON, 9, F.BROADCAST, 9, 0, 0), bytes(4)), -90, 20, t - 5000 + k * 100)
        n.heard.add(600000, t - 5000 + k * 100)
    n.on_frame(F.record_frame(accounted_record(1), 1, 2, 1), -90, 20, t)
    sent = []
    for step in range(0, 80000, 500):
        f = n.next_tx(t + step)
        if f is not None:
            n.on_tx_done(t + step)
            if f[0] == 11:
                sent.append(step)
    assert sent and sent[0] >= 45000  # held until the busy seconds left the minute


@pytest.mark.parametrize("priority,share", [(D.P_PAYMENT, 100), (D.P_VOTE, 90), (D.P_BULK, 70)])
def test_each_priority_stops_at_its_share_of_the_hour(priority, share):
    p = PRESETS["eu868-sf9"]  # 10 %: 360 s an hour
    d = D.DutyCycle(p.duty_permille)
    air = 100000  # 100 ms frames: the shares fall on frame boundaries
    n = 0
    while d.allows(air, 0, priority):
        d.spend(air, 0)
        n += 1
    assert n * air == 360 * 1000000 * share // 100
    assert d.duty(0) == 100 * share // 100


def test_wait_ms_is_when_the_oldest_minute_leaves_the_hour():
    d = D.DutyCycle(10)  # 1 %: 36 s an hour
    d.spend(20000000, 5 * 60000 + 123)  # 20 s in minute 5
    d.spend(16000000, 30 * 60000)  # 16 s in minute 30: the budget is spent
    now = 40 * 60000 + 500
    assert not d.allows(1000000, now)
    # minute 5 leaves the rolling hour when minute 65 begins
    # a frame bigger than what minute 5 frees waits for minute 30 to leave as well
    assert d.wait_ms(21000000, now) == 90 * 60000 - now
    # minute 5 leaves the rolling hour when minute 65 begins (time only goes forward)
    w = d.wait_ms(1000000, now)
    assert w == 65 * 60000 - now
    assert not d.allows(1000000, now + w - 1)
    assert d.allows(1000000, now + w)


def test_a_duty_limit_of_zero_means_no_limit_and_dwell_alone_still_refuses():
    d = D.DutyCycle(0, 400)
    assert d.allows(400000, 0) and d.wait_ms(400000, 0) == 0
    assert not d.allows(400001, 0) and d.wait_ms(400001, 0) == -1


def test_us915_sf9_max_frame_is_the_longest_frame_inside_400_ms():
    p = PRESETS["us915-sf9"]
    assert (p.dwell_ms, p.duty_permille) == (400, 0)
    assert p.max_frame() == 156  # hardware/regions.json says the same
    assert p.airtime_us(156) <= 400000 < p.airtime_us(157)
    assert PRESETS["eu868-sf9"].max_frame() == 255  # no dwell limit in EU868: a full LoRa frame


def beacon(seq):
    return F.pack(F.Header(F.T_BEACON, 1, F.BROADCAST, 1, 0, 0), bytes((seq >> 8, seq & 255, 0, 0)))


@pytest.mark.parametrize("name", ["eu868-sf9-1pct", "eu868-sf9"])
def test_relayed_frames_count_against_the_relays_own_budget(name):
    """Node 2 originates nothing: every payment it sends is a child's (3)
    that it relays to the bridge (1). Its airtime, relays and acks alike, is
    what the duty cycle counts, and every rolling hour stays in the law."""
    p = PRESETS[name]
    n = MeshNode(2, p, Journal(MemStorage(65536)), XorShift(1))
    t = 1000
    n.on_frame(beacon(1), -80, 20, t)
    assert n.parent == 1
    on_air = []
    i = 0
    seq = 1
    relayed = 0
    while t < 2 * HOUR:
        if t // 600000 >= seq:  # the bridge beacons every 10 minutes
            seq += 1
            n.on_frame(beacon(seq), -80, 20, t)
        if len(n.pending) < 6:  # the child always has another payment for us
            i += 1
            n.on_frame(F.record_frame(use_record(i), 3, 2, 3), -80, 20, t)
        f = n.next_tx(t)
        if f is None:
            t = max(t + 1, min(n.next_wakeup_ms(t), t + 5000))
            continue
        air = p.airtime_us(len(f))
        on_air.append((t, air))
        t += air // 1000 + 1
        n.on_tx_done(t)
        hdr, _ = F.parse(f)
        if hdr.dst == 1 and hdr.type != F.T_ACK and hdr.type != F.T_BEACON:
            relayed += 1
            t += 30
            n.on_frame(F.ack_frame([F.frame_id(f)], 1, 2), -80, 20, t)  # the bridge takes it
    assert relayed > 20
    assert n.duty.total_us == sum(a for (_, a) in on_air)  # relays and acks all counted
    limit = p.duty_permille * 3600 * 1000
    worst = max(sum(a for (s, a) in on_air if start <= s < start + HOUR) for start in range(0, HOUR + 1, 60000))
    assert worst <= limit
    if name == "eu868-sf9-1pct":
        assert n.stats["duty_blocked"] > 0 and worst >= limit * 8 // 10  # the law, not the load, held it back


def spend_like_a_node(d, record, until_ms, t=0, frame_len=94):
    """Frames as fast as the law allows, the record saved after each (as
    main.tx_task does); returns the time reached."""
    air = PRESETS["eu868-sf9"].airtime_us(frame_len)
    while t < until_ms and d.allows(air, t):
        d.spend(air, t)
        record.maybe_save(d, t)
        t += air // 1000 + 1
    return t


def booted(preset_name="eu868-sf9"):
    """A node's law and its record, freshly booted on blank storage."""
    p = PRESETS[preset_name]
    st = MemStorage(RECORD_BYTES)
    d = D.DutyCycle(p.duty_permille, p.dwell_ms)
    rec = DutyRecord(st)
    assert rec.restore(d, 0) == 0  # nothing spent yet
    return p, st, d, rec


def test_a_reboot_does_not_give_a_node_a_fresh_duty_budget():
    p, st, d, rec = booted()
    spend_like_a_node(d, rec, 20 * 60000)  # 20 minutes of a busy relay: the whole 360 s
    spent = d.used_us(20 * 60000)
    assert spent > 350 * 1000000
    # power cut; the board's clock starts again at 0
    d2 = D.DutyCycle(p.duty_permille)
    got = DutyRecord(st).restore(d2, 0)
    assert spent - d.budget_us() // 100 - p.airtime_us(94) <= got <= spent
    assert d2.used_us(0) == got
    # in the hour after boot it may only spend what was left of the budget (and the unsaved bit)
    t = spend_like_a_node(d2, DutyRecord(st), 60 * 60000 - 1)
    assert d2.used_us(t) <= d.budget_us()
    assert d2.used_us(t) - got < 360 * 1000000 - spent + d.budget_us() // 100 + p.airtime_us(94)


def test_the_duty_record_is_written_rarely_and_not_at_all_without_a_duty_limit():
    p, st, d, rec = booted()
    spend_like_a_node(d, rec, 20 * 60000)
    assert 90 <= st.writes <= 110  # a hundredth of the budget each, not one per frame (~680 frames)
    _, st2, d2, rec2 = booted("us915-sf9")
    for t in range(0, 600000, 1000):
        d2.spend(100000, t)
        rec2.maybe_save(d2, t)
    assert st2.writes == 0


def test_a_torn_duty_record_write_keeps_the_other_slot():
    p, st, d, rec = booted()
    spend_like_a_node(d, rec, 5 * 60000)
    before = rec.saved
    st.cut_after = 5  # the next save is cut mid-slot
    with pytest.raises(PowerCut):
        spend_like_a_node(d, rec, 10 * 60000, t=5 * 60000 + 1)
    got = DutyRecord(st).restore(D.DutyCycle(p.duty_permille), 0)
    assert got == before


def test_an_unreadable_duty_record_charges_the_whole_budget():
    p = PRESETS["eu868-sf9"]
    st = MemStorage(RECORD_BYTES)
    st.write(0, b"\x00\x01" * 12)  # neither slot checks out: the law comes first
    d = D.DutyCycle(p.duty_permille)
    assert DutyRecord(st).restore(d, 0) == d.budget_us()
    assert not d.allows(p.airtime_us(94), 0)
    assert d.allows(p.airtime_us(94), 61 * 60000)
