"""The realistic medium (asymmetric links, a CAD that is blind at first and
can false-alarm, summed interference), the Meshtastic 2.6 baseline, the
service-level figures and the oracles."""
import json
import random

import pytest

import pen.sim  # noqa: F401
from pen.cli import main
from pen.sim import scenario
from pen.sim.baseline import HEADER, PKI_OVERHEAD, NextHopNode
from pen.sim.engine import service_ok
from pen.sim.medium import CAD_SYMBOLS, Medium, MediumModel, Topology, path_loss_db, peak_sum_mw
from pen.sim.oracles import BusyTone, Tdma, bounds
from pen_protocol.airtime import PRESETS

P = PRESETS["eu868-sf9"]


def _frame(n, dst=0xFFFF):
    return bytes([10, 0x1B, 0, 1, dst >> 8, dst & 255, 0, 1]) + bytes(n)


# -- the model -----------------------------------------------------------------

@pytest.mark.parametrize("kw,msg", [
    ({"links": "mirrored"}, "unknown medium model"),
    ({"cad": "psychic"}, "unknown medium model"),
    ({"interference": "none"}, "unknown medium model"),
    ({"shadow_shared_db": -1}, "must be >= 0"),
    ({"links": "symmetric", "shadow_direction_db": 2}, "symmetric links have no per-direction part"),
    ({"cad_false_alarm": 1.0}, "false-alarm rate in"),
])
def test_medium_model_refuses_nonsense(kw, msg):
    with pytest.raises(ValueError, match=msg):
        MediumModel(**kw)


def test_links_differ_by_direction_by_default_and_not_when_symmetric():
    pos = [(i * 150.0, (i % 3) * 90.0) for i in range(12)]
    asym = Topology(pos, [0], P, 5)
    sym = Topology(pos, [0], P, 5, MediumModel("symmetric"))
    diffs = [abs(asym.rssi[i][j] - asym.rssi[j][i]) for i in range(12) for j in range(i + 1, 12)]
    assert max(diffs) > 3 and sum(diffs) / len(diffs) > 1  # sigma 3 dB each way: ~3.4 dB apart on average
    assert all(abs(sym.rssi[i][j] - sym.rssi[j][i]) < 1e-9 for i in range(12) for j in range(12))
    assert sym.one_way_links()[1] == 0 and asym.one_way_links()[1] > 0


def test_zero_shadowing_leaves_only_path_loss():
    t = Topology([(0, 0), (400, 0)], [0], P, 1, MediumModel(shadow_shared_db=0, shadow_direction_db=0))
    assert t.rssi[0][1] == t.rssi[1][0] == pytest.approx(P.power_dbm - path_loss_db(400))


def test_shared_and_direction_parts_are_both_drawn():
    pos = [(i * 150.0, 0.0) for i in range(10)]
    both = Topology(pos, [0], P, 2, MediumModel(shadow_shared_db=6, shadow_direction_db=1))
    diffs = [abs(both.rssi[i][j] - both.rssi[j][i]) for i in range(10) for j in range(i + 1, 10)]
    pl = [abs(both.rssi[i][j] - (P.power_dbm - path_loss_db(both.pos[j][0] - both.pos[i][0])))
          for i in range(10) for j in range(i + 1, 10)]
    assert sum(diffs) / len(diffs) < 2.5 < sum(pl) / len(pl)  # mostly shared: large shadowing, small asymmetry


def _pair(model):
    t = Topology([(0, 0), (100, 0), (120, 0)], [0], P, 1, model)
    m = Medium(t, 1)
    m.rnd.gauss = lambda mu, s: 0.0
    return m


def test_real_cad_is_blind_for_its_first_symbols_and_ideal_cad_is_not():
    sym_us = (1 << P.sf) * 1000000 // P.bw_hz
    real = _pair(MediumModel(cad_false_alarm=0.0))
    real.start(1, _frame(40), 0)
    assert not real.busy(0, CAD_SYMBOLS[P.sf] * sym_us - 1)
    assert real.busy(0, CAD_SYMBOLS[P.sf] * sym_us)
    ideal = _pair(MediumModel(cad="ideal"))
    ideal.start(1, _frame(40), 0)
    assert ideal.busy(0, 0)


def test_real_cad_false_alarms_at_its_rate_on_an_idle_channel_and_ideal_never():
    real = _pair(MediumModel(cad_false_alarm=0.2))
    alarms = sum(real.busy(0, t) for t in range(2000))
    assert 300 < alarms < 500 and real.cad_false_alarms == alarms
    ideal = _pair(MediumModel(cad="ideal"))
    assert not any(ideal.busy(0, t) for t in range(2000))


