"""pen power: what a node draws, how long its battery lasts, and the solar
panel that keeps it running all year.

The current comes from the simulator's village at the given load (the
firmware's own MeshNode; wakes, frames and airtime as its loop had them),
priced by the firmware's model (pen_node.power) with hardware/power.json:
the same figures `pen sim --json` reports under "power". Leaves listen in
RX duty cycle where the radio has one (SX126x)."""
import functools
import json

from pen.cli import PenError

ROLES = ("relay", "leaf", "bridge")
DEPTH_OF_DISCHARGE = 0.8  # use 80 % of a Li-ion cell's rated capacity: the rest is ageing and cold margin
TARGETS_MA = {"relay": 6.0, "leaf": 1.5}  # issue 16


def register(sub):
    p = sub.add_parser("power", help="a node's average current, battery days and solar panel size")
    p.add_argument("--board", default="heltec-v3", help="a profile in hardware/boards (heltec-v3 or heltec_v3)")
    p.add_argument("--role", choices=ROLES, default="relay")
    p.add_argument("--load", type=float, default=200, help="payments per hour offered to the village")
    p.add_argument("--nodes", type=int, default=50, help="village size")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--minutes", type=int, default=60)
    p.add_argument("--battery-mah", type=float, help="battery capacity (default: the board's usual cell)")
    p.add_argument("--sun-hours", type=float, default=1.5,
                   help="peak sun hours per day in the worst month at the site (default 1.5: a northern European "
                        "December is ~0.5-1.5, the tropics ~4-5)")
    p.add_argument("--relay-rx-duty", action="store_true",
                   help="relays listen in RX duty cycle at the preset's own preamble (opt-in, unverified on a "
                        "board: docs/power.md checklist step 6)")
    p.add_argument("--tx-power-control", action="store_true",
                   help="unicast frames at the lowest power with a margin over the link (pen_node.txpower; off "
                        "by default: it does not pay in the simulated village, docs/power.md)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_power)


@functools.lru_cache(maxsize=4)
def village(board, load, nodes, seed, minutes, tx_power_control=False):
    """One simulated village with its leaves in RX duty cycle: (run, metrics).
    A first run finds which nodes relay for no one at this load. Kept for the
    next call with the same arguments (a test, or several roles in one process):
    pricing it again changes nothing in it but SimPower.relay_duty."""
    from pen.sim.scenario import topology
    from pen.sim.engine import Run
    from pen.sim.power import relays_for_no_one
    from pen_node.power import load_budget
    b = load_budget(board)
    t = topology(nodes, 1, "eu868-sf9", seed)
    first = Run(t, "pen", load, minutes, seed)
    if not b.radio.get("rx_duty_cycle"):  # an SX127x leaf listens all the time: the first run is its life
        first.power.use_board(b)
        if tx_power_control:
            first.power.tx_power_control()
        m = first.run()
        first.power.leaves = set(relays_for_no_one(first))
        return first, m
    first.run()
    leaves = relays_for_no_one(first)
    run = Run(topology(nodes, 1, "eu868-sf9", seed), "pen", load, minutes, seed, leaves=leaves)
    run.power.use_board(b)
    if tx_power_control:
        run.power.tx_power_control()
    m = run.run()
    return run, m


def budget(board, role, load=200, nodes=50, seed=1, minutes=60, battery_mah=None, sun_hours=1.5,
           relay_rx_duty=False, tx_power_control=False):
    from pen_node.power import Budget
    from pen.sim.engine import DEADLINE_S
    board = board.replace("_", "-")
    if (battery_mah is not None and battery_mah <= 0) or sun_hours <= 0:
        raise PenError("--battery-mah and --sun-hours must be positive")
    try:
        run, m = village(board, load, nodes, seed, minutes, tx_power_control)
    except ValueError as e:
        raise PenError(str(e))
    pw = run.power
    pw.relay_duty = relay_rx_duty
    dur = minutes * 60000 + DEADLINE_S * 1000
    picked = [i for i in range(run.t.n) if pw.role(i) == role]
    if not picked:
        raise PenError("no %s in this village at this load (try another --seed or --nodes)" % role)
    rows = [(pw.node(i, dur), i) for i in picked]
    worst, wi = max(rows, key=lambda r: r[0][1])
    mean_ma = sum(r[0][1] for r in rows) / len(rows)
    b = pw.budget
    parts = b.parts(pw.meter(wi, dur), dur)
    ma = worst[1]
    cap = battery_mah if battery_mah is not None else b.battery_mah
    daily_wh = ma / 1000.0 * 24 * b.battery_v
    out = {
        "board": board, "role": role, "load_per_hour": load, "nodes": nodes, "seed": seed,
        "relay_rx_duty": relay_rx_duty, "tx_power_control": tx_power_control,
        "tx_ms_by_dbm": {str(k): v // 1000 for k, v in sorted(pw.tx_us[wi].items())},
        "tx_ms_by_kind": {k: v // 1000 for k, v in sorted(pw.tx_kind_us[wi].items())},
        "nodes_in_role": len(picked), "node": wi + 1,
        "average_ma": round(ma, 3), "mean_ma_in_role": round(mean_ma, 3),
        "awake_fraction": round(worst[2], 4),
        "parts_ma": {k: round(v, 3) for k, v in zip(Budget.PARTS, parts)},
        "battery_mah": cap, "battery_days": round(cap * DEPTH_OF_DISCHARGE / (ma * 24), 1),
        "daily_wh": round(daily_wh, 3), "sun_hours_worst_month": sun_hours,
        "panel_w": round(daily_wh / (sun_hours * b.solar["system_efficiency"]), 2),
        "battery_for_autonomy_mah": round(ma * 24 * b.solar["autonomy_days"] / DEPTH_OF_DISCHARGE),
        "autonomy_days": b.solar["autonomy_days"],
        "village": {"delivery_ratio": m["delivery_ratio"], "p95_latency_s": m["p95_latency_s"],
                    "leaves_in_duty_cycle": len(pw.leaves) if b.radio.get("rx_duty_cycle") else 0},
    }
    out["can_sleep"] = b.can_sleep
    # what a node that listens all the time draws before it sends or handles anything
    out["listening_floor_ma"] = round(b.radio["rx_ma"] + b.mcu["light_sleep_ma"] + b.overhead_ma, 3)
    if role == "relay":
        from pen.sim.power import forced_floor_ma
        # listening all the time plus only the airtime its subtree's payments force on it (at full power)
        out["forced_floor_ma"] = round(forced_floor_ma(b, out["tx_ms_by_kind"], pw.top_dbm, dur, relay_rx_duty), 3)
    if role in TARGETS_MA:
        out["target_ma"] = TARGETS_MA[role]
        out["meets_target"] = ma <= TARGETS_MA[role]
    return out


def cmd_power(args):
    if not 2 <= args.nodes <= 400 or args.load < 0 or args.minutes < 1:
        raise PenError("--nodes must be 2 to 400, --load >= 0, --minutes >= 1")
    out = budget(args.board, args.role, args.load, args.nodes, args.seed, args.minutes, args.battery_mah,
                 args.sun_hours, args.relay_rx_duty, args.tx_power_control)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print("%s as %s%s, %g payments/h in a %d-node village (seed %d): busiest of %d" % (
        out["board"], out["role"], " in RX duty cycle (opt-in, unverified)" if out["relay_rx_duty"] else "",
        out["load_per_hour"], out["nodes"], out["seed"], out["nodes_in_role"]))
    print("  average current  %.2f mA (mean of the role %.2f mA), awake %.2f %% of the time" % (
        out["average_ma"], out["mean_ma_in_role"], 100 * out["awake_fraction"]))
    for k, v in out["parts_ma"].items():
        if v:
            print("    %-20s %.3f mA" % (k, v))
    if out["tx_power_control"]:
        print("  time on air      %s (transmit power control)" % ", ".join(
            "%s dBm %.1f s" % (k, v / 1000.0) for k, v in sorted(out["tx_ms_by_dbm"].items(), key=lambda kv: -int(kv[0]))))
    if out["tx_ms_by_kind"]:
        print("  on air by kind   %s" % ", ".join("%s %.1f s" % (k, v / 1000.0) for k, v in sorted(
            out["tx_ms_by_kind"].items(), key=lambda kv: -kv[1])))
    if "forced_floor_ma" in out:
        print("  forced floor     %.2f mA: listening%s, and sending only what its subtree's payments force "
              "(no retry, no beacon)" % (out["forced_floor_ma"], " in RX duty cycle" if out["relay_rx_duty"] else ""))
    if "target_ma" in out:
        print("  target           <= %.1f mA: %s" % (out["target_ma"], "met" if out["meets_target"] else "NOT met"))
    if not out["can_sleep"]:
        print("  no light sleep   the radio's IRQ pin cannot wake this board's MCU (not an RTC GPIO)")
    if not out["parts_ma"]["radio_rx_duty_cycle"]:
        print("  listening floor  %.2f mA (radio RX + MCU light sleep + board), before any frame" % (
            out["listening_floor_ma"]))
    v = out["village"]
    print("  village          delivery %.3f, p95 %s s, %d leaves in RX duty cycle" % (
        v["delivery_ratio"], v["p95_latency_s"], v["leaves_in_duty_cycle"]))
    print("  battery          %g mAh lasts %.1f days (using %d %% of it)" % (
        out["battery_mah"], out["battery_days"], 100 * DEPTH_OF_DISCHARGE))
    print("  solar            %.2f W panel for %.3f Wh/day at %g sun hours in the worst month; "
          "%d mAh carries %d days without sun" % (out["panel_w"], out["daily_wh"], out["sun_hours_worst_month"],
                                                 out["battery_for_autonomy_mah"], out["autonomy_days"]))
    return 0
