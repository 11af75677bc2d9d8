"""The simulator's power report (host/pen/sim/power.py) and `pen power`: the
firmware's model priced over what each node's loop did in the 50-node
village, seed 1; leaves in RX duty cycle lose and delay nothing that the
same village awake delivers, compared like with like (pooled over draws of
the medium's fading): met on symmetric links, not yet on the default medium."""
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


# Like with like. One run of a village is one trajectory of a chaotic system:
# the same village awake, its per-frame fading drawn another way, moves seed
# 1's p95 from 13.6 s to 9.9 or 19.6 s and its on-time count by a few (five
# seeds x three draws: 944-962 of 986 on time awake). A single asleep run
# against a single awake one measures that, not sleep. So the target ("no
# change in delivery or p95 at 200/h, seed 1, against the same code without
# sleep") is checked on seed 1's payments over FADING_DRAWS draws of the
# medium's fading, asleep and awake alike: every payment of every draw
# pooled, an undelivered one counting as infinitely late.
FADING_DRAWS = 4


def pooled(model=None):
    """(awake, asleep) over FADING_DRAWS draws, each a dict: on_time,
    receipts, offered, p95 (s, pooled), leaf_max_ma (the worst draw's)."""
    import random
    from pen.sim.medium import MediumModel
    plain = Run(topology(50, 1, "eu868-sf9", 1, model=model and MediumModel(model)), "pen", 200, 60, 1)
    plain.run()
    leaves = relays_for_no_one(plain)
    out = []
    for lv in ((), leaves):
        t = {"on_time": 0, "receipts": 0, "offered": 0, "lat": [], "leaf_max_ma": 0}
        for k in range(FADING_DRAWS):
            r = Run(topology(50, 1, "eu868-sf9", 1, model=model and MediumModel(model)), "pen", 200, 60, 1,
                    leaves=lv)
            if k:  # the medium's per-frame fading only (Medium: seed * 31 + 7 for draw 0)
                r.medium.rnd = random.Random(1 * 31 + 7 + 1000 * k)
            m = r.run()
            t["on_time"] += m["delivered_on_time"]
            t["receipts"] += m["receipts_returned"]
            t["offered"] += m["offered"]
            t["lat"] += [(r.delivered[rid] - t0) / 1000.0 if rid in r.delivered else float("inf")
                         for rid, (t0, _) in r.submitted.items()]
            if lv:
                t["leaf_max_ma"] = max(t["leaf_max_ma"], m["power"]["leaf"]["max_ma"])
        lat = sorted(t.pop("lat"))
        t["p95"] = lat[int(0.95 * len(lat))]
        out.append(t)
    return out


@pytest.mark.xfail(strict=True, reason="seed 1 at 200/h, default medium, four fading draws pooled: since leaves "
                   "say they are there (routing._LEAF) 744 of 744 on time asleep as awake, receipts 743 against 744, "
                   "p95 10.8 s asleep against 7.7 s awake (15.4 s before: a leaf retried parents that did not hear "
                   "it). Asleep, relays retry twice as much airtime (201 s against 110 s at draw 0), half of the "
                   "growth receipts to sleeping leaves (48 s against 21 s); docs/power.md")
def test_leaves_in_duty_cycle_lose_and_delay_nothing_against_the_same_village_awake():
    awake, asleep = pooled()
    assert asleep["offered"] == awake["offered"] == FADING_DRAWS * 186
    assert asleep["on_time"] >= awake["on_time"] >= 0.97 * awake["offered"]
    assert asleep["receipts"] >= awake["receipts"]
    assert asleep["p95"] <= 1.05 * awake["p95"]


def test_on_the_symmetric_medium_sleep_changes_neither_delivery_nor_receipts():
    # the medium these figures were first taken on (links symmetric): every
    # payment on time and every receipt back, asleep and awake, in every draw;
    # pooled p95 within 5 % (4.52 s asleep, 4.34 s awake measured). Before
    # like with like it was one draw each: 4.5 s against 3.84 s (xfail)
    awake, asleep = pooled("symmetric")
    assert asleep["on_time"] == awake["on_time"] == awake["offered"] == FADING_DRAWS * 186
    assert asleep["receipts"] == awake["receipts"] == awake["offered"]
    assert asleep["p95"] <= 1.05 * awake["p95"]
    assert asleep["leaf_max_ma"] <= 1.5  # the leaf target in every draw


