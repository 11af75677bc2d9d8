"""How a board's /pen.json turns into its power setup (boardsleep.board_power)
and its listen-before-talk (radio.channel_busy_for), over machine, esp32 and
SPI doubles: which nodes sleep, on which wake sources, which listen in RX
duty cycle, and who gets the long preamble."""
import powerpath  # noqa: F401
import json
import sys
import types

import pytest

from conftest import ROOT
from pen_protocol.airtime import PRESETS
from pen_node import radio as R, boardsleep as S
from pen_node.sx126x import IRQ_CAD_DONE
from machinedouble import Esp32Double
from spidouble import SpiDouble, ModemDouble

P = PRESETS["eu868-sf9"]
FIGS = json.loads((ROOT / "hardware" / "power.json").read_text())
# the leaves' sleep pinned, so that the register bytes below do not move with the chosen default:
# 53 SF9 symbols -> preamble 69, window 9 symbols (36864 us = 2359 steps), sleep 53 x 4096 us less the
# TCXO's start and 1 ms (215088 us = 13765 steps): boardsleep.duty_cycle, checked by hand in test_sx126x.py
FIGS53 = dict(FIGS, leaf_rx=dict(FIGS["leaf_rx"], sleep_symbols=53))


def board(name):
    return json.loads((ROOT / "hardware" / "boards" / (name + ".json")).read_text())


@pytest.fixture
def rig(monkeypatch):
    machine = types.ModuleType("machine")

    class Pin:
        IN = 0

        def __init__(self, n, mode=None):
            self.n = n

        def value(self):
            return 0

    machine.Pin = Pin
    machine.lightsleep = lambda ms: None
    esp32 = Esp32Double()
    mod = types.ModuleType("esp32")
    mod.WAKEUP_ANY_HIGH, mod.WAKEUP_ALL_LOW = 1, 0
    mod.wake_on_ext0, mod.wake_on_ext1 = esp32.wake_on_ext0, esp32.wake_on_ext1
    monkeypatch.setitem(sys.modules, "machine", machine)
    monkeypatch.setitem(sys.modules, "esp32", mod)
    import time
    monkeypatch.setattr(time, "sleep_ms", lambda ms: None, raising=False)  # MicroPython's
    spi = SpiDouble()
    m = ModemDouble(spi)
    m._radio_isr = lambda pin: None
    return esp32, m, spi


def test_a_relay_sleeps_on_dio1_after_switching_the_radio_to_dcdc(rig):
    esp32, m, spi = rig
    p = S.board_power({"board": "heltec-v3"}, board("heltec-v3"), P, m, lambda: 0, False, FIGS)
    assert spi.log[:2] == ["9601", "0803d7020300000000"]
    assert p.sleeper is not None and p.listen is None and not p.leaf and p.preamble is None
    assert [(a[0], a[1].n, a[2]) for a in esp32.armed] == [("ext0", 14, 1)]
    assert p.tx_dbm == 22  # the preset allows 27 dBm, the SX1262 gives 22


def test_a_bridge_does_not_sleep_its_pc_powers_it(rig):
    esp32, m, spi = rig
    p = S.board_power({"bridge": True}, board("heltec-v3"), P, m, lambda: 0, True, FIGS)
    assert p.sleeper is None and esp32.armed == []


def test_a_node_with_a_link_sleeps_only_if_the_link_can_wake_it(rig):
    esp32, m, spi = rig
    assert S.board_power({}, board("heltec-v3"), P, m, lambda: 0, True, FIGS).sleeper is None
    p = S.board_power({"link_wake_pin": 21}, board("heltec-v3"), P, m, lambda: 0, True, FIGS)
    assert [(a[0], getattr(a[1], "n", None) or a[1][0].n, a[2]) for a in esp32.armed] == [
        ("ext0", 14, 1), ("ext1", 21, 0)]


def test_a_link_wake_pin_that_cannot_wake_the_mcu_is_refused(rig):
    esp32, m, spi = rig
    with pytest.raises(ValueError, match="link_wake_pin 44 cannot wake a esp32s3"):
        S.board_power({"link_wake_pin": 44}, board("heltec-v3"), P, m, lambda: 0, True, FIGS)  # UART0 RX
    assert esp32.armed == []


def test_a_board_whose_radio_irq_cannot_wake_the_mcu_stays_awake_and_says_so(rig, capsys):
    esp32, m, spi = rig
    p = S.board_power({}, board("t3-s3"), P, m, lambda: 0, False, FIGS)  # DIO1 on GPIO33 of an ESP32-S3
    assert p.sleeper is None and esp32.armed == []
    assert capsys.readouterr().out == "pen: no light sleep: the radio IRQ on GPIO33 cannot wake a esp32s3\n"


