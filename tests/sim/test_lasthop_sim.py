"""The scheduled last hop in the simulator (pen sim --last-hop scheduled):
the firmware's own grants on the simulated medium lose nothing, and the
JSON says which last hop ran."""
import json

import pen.sim  # noqa: F401  (puts firmware/ on the path)
from pen.cli import main
from pen.sim.engine import Run
from pen.sim.medium import Topology
from pen_protocol.airtime import PRESETS

P = PRESETS["eu868-sf9"]


def test_a_scheduled_last_hop_loses_nothing_under_overload():
    t = Topology.generate(20, 1, P, 3)
    r = Run(t, "pen", 1600, 15, 3, lasthop=True)
    m = r.run()
    b = r.nodes[t.bridges[0]]
    assert b.stats["grants"] > 0 and b.stats["batched_acks"] > 0  # the schedule ran
    assert m["lost"] == 0  # late is in custody; nothing accepted disappears
    assert m["delivered"] + m["limits"]["still_in_custody"] >= m["accepted"] - sum(
        len(n.journal.live) for n in r.nodes if n.is_bridge)
    for n in r.nodes:  # bounded tables whatever the load
        assert len(n.lh_kids) <= 16 and len(n.lh_acks) <= 12 and len(n.lh_slot_fids) <= 8


def test_a_scheduled_last_hop_delivers_every_payment_and_receipt_at_light_load():
    t = Topology.generate(15, 1, P, 2)
    m = Run(t, "pen", 120, 20, 2, lasthop=True).run()
    assert m["offered"] > 20 and m["delivery_ratio"] == 1.0
    assert m["receipts_returned"] == m["offered"]


def test_sim_json_says_which_last_hop_ran(capsys):
    assert main(["sim", "--nodes", "12", "--load", "100", "--minutes", "10", "--seed", "3", "--json",
                 "--no-sweep", "--last-hop", "scheduled"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scenario"]["last_hop"] == "scheduled"
    assert out["pen"]["lost"] == 0
    import pytest
    with pytest.raises(SystemExit):
        main(["sim", "--nodes", "12", "--last-hop", "polled"])
    assert "invalid choice: 'polled'" in capsys.readouterr().err


def test_batched_acks_lift_the_duty_cap_past_the_channel():
    from pen.sim.oracles import bounds
    b = bounds(P)
    # one ack frame per payment: 2,493/h; one grant for a cycle's payments: far past the channel's cap
    assert b["one_ack_per_payment_duty_cap_per_hour"] == 2493
    assert b["batched_ack_duty_cap_per_hour"] > b["channel_cap_per_hour"] > 2000
    # the scheduler's own cycle (all slots) carries more than issue 15's peak target
    assert b["scheduled_cycle_cap_per_hour"] > 2000
    assert abs(b["scheduled_cycle_cap_per_hour"] - 3600 * 12 / b["cycle_s"]) < 2  # (cycle_s is rounded)