def _three_senders(interference):
    t = Topology([(0, 0), (50, 0), (60, 0), (70, 0)], [0], P, 1, MediumModel(interference=interference))
    t.rssi[1][0] = -90.0
    t.rssi[2][0] = t.rssi[3][0] = -98.0  # each alone 8 dB weaker: captured; both together 5 dB: not
    m = Medium(t, 1)
    m.rnd.gauss = lambda mu, s: 0.0
    return m


def test_interference_is_summed_over_overlapping_frames():
    m = _three_senders("sinr")
    _, a = m.start(1, _frame(60), 0)
    m.start(2, _frame(20), 10 ** 5)
    m.start(3, _frame(20), 10 ** 5 + 1000)
    assert 0 not in [r[0] for r in m.finish(a, 10 ** 9)]
    old = _three_senders("pairwise")
    _, a = old.start(1, _frame(60), 0)
    old.start(2, _frame(20), 10 ** 5)
    old.start(3, _frame(20), 10 ** 5 + 1000)
    assert 0 in [r[0] for r in old.finish(a, 10 ** 9)]


def test_interferers_one_after_the_other_do_not_add_up():
    m = _three_senders("sinr")
    end, a = m.start(1, _frame(200), 0)
    e2, b = m.start(2, _frame(10), 10 ** 5)
    m.finish(b, e2)
    m.start(3, _frame(10), e2 + 1000)
    assert 0 in [r[0] for r in m.finish(a, end)]


def test_peak_sum_takes_the_worst_instant():
    mw = 10 ** (-90 / 10)
    assert peak_sum_mw([(-90, 0, 10), (-90, 5, 20)]) == pytest.approx(2 * mw)
    assert peak_sum_mw([(-90, 0, 10), (-90, 10, 20)]) == pytest.approx(mw)


# -- the Meshtastic 2.6 baseline ----------------------------------------------------

def _nh(addr, bridge=False):
    return NextHopNode(addr, P, random.Random(addr), is_bridge=bridge, hop_limit=3, bridge_addr=1)


def _first_tx(node, t):
    """The node's next frame within 40 s of t (in 100 ms steps), sent."""
    for k in range(1, 400):
        f = node.next_tx(t + k * 100)
        if f is not None:
            node.on_tx_done(t + k * 100 + 1)
            return f
    raise AssertionError("nothing sent")


def _exchange(origin, relay, bridge, t):
    """origin -> relay -> bridge and the ACK back the same way; returns the data frames."""
    origin.submit(bytes(89), t)
    f = origin.next_tx(t)
    origin.on_tx_done(t + 1)
    relay.on_frame(f, -100, -20, t + 1)
    r = _first_tx(relay, t)
    origin.on_frame(r, -100, -20, t + 30000)  # the origin overhears its relay: implicit ack
    bridge.on_frame(r, -100, -20, t + 30000)
    relay.on_frame(_first_tx(bridge, t + 30000), -100, -20, t + 60000)
    origin.on_frame(_first_tx(relay, t + 60000), -100, -20, t + 120000)
    return f, r


def test_baseline_learns_a_next_hop_from_the_first_ack_and_then_only_that_neighbour_relays():
    origin, relay, bridge, other = _nh(3), _nh(2), _nh(1, True), _nh(4)
    first, _ = _exchange(origin, relay, bridge, 0)
    assert first[10:12] == b"\x00\x00"  # no route yet: flooded
    assert origin.next_hop == {1: 2} and relay.next_hop == {1: 1}
    origin.submit(bytes(89), 10 ** 6)
    f = origin.next_tx(10 ** 6)
    assert (f[10] << 8 | f[11]) == 2  # the second names its next hop
    other.on_frame(f, -100, -20, 10 ** 6 + 1)
    assert other.next_tx(10 ** 7) is None  # not the next hop: no relay
    relay.on_frame(f, -100, -20, 10 ** 6 + 1)
    r = relay.next_tx(10 ** 6 + 10 ** 4)
    assert r is not None and (r[10] << 8 | r[11]) == 1  # relayed straight on to the bridge


def test_baseline_frames_carry_the_2_6_header_and_pki_overhead():
    o = _nh(3)
    o.submit(bytes(89), 0)
    assert len(o.next_tx(0)) == HEADER + 4 + PKI_OVERHEAD + 89 == 121