def test_a_leaf_listens_in_duty_cycle_with_the_boards_periods(rig):
    esp32, m, spi = rig
    p = S.board_power({"leaf": True}, board("heltec-v3"), P, m, lambda: 0, False, FIGS53)
    assert p.leaf and p.listen is not None and p.meter.duty == (36864, 215088, 2000)
    p.listen.due(4000, 60000)  # the boot window is over: arm
    assert spi.log[-1] == "940009370035c5"  # 2359 and 13765 steps of 15.625 us


def test_a_leaf_on_a_board_without_tcxo_sleeps_the_tcxo_start_longer(rig):
    esp32, m, spi = rig
    p = S.board_power({"leaf": True}, dict(board("heltec-v3"), tcxo_mv=None), P, m, lambda: 0, False, FIGS53)
    assert p.meter.duty == (36864, 216088, 1000)


def test_a_leaf_sleep_the_rule_cannot_serve_is_refused_before_the_chip_is_touched(rig):
    esp32, m, spi = rig
    bad = dict(FIGS, leaf_rx=dict(FIGS["leaf_rx"], sleep_symbols=0))
    with pytest.raises(ValueError, match="leaf_rx: 0 sleep symbols at SF9 is shorter than a wake"):
        S.board_power({"leaf": True}, board("heltec-v3"), P, m, lambda: 0, False, bad)
    assert spi.log == [] and esp32.armed == []


def test_a_relay_in_rx_duty_cycle_at_the_presets_preamble_is_refused_before_the_chip_is_touched(rig):
    esp32, m, spi = rig
    with pytest.raises(ValueError, match="relay_rx_duty: a 8-symbol preamble at SF9 leaves no sleep"):
        S.board_power({"relay_rx_duty": True}, board("heltec-v3"), P, m, lambda: 0, False, FIGS)
    assert spi.log == [] and esp32.armed == []


def test_a_relay_in_rx_duty_cycle_at_a_preset_with_a_long_enough_preamble_has_no_window(rig):
    from pen_protocol.airtime import Preset
    esp32, m, spi = rig
    long9 = Preset("long9", 9, 125000, 5, 24, 869525, 100, 0, 27)  # 24 symbols: 8 asleep between two latches
    p = S.board_power({"relay_rx_duty": True}, board("heltec-v3"), long9, m, lambda: 0, False, FIGS)
    assert not p.leaf and p.meter.duty == (36864, 30768, 2000)  # 9 symbols awake, 8 x 4096 - 2000 asleep
    p.listen.due(0, 60000)  # no window: armed at once
    assert spi.log[-1] == "940009370007b1"  # 36864 us = 2359 steps, 30768 us = 1969 steps
    beacon = bytes((0x21, 0x1B, 0, 2, 0xFF, 0xFF, 0, 2, 0))
    assert p.before_send(beacon, 0) == beacon  # a relay beacons


def test_senders_stretch_the_preamble_only_toward_the_configured_leaves(rig):
    esp32, m, spi = rig
    p = S.board_power({"sleepy": [0x0203], "bridge": True}, board("heltec-v3"), P, m, lambda: 0, True, FIGS53)
    to_leaf = bytes((10, 0x1B, 0, 1, 0x02, 0x03, 0, 1, 0))
    assert p.before_send(to_leaf, 0) == to_leaf and m.configured == [{"preamble_len": 69}]
    p.heard(bytes((10, 0x1B, 0x02, 0x03, 0x00, 0x01, 0x02, 0x03, 0)), 100)  # the leaf's own frame
    assert p.before_send(to_leaf, 200) == to_leaf and m.configured[-1] == {"preamble_len": 8}


def test_a_leaf_keeps_its_beacons_off_the_air_and_ignores_any_route_offers(rig):
    esp32, m, spi = rig
    p = S.board_power({"leaf": True}, board("heltec-v3"), P, m, lambda: 0, False, FIGS)
    beacon = bytes((0x21, 0x1B, 0, 2, 0xFF, 0xFF, 0, 2, 0))
    any_route = bytes((10, 0x1B, 0, 5, 0xFF, 0xFE, 0, 5, 0))
    to_it = bytes((11, 0x1B, 0, 5, 0x00, 0x02, 0, 1, 0))
    assert p.before_send(beacon, 0) is None and p.ignores(any_route) is True
    assert p.ignores(to_it) is False and p.before_send(to_it, 0) == to_it
    relay = S.board_power({}, board("heltec-v3"), P, m, lambda: 0, False, FIGS)
    assert relay.before_send(beacon, 0) == beacon and relay.ignores(any_route) is False


def test_an_sx1276_board_sleeps_on_dio0_without_sx126x_commands_cad_or_duty_cycle(rig):
    esp32, m, spi = rig
    p = S.board_power({"leaf": True}, board("ttgo-lora32-v2.1"), P, m, lambda: 0, False, FIGS)
    assert spi.log == [] and p.listen is None and p.tx_dbm == 17
    assert [(a[0], a[1].n) for a in esp32.armed] == [("ext0", 26)]  # the SX127x driver's RX-done line
    assert R.channel_busy_for(board("ttgo-lora32-v2.1"), P, m) is None


