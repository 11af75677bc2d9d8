"""The simulator's power report (host/pen/sim/power.py) and `pen power`: the
firmware's model priced over what each node's loop did in the 50-node
village, seed 1; leaves in RX duty cycle lose and delay nothing that the
same village awake delivers (on the default, realistic medium, which loses a
few on time either way), and change nothing on symmetric links."""
import powerpath  # noqa: F401
import json

import pytest

from pen.cli import main
from pen.sim.engine import Run, DEADLINE_S
from pen.sim.power import relays_for_no_one
from pen.sim.scenario import topology

DUR_MS = 60 * 60000 + DEADLINE_S * 1000


@pytest.fixture(scope="module")
def village():
    plain = Run(topology(50, 1, "eu868-sf9", 1), "pen", 200, 60, 1)
    m0 = plain.run()
    leaves = relays_for_no_one(plain)
    duty = Run(topology(50, 1, "eu868-sf9", 1), "pen", 200, 60, 1, leaves=leaves)
    m1 = duty.run()
    return plain, m0, duty, m1, leaves


@pytest.mark.xfail(strict=True, reason="since routing on delivery measured both ways (issue 15 item 3), seed 1 at "
                   "200/h: asleep, every payment on time as awake (185/186) but 184 receipts back by the end of the "
                   "run against 186 awake; issue 16's 'no change' target is missed (reproduce: this test)")
def test_leaves_in_duty_cycle_lose_and_delay_nothing_against_the_same_village_awake(village):
    # on the simulator's default medium (per-direction shadowing, real CAD,
    # summed interference: issue 15) the village awake does not deliver every
    # payment on time either (seed 1: 175 of 186, p95 135 s; the same village
    # with its leaves asleep: 181, p95 26 s). What sleep must not do is lose
    # or delay a payment or a receipt that the village awake gets there.
    plain, m0, duty, m1, leaves = village
    assert len(leaves) > 20  # most of a village relays for no one
    assert m1["offered"] == m0["offered"] and m1["lost"] == m0["lost"] == 0
    assert m1["delivered"] == m0["delivered"] == m0["offered"]
    assert m1["delivered_on_time"] >= m0["delivered_on_time"] >= 0.9 * m0["offered"]
    assert m1["delivery_ratio"] == round(m1["delivered_on_time"] / m1["offered"], 4) > 0.95
    assert m1["receipts_returned"] >= m0["receipts_returned"] >= m0["offered"] - 1
    assert m1["p95_latency_s"] <= 1.05 * m0["p95_latency_s"]


@pytest.mark.xfail(strict=True, reason="since routing on delivery measured both ways (issue 15 item 3), symmetric "
                   "links, seed 1 at 200/h: everything on time and back asleep and awake, but p95 4.5 s asleep against "
                   "3.84 s awake (+17 %, the bound is +5 %)")
def test_on_the_symmetric_medium_sleep_changes_neither_delivery_nor_receipts():
    # the medium these figures were first taken on (links symmetric), pinned:
    # every payment on time asleep and awake, every receipt back asleep
    from pen.sim.medium import MediumModel
    runs = [Run(topology(50, 1, "eu868-sf9", 1, model=MediumModel("symmetric")), "pen", 200, 60, 1)]
    m0 = runs[0].run()
    runs.append(Run(topology(50, 1, "eu868-sf9", 1, model=MediumModel("symmetric")), "pen", 200, 60, 1,
                    leaves=relays_for_no_one(runs[0])))
    m1 = runs[1].run()
    assert m1["delivered_on_time"] == m0["delivered_on_time"] == m0["offered"]
    assert m1["receipts_returned"] == m0["offered"] and m0["receipts_returned"] >= m0["offered"] - 3
    assert m1["p95_latency_s"] <= 1.05 * m0["p95_latency_s"]
    assert m1["power"]["leaf"]["max_ma"] <= 1.5  # the leaf target (1.421 mA measured)


def test_a_leaf_relays_for_no_one_and_sleeps_through_what_is_not_for_it(village):
    _, _, duty, m1, leaves = village
    for i in leaves:
        assert duty.nodes[i].stats["custody_in"] == 0  # nobody routed through it
    p = m1["power"]
    assert p["leaf_frames_slept_through"] > 1000  # beacons, floods, frames for others
    # ...but not all: a window inside a short preamble catches about 16 % (paid for at full RX)
    caught = p["leaf_frames_caught_by_chance"]
    assert 0.12 < caught / float(caught + p["leaf_frames_slept_through"]) < 0.20
    assert p["leaf_route_asks"] > 0  # asks for routes went on air; none made a leaf anyone's parent (above)
    assert 0 < p["long_preamble_frames"] < m1["tx_frames"] // 4  # only frames to a leaf outside its window


def test_the_report_prices_every_node_from_its_wakes(village):
    plain, m0, duty, m1, leaves = village
    p = m1["power"]
    assert len(p["nodes"]) == 50 and p["board"] == "heltec-v3"
    roles = {n[1] for n in p["nodes"]}
    assert roles == {"bridge", "relay", "leaf"}
    assert p["leaf"]["mean_ma"] <= 1.5  # the leaf target, on average (1.328 mA measured)
    assert p["bridge"]["max_awake_fraction"] == 1.0  # USB-powered: it never sleeps
    for i in range(50):  # a wake per next_tx the engine made: never fewer than frames sent
        assert duty.power.wakes[i] >= duty.nodes[i].stats["tx_frames"] - duty.power.quiet_us[i] // 10 ** 9
    # the same figure as the firmware's model of that node's meter
    b = duty.power.budget
    i = leaves[0]
    assert p["nodes"][i][2] == round(b.average_ma(duty.power.meter(i, DUR_MS), DUR_MS), 3)