def test_a_leaf_relays_for_no_one_and_sleeps_through_what_is_not_for_it(village):
    _, _, duty, m1, leaves = village
    assert len(leaves) > 20  # most of a village relays for no one
    for i in leaves:
        assert duty.nodes[i].stats["custody_in"] == 0  # nobody routed through it
    p = m1["power"]
    assert p["leaf_frames_slept_through"] > 1000  # beacons, floods, frames for others
    # ...but not all: a window inside a short preamble catches some (4 in 65 symbols: 6 %), paid at full RX
    caught = p["leaf_frames_caught_by_chance"]
    assert duty.power.catch_share == 4 / 65.0
    assert 0.04 < caught / float(caught + p["leaf_frames_slept_through"]) < 0.08
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


def test_every_leaf_meets_the_target_on_the_default_medium(village):
    # regression: 2.11 mA (seed 1) when leaves listened 4 symbols in 25 and their asks for routes were kept
    # off the air; at 4 in 65 the floor is 0.28 mA instead of 0.74 (docs/power.md)
    p = village[3]["power"]
    assert p["leaf"]["max_ma"] <= 1.5 and p["leaf"]["mean_ma"] <= 1.1


def test_a_relay_never_draws_less_than_listening(village):
    plain, m0, duty, m1, leaves = village
    b = plain.power.budget
    floor = b.radio["rx_ma"] + b.mcu["light_sleep_ma"] + b.overhead_ma
    relays = [n for n in m1["power"]["nodes"] if n[1] == "relay"]
    assert min(n[2] for n in relays) > floor - 0.2  # TX time is not RX time: a little under at most


def test_the_relays_mean_meets_the_target(village):
    # 6.052 mA (strict xfail) until leaves said they were there (routing._LEAF): 5.905 mA. Seed 1 only: over
    # seeds 1-5 x 7 fading draws the mean is 5.82 mA, 4 of 35 villages over 6 (docs/power.md)
    assert village[3]["power"]["relay"]["mean_ma"] <= 6.0


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


def test_what_the_busiest_relay_pays_for_and_the_floor_its_subtree_forces(capsys, village):
    # issue 16, item 3: every ms on air by kind; the floor (listening all the time, sending only what its
    # subtree's payments force: no retry, no beacon) is over the target at seed 1, so no routing or timer
    # change takes the busiest relay to 6 mA while it listens all the time (docs/power.md)
    rc, out, err = pen(capsys, "power", "--role", "relay", "--json")
    r = json.loads(out)
    kinds = r["tx_ms_by_kind"]
    assert set(kinds) <= {"custody", "retry", "ack", "beacon", "digest", "flood"}
    assert abs(sum(kinds.values()) - sum(r["tx_ms_by_dbm"].values())) <= len(kinds)  # every ms, rounded per kind
    assert kinds["retry"] > 0 and kinds["beacon"] > 0 and kinds["custody"] > kinds["retry"]
    assert r["listening_floor_ma"] < r["forced_floor_ma"] < r["average_ma"]
    assert r["forced_floor_ma"] > 6.0  # 6.20 mA measured (node 15: 29.7 s of custody, 8.4 s of acks)
    rc, out, err = pen(capsys, "power", "--role", "relay", "--json", "--relay-rx-duty")
    assert json.loads(out)["forced_floor_ma"] < 6.0  # in RX duty cycle (opt-in, unverified) it would not bind