def test_listen_before_talk_on_an_sx1262_is_a_cad(rig):
    esp32, m, spi = rig
    spi.irqs = [0, IRQ_CAD_DONE]
    slept = []
    busy = R.channel_busy_for(board("heltec-v3"), P, m, slept.append)
    assert busy(1234) is False and "c5" in spi.log and slept == [3 * 4096]


def test_a_cad_takes_the_leaf_out_of_its_duty_cycle_and_the_next_nap_arms_it_again(rig):
    esp32, m, spi = rig
    p = S.board_power({"leaf": True}, board("heltec-v3"), P, m, lambda: 0, False, FIGS53)
    p.listen.due(5000, 60000)
    assert p.listen.duty_since == 5000
    spi.irqs = [0, IRQ_CAD_DONE]
    busy = p.lbt(R.channel_busy_for(board("heltec-v3"), P, m, lambda us: None))
    assert busy(9000) is False and spi.log[-1] == "82ffffff"  # the CAD left the chip in continuous RX
    assert p.listen.duty_since == -1 and p.meter.ms[1] == 4000  # 4 s in duty cycle counted, no more
    p.listen.due(9000, 60000)
    assert spi.log[-1] == "940009370035c5"
    assert p.lbt(None) is None and S.NodePower(p.meter, 22).lbt(busy) is busy


@pytest.mark.micropython
def test_the_board_wiring_runs_under_the_unix_port(mpy):
    # machine and esp32 doubles put in sys.modules, as the board's own modules would be found
    here = str(ROOT / "tests" / "power")
    out = mpy("import sys, json\nsys.path.append('%s')\n" % here
              + "class Pin:\n IN = 0\n def __init__(self, n, mode=None): self.n = n\n def value(self): return 0\n"
              "class Machine:\n Pin = Pin\n def lightsleep(self, ms): pass\n"
              "from machinedouble import Esp32Double\n"
              "e = Esp32Double()\nsys.modules['machine'] = Machine()\nsys.modules['esp32'] = e\n"
              "import time\n"
              "from spidouble import SpiDouble, ModemDouble\n"
              "from pen_protocol.airtime import PRESETS\nfrom pen_node.boardsleep import board_power\n"
              "s = SpiDouble()\nm = ModemDouble(s)\nm._radio_isr = lambda pin: None\n"
              "figs = json.load(open('%s/hardware/power.json'))\n" % ROOT
              + "figs['leaf_rx']['sleep_symbols'] = 53\n"
              "b = json.load(open('%s/hardware/boards/heltec-v3.json'))\n" % ROOT
              + "p = board_power({'leaf': True}, b, PRESETS['eu868-sf9'], m, lambda: 0, False, figs)\n"
              "p.nap(5000, 60000)\n"
              "print(p.leaf, p.meter.duty, [(a[0], a[1].n) for a in e.armed], ' '.join(s.log))\n", heap="128k")
    assert out.strip() == "True (36864, 215088, 2000) [('ext0', 14)] 9601 0803d7020300000000 8001 02ffff " \
                          "8fff00 8c000800ff0100 82ffffff 8001 02ffff 940009370035c5"


class _Rx(bytes):
    """lora.RxPacket as the rx task hands it over: the frame, its SNR (dB x4)."""
    snr = 0


def test_tx_power_control_is_off_unless_asked_then_meters_each_frame_at_its_power(rig):
    from pen_protocol import frame as F
    esp32, m, spi = rig
    assert S.board_power({}, board("heltec-v3"), P, m, lambda: 0, False, FIGS).txpower is None
    p = S.board_power({"tx_power_control": True, "max_power_dbm": 30}, board("heltec-v3"), P, m, lambda: 0,
                      False, FIGS)
    t = p.txpower
    assert t.top == 22 and t.levels == [14, 17, 20, 22]  # the SX1262's steps; never above its 22 dBm
    key = F.net_key(b"village secret for the board")
    t.set_key(key)
    b = _Rx(F.seal(F.pack(F.Header(F.T_BEACON, 7, F.BROADCAST, 7, 0, 0), b"\x00\x01\x02\x00"), key))
    b.snr = 32  # heard at +8 dB
    p.heard(b, 0)
    to7 = F.seal(F.pack(F.Header(11, 5, 7, 5, 0, 0), b"z" * 40), key)
    m.configured = []
    assert p.before_send(to7, 10, key) == to7 and m.configured == [{"output_power": 14}]
    p.sent(10, 510)
    assert p.meter.tx_ms == {14: 500}
    assert p.before_send(to7, 4000, key) == to7 and m.configured[-1] == {"output_power": 22}  # unacked: full
    p.sent(4000, 4500)
    assert p.meter.tx_ms == {14: 500, 22: 500}
