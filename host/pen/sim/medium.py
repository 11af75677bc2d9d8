"""A LoRa medium for the simulator, on Meshtasticator's model.

Path loss is log-distance (d0 = 40 m, 127.41 dB at d0, exponent 2.08, as in
Meshtasticator) with log-normal shadowing fixed per link, plus a small
per-frame fading term. A frame is heard when its SNR clears the spreading
factor's demodulation floor. Radios are half-duplex. Airtime comes from
pen_protocol.airtime, the same formula the firmware uses.

What is realistic by default, and the older idealised choice kept beside it
for comparison (MediumModel, `pen sim --links/--cad/--interference`):
- shadowing: a shared part per pair (terrain both ways) plus a part per
  direction (TX power, antenna, local noise), default 0 + 3 dB as
  Meshtasticator draws it; `symmetric` is one 3 dB value per pair;
- channel activity detection: blind to a frame for its first CAD symbols
  (a CAD needs that many of its preamble) and false-alarming at a small
  rate; `ideal` sees every decodable frame from its first microsecond;
- interference: the power of every frame overlapping a reception is summed
  (the worst instant), and the frame survives when its SINR clears both the
  capture threshold and the demodulation floor; `pairwise` compares it with
  the strongest single interferer only.
Overlap counts against a later frame only after its preamble is nearly over
(LOCK_SYMBOLS) in both models.
"""
import math
import random

from pen_protocol.airtime import time_on_air_us

D0_M = 40.0
PL_D0_DB = 127.41
GAMMA = 2.08
SHADOW_SIGMA_DB = 3.0  # per link, fixed (Meshtasticator's sigma, per direction)
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


# SX126x CAD: Semtech AN1200.48 recommends 2 symbols for SF7-SF9 and 4 above;
# it decides after that many symbols of a preamble, so a frame that started
# less than that long ago is not seen yet
CAD_SYMBOLS = {7: 2, 8: 2, 9: 2, 10: 4, 11: 4, 12: 4}
# detPeak tuned as AN1200.48 suggests trades misses for about 1 % false alarms
CAD_FALSE_ALARM = 0.01


class MediumModel:
    """Which physics the medium runs: realistic by default; each part can be
    set back to the idealised model the simulator had before (links
    symmetric, cad ideal, interference pairwise: the figures of docs/sim.md
    before December 2026 come back exactly with all three)."""

    LINKS = ("asymmetric", "symmetric")
    CADS = ("real", "ideal")
    INTERFERENCE = ("sinr", "pairwise")

    def __init__(self, links="asymmetric", shadow_shared_db=None, shadow_direction_db=None, cad="real",
                 cad_false_alarm=CAD_FALSE_ALARM, interference="sinr", capture_db=CAPTURE_DB):
        if links not in self.LINKS or cad not in self.CADS or interference not in self.INTERFERENCE:
            raise ValueError("unknown medium model: links %r, cad %r, interference %r" % (links, cad, interference))
        sym = links == "symmetric"
        shared = (SHADOW_SIGMA_DB if sym else 0.0) if shadow_shared_db is None else float(shadow_shared_db)
        direction = (0.0 if sym else SHADOW_SIGMA_DB) if shadow_direction_db is None else float(shadow_direction_db)
        if shared < 0 or direction < 0 or (sym and direction) or not 0 <= cad_false_alarm < 1 or capture_db < 0:
            raise ValueError("shadowing sigmas and the capture threshold must be >= 0, the false-alarm rate in "
                             "[0, 1), and symmetric links have no per-direction part")
        self.links = links
        self.shadow_shared_db = shared
        self.shadow_direction_db = direction
        self.cad = cad
        self.cad_false_alarm = cad_false_alarm if cad == "real" else 0.0
        self.interference = interference
        self.capture_db = float(capture_db)

    @classmethod
    def ideal(cls):
        return cls("symmetric", cad="ideal", interference="pairwise")

    def describe(self, preset=None):
        d = {"links": self.links, "shadow_shared_sigma_db": self.shadow_shared_db,
             "shadow_direction_sigma_db": self.shadow_direction_db, "cad": self.cad,
             "cad_false_alarm": self.cad_false_alarm, "interference": self.interference,
             "capture_db": self.capture_db}
        if preset is not None and self.cad == "real":
            d["cad_blind_symbols"] = CAD_SYMBOLS[preset.sf]
        return d

    def to_args(self):
        return (self.links, self.shadow_shared_db, self.shadow_direction_db, self.cad, self.cad_false_alarm,
                self.interference, self.capture_db)