def test_an_overheard_ack_cancels_a_queued_relay():
    origin, relay, bridge = _nh(3), _nh(2), _nh(1, True)
    origin.submit(bytes(89), 0)
    f = origin.next_tx(0)
    relay.on_frame(f, -100, -20, 1)
    bridge.on_frame(f, -100, -20, 1)
    assert relay.queue  # a flood relay waits its contention window
    relay.on_frame(_first_tx(bridge, 0), -100, -20, 3000)
    assert relay.stats["ack_cancelled"] == 1 and all(q[1][9] == 1 for q in relay.queue)


def test_the_last_try_floods_again_with_the_next_hop_reset():
    o = _nh(3)
    o.next_hop[1] = 2
    o.submit(bytes(89), 0)
    sent = []
    now = 0
    for _ in range(10):
        f = o.next_tx(now)
        if f is not None:
            sent.append(f[10] << 8 | f[11])
            o.on_tx_done(now + 1)
        now += 10 ** 5
    assert sent == [2, 2, 0] and o.stats["fallback_floods"] == 1 and 1 not in o.next_hop


# -- service level ------------------------------------------------------------------

def _m(on_time, receipts=None, lost=0):
    return {"on_time_ratio": on_time, "receipts_ratio": receipts, "lost": lost}


def test_service_level_needs_payments_receipts_and_nothing_lost():
    assert service_ok(_m(0.99, 0.99))
    assert service_ok(_m(1.0))  # a baseline: payments only
    assert not service_ok(_m(0.989, 1.0))
    assert not service_ok(_m(1.0, 0.98))
    assert not service_ok(_m(1.0, 1.0, lost=1))


def test_service_capacity_is_the_highest_load_holding_the_level():
    curve = {50: _m(1.0), 100: _m(0.95), 200: _m(1.0), 400: _m(0.5)}
    assert scenario.service_capacity(curve) == 200
    assert scenario.service_unbroken(curve) == 50
    assert scenario.service_capacity({50: _m(0.9)}) == 0


def test_seeds_report_each_seed_and_the_worst():
    out = scenario.run_seeds([2, 3], nodes=8, load=100, minutes=5, sweep=(100, 400), sweep_minutes=5, processes=1)
    assert [o["scenario"]["seed"] for o in out["seeds"]] == [2, 3]
    w = out["worst"]
    for k in ("on_time_ratio", "p95_latency_s", "receipts_ratio", "service_capacity_per_hour"):
        assert k in w["pen"]
    assert w["pen"]["on_time_ratio"] == min(o["pen"]["on_time_ratio"] for o in out["seeds"])
    assert w["pen"]["p95_latency_s"] == max(o["pen"]["p95_latency_s"] for o in out["seeds"])
    assert w["baseline"]["service_capacity_per_hour"] == min(o["baseline"]["service_capacity_per_hour"]
                                                             for o in out["seeds"])
    assert "service_ratio" in w
    # a seed whose baseline holds the level nowhere has no ratio, and is named, not hidden
    assert w["service_ratio_undefined_seeds"] == [o["scenario"]["seed"] for o in out["seeds"]
                                                  if o["service_ratio"] is None]
    assert w["bound"]["payments"] == min(o["bound"]["payments"]["bound_per_hour"] for o in out["seeds"])
    for o in out["seeds"]:  # an upper bound holds against every run
        assert o["bound"]["peak_goodput_within_bound"] and o["bound"]["service_capacity_within_bound"]


# -- oracles and bounds ------------------------------------------------------------------

class _RunStub:
    def __init__(self, t):
        self.t = t


def test_busy_tone_tells_the_bridges_neighbours_of_a_frame_they_cannot_hear():
    # 1 and 2 both hear the bridge 0 but not each other (hidden terminals)
    t = Topology([(0, 0), (-900, 0), (900, 0)], [0], P, 1, MediumModel("symmetric", shadow_shared_db=0, cad="ideal"))
    assert t.link_ok(0, 1) and t.link_ok(0, 2) and not t.link_ok(1, 2)
    plain = Medium(t, 1)
    plain.start(1, _frame(40, dst=1), 0)
    assert not plain.busy(2, 1000)
    tone = BusyTone()
    tone.attach(_RunStub(t))
    m = Medium(t, 1, tone)
    m.start(1, _frame(40, dst=1), 0)  # addressed to the bridge (address 1 = index 0)
    assert m.busy(2, 1000)
    m2 = Medium(t, 1, tone)
    m2.start(1, _frame(40, dst=9), 0)  # to someone else: no tone
    assert not m2.busy(2, 1000)


