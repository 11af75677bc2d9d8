"""pen_node.power: the firmware's model prices the time a node spent in each
state with one board's figures from hardware/power.json."""
import powerpath  # noqa: F401
import json

import pytest

from conftest import ROOT
from pen_node import power as P

HW = str(ROOT / "hardware")


@pytest.fixture
def b():
    return P.load_budget("heltec-v3", HW)


def test_tx_current_is_the_lowest_table_step_at_or_above_the_power(b):
    assert [b.tx_ma(d) for d in (2, 14, 15, 17, 20, 22)] == [45.0, 45.0, 90.0, 90.0, 105.0, 118.0]
    assert b.tx_ma(27) == 118.0 and b.top_dbm() == 22  # a 27 dBm preset still gets the chip's top step


def test_a_board_that_never_sleeps_is_charged_its_awake_mcu(b):
    m = P.Meter()  # nothing recorded: listening and idle awake the whole hour
    assert b.average_ma(m, 3600000) == pytest.approx(4.6 + 22.0 + 0.165)


def test_a_sleeping_relay_is_priced_state_by_state(b):
    hour = 3600000
    m = b.sleeping_meter(hour, {22: 36000}, 1000, 1500)  # 1 % on air, 1,000 frames, 1,500 wakes
    parts = dict(zip(b.PARTS, b.parts(m, hour)))
    assert parts["radio_tx"] == pytest.approx(0.01 * 118)
    assert parts["radio_rx"] == pytest.approx(0.99 * 4.6)
    active_ms = 1000 * 5 + 1500 * 8
    assert parts["mcu_active"] == pytest.approx(active_ms * 40.0 / hour)
    assert parts["mcu_light_sleep"] == pytest.approx((hour - active_ms) * 0.24 / hour)
    assert parts["mcu_idle"] == 0 and parts["board"] == pytest.approx(0.165)
    assert b.average_ma(m, hour) == pytest.approx(sum(parts.values()))


def test_rx_duty_cycle_is_priced_window_wake_and_sleep(b):
    dc = (36864, 215088, 2000)  # SF9, a 53-symbol sleep on a board with a TCXO (boardsleep.duty_cycle)
    want = (36864 * 4.6 + 2000 * 0.6 + 215088 * 0.0012) / (36864 + 2000 + 215088)
    assert b.rx_duty_ma(dc) == pytest.approx(want) and 0.67 < want < 0.68
    m = b.sleeping_meter(1000, {}, 0, 0, rxdc_ms=1000, duty=dc)
    assert b.parts(m, 1000)[1] == 0 and b.parts(m, 1000)[2] == pytest.approx(want)


def test_time_in_duty_cycle_with_no_duty_cycle_to_price_it_is_an_error_not_a_guess(b):
    m = b.sleeping_meter(1000, {}, 0, 0, rxdc_ms=1000)
    with pytest.raises(ValueError, match="time in RX duty cycle with no duty cycle to price it"):
        b.parts(m, 1000)
    assert b.parts(b.sleeping_meter(1000, {}, 0, 0), 1000)[2] == 0  # none spent: no price needed


def test_the_leaves_duty_cycle_follows_the_preset_and_the_board(b):
    sleep = b.leaf["sleep_symbols"]
    pre, dc = b.leaf_duty(9, 125000)
    assert pre == sleep + 16 and dc == (36864, sleep * 4096 - 2000, 2000)  # heltec-v3 has a TCXO
    from pen_protocol.airtime import PRESETS
    for name in ("eu868-sf9", "us915-sf9", "eu868-longfast"):
        with pytest.raises(ValueError, match="relay_rx_duty: a (8|16)-symbol preamble"):
            b.relay_duty(PRESETS[name])


def test_activity_can_never_exceed_the_time_that_passed(b):
    m = b.sleeping_meter(100, {}, 1000, 1000)
    assert m.ms[P.M_ACTIVE] == 100 and m.ms[P.M_SLEEP] == 0


def test_unknown_boards_are_refused():
    with pytest.raises(ValueError, match="unknown board nope"):
        P.load_budget("nope", HW)
    figs = json.loads((ROOT / "hardware" / "power.json").read_text())
    del figs["boards"]["t3-s3"]
    with pytest.raises(ValueError, match="no power figures for board t3-s3"):
        P.Budget(figs, json.loads((ROOT / "hardware" / "boards" / "t3-s3.json").read_text()))


def test_legacy_average_ma_is_the_sleeping_relay_of_the_default_board(b):
    hour = 3600000
    assert P.average_ma(36000 * 1000, 1000, hour, 27) == pytest.approx(
        b.average_ma(b.sleeping_meter(hour, {27: 36000}, 1000, 1000), hour))
    assert P.average_ma(0, 0, 0) == 0.0


@pytest.mark.micropython
def test_the_model_gives_the_same_figure_under_the_unix_port(mpy, b):
    out = mpy("from pen_node import power as P\nb = P.load_budget('heltec-v3', '%s')\n"
              "m = b.sleeping_meter(3600000, {22: 36000}, 1000, 1500, 600000, b.leaf_duty(9, 125000)[1])\n"
              "print('%%.6f' %% b.average_ma(m, 3600000))\n" % HW)
    m = b.sleeping_meter(3600000, {22: 36000}, 1000, 1500, 600000, b.leaf_duty(9, 125000)[1])
    assert out.strip() == "%.6f" % b.average_ma(m, 3600000)


def test_a_board_sleeps_only_if_its_radio_irq_can_wake_the_mcu():
    can = {name: P.load_budget(name, HW).can_sleep for name in
           ("heltec-v3", "t3-s3", "tbeam-v1.1-sx1262", "tbeam-v1.1-sx1276", "ttgo-lora32-v2.1")}
    # the T3-S3 wires DIO1 to GPIO33, not an RTC GPIO on an ESP32-S3
    assert can == {"heltec-v3": True, "t3-s3": False, "tbeam-v1.1-sx1262": True, "tbeam-v1.1-sx1276": True,
                   "ttgo-lora32-v2.1": True}