class Topology:
    """Node positions (metres) and which are bridges; connected by construction."""

    def __init__(self, positions, bridges, preset, seed, model=None):
        self.pos = positions
        self.bridges = list(bridges)
        self.preset = preset
        self.n = len(positions)
        self.model = model = model or MediumModel()
        rnd = random.Random(seed * 7919 + 1)
        self.shadow = {}  # (i, j) -> dB lost from i to j
        for i in range(self.n):
            for j in range(i + 1, self.n):
                self.shadow[(i, j)] = rnd.gauss(0.0, model.shadow_shared_db)
        for i in range(self.n):
            for j in range(i + 1, self.n):
                self.shadow[(j, i)] = self.shadow[(i, j)]
        if model.shadow_direction_db > 0:  # drawn after the shared part: symmetric villages stay as they were
            for i in range(self.n):
                for j in range(self.n):
                    if i != j:
                        self.shadow[(i, j)] += rnd.gauss(0.0, model.shadow_direction_db)
        self.noise = noise_dbm(preset.bw_hz)
        self.floor = SNR_FLOOR_DB[preset.sf]
        self.rssi = [[-999.0] * self.n for _ in range(self.n)]
        self.neighbours = [[] for _ in range(self.n)]
        for i in range(self.n):
            for j in range(self.n):
                if i == j:
                    continue
                d = math.dist(self.pos[i], self.pos[j])
                sh = self.shadow[(i, j)]
                r = preset.power_dbm + 2 * ANTENNA_GAIN_DB - path_loss_db(d) - sh
                self.rssi[i][j] = r
                if r - self.noise >= self.floor - 3 * FADE_SIGMA_DB:
                    self.neighbours[i].append(j)

    def link_ok(self, i, j):
        return self.rssi[i][j] - self.noise >= self.floor

    def one_way_links(self):
        """(pairs linked at least one way, pairs linked one way only) over
        the demodulation floor, without fading: what asymmetry does."""
        any_way = one_way = 0
        for i in range(self.n):
            for j in range(i + 1, self.n):
                a, b = self.link_ok(i, j), self.link_ok(j, i)
                any_way += a or b
                one_way += a != b
        return any_way, one_way

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
    def generate(cls, n, bridges, preset, seed, area_m=None, model=None):
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
            t = cls(pos, range(bridges), preset, seed + attempt, model)
            if t.connected():
                return t
            side *= 0.95
        raise RuntimeError("could not generate a connected topology")

    @classmethod
    def from_json(cls, obj, preset, seed, model=None):
        pos = [tuple(p) for p in obj["positions"]]
        t = cls(pos, obj.get("bridges", [0]), preset, seed, model)
        if not t.connected():
            raise ValueError("topology is not connected: some node has no path to a bridge")
        return t


