"""A LoRa medium for the simulator, on Meshtasticator's model.

Path loss is log-distance (d0 = 40 m, 127.41 dB at d0, exponent 2.08, as in
Meshtasticator) with log-normal shadowing fixed per link (symmetric, seeded),
plus a small per-frame fading term. A frame is heard when its SNR clears the
spreading factor's demodulation floor. Radios are half-duplex. Two frames
overlapping at a receiver after the later one's preamble is nearly over
(LOCK_SYMBOLS): the one at least CAPTURE_DB stronger survives (LoRa capture),
otherwise both are lost there. Airtime comes from
pen_protocol.airtime, the same formula the firmware uses.
"""
import math
import random

from pen_protocol.airtime import time_on_air_us

D0_M = 40.0
PL_D0_DB = 127.41
GAMMA = 2.08
SHADOW_SIGMA_DB = 3.0  # per link, fixed
FADE_SIGMA_DB = 1.0  # per frame
CAPTURE_DB = 6.0
# A receiver locks on a frame after its first preamble symbols; an earlier
# frame that ends before the last LOCK_SYMBOLS preamble symbols of a later one
# does not hurt it (Meshtasticator's and LoRaSim's timing rule: the critical
# section starts LOCK_SYMBOLS before the preamble ends).
LOCK_SYMBOLS = 5
NOISE_FIGURE_DB = 6.0
ANTENNA_GAIN_DB = 0.0
SNR_FLOOR_DB = {7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}


def noise_dbm(bw_hz):
    return -174.0 + 10 * math.log10(bw_hz) + NOISE_FIGURE_DB


def path_loss_db(d_m):
    return PL_D0_DB + 10 * GAMMA * math.log10(max(d_m, 1.0) / D0_M)


class Topology:
    """Node positions (metres) and which are bridges; connected by construction."""

    def __init__(self, positions, bridges, preset, seed):
        self.pos = positions
        self.bridges = list(bridges)
        self.preset = preset
        self.n = len(positions)
        rnd = random.Random(seed * 7919 + 1)
        self.shadow = {}
        for i in range(self.n):
            for j in range(i + 1, self.n):
                self.shadow[(i, j)] = rnd.gauss(0.0, SHADOW_SIGMA_DB)
        self.noise = noise_dbm(preset.bw_hz)
        self.floor = SNR_FLOOR_DB[preset.sf]
        self.rssi = [[-999.0] * self.n for _ in range(self.n)]
        self.neighbours = [[] for _ in range(self.n)]
        for i in range(self.n):
            for j in range(self.n):
                if i == j:
                    continue
                d = math.dist(self.pos[i], self.pos[j])
                sh = self.shadow[(min(i, j), max(i, j))]
                r = preset.power_dbm + 2 * ANTENNA_GAIN_DB - path_loss_db(d) - sh
                self.rssi[i][j] = r
                if r - self.noise >= self.floor - 3 * FADE_SIGMA_DB:
                    self.neighbours[i].append(j)

    def link_ok(self, i, j):
        return self.rssi[i][j] - self.noise >= self.floor

    def connected(self):
        """Every node has a path (over links above the floor) to a bridge."""
        seen = set(self.bridges)
        todo = list(self.bridges)
        while todo:
            a = todo.pop()
            for b in range(self.n):
                if b not in seen and self.link_ok(a, b) and self.link_ok(b, a):
                    seen.add(b)
                    todo.append(b)
        return len(seen) == self.n

    def hops_to_bridge(self):
        dist = {b: 0 for b in self.bridges}
        frontier = list(self.bridges)
        while frontier:
            nxt = []
            for a in frontier:
                for b in range(self.n):
                    if b not in dist and self.link_ok(a, b) and self.link_ok(b, a):
                        dist[b] = dist[a] + 1
                        nxt.append(b)
            frontier = nxt
        return dist

    @classmethod
    def generate(cls, n, bridges, preset, seed, area_m=None):
        """Random placement, regenerated until connected. The area grows with
        n so that the mesh is several hops deep (about 1.6 km^2 per 50 nodes
        at SF9's ~1 km range with this path-loss model)."""
        rnd = random.Random(seed)
        side = area_m or 1200.0 * math.sqrt(n / 50.0) * 2.2
        for attempt in range(200):
            pos = [(rnd.uniform(0, side), rnd.uniform(0, side)) for _ in range(n)]
            # bridges near the middle, as a village would site its internet PC
            for b in range(bridges):
                pos[b] = (side / 2 + rnd.uniform(-side / 8, side / 8), side / 2 + rnd.uniform(-side / 8, side / 8))
            t = cls(pos, range(bridges), preset, seed + attempt)
            if t.connected():
                return t
            side *= 0.95
        raise RuntimeError("could not generate a connected topology")

    @classmethod
    def from_json(cls, obj, preset, seed):
        pos = [tuple(p) for p in obj["positions"]]
        t = cls(pos, obj.get("bridges", [0]), preset, seed)
        if not t.connected():
            raise ValueError("topology is not connected: some node has no path to a bridge")
        return t


