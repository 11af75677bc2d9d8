"""pen sim: a village on the simulated radio, Pen against a Meshtastic
baseline on the same topology and load."""
import json

from pen.cli import PenError

# (key, words, how to show it) for the human table
ROWS = (
    ("on_time_ratio", "payments at a bridge within 120 s", "ratio"),
    ("receipts_ratio", "receipts back at the store within 10 min", "ratio"),
    ("p50_latency_s", "median latency", "s"),
    ("p95_latency_s", "95th-percentile latency", "s"),
    ("lost", "payments lost", "int"),
    ("airtime_per_payment_ms", "airtime per payment (all nodes, everything)", "ms"),
    ("max_duty_cycle", "busiest node's duty cycle", "pct"),
    ("avg_current_ma", "mean current per node", "ma"),
    ("tx_frames", "frames sent", "int"),
    ("service_capacity_per_hour", "service capacity (99 % on time, receipts, nothing lost)", "rate"),
    ("capacity_payments_per_hour", "peak goodput over the sweep", "rate"),
)
WORST_ROWS = (
    ("on_time_ratio", "payments at a bridge within 120 s", "ratio"),
    ("p95_latency_s", "95th-percentile latency", "s"),
    ("receipts_ratio", "receipts back at the store within 10 min", "ratio"),
    ("service_capacity_per_hour", "service capacity", "rate"),
    ("capacity_payments_per_hour", "peak goodput", "rate"),
)


