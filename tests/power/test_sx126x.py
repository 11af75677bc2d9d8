"""pen_node.sx126x against a recorded SPI command sequence (SX1261/2 DS rev
2.1 section 13 layouts), on CPython and under the unix port."""
import powerpath  # noqa: F401
import pytest

from pen_node import sx126x as X, boardsleep as D
from pen_node.preamble import PreambleByDestination
from spidouble import SpiDouble, ModemDouble

SYM_US = 4096  # SF9 / BW125


def modem(irqs=()):
    spi = SpiDouble(irqs)
    return ModemDouble(spi), spi


def no_sleep(us):
    pass


def test_prepare_selects_dcdc_and_latches_preamble_header_and_cad_irqs():
    m, spi = modem()
    X.prepare(m)
    # SetRegulatorMode(DC-DC); SetDioIrqParams(irq 0x03d7, dio1 0x0203, 0, 0)
    assert spi.log == ["9601", "0803d7020300000000"]


def test_cad_on_a_clear_channel_sends_setcadparams_setcad_and_resumes_rx():
    m, spi = modem([0, X.IRQ_CAD_DONE])
    slept = []
    assert X.channel_busy(m, 9, SYM_US, slept.append) is False
    assert spi.log == [
        "12",  # GetIrqStatus: nothing arriving
        "8001", "02ffff",  # standby (STDBY_XOSC), clear IRQs
        "880116 0a 00 000000".replace(" ", ""),  # SetCadParams: 2 symbols, detPeak 22, detMin 10, CAD_ONLY
        "02ffff", "c5",  # clear, SetCad
        "12",  # GetIrqStatus: CadDone
        "02ffff",
        "8001", "02ffff", "8fff00", "8c000800ff0100", "82ffffff",  # continuous RX again
    ]
    assert slept == [3 * SYM_US]


def test_cad_reports_activity_when_cad_detected():
    m, spi = modem([0, 0, X.IRQ_CAD_DONE | X.IRQ_CAD_DETECTED])
    slept = []
    assert X.channel_busy(m, 9, SYM_US, slept.append) is True
    assert slept == [3 * SYM_US, SYM_US]  # polled once more until CadDone
    assert spi.log[-5:] == ["8001", "02ffff", "8fff00", "8c000800ff0100", "82ffffff"]


def test_a_frame_already_arriving_is_busy_and_is_not_aborted_by_a_cad():
    m, spi = modem([X.IRQ_HEADER_VALID | X.IRQ_PREAMBLE_DETECTED])
    assert X.channel_busy(m, 9, SYM_US, no_sleep) is True
    assert spi.log == ["12", "020014"]  # no standby, no SetCad: only the two latches cleared


def test_a_frame_the_driver_has_not_read_is_busy_and_its_irq_is_left_alone():
    # clearing RxDone for a CAD would lose the frame before the driver reads it
    m, spi = modem([X.IRQ_RX_DONE | X.IRQ_HEADER_VALID | X.IRQ_PREAMBLE_DETECTED, X.IRQ_CAD_DONE])
    assert X.channel_busy(m, 9, SYM_US, no_sleep) is True
    assert spi.log == ["12"]  # read, nothing written


def test_a_chip_that_never_finishes_cad_raises_instead_of_hanging():
    m, spi = modem([0] * 20)
    with pytest.raises(RuntimeError, match="no CadDone"):
        X.channel_busy(m, 9, SYM_US, no_sleep)


def test_rx_duty_cycle_command_bytes():
    m, spi = modem()
    X.start_rx_duty_cycle(m, 4 * SYM_US, 21 * SYM_US)
    # rx 16.384 ms = 1048 steps (0x000418), sleep 86.016 ms = 5505 steps (0x001581)
    assert spi.log[-3:] == ["8001", "02ffff", "94000418001581"]
    assert spi.log[:4] == ["8001", "02ffff", "8fff00", "8c000800ff0100"]


@pytest.mark.parametrize("rx,sl", [(0, 1000), (1000, 0), (1000, 300 * 1000 * 1000)])
def test_rx_duty_cycle_refuses_periods_the_chip_cannot_hold(rx, sl):
    m, spi = modem()
    with pytest.raises(ValueError, match="out of range"):
        X.start_rx_duty_cycle(m, rx, sl)
    assert "94" not in [c[:2] for c in spi.log]


