"""The leaves' RX duty cycle against the village, like with like: for each
sleeping period, seeds x draws of the medium's per-frame fading at 200/h,
pooled (docs/power.md, "Leaves listen in RX duty cycle"). Not a test: about
1.5 s a run.

    python tests/power/sweep_leaf_rx.py --seeds 1-5 --draws 3 --sleep 21,37,53,77 [--tpc]

The window and the long preamble follow from each sleep by the board's rule
(pen_node.boardsleep.duty_cycle: latch on 8 symbols at SF9).
"""
import argparse
import random

import powerpath  # noqa: F401
from pen.sim import power as SP
from pen.sim.engine import Run
from pen.sim.scenario import topology
from pen_node.boardsleep import symbol_us


def seeds_arg(s):
    if "-" in s:
        a, b = s.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in s.split(",")]


def one(seed, draw, leaves, sleep_symbols, tpc=False, load=200):
    r = Run(topology(50, seed, "eu868-sf9", 1), "pen", load, 60, seed, leaves=leaves)
    pw = r.power
    if sleep_symbols is not None:
        pw.budget.leaf = dict(pw.budget.leaf, sleep_symbols=sleep_symbols)
        p = r.t.preset
        pw.long_preamble, pw.duty = pw.budget.leaf_duty(p.sf, p.bw_hz)
        pw.catch_share = SP.catch_share(p.sf, p.bw_hz, p.preamble, pw.duty)
    if tpc:
        pw.tx_power_control()
    if draw:  # the medium's per-frame fading only (Medium: seed * 31 + 7 for draw 0)
        r.medium.rnd = random.Random(seed * 31 + 7 + 1000 * draw)
    return r, r.run()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=seeds_arg, default=seeds_arg("1-5"))
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--sleep", default="93", help="sleeping symbols per cycle, e.g. 21,53")
    ap.add_argument("--tpc", action="store_true", help="transmit power control on, asleep")
    a = ap.parse_args()
    configs = [None] + [int(x) for x in a.sleep.split(",")]
    res = {c: {"on": 0, "rc": 0, "off": 0, "lat": [], "leaf": [], "leafmean": [], "relaymean": []} for c in configs}
    for seed in a.seeds:
        plain = Run(topology(50, seed, "eu868-sf9", 1), "pen", 200, 60, seed)
        plain.run()
        leaves = SP.relays_for_no_one(plain)
        for draw in range(a.draws):
            for c in configs:
                r, m = one(seed, draw, () if c is None else leaves, c, a.tpc and c is not None)
                x = res[c]
                x["on"] += m["delivered_on_time"]
                x["rc"] += m["receipts_returned"]
                x["off"] += m["offered"]
                x["lat"] += [(r.delivered[rid] - t0) / 1000.0 if rid in r.delivered else float("inf")
                             for rid, (t0, _) in r.submitted.items()]
                x["relaymean"].append(m["power"]["relay"]["mean_ma"])
                if c is not None:
                    x["leaf"].append(m["power"]["leaf"]["max_ma"])
                    x["leafmean"].append(m["power"]["leaf"]["mean_ma"])
    for c in configs:
        x = res[c]
        lat = sorted(x["lat"])
        name = "awake"
        if c is not None:
            from pen_node.power import load_budget
            b = load_budget("heltec-v3")
            b.leaf = dict(b.leaf, sleep_symbols=c)
            pre, dc = b.leaf_duty(9, 125000)
            name = "sleep %d, window %.1f (preamble %d, radio %.2f mA)" % (
                c, dc[0] / float(symbol_us(9, 125000)), pre, b.rx_duty_ma(dc))
        leaf = ""
        if x["leaf"]:
            leaf = " worst leaf per run %.2f-%.2f mA (%d of %d over 1.5), mean leaf %.2f" % (
                min(x["leaf"]), max(x["leaf"]), sum(v > 1.5 for v in x["leaf"]), len(x["leaf"]),
                sum(x["leafmean"]) / len(x["leafmean"]))
        rm = x["relaymean"]
        print("%-52s on time %d of %d, receipts %d, pooled p95 %.1f s%s; relays' mean %.2f (%.2f-%.2f, %d over 6)" % (
            name, x["on"], x["off"], x["rc"], lat[int(0.95 * len(lat))], leaf, sum(rm) / len(rm), min(rm), max(rm),
            sum(v > 6.0 for v in rm)))


if __name__ == "__main__":
    main()