def register(sub):
    from pen_protocol.airtime import PRESETS
    from pen.sim.baseline import BASELINES
    from pen.sim.medium import MediumModel
    from pen.sim.oracles import ORACLES
    p = sub.add_parser("sim", help="simulate a village mesh: Pen vs a Meshtastic baseline")
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--load", type=float, default=200, help="offered payments per hour")
    p.add_argument("--minutes", type=int, default=60)
    p.add_argument("--preset", default="eu868-sf9", choices=sorted(PRESETS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--seeds", help="several villages, e.g. 1-5 or 1,3,7: each seed's figures and the worst")
    p.add_argument("--bridges", type=int, default=1)
    p.add_argument("--topology", help="JSON file: {\"positions\": [[x_m, y_m]...], \"bridges\": [index...]}")
    p.add_argument("--runtime", choices=("cpython", "micropython"), default="cpython")
    p.add_argument("--heap", default="64k", help="MicroPython heap per node beside its bytecode, which runs from a ROM image as a board's runs from flash (with --runtime micropython)")
    p.add_argument("--baseline", default="meshtastic-2.6", choices=sorted(b for b in BASELINES if b != "flooding"),
                   help="meshtastic-2.6: next-hop routing, ACK-cancelled relays, PKI overhead; flooding-2.5: before")
    p.add_argument("--links", default="asymmetric", choices=MediumModel.LINKS,
                   help="shadowing per direction (default) or one value per pair (the older model)")
    p.add_argument("--shadow-shared-db", type=float, help="sigma of the shadowing both directions share")
    p.add_argument("--shadow-direction-db", type=float, help="sigma of the shadowing drawn per direction")
    p.add_argument("--cad", default="real", choices=MediumModel.CADS,
                   help="real: blind for its first symbols, 1 %% false alarms; ideal: sees every frame at once")
    p.add_argument("--interference", default="sinr", choices=MediumModel.INTERFERENCE,
                   help="sinr: overlapping frames' power summed; pairwise: the strongest one only")
    p.add_argument("--last-hop", default=None, choices=("random", "scheduled"),
                   help="Pen's last hop into a bridge: random access, or slots the bridge grants (docs/sim.md)")
    p.add_argument("--oracle", choices=sorted(ORACLES), help="a bound no protocol beats, applied to Pen's runs")
    p.add_argument("--bound", action="store_true", help="print the first-principles airtime bounds and exit")
    p.add_argument("--no-sweep", action="store_true", help="skip the capacity sweep")
    p.add_argument("--plot", metavar="FILE", help="draw goodput and on-time delivery against offered load (PNG/SVG/PDF)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sim)


def parse_seeds(text):
    """'1-5' or '1,3,7' (or a mix): the seeds, in order, each once."""
    out = []
    try:
        for part in text.split(","):
            a, _, b = part.strip().partition("-")
            lo, hi = int(a), int(b) if b else int(a)
            if hi < lo or hi - lo > 100:
                raise ValueError
            out += [s for s in range(lo, hi + 1) if s not in out]
    except ValueError:
        raise PenError("--seeds takes seeds like 1-5 or 1,3,7 (at most 100 in a range), not %r" % text)
    return out


def _model(args):
    from pen.sim.medium import MediumModel
    try:
        return MediumModel(args.links, args.shadow_shared_db, args.shadow_direction_db, args.cad,
                           interference=args.interference)
    except ValueError as e:
        raise PenError(str(e))


def cmd_sim(args):
    if args.nodes < 2 or args.nodes > 400:
        raise PenError("--nodes must be 2 to 400")
    if args.bridges < 1 or args.bridges >= args.nodes:
        raise PenError("--bridges must be at least 1 and fewer than --nodes")
    if args.load < 0 or args.minutes < 1:
        raise PenError("--load must be >= 0 and --minutes >= 1")
    if args.bound:
        return _bound(args)
    model = _model(args)
    if args.plot:
        _check_plotting()
    if args.runtime == "micropython":
        from pen.sim import mpruntime
        out = mpruntime.run(args.nodes, args.load, args.minutes, args.preset, args.seed, args.bridges, args.heap,
                            model)
        if args.json:
            print(json.dumps(out, indent=1))
        else:
            _table_mp(out)
        return 0 if out["delivered"] == out["accepted"] else 1
    from pen.sim import scenario
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    kw = dict(nodes=args.nodes, load=args.load, minutes=args.minutes, preset=args.preset, bridges=args.bridges,
              topology_file=args.topology, sweep=() if args.no_sweep else scenario.SWEEP, model=model,
              baseline=args.baseline, oracle=args.oracle, last_hop=args.last_hop or scenario.LAST_HOP)
    with _Progress(not args.json, seeds or [args.seed], 0 if args.no_sweep else len(scenario.SWEEP)) as prog:
        try:
            if seeds:
                out = scenario.run_seeds(seeds, progress=prog.update, **kw)
            else:
                out = scenario.run(seed=args.seed, progress=prog.update, **kw)
        except (OSError, ValueError, KeyError) as e:
            raise PenError("topology: %s" % e)
    if args.plot:
        from pen.sim.plot import plot
        plot(out["seeds"] if seeds else [out], args.plot)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    for one in (out["seeds"] if seeds else [out]):
        _table(one)
    if seeds:
        _worst_table(out)
    if args.plot:
        print("plot written to %s" % args.plot)
    return 0


def _check_plotting():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PenError("--plot needs matplotlib: pip install 'pen[plot]' (or pip install matplotlib)")


class _Progress:
    """A rich progress bar over the runs (main runs and sweep points of both
    schemes, per seed), with the last point's figures; silent for --json."""

    def __init__(self, show, seeds, sweep_points):
        self.show = show
        self.seeds = seeds
        self.total = len(seeds) * 2 * max(sweep_points, 1)
        self.done = 0
        self.bar = None

    def __enter__(self):
        if self.show:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} runs"),
                                TimeElapsedColumn(), transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task("simulating", total=self.total)
        return self

    def update(self, scheme, load, m):
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description="%s at %g/h: %d of %d on time, %.0f/h delivered" % (
                scheme, load, m["delivered_on_time"], m["offered"], m["goodput_per_hour"]))

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.update(self.task, completed=self.total)
            self.bar.__exit__(*exc)
        return False


def say(value, how):
    """A figure in words: None becomes what it means here."""
    if value is None:
        return {"ratio": "none to count", "s": "nothing delivered", "int": "not counted",
                "ms": "nothing delivered", "rate": "not measured (no sweep)"}.get(how, "not measured")
    if how == "ratio":
        return "%.1f %%" % (100 * value)
    if how == "pct":
        return "%.1f %%" % (100 * value)
    if how == "s":
        return "%.1f s" % value
    if how == "ms":
        return "%.2f s" % (value / 1000.0)
    if how == "ma":
        return "%.1f mA" % value
    if how == "rate":
        return "%s payments/h" % format(int(round(value)), ",")
    return format(int(value), ",")


def _table(out):
    from rich.console import Console
    from rich.table import Table
    sc = out["scenario"]
    md = sc["medium"]
    hops = sc["max_hops_to_bridge"]
    t = Table(title="%d nodes (%d bridge%s, up to %d hop%s), %s, %g payments/h for %d min, seed %d: %s s\n"
              "links %s, CAD %s, interference %s%s" % (
                  sc["nodes"], sc["bridges"], "s" if sc["bridges"] > 1 else "", hops, "s" if hops > 1 else "",
                  sc["preset"],
                  sc["load_per_hour"], sc["minutes"], sc["seed"], sc["seconds"], md["links"], md["cad"],
                  md["interference"], ", oracle %s for Pen" % sc["oracle"] if sc["oracle"] else ""))
    t.add_column("")
    t.add_column("Pen", justify="right")
    t.add_column("Meshtastic (%s)" % sc["baseline"], justify="right")
    for k, words, how in ROWS:
        pen, base = out["pen"].get(k), out["baseline"].get(k)
        if k == "receipts_ratio":
            t.add_row(words, say(pen, how) if pen is not None else "run too short to count", "no receipts")
            continue
        t.add_row(words, say(pen, how), say(base, how))
    t.add_row("Pen's peak goodput / the baseline's", _times(out["throughput_ratio"]), "")
    t.add_row("Pen's service capacity / the baseline's", _service_times(out), "")
    Console().print(t)
    _print_bound(out["bound"])


def _print_bound(b, seed=None):
    """The village's first-principles bounds in words (pen.sim.oracles)."""
    print("%sBound of this village under the law (max-flow over its %d links usable both ways, p >= %g): "
          "payments %s/h (%s), %s/h with acks batched (%s); with every receipt back %s/h (%s), %s/h with "
          "acks batched (%s)." % (
              "Seed %d: " % seed if seed is not None else "", b["two_way_links"], b["link_threshold"],
              format(b["payments"]["bound_per_hour"], ","), "; ".join(b["payments"]["binding"]),
              format(b["payments_batched_acks"]["bound_per_hour"], ","),
              "; ".join(b["payments_batched_acks"]["binding"]),
              format(b["service"]["bound_per_hour"], ","), "; ".join(b["service"]["binding"]),
              format(b["service_batched_acks"]["bound_per_hour"], ","),
              "; ".join(b["service_batched_acks"]["binding"])))


def _service_times(out):
    if out["service_ratio"] is None and out["baseline"].get("service_capacity_per_hour") == 0:
        return "no ratio: the baseline holds the service level at no load"
    return _times(out["service_ratio"])


def _times(r):
    return "%.2f x" % r if r is not None else "not measured"


def _worst_table(out):
    from rich.console import Console
    from rich.table import Table
    w = out["worst"]
    seeds = [o["scenario"]["seed"] for o in out["seeds"]]
    t = Table(title="The worst of seeds %s" % ", ".join(str(s) for s in seeds))
    t.add_column("")
    t.add_column("Pen", justify="right")
    t.add_column("baseline", justify="right")
    for k, words, how in WORST_ROWS:
        base = w["baseline"].get(k) if k in w["baseline"] else None
        pen = w["pen"].get(k)
        if k == "receipts_ratio":
            t.add_row(words, say(pen, how) if pen is not None else "run too short to count", "no receipts")
            continue
        t.add_row(words, say(pen, how), say(base, how))
    undefined = w.get("service_ratio_undefined_seeds")
    t.add_row("service capacity ratio (worst seed)", _times(w["service_ratio"]) + (
        "; none on seed%s %s (the baseline held the level nowhere)" % (
            "s" if len(undefined) > 1 else "", ", ".join(str(s) for s in undefined)) if undefined else ""), "")
    t.add_row("bound on payments (lowest seed)", say(w["bound"]["payments"], "rate"), "")
    t.add_row("bound on the service level (lowest seed)", say(w["bound"]["service"], "rate"), "")
    Console().print(t)


def _bound(args):
    from pen.sim.oracles import bounds
    from pen.sim import scenario
    from pen_protocol.airtime import PRESETS
    b = bounds(PRESETS[args.preset])
    seeds = parse_seeds(args.seeds) if args.seeds is not None else [args.seed]
    try:
        villages = [(sd, scenario.village_bound(scenario.topology(
            args.nodes, args.bridges, args.preset, sd, args.topology, _model(args)))) for sd in seeds]
    except (OSError, ValueError, KeyError) as e:
        raise PenError("topology: %s" % e)
    b["villages"] = dict(("%d" % sd, v) for sd, v in villages)
    if args.json:
        print(json.dumps(b, indent=1))
        return 0
    print("%s: a payment frame is %d B (%.3f s on air), a link ack %d B (%.3f s)." % (
        b["preset"], b["payment_frame_bytes"], b["payment_airtime_s"], b["ack_frame_bytes"], b["ack_airtime_s"]))
    if b["one_ack_per_payment_duty_cap_per_hour"] is not None:
        print("One bridge acking each payment alone is capped by its own %g %% duty cycle at 3,600 s x %g / %.4f s "
              "= %s payments/h." % (100 * b["bridge_duty"], b["bridge_duty"], b["ack_airtime_s"],
                                    format(b["one_ack_per_payment_duty_cap_per_hour"], ",")))
    print("With acks batched, the channel itself (every payment and an ack heard once, back to back, no collision) "
          "caps it at 3,600 s / (%.4f + %.4f) s = %s payments/h." % (
              b["payment_airtime_s"], b["ack_airtime_s"], format(b["channel_cap_per_hour"], ",")))
    if b["batched_ack_duty_cap_per_hour"] is not None:
        print("Acks batched into grants (--last-hop scheduled: a %d B grant, %.4f s, acks a cycle's payments) cap "
              "the bridge's duty at %s payments/h; a cycle that is all slots (%.2f s) carries at most %s payments/h."
              % (b["grant_bytes"], b["grant_airtime_s"], format(b["batched_ack_duty_cap_per_hour"], ","),
                 b["cycle_s"], format(b["scheduled_cycle_cap_per_hour"], ",")))
    for sd, v in villages:
        _print_bound(v, sd)
    return 0


def _table_mp(out):
    from rich.console import Console
    from rich.table import Table
    md = out["medium"]
    t = Table(title="Pen on %d real MicroPython nodes (heap %s), %s s; links %s, CAD %s, interference %s" % (
        out["nodes"], out["heap"], out["seconds"], md["links"], md["cad"], md["interference"]))
    t.add_column("")
    t.add_column("value", justify="right")
    for k, v in out.items():
        if k not in ("nodes", "heap", "seconds", "runtime", "medium"):
            t.add_row(k.replace("_", " "), json.dumps(v) if isinstance(v, (dict, list)) else
                      ("none" if v is None else str(v)))
    Console().print(t)
