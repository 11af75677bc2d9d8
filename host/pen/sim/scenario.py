"""A village scenario: both schemes on one topology and load, plus each
scheme's capacity over a sweep of offered loads (same topology and seed)."""
import json
import time
from multiprocessing import get_context

from pen_protocol.airtime import PRESETS

from pen.sim.medium import Topology
from pen.sim.engine import Run

SWEEP = (200, 400, 600, 800, 1200, 1600, 2400, 3200)  # payments per hour
# per sweep point: a whole hour, because the duty-cycle law is a budget per
# rolling hour; a shorter run lets a node spend an hour's budget in minutes
# and overstates capacity
SWEEP_MINUTES = 60


def topology(nodes, bridges, preset_name, seed, path=None):
    preset = PRESETS[preset_name]
    if path:
        with open(path) as f:
            return Topology.from_json(json.load(f), preset, seed)
    return Topology.generate(nodes, bridges, preset, seed)


def _one(args):
    nodes, bridges, preset, seed, path, scheme, load, minutes = args
    t = topology(nodes, bridges, preset, seed, path)
    return scheme, load, Run(t, scheme, load, minutes, seed).run()


def run(nodes=50, load=200, minutes=60, preset="eu868-sf9", seed=1, bridges=1, topology_file=None,
        sweep=SWEEP, sweep_minutes=SWEEP_MINUTES, processes=2):
    t0 = time.time()
    topo = topology(nodes, bridges, preset, seed, topology_file)
    tasks = [(nodes, bridges, preset, seed, topology_file, s, load, minutes) for s in ("pen", "flooding")]
    sm = min(minutes, sweep_minutes)
    # the main run doubles as the sweep point at its own load when the durations agree
    tasks += [(nodes, bridges, preset, seed, topology_file, s, ld, sm)
              for s in ("pen", "flooding") for ld in sweep if not (ld == load and sm == minutes)]
    # the longest runs first, so two workers finish together
    tasks.sort(key=lambda a: -a[6] * a[7] * (4 if a[5] == "flooding" else 1))
    if processes > 1:
        with get_context("fork").Pool(processes) as pool:
            results = pool.map(_one, tasks, chunksize=1)
    else:
        results = [_one(a) for a in tasks]
    main = {}
    curve = {"pen": {}, "flooding": {}}
    for (scheme, ld, m), a in zip(results, tasks):
        if a[7] == minutes and ld == load and scheme not in main:
            main[scheme] = m
            if sweep and sm == minutes:
                curve[scheme][ld] = m
        else:
            curve[scheme][ld] = m
    out = {}
    for scheme in ("pen", "flooding"):
        m = dict(main[scheme])
        if curve[scheme]:
            best = max(curve[scheme].items(), key=lambda kv: kv[1]["goodput_per_hour"])
            m["capacity_payments_per_hour"] = best[1]["goodput_per_hour"]
            m["capacity_at_offered_load"] = best[0]
        else:  # no sweep asked for
            m["capacity_payments_per_hour"] = None
            m["capacity_at_offered_load"] = None
        m["sweep"] = {"%g" % ld: {"delivery_ratio": r["delivery_ratio"], "goodput_per_hour": r["goodput_per_hour"],
                                "p95_latency_s": r["p95_latency_s"],
                                "bridge_duty_cycle": r["limits"]["bridge_duty_cycle"],
                                "max_duty_cycle": r["max_duty_cycle"],
                                "bridge_frames_lost_to_collision": r["limits"]["bridge_frames_lost_to_collision"]}
                       for ld, r in sorted(curve[scheme].items())}
        out[scheme] = m
    cap_f = out["flooding"]["capacity_payments_per_hour"]
    out["throughput_ratio"] = round(out["pen"]["capacity_payments_per_hour"] / cap_f, 2) if cap_f else None
    hops = topo.hops_to_bridge()
    out["scenario"] = {"nodes": topo.n, "bridges": len(topo.bridges), "preset": preset, "seed": seed,
                       "load_per_hour": load, "minutes": minutes, "sweep_minutes": min(minutes, sweep_minutes),
                       "max_hops_to_bridge": max(hops.values()),
                       "mean_neighbours": round(sum(len(x) for x in topo.neighbours) / topo.n, 1),
                       "deadline_s": 120, "runtime": "cpython", "seconds": round(time.time() - t0, 1)}
    return out
