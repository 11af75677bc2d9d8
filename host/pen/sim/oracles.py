"""Oracles and bounds: what no real protocol can beat, as code anyone can rerun.

An oracle changes what the medium tells Pen's nodes, never Pen's code: it
answers channel activity detection (CAD) for them with knowledge no radio
has (perfect synchronisation, a busy signal nobody sends). Run with
`pen sim --oracle busy-tone|tdma`; it applies to Pen's runs only, the
baseline runs as usual. `pen sim --bound` prints the first-principles
duty-cycle and channel bounds (bounds() below).

- busy-tone: every node that hears a bridge finds the channel busy while
  any frame addressed to that bridge is on air, as if the bridge sent a busy
  tone: the hidden terminals at the bridge vanish.
- tdma: every node that hears a bridge and is heard by it (and the bridge)
  owns one slot of a fixed cycle and may start anything but an ack only in
  its slot (its CAD reports busy elsewhere); the other nodes keep
  listen-before-talk. Slots are perfectly synchronised and cost no frames.
"""
from pen_protocol import frame as F

TDMA_SLOT_US = 1200000  # one payment bundle (~0.95 s at SF9) and its ack
PAYMENT_RECORD_BYTES = 89  # a signed USE record (pen.sim.engine.Payments)
ACK_BYTES = F.HEADER_LEN + F.FRAME_ID_LEN  # a link ack naming one frame


class BusyTone:
    name = "busy-tone"

    def attach(self, run):
        t = run.t
        self.bridges = set(b + 1 for b in t.bridges)  # node addresses are index + 1
        self.hear = set(j for b in t.bridges for j in range(t.n) if j != b and t.link_ok(b, j))

    def busy(self, medium, j, now_us):
        if j not in self.hear:
            return False
        for o in medium.on_air:
            f = o[3]
            if o[0] <= now_us < o[1] and o[2] != j and len(f) >= F.HEADER_LEN and \
                    ((f[4] << 8) | f[5]) in self.bridges:
                return True
        return False


class Tdma:
    name = "tdma"

    def __init__(self, slot_us=TDMA_SLOT_US):
        self.slot_us = slot_us

    def attach(self, run):
        t = run.t
        owners = set(t.bridges)
        for b in t.bridges:
            owners.update(j for j in range(t.n) if t.link_ok(b, j) and t.link_ok(j, b))
        self.slot = dict((j, k) for k, j in enumerate(sorted(owners)))
        self.cycle_us = len(self.slot) * self.slot_us

    def busy(self, medium, j, now_us):
        k = self.slot.get(j)
        return k is not None and (now_us % self.cycle_us) // self.slot_us != k


ORACLES = {"busy-tone": BusyTone, "tdma": Tdma}


def make(name):
    if name is None:
        return None
    if name not in ORACLES:
        raise ValueError("unknown oracle %r (one of %s)" % (name, ", ".join(sorted(ORACLES))))
    return ORACLES[name]()


def bounds(preset):
    """First-principles caps on payments per hour into one bridge, from
    airtime alone (no collisions, no routing, every payment heard once):
    - one ack per payment: the bridge sends one ack frame per payment, and
      its own duty cycle caps those: 3600 s x duty / ack airtime;
    - the channel: every payment frame and its ack on the bridge's air, one
      at a time: 3600 s / (payment frame + ack airtime); acks batched into
      fewer frames lift the first cap towards this one."""
    pay_frame = PAYMENT_RECORD_BYTES + F.HEADER_LEN - 1  # the type byte rides in the header
    t_pay = preset.airtime_us(pay_frame) / 1e6
    t_ack = preset.airtime_us(ACK_BYTES) / 1e6
    duty = preset.duty_permille / 1000.0
    out = {"preset": preset.name, "payment_frame_bytes": pay_frame, "payment_airtime_s": round(t_pay, 4),
           "ack_frame_bytes": ACK_BYTES, "ack_airtime_s": round(t_ack, 4), "bridge_duty": duty,
           "channel_cap_per_hour": int(3600 / (t_pay + t_ack))}
    out["one_ack_per_payment_duty_cap_per_hour"] = int(3600 * duty / t_ack) if duty else None
    out.update(scheduled_bounds(preset))
    return out