class Medium:
    """Which receivers get a frame, given everything on air."""

    def __init__(self, topo, seed, oracle=None):
        self.t = topo
        self.model = topo.model
        self.rnd = random.Random(seed * 31 + 7)
        self.cad_rnd = random.Random(seed * 131 + 3)  # false alarms, apart from the fading draws
        self.on_air = []  # [start_us, end_us, sender, frame, rx_rssi{node: dbm}, interferers{node: [...]}]
        self.tx_until = [0] * topo.n
        self.collisions = 0
        self.lost_collision = [0] * topo.n  # per receiver, for "what limits it"
        self.lost_half_duplex = [0] * topo.n
        self.cad_false_alarms = 0
        p = topo.preset
        sym_us = (1 << p.sf) * 1000000 // p.bw_hz
        self.crit_us = max(0, p.preamble - LOCK_SYMBOLS) * sym_us
        self.cad_blind_us = CAD_SYMBOLS[p.sf] * sym_us if self.model.cad == "real" else 0
        self.sinr = self.model.interference == "sinr"
        self.capture_db = self.model.capture_db
        self._tx_log = {}  # node -> its last few (start, end) transmissions
        self.oracle = oracle  # an Oracle (pen.sim.oracles) that may also call the channel busy

    def airtime_us(self, frame):
        p = self.t.preset
        return time_on_air_us(len(frame), p.sf, p.bw_hz, p.cr, p.preamble)

    def start(self, sender, frame, now_us, power_db=0.0):
        """power_db: this frame's output power against the sender's full
        power (transmit power control, pen.sim.power: 0 or less)."""
        end = now_us + self.airtime_us(frame)
        rx = {}
        for j in self.t.neighbours[sender]:
            rx[j] = self.t.rssi[sender][j] + power_db + self.rnd.gauss(0.0, FADE_SIGMA_DB)
        tx = [now_us, end, sender, frame, rx, {}]
        # interference with everything still on air: the new frame always hits
        # the tail of an earlier one; the earlier one hits the new frame only if
        # it is still on air when the new frame's critical section begins.
        # Each entry: (interferer's power there, overlap start, overlap end)
        crit = now_us + self.crit_us
        for o in self.on_air:
            if o[1] > now_us:
                both = min(o[1], end)
                for j, r in rx.items():
                    if j in o[4]:
                        o[5].setdefault(j, []).append((r, now_us, both))
                        if o[1] > crit:
                            tx[5].setdefault(j, []).append((o[4][j], crit, both))
        self.on_air.append(tx)
        self.tx_until[sender] = end
        return end, tx

    def busy(self, j, now_us):
        """Channel activity detection at node j: a frame on air it could hear
        (a real CAD only once CAD-symbols of it have passed), a false alarm,
        or what an oracle adds."""
        lim = self.t.noise + self.t.floor
        blind = self.cad_blind_us
        for o in self.on_air:
            if o[0] + blind <= now_us < o[1] and o[2] != j and o[4].get(j, -999.0) >= lim:
                return True
        if self.oracle is not None and self.oracle.busy(self, j, now_us):
            return True
        if self.model.cad_false_alarm and self.cad_rnd.random() < self.model.cad_false_alarm:
            self.cad_false_alarms += 1
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
            hits = interf.get(j)
            if hits and not self._survives(r, hits):
                self.collisions += 1
                self.lost_collision[j] += 1
                continue
            out.append((j, int(r), int(snr * 4)))
        return out

    def _survives(self, r, hits):
        if not self.sinr:  # the strongest single interferer against the capture threshold
            return r - max(h[0] for h in hits) >= self.capture_db
        i_mw = peak_sum_mw(hits)
        sinr = r - 10 * math.log10(i_mw)
        with_noise = r - 10 * math.log10(i_mw + 10 ** (self.t.noise / 10))
        return sinr >= self.capture_db and with_noise >= self.t.floor

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


def peak_sum_mw(hits):
    """The largest total power (mW) of interferers on air at one instant;
    hits: [(dbm, start_us, end_us)]."""
    if len(hits) == 1:
        return 10 ** (hits[0][0] / 10)
    edges = []
    for dbm, s, e in hits:
        mw = 10 ** (dbm / 10)
        edges.append((s, 1, mw))
        edges.append((e, 0, -mw))  # ends sort before starts at the same instant
    edges.sort()
    now = peak = 0.0
    for _, _, mw in edges:
        now += mw
        peak = max(peak, now)
    return peak