def test_tdma_lets_a_slot_owner_start_only_in_its_slot():
    t = Topology([(0, 0), (100, 0), (200, 0), (30000, 0), (30100, 0)], [0], P, 1,
                 MediumModel("symmetric", shadow_shared_db=0))
    o = Tdma(slot_us=1000)
    o.attach(_RunStub(t))
    assert sorted(o.slot) == [0, 1, 2]  # 3 and 4 do not hear the bridge: they keep listen-before-talk
    m = Medium(t, 1, o)
    assert [o.busy(m, 1, us) for us in (0, 1000, 1999, 2000, 4000)] == [True, False, False, True, False]
    assert not o.busy(m, 3, 0)


def test_the_duty_cap_bound_is_the_bridges_ack_airtime():
    b = bounds(P)
    assert b["ack_frame_bytes"] == 12 and round(b["ack_airtime_s"], 4) == 0.1444
    assert b["one_ack_per_payment_duty_cap_per_hour"] == 2493
    assert b["channel_cap_per_hour"] == int(3600 / (b["payment_airtime_s"] + b["ack_airtime_s"]))


# -- the command -------------------------------------------------------------------------

def test_bound_command_prints_the_bounds(capsys):
    assert main(["sim", "--bound"]) == 0
    assert "2,493 payments/h" in capsys.readouterr().out
    assert main(["sim", "--bound", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["one_ack_per_payment_duty_cap_per_hour"] == 2493


def test_bound_command_prints_each_villages_max_flow_bound(capsys):
    assert main(["sim", "--bound", "--nodes", "12", "--seeds", "1-2"]) == 0
    out = capsys.readouterr().out
    assert "Seed 1: Bound of this village under the law" in out and "Seed 2: Bound" in out
    assert main(["sim", "--bound", "--nodes", "12", "--seed", "3", "--json"]) == 0
    v = json.loads(capsys.readouterr().out)["villages"]["3"]
    assert v["payments"]["bound_per_hour"] >= v["service"]["bound_per_hour"] > 0
    assert main(["sim", "--bound", "--nodes", "12", "--topology", "/nonexistent.json"]) == 1
    assert "topology:" in capsys.readouterr().err


@pytest.mark.parametrize("seeds", ["5-1", "a-b", "1-500", ""])
def test_bad_seeds_are_refused_in_words(seeds, capsys):
    assert main(["sim", "--nodes", "6", "--seeds", seeds]) == 1
    assert "--seeds takes seeds like 1-5" in capsys.readouterr().err


def test_symmetric_links_with_a_per_direction_part_are_refused(capsys):
    assert main(["sim", "--links", "symmetric", "--shadow-direction-db", "2"]) == 1
    assert "symmetric links have no per-direction part" in capsys.readouterr().err


def test_human_table_uses_words_not_field_names(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per row
    assert main(["sim", "--nodes", "8", "--load", "60", "--minutes", "5", "--seed", "2", "--no-sweep"]) == 0
    out = capsys.readouterr().out
    assert "payments at a bridge within 120 s" in out and "Meshtastic (meshtastic-2.6)" in out
    for raw in ("None", "on_time_ratio", "delivery_ratio", "p95_latency_s", "capacity_payments_per_hour"):
        assert raw not in out


def test_plot_draws_both_schemes_against_offered_load(tmp_path, capsys):
    path = tmp_path / "sweep.png"
    assert main(["sim", "--nodes", "8", "--load", "100", "--minutes", "3", "--seeds", "2-3", "--plot",
                 str(path), "--oracle", "busy-tone"]) == 0
    assert path.stat().st_size > 10000 and path.read_bytes()[:4] == b"\x89PNG"
    assert "The worst of seeds 2, 3" in capsys.readouterr().out


def test_plot_without_matplotlib_is_a_clear_error(monkeypatch, capsys):
    import builtins
    real = builtins.__import__

    def no_mpl(name, *a, **kw):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", no_mpl)
    assert main(["sim", "--nodes", "6", "--plot", "x.png"]) == 1
    assert "--plot needs matplotlib: pip install 'pen[plot]'" in capsys.readouterr().err


def test_the_ack_goes_no_farther_than_its_packet_came():
    bridge = _nh(1, True)
    origin = _nh(3)
    origin.submit(bytes(89), 0)
    f = bytearray(origin.next_tx(0))
    f[8] = 1  # arrived with 2 of its 3 hops used
    bridge.on_frame(bytes(f), -100, -20, 10)
    ack = _first_tx(bridge, 10)
    assert ack[9] == 1 and ack[8] == 2