def test_leaf_preamble_is_the_sleep_and_a_latch_on_each_side():
    assert D.leaf_preamble(9, 53) == 69 and D.leaf_preamble(12, 21) == 37  # 8 symbols at SF7-12
    assert D.leaf_preamble(6, 53) == 77 and D.leaf_preamble(5, 53) == 77  # 12 at SF5-6 (DS 6.1.1.1)
    assert [D.min_symbols(sf) for sf in range(5, 13)] == [12, 12, 8, 8, 8, 8, 8, 8]


# (sf, bw, preamble, tcxo) -> (rx_us, sleep_us, transition_us), by hand from the rule:
# symbol = 2^sf / bw; sleep = symbol x (preamble - 2m) less the transition (tcxo + 1000 us);
# window = max((symbol x (preamble + 1) - (symbol x (preamble - 2m) - 1000)) / 2, symbol x (m + 1))
@pytest.mark.parametrize("sf,bw,pre,tcxo,want", [
    (7, 125000, 69, 0, (9216, 53272, 1000)),  # 1024 us symbols: (71680 - 53272) / 2 = 9204 < 9 x 1024
    (9, 125000, 69, 1000, (36864, 215088, 2000)),  # 4096 us: 9 symbols; 53 x 4096 - 2000
    (9, 125000, 17, 0, (36864, 3096, 1000)),  # the shortest preamble that leaves a sleep at SF9
    (12, 125000, 69, 0, (294912, 1735704, 1000)),  # 32768 us: 9 symbols
    (6, 125000, 77, 0, (6900, 26136, 1000)),  # 512 us, m = 12: (39936 - 26136) / 2 = 6900 > 13 x 512
    (5, 125000, 77, 0, (3700, 12568, 1000)),  # 256 us, m = 12: (19968 - 12568) / 2 = 3700 > 3328
])
def test_duty_cycle_against_hand_computed_values(sf, bw, pre, tcxo, want):
    assert D.duty_cycle(sf, bw, pre, tcxo) == want


@pytest.mark.parametrize("sf,bw,pre,tcxo", [
    (9, 125000, 8, 0),  # the preset's own preamble: less than one latch on each side
    (9, 125000, 16, 0),  # exactly two latches: no sleep between them
    (11, 250000, 16, 0),  # LongFast's 16
    (6, 125000, 24, 0),  # SF6 needs 12 on each side
    (5, 500000, 25, 0),  # one 64 us symbol of sleep is shorter than the chip's own wake (1 ms)
    (9, 125000, 17, 3200),  # 4096 us of sleep, less a slow TCXO's start: nothing left
])
def test_a_preamble_too_short_to_sleep_means_listening_all_the_time(sf, bw, pre, tcxo):
    assert D.duty_cycle(sf, bw, pre, tcxo) is None


def test_a_relay_at_the_presets_preamble_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="relay_rx_duty: a 8-symbol preamble at SF9 leaves no sleep "
                                         r"\(the chip needs 8 symbols of it awake, so more than 16\)"):
        D.relay_duty(9, 125000, 8, 1000)
    assert D.relay_duty(9, 125000, 24) == D.duty_cycle(9, 125000, 24)


def test_a_leaf_sleep_shorter_than_a_wake_is_refused():
    with pytest.raises(ValueError, match="leaf_rx: 0 sleep symbols at SF9"):
        D.leaf_duty(9, 125000, 0)
    assert D.leaf_duty(9, 125000, 53, 1000) == (69, (36864, 215088, 2000))


def test_duty_registers_in_15625_ns_steps_up_to_24_bits():
    assert X.duty_registers(36864, 215088) == (2359, 13765)  # x 64 / 1000, rounded down
    assert X.duty_registers(262143984, 16) == ((1 << 24) - 2, 1)
    for rx, sl in ((262144000, 1000), (1000, 262144000), (15, 1000), (1000, 15)):  # 2^24 steps; under one step
        with pytest.raises(ValueError, match="out of range"):
            X.duty_registers(rx, sl)
    # a sleep of 600 SF12 symbols at 7.8 kHz (314 s) fits no register: refused, not wrapped
    dc = D.duty_cycle(12, 7812, 616)
    with pytest.raises(ValueError, match="out of range"):
        X.duty_registers(dc[0], dc[1])


def test_the_board_arms_exactly_the_periods_the_rule_gives():
    m, spi = modem()
    rx, sl, tr = D.duty_cycle(9, 125000, 69, D.tcxo_us({"tcxo_mv": 1800}))
    X.start_rx_duty_cycle(m, rx, sl)
    assert spi.log[-1] == "94" + "000937" + "0035c5"  # 2359 and 13765 steps
    assert D.tcxo_us({"tcxo_mv": None}) == 0


