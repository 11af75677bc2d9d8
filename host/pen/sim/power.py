"""Power in the simulator: each node's awake fraction and modelled current,
from what its loop did, priced with hardware/power.json by the firmware's own
model (pen_node.power), as `pen power` does.

The engine calls attach() once and report() in its summary; everything else
stays out of the engine. attach() wraps each node's calls the engine makes:
- next_tx: one call per wake of the node's loop (firmware/main.py's tx task
  runs next_tx once each time it wakes), so wakes are counted, not guessed;
- on_tx_done / on_frame: for leaves (nodes that relay for no one) listening
  in RX duty cycle (pen_node/sleep.py DutyListen): a frame reaches a leaf
  outside its listen window only if it was sent to that leaf, or is a receipt
  digest from a node that has leaves (their senders stretch the preamble,
  pen_node/preamble.PreambleByDestination), or by chance (catch_share: a
  listening window fell inside its short preamble); anything else (a
  beacon, another flood, an ANY_ROUTE offer) is slept through. A leaf's
  beacons stay off the air except its asks for routes (sleep.leaf_beacon,
  as main.tx_task does). The medium's airtime for frames to a leaf grows by
  the longer preamble, so collisions, duty cycle and latency in the run pay
  for it;
- the medium's start(): each frame's time on air is metered by the power it
  went out at (full, or pen_node.txpower's choice with tx_power_control()).

What the medium does not model: the extra preamble is not in the sending
MeshNode's own duty-cycle budget (it computes airtime from the preset; a
per-destination preamble there needs mesh.py, docs/power.md lists it).
"""
import random

from pen_protocol.airtime import time_on_air_us

from pen_node import txpower
from pen_node.power import load_budget, M_SLEEP, R_RXDC
from pen_node.sleep import leaf_quiet, leaf_deaf, wakes_leaves, leaf_beacon
from pen_node.sx126x import leaf_preamble, LISTEN_MARGIN_MS

BOARD = "heltec-v3"


def region_cap(preset_name):
    """The most a preset's sub-band allows (hardware/regions.json), or None."""
    import json
    from pen_node.power import hardware_dir
    with open(hardware_dir() + "/regions.json") as f:
        regions = json.load(f)
    pr = regions["presets"].get(preset_name)
    if pr is None:
        return None
    reg = regions[pr["region"]]
    if "sub_band" in pr:
        return [b for b in reg["sub_bands"] if b["name"] == pr["sub_band"]][0]["max_erp_dbm"]
    return reg.get("max_conducted_dbm")


def _dst(frame):
    return (frame[4] << 8) | frame[5]