def scheduled_bounds(preset):
    """The scheduled last hop's own caps (firmware/pen_node/lasthop.py, its
    constants; sealed frames, tag included): a full grant acks at most a
    cycle's slot units, one payment each (a two-payment bundle takes two
    units), so the bridge's duty cycle spent on acks is one grant per
    MAX_GRANT_UNITS payments; and a cycle that is all slots (grant, guard,
    MAX_GRANT_UNITS units, the contention window) carries at most
    MAX_GRANT_UNITS payments."""
    from pen_node import lasthop as L
    unit_s = preset.airtime_us(F.HEADER_LEN + 1 + F.BUNDLE_ENTRY + PAYMENT_RECORD_BYTES + F.TAG_LEN) / 1e6 + \
        L.GUARD_MS / 1000.0
    grant_bytes = F.HEADER_LEN + L._GRANT_MAX_PAYLOAD + F.TAG_LEN
    t_grant = preset.airtime_us(grant_bytes) / 1e6
    cycle_s = t_grant + L.GUARD_MS / 1000.0 + L.MAX_GRANT_UNITS * unit_s + L.CW_MS / 1000.0
    duty = preset.duty_permille / 1000.0
    return {"grant_bytes": grant_bytes, "grant_airtime_s": round(t_grant, 4), "slot_unit_s": round(unit_s, 4),
            "cycle_s": round(cycle_s, 3),
            "batched_ack_duty_cap_per_hour": int(3600 * duty * L.MAX_GRANT_UNITS / t_grant) if duty else None,
            "scheduled_cycle_cap_per_hour": int(3600 * L.MAX_GRANT_UNITS / cycle_s)}


# -- the village's first-principles bound: a max-flow with node capacities --

# A link is usable when a frame crosses it with at least this probability
# each way (the medium's per-frame fading on its fixed per-direction
# shadowing); each hop is charged one payment frame and one ack, as if none
# were ever lost: optimistic, so the bound stays an upper bound.
LINK_THRESHOLD = 0.1
# acks batched: one ack frame names this many frame ids (frame.MAX_PAYLOAD //
# frame.FRAME_ID_LEN), so each payment costs its share of that frame
BATCH_IDS = F.MAX_PAYLOAD // F.FRAME_ID_LEN
DIGEST_FULL_BYTES = F.HEADER_LEN + F.MAX_PAYLOAD - 1  # a digest of 14 on air before its tag: 251 B (its type byte in the header)
_EPS = 1e-9


def delivery(topo):
    """p[i][j]: the probability that a frame from i is heard by j (no
    interference), from the medium's per-direction RSSI and its per-frame
    fading (pen.sim.medium)."""
    from math import erf, sqrt
    from pen.sim.medium import FADE_SIGMA_DB
    n = topo.n
    p = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i != j:
                margin = topo.rssi[i][j] - topo.noise - topo.floor
                p[i][j] = 0.5 * (1 + erf(margin / (FADE_SIGMA_DB * sqrt(2))))
    return p