def test_a_relays_frames_are_told_apart_by_kind():
    from pen_protocol import frame as F
    from pen.sim.power import tx_kind
    sent = set()
    use = F.pack(F.Header(10, 9, 3, 9, 0, 0), b"x" * 20)
    assert tx_kind(use, sent) == "custody" and tx_kind(use, sent) == "retry"
    hop = bytearray(use)
    hop[4:6] = b"\x00\x04"  # the same record to another neighbour: the same frame id, still a retry
    assert tx_kind(bytes(hop), sent) == "retry"
    assert tx_kind(F.pack(F.Header(10, 9, F.BROADCAST, 9, 0, 0), b"y" * 20), sent) == "flood"
    assert tx_kind(F.pack(F.Header(F.T_ACK, 9, 3, 9, 0, 0), b"z" * 8), sent) == "ack"
    assert tx_kind(F.pack(F.Header(F.T_BEACON, 9, F.BROADCAST, 9, 0, 0), b"\x00\x01\x04\x00\x00"), sent) == "beacon"
    assert tx_kind(F.pack(F.Header(F.T_DIGEST, 9, F.BROADCAST, 9, 0, 0), b"d" * 12), sent) == "digest"


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
    # 69 symbols instead of 8 at SF9/BW125 (4.096 ms each), instead of 16 at SF11/BW250 (8.192 ms)
    assert t["preamble_symbols"] == 69
    assert t["extra_ms"] == {"sf9-bw125": 249.9, "sf11-bw250": 434.2}


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
    # the busiest relay in RX duty cycle: 4.81 mA before the merge of issue 15's routing, 6.58 after (node 50,
    # busier with leaves' traffic: radio TX 4.04 mA); the target is not what this test checks, the pricing is
    assert r["relay_rx_duty"] is True and r["meets_target"] == (r["average_ma"] <= 6.0)
    assert r["parts_ma"]["radio_rx_duty_cycle"] > 0 and r["parts_ma"]["radio_rx"] < 1
    rc, out, err = pen(capsys, "power", "--role", "relay", "--json")
    plain = json.loads(out)
    assert plain["parts_ma"]["radio_rx_duty_cycle"] == 0 and plain["relay_rx_duty"] is False
    if plain["node"] == r["node"]:  # the same village, the same sends
        assert plain["parts_ma"]["radio_tx"] == r["parts_ma"]["radio_tx"]
    # listening in duty cycle costs the relay less than listening all the time, whatever it sends
    listen = r["parts_ma"]["radio_rx"] + r["parts_ma"]["radio_rx_duty_cycle"]
    assert listen < plain["parts_ma"]["radio_rx"] < plain["listening_floor_ma"] < plain["average_ma"]
    assert r["average_ma"] < plain["average_ma"]
    leaf = [json.loads(pen(capsys, "power", "--role", "leaf", "--json", *x)[1])["average_ma"]
            for x in ((), ("--relay-rx-duty",))]
    assert leaf[0] == leaf[1]


def test_every_microsecond_on_air_is_in_the_senders_duty_cycle(village):
    # the long preambles to sleeping leaves included (the simulator spends them as main.tx_task does);
    # a leaf's beacon kept off the air was charged and not sent, so a node may have charged more, never less
    _, _, duty, m1, _ = village
    assert m1["power"]["long_preamble_frames"] > 0
    for i, node in enumerate(duty.nodes):
        assert node.duty.total_us >= sum(duty.power.tx_us[i].values()) - 1000, i


def test_the_duty_cycle_counts_the_long_preamble_a_sweep_sets_after_construction(village):
    # sweep_leaf_rx.py sets the leaves' listening (so the long preamble) on the Run it built: the duty
    # cycle's hook must read it as the medium does, when the frame goes
    import sweep_leaf_rx as S
    leaves = village[4]
    r, m = S.one(1, 0, leaves, 92)  # 4 in 96: a 100-symbol preamble, not power.json's 69
    assert r.power.long_preamble == 100 and m["power"]["long_preamble_frames"] > 0
    for i, node in enumerate(r.nodes):
        assert node.duty.total_us >= sum(r.power.tx_us[i].values()) - 1000, i


def test_a_leaf_learns_which_neighbours_hear_it_instead_of_retrying_one_that_does_not():
    # regression: seed 4 at 200/h, leaf 18 heard one neighbour (13) at boot, which never heard it, and sent it
    # 40 frames over 800 s (184 retries in the hour, 4.60 mA); a leaf now says it is there (routing._LEAF) and
    # its neighbours' answers list whom they hear
    plain = Run(topology(50, 4, "eu868-sf9", 1), "pen", 200, 60, 4)
    plain.run()
    leaves = relays_for_no_one(plain)
    assert 17 in leaves
    r = Run(topology(50, 4, "eu868-sf9", 1), "pen", 200, 60, 4, leaves=leaves)
    m = r.run()
    assert m["power"]["leaf"]["max_ma"] <= 1.5  # 1.121 measured
    assert r.nodes[17].stats["retries"] < 20
    assert m["delivered_on_time"] >= 195  # of 202: no fewer than before (195; 197 measured)
    for i in leaves:
        assert r.nodes[i].stats["custody_in"] == 0  # its adverts made no leaf anyone's parent