class Medium:
    """Which receivers get a frame, given everything on air."""

    def __init__(self, topo, seed):
        self.t = topo
        self.rnd = random.Random(seed * 31 + 7)
        self.on_air = []  # [start_us, end_us, sender, frame, rx_rssi{node: dbm}]
        self.tx_until = [0] * topo.n
        self.collisions = 0
        self.lost_collision = [0] * topo.n  # per receiver, for "what limits it"
        self.lost_half_duplex = [0] * topo.n
        p = topo.preset
        self.crit_us = max(0, p.preamble - LOCK_SYMBOLS) * ((1 << p.sf) * 1000000 // p.bw_hz)
        self._tx_log = {}  # node -> its last few (start, end) transmissions

    def airtime_us(self, frame):
        p = self.t.preset
        return time_on_air_us(len(frame), p.sf, p.bw_hz, p.cr, p.preamble)

    def start(self, sender, frame, now_us):
        end = now_us + self.airtime_us(frame)
        rx = {}
        for j in self.t.neighbours[sender]:
            rx[j] = self.t.rssi[sender][j] + self.rnd.gauss(0.0, FADE_SIGMA_DB)
        tx = [now_us, end, sender, frame, rx, {}]
        # interference with everything still on air: the new frame always hits
        # the tail of an earlier one; the earlier one hits the new frame only if
        # it is still on air when the new frame's critical section begins
        crit = now_us + self.crit_us
        for o in self.on_air:
            if o[1] > now_us:
                for j, r in rx.items():
                    if j in o[4]:
                        o[5].setdefault(j, []).append(r)
                        if o[1] > crit:
                            tx[5].setdefault(j, []).append(o[4][j])
        self.on_air.append(tx)
        self.tx_until[sender] = end
        return end, tx

    def busy(self, j, now_us):
        """Channel activity detection at node j: a frame on air it could hear."""
        lim = self.t.noise + self.t.floor
        for o in self.on_air:
            if o[0] <= now_us < o[1] and o[2] != j and o[4].get(j, -999.0) >= lim:
                return True
        return False

    def finish(self, tx, now_us):
        """Receivers that decode the frame: (node, rssi_dbm, snr_x4)."""
        self.on_air.remove(tx)
        start, end, sender, frame, rx, interf = tx
        out = []
        noise = self.t.noise
        floor = self.t.floor
        for j, r in rx.items():
            snr = r - noise
            if snr < floor:
                continue
            # half duplex: the receiver sent something while this was on air
            if self._transmitting(j, start, end):
                self.lost_half_duplex[j] += 1
                continue
            worst = interf.get(j)
            if worst and r - max(worst) < CAPTURE_DB:
                self.collisions += 1
                self.lost_collision[j] += 1
                continue
            out.append((j, int(r), int(snr * 4)))
        return out

    def _transmitting(self, j, start, end):
        tu = self._tx_log.get(j)
        if not tu:
            return False
        for s, e in tu:
            if s < end and e > start:
                return True
        return False

    def log_tx(self, j, start, end):
        lst = self._tx_log.setdefault(j, [])
        lst.append((start, end))
        if len(lst) > 8:
            del lst[0]