class _Net:
    """A small max-flow network (Edmonds-Karp: shortest augmenting paths),
    capacities in payments per hour."""

    def __init__(self):
        self.cap = {}  # (u, v) -> residual capacity
        self.adj = {}

    def add(self, u, v, c):
        for a, b in ((u, v), (v, u)):
            self.adj.setdefault(a, set()).add(b)
            self.cap.setdefault((a, b), 0.0)
        self.cap[(u, v)] += c

    def maxflow(self, s, t):
        total = 0.0
        while True:
            prev = {s: None}
            todo = [s]
            for u in todo:  # breadth first: the list grows as it is read
                if u == t:
                    break
                for v in self.adj.get(u, ()):
                    if v not in prev and self.cap[(u, v)] > _EPS:
                        prev[v] = u
                        todo.append(v)
            if t not in prev:
                return total, set(prev)  # the source side of a minimum cut
            push, v = float("inf"), t
            while prev[v] is not None:
                push = min(push, self.cap[(prev[v], v)])
                v = prev[v]
            v = t
            while prev[v] is not None:
                self.cap[(prev[v], v)] -= push
                self.cap[(v, prev[v])] += push
                v = prev[v]
            total += push


def _costs(preset, batched, receipts):
    """Airtime (s) per payment: its frame (sealed, as on air), the ack of
    one hop (one frame each, or its share of a batched ack), and with
    receipts the share of a full signed digest (pen_protocol.digest: 14
    receipts a frame, every hop of the way down)."""
    pay_frame = PAYMENT_RECORD_BYTES + F.HEADER_LEN - 1 + F.TAG_LEN
    t_pay = preset.airtime_us(pay_frame) / 1e6
    t_ack = preset.airtime_us(ACK_BYTES + F.TAG_LEN) / 1e6
    if batched:
        t_ack = preset.airtime_us(F.HEADER_LEN + BATCH_IDS * F.FRAME_ID_LEN + F.TAG_LEN) / 1e6 / BATCH_IDS
    t_rcpt = 0.0
    if receipts:
        from pen_protocol import digest as G
        t_rcpt = preset.airtime_us(DIGEST_FULL_BYTES + F.TAG_LEN) / 1e6 / G.MAX_ENTRIES
    return t_pay, t_ack, t_rcpt


def _network(p, bridges, load, costs, duty, threshold):
    """The flow network at `load` payments/h spread evenly over the stores
    (every node but the bridges). Per hour, a store v sends its own payments
    (t_pay each) and relays what its children hand it (t_pay up, an ack
    t_ack down and its receipts' share t_rcpt down, each), within duty x
    3600 s; a bridge spends t_ack + t_rcpt of its duty on each payment it
    receives, and its air holds one frame at a time (each payment's frame,
    ack and receipt share: 3600 s). None when a store cannot even send its
    own payments."""
    t_pay, t_ack, t_rcpt = costs
    n = len(p)
    stores = [v for v in range(n) if v not in bridges]
    own = float(load) / len(stores)
    budget = duty * 3600.0
    net = _Net()
    caps = {}
    for v in stores:
        spare = budget - own * t_pay
        if spare < -_EPS:
            return None, None
        caps[("relay", v)] = max(spare, 0.0) / (t_pay + t_ack + t_rcpt)
        net.add(("in", v), ("out", v), caps[("relay", v)])
        net.add("S", ("out", v), own)
    for b in bridges:
        caps[("bridge-air", b)] = 3600.0 / (t_pay + t_ack + t_rcpt)
        caps[("bridge-duty", b)] = budget / (t_ack + t_rcpt)
        net.add(("in", b), ("duty", b), caps[("bridge-duty", b)])
        net.add(("duty", b), ("out", b), caps[("bridge-air", b)])
        net.add(("out", b), "T", float("inf"))
    for v in stores:
        for u in range(n):
            if u != v and p[v][u] >= threshold and p[u][v] >= threshold:
                net.add(("out", v), ("in", u), float("inf"))
    return net, caps


def _binding(caps, side):
    """The constraints a minimum cut crosses, in words: what binds."""
    out = []
    for (kind, v) in sorted(caps):
        a, b = (("in", v), ("out", v)) if kind == "relay" else \
            (("in", v), ("duty", v)) if kind == "bridge-duty" else (("duty", v), ("out", v))
        if a in side and b not in side:
            out.append("%s %d" % ({"relay": "the duty cycle of relay", "bridge-duty": "the duty cycle of bridge",
                                   "bridge-air": "the air of bridge"}[kind], v))
    return out