@pytest.mark.xfail(strict=True, reason="on the default medium (per-direction shadowing) the worst leaf of seed 1 "
                   "draws 1.573 mA (1.421 on symmetric links) with the same sends and listening: the 1.5 mA leaf "
                   "target is missed; the simulator's pricing of frames heard is where to look")
def test_every_leaf_meets_the_target_on_the_default_medium(village):
    assert village[3]["power"]["leaf"]["max_ma"] <= 1.5


def test_a_relay_never_draws_less_than_listening(village):
    plain, m0, duty, m1, leaves = village
    b = plain.power.budget
    floor = b.radio["rx_ma"] + b.mcu["light_sleep_ma"] + b.overhead_ma
    relays = [n for n in m1["power"]["nodes"] if n[1] == "relay"]
    assert min(n[2] for n in relays) > floor - 0.2  # TX time is not RX time: a little under at most
    assert m1["power"]["relay"]["mean_ma"] <= 6.0


def pen(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_pen_power_json_is_the_simulators_figure(capsys, village):
    _, _, duty, m1, _ = village
    rc, out, err = pen(capsys, "power", "--board", "heltec_v3", "--role", "leaf", "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert got["average_ma"] == m1["power"]["leaf"]["max_ma"] and got["meets_target"] == (got["average_ma"] <= 1.5)
    assert got["battery_days"] == pytest.approx(3000 * 0.8 / (got["average_ma"] * 24), abs=0.1)
    # the on-time ratio of the village it priced (181 of 186 on the default medium, seed 1)
    assert got["village"] == {"delivery_ratio": m1["delivery_ratio"], "p95_latency_s": m1["p95_latency_s"],
                              "leaves_in_duty_cycle": len(duty.power.leaves)}
    rc, out, err = pen(capsys, "power", "--role", "relay", "--json", "--sun-hours", "2")
    r = json.loads(out)
    assert r["average_ma"] == m1["power"]["relay"]["max_ma"]
    assert r["panel_w"] == pytest.approx(r["daily_wh"] / (2 * 0.65), abs=0.01)
    assert r["average_ma"] > r["listening_floor_ma"]


def test_pen_power_on_an_sx1276_board_has_leaves_that_listen_all_the_time(capsys):
    rc, out, err = pen(capsys, "power", "--board", "ttgo-lora32-v2.1", "--role", "leaf", "--json")
    got = json.loads(out)
    assert got["parts_ma"]["radio_rx_duty_cycle"] == 0 and got["parts_ma"]["radio_rx"] > 10
    assert got["meets_target"] is False and got["village"]["leaves_in_duty_cycle"] == 0


@pytest.mark.parametrize("argv,msg", [
    (["--board", "heltec-v9"], "pen: error: unknown board heltec-v9"),
    (["--sun-hours", "0"], "pen: error: --battery-mah and --sun-hours must be positive"),
    (["--battery-mah", "-5"], "pen: error: --battery-mah and --sun-hours must be positive"),
    (["--load", "-1"], "pen: error: --nodes must be 2 to 400, --load >= 0, --minutes >= 1"),
    (["--nodes", "1"], "pen: error: --nodes must be 2 to 400, --load >= 0, --minutes >= 1"),
])
def test_pen_power_refuses_bad_input_in_one_line(capsys, argv, msg):
    rc, out, err = pen(capsys, "power", *argv)
    assert rc == 1 and out == "" and err.strip() == msg


def test_bench_sizes_counts_the_long_preamble_toward_a_leaf(capsys):
    rc, out, err = pen(capsys, "bench", "sizes", "--json")
    t = json.loads(out)["to_leaf"]
    # 29 symbols instead of 8 at SF9/BW125 (4.096 ms each), instead of 16 at SF11/BW250 (8.192 ms)
    assert t["preamble_symbols"] == 29
    assert t["extra_ms"] == {"sf9-bw125": 86.0, "sf11-bw250": 106.5}


def test_relays_in_rx_duty_cycle_are_priced_only_when_asked_and_leaves_do_not_change(capsys, village):
    _, _, duty, _, _ = village
    pw, dur = duty.power, DUR_MS
    for i in range(50):  # each node's sends priced the same either way; only a relay's listening changes
        pw.relay_duty = False
        a = pw.budget.parts(pw.meter(i, dur), dur)
        pw.relay_duty = True
        b = pw.budget.parts(pw.meter(i, dur), dur)
        assert a[0] == b[0] and (a == b) == (pw.role(i) != "relay")
    pw.relay_duty = False
    # opt-in and unverified on a board (docs/power.md, checklist step 6): the
    # same village, only the relays' listening priced at 2 symbols in 6
    rc, out, err = pen(capsys, "power", "--role", "relay", "--relay-rx-duty", "--json")
    r = json.loads(out)
    assert r["relay_rx_duty"] is True and r["meets_target"] is True
    assert r["parts_ma"]["radio_rx_duty_cycle"] > 0 and r["parts_ma"]["radio_rx"] < 1
    rc, out, err = pen(capsys, "power", "--role", "relay", "--json")
    plain = json.loads(out)
    assert plain["parts_ma"]["radio_rx_duty_cycle"] == 0 and plain["relay_rx_duty"] is False
    if plain["node"] == r["node"]:  # the same village, the same sends
        assert plain["parts_ma"]["radio_tx"] == r["parts_ma"]["radio_tx"]
    assert r["average_ma"] < plain["listening_floor_ma"] < plain["average_ma"]
    leaf = [json.loads(pen(capsys, "power", "--role", "leaf", "--json", *x)[1])["average_ma"]
            for x in ((), ("--relay-rx-duty",))]
    assert leaf[0] == leaf[1]