class SimPower:
    def __init__(self, run, leaves=(), board=BOARD):
        self.run = run
        self.budget = load_budget(board)
        lf = self.budget.leaf
        self.window_ms = lf["listen_after_tx_ms"]
        p = run.t.preset
        self.long_preamble = leaf_preamble(lf["rx_symbols"], lf["sleep_symbols"])
        self.leaves = set(leaves)
        self.leaf_addrs = {i + 1 for i in self.leaves}
        n = run.t.n
        self.wakes = [0] * n
        self.rx_busy_ms = [0] * n  # time spent receiving frames it heard (at full RX current)
        self.relay_duty = False  # price relays in RX duty cycle at the preset's preamble (opt-in, unverified)
        self.slept_through = [False] * n  # the last frame offered was slept through: no wake
        self.quiet_us = [0] * n  # airtime MeshNode charged for frames a leaf kept off the air
        self.heard = [0] * n
        self.missed = [0] * n
        self.listen_until = [self.window_ms] * n
        self.listen_ms = [self.window_ms] * n  # continuous RX time of a leaf (its windows, merged)
        self.long_frames = 0
        self.long_digests = set()  # digest frames sent with the long preamble: a sleeping leaf catches them
        self._extra = {}  # (frame length, long preamble) -> the airtime it adds (_long_extra_us)
        self.long_extra_us = 0
        # a leaf in RX duty cycle still catches a frame with the preset's
        # short preamble when one of its listening windows falls wholly
        # inside that preamble (catch_share); drawn apart from the medium's
        # fading so that a village's trajectory does not move with it
        self.catch_share = catch_share(p.preamble, lf["rx_symbols"], lf["sleep_symbols"])
        self.catch_rnd = random.Random(run.seed * 977 + 5)
        self.caught = [0] * n
        self.asks = [0] * n  # beacons a leaf sent as asks for routes (sleep.leaf_beacon)
        self.top_dbm = txpower.cap(p.power_dbm, self.budget.tx_steps(), region_max=region_cap(p.name))
        self.tpc = None  # [TxPower per node] once tx_power_control() is called
        self.tx_us = [{} for _ in range(n)]  # node -> {dBm: us on air}, long preambles included
        self.tx_kind_us = [{} for _ in range(n)]  # node -> {kind (tx_kind): us on air}, long preambles included
        self._sent_ids = [set() for _ in range(n)]  # frame ids each node has put on air (a repeat is a retry)
        for i, node in enumerate(run.nodes):
            self._wrap(i, node)
        self.heard_leaf = [{} for _ in range(n)]  # node -> {leaf addr: last ms it heard that leaf}
        self._medium(run.medium)

    def use_board(self, budget):
        """Price (and pick power steps) with another board's figures; before run()."""
        self.budget = budget
        self.top_dbm = txpower.cap(self.run.t.preset.power_dbm, budget.tx_steps(),
                                   region_max=region_cap(self.run.t.preset.name))

    def tx_power_control(self, margin_x4=txpower.MARGIN_X4):
        """Every node sends unicast frames at the lowest power with margin_x4
        over the link (pen_node.txpower, as a board with "tx_power_control"
        in /pen.json); call before run()."""
        steps = self.budget.tx_steps()
        self.tpc = [txpower.TxPower(self.run.t.preset.sf, steps, self.top_dbm, getattr(node, "key", None),
                                    margin_x4) for node in self.run.nodes]

    def _medium(self, medium):
        """What a frame costs on the medium: frames to a leaf that is not in
        its listen window carry the long preamble (the rule of
        sx126x.PreambleByDestination on a board), so their airtime grows; with
        transmit power control a unicast frame goes at its sender's chosen
        power. Each node's time on air is kept by power level."""
        plain_start = medium.start

        def start(sender, frame, now_us):
            dbm = self.top_dbm if self.tpc is None else self.tpc[sender].power_for(frame, now_us // 1000)
            power_db = dbm - self.top_dbm
            if self.leaves and self._long(sender, frame, now_us):
                extra = self._long_extra_us(len(frame))
                self.long_frames += 1
                self.long_extra_us += extra
                plain = medium.airtime_us
                medium.airtime_us = lambda f: plain(f) + extra
                try:
                    end, tx = plain_start(sender, frame, now_us, power_db)
                finally:
                    medium.airtime_us = plain
            else:
                end, tx = plain_start(sender, frame, now_us, power_db)
            t = self.tx_us[sender]
            t[dbm] = t.get(dbm, 0) + end - now_us
            k = self.tx_kind_us[sender]
            kind = tx_kind(frame, self._sent_ids[sender])
            k[kind] = k.get(kind, 0) + end - now_us
            return end, tx

        medium.start = start

    def _long_extra_us(self, n):
        """The airtime the long preamble adds to an n-byte frame (self.long_preamble as it is now: a sweep
        may set it after construction)."""
        key = (n, self.long_preamble)
        if key not in self._extra:
            p = self.run.t.preset
            self._extra[key] = time_on_air_us(n, p.sf, p.bw_hz, p.cr, self.long_preamble) - \
                time_on_air_us(n, p.sf, p.bw_hz, p.cr, p.preamble)
        return self._extra[key]

    def _long(self, sender, frame, now_us):
        dst = _dst(frame)
        # a digest from a node that has heard leaves (a board with "sleepy" set) goes long, as
        # PreambleByDestination sends it
        digest = wakes_leaves(frame) and self.heard_leaf[sender]
        if digest:
            self.long_digests.add(bytes(frame))
            return True
        return dst in self.leaf_addrs and \
            now_us // 1000 > self.heard_leaf[sender].get(dst, -1 << 40) + self.window_ms - LISTEN_MARGIN_MS

    def _wrap(self, i, node):
        next_tx, on_frame, on_tx_done = node.next_tx, node.on_frame, node.on_tx_done
        leaf = i in self.leaves
        if leaf:
            node.leaf = True  # its routing says so (routing._LEAF), as main.py sets it from /pen.json "leaf"
        addr = i + 1

        def counted_next_tx(now_ms):
            if self.slept_through[i]:
                self.slept_through[i] = False
            else:
                self.wakes[i] += 1
            f = next_tx(now_ms)
            if leaf and f is not None and leaf_quiet(f):  # as main.tx_task: not sent, or sent as an ask
                ask = leaf_beacon(f, node.key)
                if ask is not None:
                    self.asks[i] += 1
                    return ask
                self.quiet_us[i] += self.run.medium.airtime_us(f)
                on_tx_done(now_ms)
                return None
            return f

        def filtered_on_frame(frame, rssi, snr, now_ms):
            if leaf and now_ms > self.listen_until[i] and _dst(frame) != addr and \
                    bytes(frame) not in self.long_digests:
                if self.catch_rnd.random() >= self.catch_share:
                    self.missed[i] += 1
                    self.slept_through[i] = True
                    return None
                self.caught[i] += 1  # a window fell inside its preamble: received whole
            if leaf and leaf_deaf(frame):  # received (and paid for), then ignored
                self.heard[i] += 1
                if now_ms > self.listen_until[i]:
                    self.rx_busy_ms[i] += self.run.medium.airtime_us(frame) // 1000
                return None
            self.heard[i] += 1
            if not leaf or now_ms > self.listen_until[i]:
                # a leaf's windows (listen_ms) already count what it hears in them at full RX
                self.rx_busy_ms[i] += self.run.medium.airtime_us(frame) // 1000
            if self.tpc is not None:
                self.tpc[i].heard(frame, snr, now_ms)
            src = (frame[2] << 8) | frame[3]
            if src in self.leaf_addrs:
                self.heard_leaf[i][src] = now_ms
            return on_frame(frame, rssi, snr, now_ms)

        def windowed_on_tx_done(now_ms):
            if leaf:
                self._listen(i, now_ms, self.window_ms)
            return on_tx_done(now_ms)

        node.next_tx, node.on_frame, node.on_tx_done = counted_next_tx, filtered_on_frame, windowed_on_tx_done
        if self.leaves and hasattr(node, "air_extra"):
            # the sender's duty cycle decides with the long preamble its frame will carry (main.serve sets
            # the same hook from NodePower on a board)
            node.air_extra = lambda frame, now_ms: \
                self._long_extra_us(len(frame)) if self._long(i, frame, now_ms * 1000) else 0

    def _listen(self, i, now_ms, ms):
        """Leaf i listens continuously from now_ms for ms (a window after its
        own frame, or a round's re-advertisements), merged with the one open."""
        until = now_ms + ms
        if until > self.listen_until[i]:
            self.listen_ms[i] += until - max(self.listen_until[i], now_ms)
            self.listen_until[i] = until

    def role(self, i):
        if i in self.run.t.bridges:
            return "bridge"
        return "leaf" if i in self.leaves else "relay"

    def meter(self, i, dur_ms):
        """Node i's pen_node.power.Meter over dur_ms, as its loop had it
        with light sleep between events."""
        b = self.budget
        node = self.run.nodes[i]
        tx = {dbm: us // 1000 for dbm, us in self.tx_us[i].items()}
        rxdc, duty = 0, None
        role = self.role(i)
        busy = sum(tx.values()) + self.rx_busy_ms[i]  # sending, or receiving a frame: never in duty cycle
        if b.radio.get("rx_duty_cycle"):
            if role == "leaf":
                rxdc = max(0, dur_ms - min(self.listen_ms[i], dur_ms) - busy)
            elif role == "relay" and self.relay_duty:
                rxdc = max(0, dur_ms - busy)
                duty = (b.relay_rx["rx_symbols"], b.relay_rx["sleep_symbols"])
        m = b.sleeping_meter(dur_ms, tx, self.heard[i], self.wakes[i], rxdc, duty)
        if role == "bridge" or not b.can_sleep:  # a bridge is on its PC's USB power; some boards cannot sleep
            m.ms[M_SLEEP] = 0
        return m

    def node(self, i, dur_ms):
        """(role, average mA, awake fraction, ms in RX duty cycle) of node i."""
        m = self.meter(i, dur_ms)
        return self.role(i), self.budget.average_ma(m, dur_ms), m.awake_fraction(dur_ms), m.ms[R_RXDC]

    def report(self, dur_ms):
        roles = {}
        nodes = []
        for i in range(self.run.t.n):
            role, ma, awake, _ = self.node(i, dur_ms)
            nodes.append([i + 1, role, round(ma, 3), round(awake, 4)])
            roles.setdefault(role, []).append((ma, awake))
        out = {"board": self.budget.board, "nodes": nodes,
               "long_preamble_frames": self.long_frames,
               "long_preamble_extra_ms": round(self.long_extra_us / 1000.0, 1),
               "leaf_frames_slept_through": sum(self.missed),
               "leaf_frames_caught_by_chance": sum(self.caught),
               "leaf_route_asks": sum(self.asks)}
        for role, xs in roles.items():
            out[role] = {"count": len(xs), "max_ma": round(max(x[0] for x in xs), 3),
                         "mean_ma": round(sum(x[0] for x in xs) / len(xs), 3),
                         "max_awake_fraction": round(max(x[1] for x in xs), 4)}
        return out


# What a relay's time on air goes to (tx_kind): "custody" the first sending of
# a unicast record or bundle (a payment up, a receipt down), "retry" each
# sending of one again, "ack", "beacon", "digest" (receipt digests, flooded),
# "flood" (other broadcasts). The first four but "retry" and "beacon" are what
# its subtree's payments force on it; forced_floor_ma prices only those.
FORCED = ("custody", "ack", "digest", "flood")


def tx_kind(frame, sent_ids):
    """The kind of frame (above); sent_ids: the frame ids its sender has put
    on air so far (this one is added)."""
    from pen_protocol.frame import T_ACK, T_BEACON, T_DIGEST, frame_id
    t = frame[0]
    if t == T_ACK:
        return "ack"
    if t == T_BEACON:
        return "beacon"
    if t == T_DIGEST:
        return "digest"
    if _dst(frame) == 0xFFFF:
        return "flood"
    fid = frame_id(frame)
    if fid in sent_ids:
        return "retry"
    sent_ids.add(fid)
    return "custody"


def forced_floor_ma(budget, tx_kind_ms, top_dbm, dur_ms, relay_duty=False):
    """What a relay that light-sleeps between events would draw if it sent
    only what its subtree's payments force on it (FORCED kinds, at top_dbm:
    no retry, no beacon) and handled no frame, listening all the time (or in
    RX duty cycle, relay_duty): the floor no routing or timer can take it
    under without listening less."""
    forced = sum(tx_kind_ms.get(k, 0) for k in FORCED)
    rxdc, duty = 0, None
    if relay_duty:
        rxdc, duty = dur_ms - forced, (budget.relay_rx["rx_symbols"], budget.relay_rx["sleep_symbols"])
    m = budget.sleeping_meter(dur_ms, {top_dbm: forced}, 0, 0, rxdc, duty)
    return budget.average_ma(m, dur_ms)


def attach(run, leaves=()):
    return SimPower(run, leaves)


def catch_share(preamble, rx_symbols, sleep_symbols):
    """The share of frames with a preamble of `preamble` symbols that a
    receiver in RX duty cycle (listening rx_symbols of every rx + sleep)
    catches: those where one whole listening window falls inside the
    preamble (the rule leaf_preamble builds on: a preamble of sleep + 2 rx
    symbols always holds one). At SF9's 8 symbols and the leaves' 4 in 25:
    4 / 25, 16 %."""
    return min(1.0, max(0, preamble - rx_symbols) / float(rx_symbols + sleep_symbols))


def relays_for_no_one(run):
    """Nodes that took custody of nothing and relayed no flood in a run: the
    leaves of that village at that load."""
    out = []
    for i, n in enumerate(run.nodes):
        s = n.stats
        if i not in run.t.bridges and not s.get("custody_in", 0) and not s.get("floods_relayed", 0):
            out.append(i)
    return out


def leaf_preamble_cost(settings):
    """What a frame to a leaf in RX duty cycle pays on air: {setting: extra
    ms} for each of `pen bench sizes`' radio settings (the preamble grows from
    the setting's to pen_node.sx126x.leaf_preamble symbols; the extra is the
    same for every frame length)."""
    b = load_budget(BOARD)
    n = leaf_preamble(b.leaf["rx_symbols"], b.leaf["sleep_symbols"])
    out = {}
    for k, v in settings.items():
        long_ = dict(v, preamble=max(n, v["preamble"]))
        out[k] = round((time_on_air_us(16, **long_) - time_on_air_us(16, **v)) / 1000, 1)
    return {"preamble_symbols": n, "extra_ms": out,
            "note": "frames to a leaf outside its listen window (hardware/power.json leaf_rx, docs/power.md)"}
