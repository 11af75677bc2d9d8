"""Transmit power control (pen_node.txpower) on both runtimes, in the
simulator (every frame between the lowest step and the region's cap; the
busiest relay measured with and without), and on a board's boot path."""
import powerpath  # noqa: F401

import pytest

from powerpath import HERE, run_on_cpython
from pen.sim.engine import Run
from pen.sim.power import region_cap
from pen.sim.scenario import topology


def test_txpower_rules_on_cpython():
    assert run_on_cpython("txpower_check.py") == "txpower ok"


def test_txpower_rules_under_micropython_in_64k(mpy):
    assert mpy(str(HERE / "txpower_check.py"), heap="64k").strip() == "txpower ok"


def test_region_caps_come_from_regions_json():
    assert region_cap("eu868-sf9") == 27 and region_cap("eu868-sf9-1pct") == 14
    assert region_cap("us915-sf9") == 30 and region_cap("no-such-preset") is None


@pytest.mark.parametrize("preset,top", [("eu868-sf9", 22), ("eu868-sf9-1pct", 14)])
def test_in_the_simulator_every_frame_goes_between_the_lowest_step_and_the_cap(preset, top):
    r = Run(topology(20, 3, preset, 1), "pen", 200, 10, 3)
    r.power.tx_power_control()
    r.run()
    assert r.power.top_dbm == top <= region_cap(preset)
    used = set()
    for t in r.power.tx_us:
        used.update(t)
    assert used and min(used) >= 14 and max(used) == top
    st = r.power.tpc
    assert sum(t.stats["reduced"] for t in st) > 0 or top == 14


def test_pen_power_prices_the_village_with_tx_power_control_when_asked(capsys):
    import json
    from pen.cli import main
    outs = []
    for extra in ((), ("--tx-power-control",)):
        assert main(["power", "--role", "relay", "--json", *extra]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    off, on = outs
    assert off["tx_power_control"] is False and list(off["tx_ms_by_dbm"]) == ["22"]  # everything at full power
    assert on["tx_power_control"] is True and set(on["tx_ms_by_dbm"]) <= {"14", "17", "20", "22"}
    assert main(["power", "--board", "ttgo-lora32-v2.1", "--role", "relay", "--json", "--tx-power-control"]) == 0
    sx1276 = json.loads(capsys.readouterr().out)
    assert set(sx1276["tx_ms_by_dbm"]) <= {"7", "13", "17", "20"} and "20" in sx1276["tx_ms_by_dbm"]


def test_the_medium_carries_a_frame_at_its_own_power():
    from pen.sim.medium import Medium, Topology
    from pen_protocol.airtime import PRESETS
    t = Topology([(0, 0), (300, 0), (600, 0)], [0], PRESETS["eu868-sf9"], 5)
    f = bytes([11, 0x1B, 0, 1, 0, 2, 0, 1]) + bytes(40)
    _, full = Medium(t, 5).start(0, f, 0)
    _, low = Medium(t, 5).start(0, f, 0, power_db=-8.0)  # the same fading draws, 8 dB less
    assert set(full[4]) == set(low[4]) and all(abs(full[4][j] - low[4][j] - 8.0) < 1e-9 for j in full[4])


def test_pen_power_says_how_long_it_sent_at_each_power(capsys):
    from pen.cli import main
    assert main(["power", "--role", "relay", "--tx-power-control"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if "time on air" in ln]
    assert len(line) == 1 and line[0].strip().startswith("time on air      22 dBm ")
    assert line[0].endswith("(transmit power control)")
