"""The village's first-principles bound (pen.sim.oracles.village_bound): a
max-flow with node capacities under the duty-cycle law, checked on small
villages whose answer is known by hand, and against loads the simulator
actually carried (an upper bound must hold against every measured run)."""
import pytest

import pen.sim  # noqa: F401  (protocol/ and firmware/ on the path)
from pen.sim.oracles import _costs, village_bound, topology_bound, delivery
from pen_protocol.airtime import PRESETS

P = PRESETS["eu868-sf9"]
D = 360.0  # 10 % of an hour, s


def matrix(n, links, p=0.99):
    """Delivery probabilities: p both ways on each (a, b) of links, 0 elsewhere."""
    m = [[0.0] * n for _ in range(n)]
    for a, b in links:
        m[a][b] = m[b][a] = p
    return m


def near(value, expected):
    """The search stops within a tenth of a payment an hour and rounds up:
    an upper bound errs upwards."""
    return expected <= value <= expected + 1.2


@pytest.mark.parametrize("batched,receipts", [(False, False), (True, False), (False, True), (True, True)])
def test_a_line_is_capped_by_its_one_relay(batched, receipts):
    """bridge 0 - 1 - 2: node 1 sends its half of the load and relays the other
    half (frame, ack to 2, receipts' share): 2D / (2 t_pay + t_ack + t_rcpt)."""
    t_pay, t_ack, t_rcpt = _costs(P, batched, receipts)
    b = village_bound(matrix(3, [(0, 1), (1, 2)]), [0], P, batched=batched, receipts=receipts)
    expected = min(2 * D / (2 * t_pay + t_ack + t_rcpt), D / (t_ack + t_rcpt), 3600 / (t_pay + t_ack + t_rcpt))
    assert near(b["bound_per_hour"], expected)
    assert b["binding"] == ["the duty cycle of relay 1"]


def test_a_star_is_capped_by_the_bridges_duty_or_with_batched_acks_its_air():
    t_pay, t_ack, _ = _costs(P, False, False)
    star = matrix(13, [(0, k) for k in range(1, 13)])  # 12 stores: their own frames (12 D / t_pay) never bind
    one = village_bound(star, [0], P)
    assert near(one["bound_per_hour"], D / t_ack) and one["binding"] == ["the duty cycle of bridge 0"]
    t_pay, t_ack, _ = _costs(P, True, False)
    batched = village_bound(star, [0], P, batched=True)
    assert near(batched["bound_per_hour"], 3600 / (t_pay + t_ack)) and batched["binding"] == ["the air of bridge 0"]


def test_a_bottleneck_relay_carries_five_leaves():
    """bridge 0 - relay 1 - leaves 2..6 (the leaves reach only the relay): the
    relay sends its sixth and relays five sixths of the load."""
    t_pay, t_ack, _ = _costs(P, False, False)
    b = village_bound(matrix(7, [(0, 1)] + [(1, k) for k in range(2, 7)]), [0], P)
    assert near(b["bound_per_hour"], D / (t_pay / 6 + 5 * (t_pay + t_ack) / 6))
    assert b["binding"] == ["the duty cycle of relay 1"]


def test_a_second_way_to_the_bridge_lifts_the_bottleneck_a_one_way_link_does_not():
    line = village_bound(matrix(3, [(0, 1), (1, 2)]), [0], P)["bound_per_hour"]
    m = matrix(3, [(0, 1), (1, 2)])
    m[2][0], m[0][2] = 0.95, 0.05  # the bridge hears 2, 2 does not hear the bridge: no acks, no receipts
    assert village_bound(m, [0], P)["bound_per_hour"] == line
    m[0][2] = 0.95
    both = village_bound(m, [0], P)
    assert both["bound_per_hour"] > line and both["binding"] == ["stores' own payments"]  # 2 D / t_pay
    # a stricter threshold never raises the bound
    assert village_bound(m, [0], P, threshold=0.99)["bound_per_hour"] == line


def test_stores_that_cannot_send_their_own_payments_bind_at_their_own_duty():
    """Two stores, each alone on the bridge, acks batched: past 2 D / t_pay
    each store's own frames exceed its 360 s."""
    t_pay, t_ack, _ = _costs(P, True, False)
    b = village_bound(matrix(3, [(0, 1), (0, 2)]), [0], P, batched=True)
    assert near(b["bound_per_hour"], 2 * D / t_pay) and b["binding"] == ["stores' own payments"]


def test_a_store_with_no_link_both_ways_has_no_way_up_and_says_so():
    m = matrix(4, [(0, 1), (1, 2)])
    m[3][1], m[1][3] = 0.9, 0.05  # 3 is heard by 1 but never hears it: no acks, so no custody
    b = village_bound(m, [0], P)
    assert b["bound_per_hour"] <= 1 and b["binding"] == ["no way up for store 3"]


@pytest.mark.parametrize("p,bridges,threshold,reason", [
    ([[0.0]], [0], 0.1, "square matrix of at least 2"),
    ([[0.0, 1.0], [1.0]], [0], 0.1, "square matrix"),
    (matrix(3, [(0, 1)]), [], 0.1, "at least one"),
    (matrix(3, [(0, 1)]), [3], 0.1, "distinct node indexes"),
    (matrix(3, [(0, 1)]), [0, 0], 0.1, "distinct node indexes"),
    (matrix(3, [(0, 1)]), [0, 1, 2], 0.1, "fewer than the nodes"),
    (matrix(3, [(0, 1)]), [0], 0.0, "a probability in"),
    (matrix(3, [(0, 1)]), [0], 1.5, "a probability in"),
])
def test_bad_input_is_refused_with_its_reason(p, bridges, threshold, reason):
    with pytest.raises(ValueError, match=reason):
        village_bound(p, bridges, P, threshold)


def test_delivery_is_a_probability_from_the_margin_over_the_floor():
    from pen.sim.medium import Topology
    t = Topology.generate(8, 1, P, 2)
    p = delivery(t)
    for i in range(t.n):
        for j in range(t.n):
            if i != j:
                assert 0.0 <= p[i][j] <= 1.0
                assert (p[i][j] >= 0.5) == t.link_ok(i, j)


def test_the_bound_holds_against_what_the_simulator_carried():
    """Seed 1's village at 800 payments/h (above its measured peak of 582-626/h,
    docs/sim.md) for a whole hour: the bound on payments, and the bound on the
    service level against the payments whose receipts came back."""
    from pen.sim.engine import Run
    from pen.sim.medium import MediumModel
    from pen.sim import scenario
    t = scenario.topology(50, 1, "eu868-sf9", 1, None, MediumModel())
    b = topology_bound(t)
    m = Run(t, "pen", 800, 60, 1).run()
    assert m["goodput_per_hour"] <= b["payments"]["bound_per_hour"]
    assert m["receipts_returned"] * 60 / 60.0 <= b["service"]["bound_per_hour"]
    assert b["payments"]["bound_per_hour"] <= b["payments_batched_acks"]["bound_per_hour"]
    assert b["service"]["bound_per_hour"] <= b["payments"]["bound_per_hour"]
