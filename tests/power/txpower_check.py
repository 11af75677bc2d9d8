"""Transmit power control (pen_node.txpower) tried as an attacker and a bad
link would: forged or unicast frames never lower the power, a neighbour that
stops answering gets full power again, power stays between the lowest priced
step and the cap. Runs on CPython and the unix port.

    micropython -X heapsize=64k tests/power/txpower_check.py
"""
from pen_protocol import frame as F
from pen_node.txpower import TxPower, cap, HOLD_MS

KEY = F.net_key(b"village secret for the power test")
STEPS = [14, 17, 20, 22]
ME, B, C = 5, 7, 9


def sealed(ftype, src, dst, payload, key=KEY):
    f = F.pack(F.Header(ftype, src, dst, src, 0, 0), payload)
    return F.seal(f, key) if key is not None else f


def beacon(src, key=KEY):
    return sealed(F.T_BEACON, src, F.BROADCAST, b"\x00\x01\x02\x00", key)


def record(dst, body=b"r" * 40):
    return sealed(10, ME, dst, body)


class Modem:
    def __init__(self):
        self.configured = []

    def configure(self, cfg):
        self.configured.append(cfg)


def raises(fn, *args):
    try:
        fn(*args)
    except ValueError as e:
        return str(e)
    return None


def check():
    t = TxPower(9, STEPS, 22, KEY)
    assert t.power_for(record(B), 0) == 22  # nothing heard of B: full power
    t.heard(beacon(B), 32, 0)  # B heard at +8 dB (SF9 floor -12.5): 20 dB spare, 10 over the margin
    assert t.power_for(record(B), 1) == 14
    # broadcasts and offers to any route: full power, however strong the neighbours
    assert t.power_for(sealed(F.T_BEACON, ME, F.BROADCAST, b"\x00\x01\x02\x00"), 2) == 22
    assert t.power_for(sealed(10, ME, 0xFFFE, b"x" * 30), 3) == 22
    # a weak link keeps full power: -4 dB is 8.5 dB over the floor, under the 10 dB margin
    t.heard(beacon(C), -16, 4)
    assert t.power_for(record(C, b"c" * 40), 5) == 22
    # a forged broadcast (wrong key) claiming C loud teaches nothing
    t.heard(beacon(C, F.net_key(b"not the village secret!!")), 40, 6)
    t.heard(beacon(C, None), 40, 6)  # unsealed in a sealed village: forged too
    assert t.stats["forged"] == 2 and t.power_for(record(C, b"s" * 40), 7) == 22
    # a unicast frame (possibly sent at reduced power) never teaches either
    t.heard(sealed(10, C, ME, b"u" * 40), 40, 8)
    assert t.snr[C][0] == -16
    # a neighbour that stops answering: the retry of a reduced frame goes at full power...
    r = record(B, b"q" * 40)
    assert t.power_for(r, 10) == 14
    assert t.power_for(r, 4000) == 22 and t.stats["fallbacks"] == 1
    # ...and so does everything to B for HOLD_MS, however loud B's broadcasts
    t.heard(beacon(B), 40, 4001)
    assert t.power_for(record(B, b"n" * 40), 5000) == 22
    assert t.power_for(record(B, b"m" * 40), 4000 + HOLD_MS) == 14  # then reduced again
    # a reduced record rerouted (B did not ack it) to C: B is held at full power too
    w = TxPower(9, STEPS, 22, KEY)
    w.heard(beacon(B), 32, 0)
    w.heard(beacon(C), 32, 0)
    assert w.power_for(record(B), 1) == 14 and w.power_for(record(C), 2) == 22
    assert w.power_for(record(B, b"o" * 40), 3) == 22 and w.power_for(record(C, b"p" * 40), 4) == 22
    # our ack lost: its sender sends the record again and our same ack goes again, at full power
    ack = sealed(F.T_ACK, ME, B, b"\x01\x02\x03\x04")
    assert t.power_for(ack, 5000 + HOLD_MS) == 14 and t.power_for(ack, 6000 + HOLD_MS) == 22
    # a link that got worse is believed at once (down fast), a better one slowly
    u = TxPower(9, STEPS, 22, KEY)
    u.heard(beacon(B), 32, 0)
    u.heard(beacon(B), -16, 1)
    assert u.snr[B][0] == 8 and u.power_for(record(B), 2) == 20
    u.heard(beacon(B), 80, 3)
    assert u.snr[B][0] == 17
    # the cap: the least of preset, chip, board and region; never above it, never below the lowest step
    assert cap(27, STEPS) == 22 and cap(27, STEPS, 20) == 20 and cap(27, STEPS, None, 14) == 14
    low = TxPower(9, STEPS, cap(27, STEPS, None, 14), KEY)  # EU868 h1.4: 14 dBm ERP
    low.heard(beacon(B), 60, 0)
    assert low.levels == [14] and low.power_for(record(B), 1) == 14 and low.power_for(beacon(ME), 1) == 14
    assert raises(TxPower, 9, STEPS, 10, KEY) == "cap 10 dBm is below the lowest step 14 dBm"
    assert raises(TxPower, 6, STEPS, 22, KEY) == "no demodulation floor for SF6"
    mid = TxPower(9, STEPS, 19, KEY)  # a board capped between steps: 19 is the top, never 20
    mid.heard(beacon(B), 8, 0)  # 14.5 dB spare, 4 over the margin: 15 wanted, 17 the step
    assert mid.levels == [14, 17, 19] and mid.power_for(record(B), 1) == 17
    # the radio is told only on a change
    m = Modem()
    t2 = TxPower(9, STEPS, 22, KEY)
    t2.heard(beacon(B), 32, 0)
    assert t2.set_for(m, record(B, b"a" * 40), 1) == 14 and t2.set_for(m, record(B, b"b" * 40), 2) == 14
    assert t2.set_for(m, beacon(ME), 3) == 22
    assert m.configured == [{"output_power": 14}, {"output_power": 22}]
    # a flood of addresses cannot grow the table past its bound
    for a in range(100, 160):
        t2.heard(beacon(a), 0, a)
    assert len(t2.snr) == 32 and B not in t2.snr
    # an unsealed village: unsealed broadcasts teach
    v = TxPower(9, STEPS, 22, None)
    v.heard(beacon(B, None), 32, 0)
    assert v.power_for(sealed(10, ME, B, b"r" * 40, None), 1) == 14
    # the board's path: NodePower hands the radio's SNR over and meters each frame at its power
    from pen_node.sleep import NodePower, Meter
    p = NodePower(Meter(), 22)
    p.txpower, p.modem = TxPower(9, STEPS, 22, KEY), Modem()
    rx = Rx(beacon(B))
    rx.snr = 32
    p.heard(rx, 0)
    p.heard(beacon(C), 0)  # a frame without an SNR (not from the radio) teaches nothing
    f = record(B, b"k" * 40)
    assert p.before_send(f, 1, KEY) == f and p.modem.configured == [{"output_power": 14}]
    p.sent(1, 501)
    assert p.before_send(record(C, b"k" * 40), 600, KEY) is not None and p.tx_dbm == 22  # rerouted: B held
    p.sent(600, 1100)
    assert p.meter.tx_ms == {14: 500, 22: 500} and C not in p.txpower.snr and p.txpower.stats["fallbacks"] == 1
    print("txpower ok")


class Rx(bytearray):
    """lora.RxPacket's shape: the frame's bytes and the radio's SNR (dB x4)."""


check()