def _no_way_up(p, bridges, threshold):
    """Stores with no chain of links usable both ways to a bridge: their own
    payments bind the bound at 0."""
    n = len(p)
    up = set(bridges)
    todo = list(bridges)
    while todo:
        u = todo.pop()
        for v in range(n):
            if v not in up and p[v][u] >= threshold and p[u][v] >= threshold:
                up.add(v)
                todo.append(v)
    return ["no way up for store %d" % v for v in range(n) if v not in up]


def village_bound(p, bridges, preset, threshold=LINK_THRESHOLD, batched=False, receipts=False, tolerance=0.1):
    """The highest uniform offered load (payments/h) any scheduler could
    carry in this village under the law, by a binary search on the load of a
    max-flow with node capacities (_network). p: delivery probabilities
    p[i][j] (delivery(topo), or a hand-made matrix); batched: acks batched
    (BATCH_IDS a frame) instead of one per payment; receipts: every payment's
    receipt also comes back down its path in full digests (the service
    level's second half). Returns the load, what binds there (the
    constraints a minimum cut crosses: a store's relaying, a bridge's duty or
    its air), and the costs it charged."""
    bridges = list(bridges)
    n = len(p)
    if n < 2 or any(len(row) != n for row in p):
        raise ValueError("delivery probabilities must be a square matrix of at least 2 nodes")
    if not bridges or any(not 0 <= b < n for b in bridges) or len(set(bridges)) != len(bridges) or len(bridges) >= n:
        raise ValueError("bridges must be distinct node indexes, at least one and fewer than the nodes")
    if not 0 < threshold <= 1:
        raise ValueError("the link threshold is a probability in (0, 1], not %r" % (threshold,))
    costs = _costs(preset, batched, receipts)
    duty = preset.duty_permille / 1000.0 if preset.duty_permille else 1.0
    lo, hi = 0.0, 3600.0 / costs[0] * len(bridges) + 1  # no bridge receives more than back-to-back frames
    while hi - lo > tolerance:
        mid = (lo + hi) / 2
        net, _ = _network(p, bridges, mid, costs, duty, threshold)
        ok = net is not None and net.maxflow("S", "T")[0] >= mid - 1e-6 * max(mid, 1.0)
        lo, hi = (mid, hi) if ok else (lo, mid)
    # what binds just above the bound: the cut of the first load found infeasible
    net, caps = _network(p, bridges, hi, costs, duty, threshold)
    binding = _no_way_up(p, bridges, threshold) or (
        _binding(caps, net.maxflow("S", "T")[1]) if net is not None else ["stores' own payments"])
    # rounded up: an upper bound errs upwards (the true one lies in [lo, hi])
    return {"bound_per_hour": int(-(-hi // 1)), "binding": binding, "payment_airtime_s": round(costs[0], 4),
            "ack_airtime_s": round(costs[1], 4), "receipt_airtime_s": round(costs[2], 4),
            "acks": "batched" if batched else "one per payment", "receipts": receipts}


BOUND_CASES = (("payments", False, False), ("payments_batched_acks", True, False),
               ("service", False, True), ("service_batched_acks", True, True))


def topology_bound(topo, threshold=LINK_THRESHOLD):
    """village_bound for a simulated village: payments alone (peak goodput)
    and with their receipts (the service level), each with one ack per
    payment (as Pen sends them) and with acks batched."""
    p = delivery(topo)
    out = {"two_way_links": sum(1 for i in range(topo.n) for j in range(i + 1, topo.n)
                                if p[i][j] >= threshold and p[j][i] >= threshold),
           "link_threshold": threshold}
    for name, batched, receipts in BOUND_CASES:
        out[name] = village_bound(p, topo.bridges, topo.preset, threshold, batched, receipts)
    return out
