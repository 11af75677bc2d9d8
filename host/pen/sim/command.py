"""pen sim: a village on the simulated radio, Pen against a Meshtastic-style
flooding baseline on the same topology and load."""
import json

from pen.cli import PenError

KEYS = ("delivery_ratio", "p50_latency_s", "p95_latency_s", "airtime_per_payment_ms", "max_duty_cycle",
        "avg_current_ma", "capacity_payments_per_hour")


def register(sub):
    from pen_protocol.airtime import PRESETS
    p = sub.add_parser("sim", help="simulate a village mesh: Pen vs a Meshtastic-style flooding baseline")
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--load", type=float, default=200, help="offered payments per hour")
    p.add_argument("--minutes", type=int, default=60)
    p.add_argument("--preset", default="eu868-sf9", choices=sorted(PRESETS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bridges", type=int, default=1)
    p.add_argument("--topology", help="JSON file: {\"positions\": [[x_m, y_m]...], \"bridges\": [index...]}")
    p.add_argument("--runtime", choices=("cpython", "micropython"), default="cpython")
    p.add_argument("--heap", default="64k", help="MicroPython heap per node (with --runtime micropython)")
    p.add_argument("--no-sweep", action="store_true", help="skip the capacity sweep")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sim)


def cmd_sim(args):
    if args.nodes < 2 or args.nodes > 400:
        raise PenError("--nodes must be 2 to 400")
    if args.bridges < 1 or args.bridges >= args.nodes:
        raise PenError("--bridges must be at least 1 and fewer than --nodes")
    if args.load < 0 or args.minutes < 1:
        raise PenError("--load must be >= 0 and --minutes >= 1")
    if args.runtime == "micropython":
        from pen.sim import mpruntime
        out = mpruntime.run(args.nodes, args.load, args.minutes, args.preset, args.seed, args.bridges, args.heap)
        if args.json:
            print(json.dumps(out, indent=1))
        else:
            _table_mp(out)
        return 0 if out["delivered"] == out["accepted"] else 1
    from pen.sim import scenario
    try:
        out = scenario.run(args.nodes, args.load, args.minutes, args.preset, args.seed, args.bridges, args.topology,
                           sweep=() if args.no_sweep else scenario.SWEEP)
    except (OSError, ValueError, KeyError) as e:
        raise PenError("topology: %s" % e)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table
    sc = out["scenario"]
    t = Table(title="%d nodes (%d bridge), %s, %g payments/h for %d min, seed %d — %s s" % (
        sc["nodes"], sc["bridges"], sc["preset"], sc["load_per_hour"], sc["minutes"], sc["seed"], sc["seconds"]))
    t.add_column("figure")
    t.add_column("Pen", justify="right")
    t.add_column("flooding", justify="right")
    for k in KEYS + ("receipts_returned", "tx_frames"):
        t.add_row(k, str(out["pen"].get(k)), str(out["flooding"].get(k)))
    t.add_row("throughput_ratio", str(out["throughput_ratio"]), "")
    Console().print(t)
    return 0


def _table_mp(out):
    from rich.console import Console
    from rich.table import Table
    t = Table(title="Pen on %d real MicroPython nodes (heap %s), %s s" % (out["nodes"], out["heap"], out["seconds"]))
    t.add_column("figure")
    t.add_column("value", justify="right")
    for k, v in out.items():
        if k not in ("nodes", "heap", "seconds", "runtime"):
            t.add_row(k, json.dumps(v) if isinstance(v, (dict, list)) else str(v))
    Console().print(t)