def test_long_preamble_only_toward_sleepy_destinations_and_only_on_change():
    m, spi = modem()
    p = PreambleByDestination(m, 8, 29, {0x0102}, 4000)
    to_leaf = bytes((10, 0x1B, 0, 1, 0x01, 0x02, 0, 1)) + b"x"
    to_relay = bytes((10, 0x1B, 0, 1, 0x00, 0x07, 0, 1)) + b"x"
    assert [p.set_for(f, 0) for f in (to_relay, to_leaf, to_leaf, to_relay)] == [8, 29, 29, 8]
    assert m.configured == [{"preamble_len": 29}, {"preamble_len": 8}]


def test_a_receipt_digest_always_goes_long_for_the_leaves_asleep():
    # a digest is a flood (no destination) that names leaves' payments: sent short, a leaf in RX duty cycle
    # outside its window would sleep through it and never see its receipts
    m, spi = modem()
    p = PreambleByDestination(m, 8, 29, {0x0102}, 4000)
    digest = bytes((0x22, 0x00, 0x00, 0x07, 0xFF, 0xFF, 0x00, 0x07)) + b"x" * 20
    beacon = bytes((0x21, 0x00, 0x00, 0x07, 0xFF, 0xFF, 0x00, 0x07)) + b"x"
    p.heard(bytes((10, 0x1B, 0x01, 0x02, 0x00, 0x07, 0x01, 0x02)) + b"x", 1000)  # even in the leaf's window
    assert [p.preamble_for(f, 1100) for f in (digest, beacon)] == [29, 8]


def test_a_leaf_heard_within_its_window_gets_the_short_preamble():
    m, spi = modem()
    p = PreambleByDestination(m, 8, 29, {0x0102}, 4000)
    from_leaf = bytes((10, 0x1B, 0x01, 0x02, 0x00, 0x07, 0x01, 0x02)) + b"x"
    from_other = bytes((10, 0x1B, 0x00, 0x09, 0x00, 0x07, 0x00, 0x09)) + b"x"
    ack_to_leaf = bytes((0x20, 0x00, 0x00, 0x07, 0x01, 0x02, 0x00, 0x07)) + b"abcd"
    p.heard(from_other, 1000)
    assert p.preamble_for(ack_to_leaf, 1100) == 29  # nothing heard from the leaf itself
    p.heard(from_leaf, 10000)
    assert p.preamble_for(ack_to_leaf, 10050) == 8  # its window is open: the ack goes short
    assert p.preamble_for(ack_to_leaf, 10000 + 4000 - X.LISTEN_MARGIN_MS) == 8
    assert p.preamble_for(ack_to_leaf, 10000 + 4000 - X.LISTEN_MARGIN_MS + 1) == 29  # too close to its end


SCRIPT = ("from spidouble import SpiDouble, ModemDouble\nfrom pen_node import sx126x as X\n"
          "from pen_node import boardsleep as D\ns = SpiDouble([0, X.IRQ_CAD_DONE | X.IRQ_CAD_DETECTED])\nm = ModemDouble(s)\nX.prepare(m)\n"
          "print(X.channel_busy(m, 9, 4096, lambda us: None))\n"
          "print(D.duty_cycle(9, 125000, 69, 1000), D.duty_cycle(5, 125000, 77), D.duty_cycle(9, 125000, 16),"
          " D.duty_cycle(5, 500000, 25), D.duty_cycle(12, 125000, 69), D.leaf_duty(6, 125000, 53))\n"
          "X.start_rx_duty_cycle(m, 16384, 86016)\n"
          "print(' '.join(s.log))\n")


@pytest.mark.micropython
def test_the_same_command_bytes_under_the_unix_port(mpy, capsys):
    from conftest import ROOT
    out = mpy(("import sys\nsys.path.append('%s')\n" % (ROOT / "tests" / "power")) + SCRIPT)
    exec(SCRIPT, {})
    here = capsys.readouterr().out
    assert out == here
    assert out.split("\n")[0] == "True" and out.split()[-1] == "94000418001581"
    assert out.split("\n")[1] == "(36864, 215088, 2000) (3700, 12568, 1000) None None (294912, 1735704, 1000) " \
                                 "(77, (6900, 26136, 1000))"
