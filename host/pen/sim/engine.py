"""Discrete-event engine: nodes (Pen's MeshNode or the flooding baseline)
on a Medium, offered a Poisson load of payments, measured."""
import heapq
import random

from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.downlink import EV_RECEIPT
from pen_node.mesh import MeshNode
from pen_node.lasthop import ScheduledNode
from pen_protocol.identity import record_id

from pen.bridge.digests import DigestSigner
from pen.bridge.driver import BridgeCore, MemQueue
from pen.sim import power as simpower
from pen.sim.baseline import BASELINES
from pen.sim.medium import Medium

DEADLINE_S = 120  # a payment counts as delivered when it reaches a bridge within this
UPLOAD_RTT_MS = 1500  # bridge PC to CTB node and back, before the receipt goes down
SIM_NET_KEY = b"pen/1/sim-village-secret"  # every frame sealed, as on a board (frame.TAG_LEN bytes each)
DOWNLINK_RETRY_MS = 500  # the bridge PC offers a refused DOWNLINK again after this (pen.bridge)
RECEIPT_DEADLINE_S = 600  # a receipt counts as back when it reaches the store within this (issue 15)
RECEIPT_HOLD_MS = 40000  # the bridge PC's hold for a receipt's digest (pen.bridge.driver.HOLD_S), in the sim's ms
SERVICE_SHARE = 0.99  # the service level: this share on time, of payments and of receipts, and nothing lost


def service_ok(m):
    """The service level of issue 15 at one offered load: >= 99 % of
    payments at a bridge within 120 s, >= 99 % of receipts back at their
    store within 10 min (Pen; the baseline has none), nothing lost."""
    if m["on_time_ratio"] < SERVICE_SHARE or m.get("lost"):
        return False
    return m.get("receipts_ratio") is None or m["receipts_ratio"] >= SERVICE_SHARE


rid_of = record_id  # the one record id (pen_protocol.identity)


class Payments:
    """Signed USE records, made once and shared by every run (deterministic)."""

    _cache = {}

    @staticmethod
    def digest_signer():
        """The simulated CTB node's digests (its key signs the receipts below)."""
        from pen.keys import Signer
        return DigestSigner(Signer.from_phrase("sim/node"), clock=lambda: 1795000000)

    @classmethod
    def make(cls, count):
        if count in cls._cache:
            return cls._cache[count]
        from pen import build as B
        from pen.keys import Signer
        from pen_protocol import records as R
        user = Signer.from_phrase("sim/user")
        issuer = Signer.from_phrase("sim/issuer")
        node = Signer.from_phrase("sim/node")
        uses = []
        receipts = {}
        for i in range(count):
            ref = R.make_ref(issuer.kid, i + 1)
            u = B.use(user, ref, "501000000001", "501000000001")
            uses.append(u.raw)
            receipts[u.id] = B.accounted(node, ref, u.id, 1795000000 + i).raw
        cls._cache[count] = (uses, receipts)
        return uses, receipts


class Run:
    def __init__(self, topo, scheme, load_per_hour, minutes, seed, receipts=True, node_factory=None,
                 payments=None, on_bridge=None, bridge_queue=None, oracle=None, leaves=(), digests=True,
                 lasthop=False):
        """scheme: "pen" or a baseline (pen.sim.baseline.BASELINES; "flooding"
        is the older name of flooding-2.5); leaves: nodes listening in RX duty
        cycle (pen.sim.power). payments: [(time_ms, node index, USE record)] instead of a Poisson
        load; on_bridge(records, now_ms) -> receipts: what the bridge PC does
        with delivered records once they are stored (upload), returning
        ACCOUNTED receipts to send down; bridge_queue: the bridge PC's queue
        (a pen.bridge.queue.BridgeQueue) instead of one in memory. All three
        are for the demo's village; the sweep uses none. lasthop: Pen's bridges
        schedule their children (firmware/pen_node/lasthop.py).

        Every bridge node has a bridge PC running the one bridge engine
        (pen.bridge.driver.BridgeCore): it stores what the node delivers
        before acking it, and offers receipts down until the node refuses."""
        self.t = topo
        self.scheme = scheme
        self.minutes = minutes
        self.seed = seed
        self.medium = Medium(topo, seed, oracle)
        if oracle is not None:
            oracle.attach(self)
        self.rng = random.Random(seed)
        hops = max(topo.hops_to_bridge().values())
        self.nodes = []
        for i in range(topo.n):
            r = random.Random(seed * 1000 + i)
            cad = self._cad(i)
            if node_factory is not None:
                node = node_factory(i, i in topo.bridges, cad)
            elif scheme == "pen":
                node = (ScheduledNode if lasthop else MeshNode)(
                    i + 1, topo.preset, Journal(MemStorage(32768)), r, is_bridge=i in topo.bridges,
                    channel_busy=cad, net_key=SIM_NET_KEY)
            else:
                node = BASELINES[scheme](i + 1, topo.preset, r, is_bridge=i in topo.bridges,
                                         hop_limit=min(7, max(3, hops)), bridge_addr=topo.bridges[0] + 1,
                                         channel_busy=cad)
            self.nodes.append(node)
        self.power = simpower.attach(self, leaves)  # leaves: nodes listening in RX duty cycle
        self.events = []
        self.seq = 0
        self.wake_ver = [0] * topo.n
        self.sending = [None] * topo.n
        duration_ms = minutes * 60000
        # Poisson arrivals at random non-bridge nodes
        arrivals = []
        tm = 0.0
        rate_per_ms = load_per_hour / 3600000.0
        stores = [i for i in range(topo.n) if i not in topo.bridges]
        while rate_per_ms > 0:
            tm += self.rng.expovariate(rate_per_ms)
            if tm >= duration_ms:
                break
            arrivals.append((int(tm), self.rng.choice(stores)))
        if payments is not None:
            arrivals = [(tms, node) for tms, node, _ in payments]
            self.uses = [rec for _, _, rec in payments]
            self.receipt_of = {}
        else:
            self.uses, self.receipt_of = Payments.make(max(len(arrivals), 1))
        self.on_bridge = on_bridge
        # the bridge PCs (the one bridge engine on a queue); a refusal pauses
        # a PC's downlink DOWNLINK_RETRY_MS, after which it offers again
        if bridge_queue is not None and len(topo.bridges) != 1:
            raise ValueError("one bridge_queue serves one bridge PC: this village has %d bridges" % len(topo.bridges))
        # digests: receipts waiting go down as signed T_DIGEST frames (pen.bridge.digests),
        # signed with the key that signed them (the simulated CTB node's); False: one ACCOUNTED each
        self.pcs = {b: BridgeCore(bridge_queue if bridge_queue is not None else MemQueue(), pause=DOWNLINK_RETRY_MS,
                                  digests=Payments.digest_signer() if digests else None, repeat_gap=60000, hold=RECEIPT_HOLD_MS)
                    for b in topo.bridges}
        self.downlink_retry = {b: False for b in topo.bridges}
        for k, (tms, node) in enumerate(arrivals):
            self._push(tms * 1000, 2, node, self.uses[k])
        self.arrival_ms = [tms for tms, _ in arrivals]
        self.offered = len(arrivals)
        self.submitted = {}  # rid -> (time ms, node)
        self.uses_by_rid = {}
        self.refused = 0
        self.delivered = {}  # rid -> time ms
        self.receipted = {}
        self.want_receipts = receipts and scheme == "pen"
        self.end_us = duration_ms * 1000
        for i in range(topo.n):
            self._wake(i, 0)
        if on_bridge is not None:  # the bridge PC retries uploads every 30 s
            for tms in range(30000, duration_ms + DEADLINE_S * 1000, 30000):
                self._push(tms * 1000, 4, topo.bridges[0], None)

    def _cad(self, i):
        medium = self.medium
        return lambda now_ms: medium.busy(i, now_ms * 1000)

    def _push(self, t_us, kind, node, data):
        self.seq += 1
        heapq.heappush(self.events, (t_us, self.seq, kind, node, data))

    def _wake(self, i, t_ms):
        self.wake_ver[i] += 1
        self._push(t_ms * 1000, 0, i, self.wake_ver[i])

    def run(self):
        # drain in-flight payments for DEADLINE_S past the end of the offered load
        horizon = self.end_us + DEADLINE_S * 1000000
        ev = self.events
        while ev:
            t_us, _, kind, i, data = heapq.heappop(ev)
            if t_us > horizon:
                break
            ms = t_us // 1000
            node = self.nodes[i]
            if kind == 0:
                if data != self.wake_ver[i]:
                    continue
            elif kind == 1:  # a transmission ends
                tx = data
                self.sending[i] = None
                node.on_tx_done(ms)
                for j, rssi, snr in self.medium.finish(tx, t_us):
                    self.nodes[j].on_frame(tx[3], rssi, snr, ms)
                    self._service(j, t_us)
            elif kind == 2:  # a store submits a payment here
                rec = data
                if node.submit(rec, ms):
                    rid = rid_of(rec)
                    self.submitted[rid] = (ms, i)
                    self.uses_by_rid[rid] = rec
                else:
                    self.refused += 1
            elif kind == 3:  # a receipt from the CTB comes down at a bridge
                self.pcs[i].queue_down(data)
                self._offer_downlink(i, t_us)
            elif kind == 5:  # the bridge PC offers what its node refused again
                self.downlink_retry[i] = False
                self.pcs[i].resume()
                self._offer_downlink(i, t_us)
            elif kind == 4:  # the bridge PC's periodic upload
                for receipt in self.on_bridge([], ms):
                    self._push(t_us + UPLOAD_RTT_MS * 1000, 3, i, receipt)
            self._service(i, t_us)
        return self.metrics()

    def _offer_downlink(self, i, t_us):
        """The bridge PC hands its node the receipts it holds, oldest first,
        until the node refuses one; then it tries again DOWNLINK_RETRY_MS later.
        The node answers at once, so one record is in flight at a time."""
        pc = self.pcs[i]
        ms = t_us // 1000
        while True:
            down = pc.downlink(ms, 1)
            if not down:
                break
            rid, raw = down[0]
            pc.down_answer(rid, self.nodes[i].broadcast(raw, ms), ms)
        if pc.queue.down_backlog() and not self.downlink_retry[i]:
            self.downlink_retry[i] = True
            self._push(t_us + DOWNLINK_RETRY_MS * 1000, 5, i, None)

    def _service(self, i, t_us):
        node = self.nodes[i]
        ms = t_us // 1000
        if self.sending[i] is None:
            f = node.next_tx(ms)
            if f is not None:
                end, tx = self.medium.start(i, f, t_us)
                self.medium.log_tx(i, t_us, end)
                self.sending[i] = tx
                self._push(end, 1, i, tx)
        if node.is_bridge:
            got = node.take_delivered()
            pc = self.pcs[i]
            for rec in got:
                pc.delivered(rec)  # stored before the ack below lets the node let go
            if got and self.on_bridge is not None:
                for receipt in self.on_bridge(got, ms):
                    self._push(t_us + UPLOAD_RTT_MS * 1000, 3, i, receipt)
            for rec in got:
                rid = rid_of(rec)
                if rid not in self.delivered:
                    self.delivered[rid] = ms
                    if self.want_receipts and rid in self.receipt_of:
                        self._push(t_us + UPLOAD_RTT_MS * 1000, 3, i, self.receipt_of[rid])
                node.host_ack(rec)
        for ev in node.take_events():
            if ev[0] == EV_RECEIPT:
                self.receipted[ev[1]] = ms
        if self.sending[i] is None:  # a sending node is serviced again when its frame ends
            self._wake(i, node.next_wakeup_ms(ms))

    def metrics(self):
        dur_ms = self.minutes * 60000 + DEADLINE_S * 1000
        lat = []
        on_time = 0
        for rid, (t0, _) in self.submitted.items():
            t1 = self.delivered.get(rid)
            if t1 is not None:
                lat.append((t1 - t0) / 1000.0)
                if t1 - t0 <= DEADLINE_S * 1000:
                    on_time += 1
        lat.sort()
        airtime_ms = sum(n.stats["tx_airtime_us"] for n in self.nodes) / 1000.0
        on_time_ratio = round(on_time / self.offered, 4) if self.offered else 1.0
        held = self.held()

        def pct(p):
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

        return {
            "offered": self.offered,
            "accepted": len(self.submitted),
            "refused": self.refused,
            "delivered": len(lat),
            "delivered_on_time": on_time,
            "delivery_ratio": on_time_ratio,
            "on_time_ratio": on_time_ratio,
            "p50_latency_s": pct(0.50),
            "p95_latency_s": pct(0.95),
            "airtime_per_payment_ms": round(airtime_ms / on_time, 1) if on_time else None,
            "max_duty_cycle": round(max(n.stats["tx_airtime_us"] for n in self.nodes) / 1000.0 / dur_ms, 4),
            "avg_current_ma": round(sum(n.average_current_ma(dur_ms) for n in self.nodes) / len(self.nodes), 3),
            "goodput_per_hour": round(on_time * 60.0 / self.minutes, 1),
            "receipts_returned": len(self.receipted) if self.want_receipts else None,
            "receipts_ratio": self.receipts_ratio(),
            "lost": None if held is None else len(self.submitted) - len(lat) - held,
            "collisions": self.medium.collisions,
            "tx_frames": sum(n.stats["tx_frames"] for n in self.nodes),
            "limits": self.limits(dur_ms),
            "power": self.power.report(dur_ms),
        }

    def receipts_ratio(self):
        """Receipts back at their store within RECEIPT_DEADLINE_S, over the
        payments offered early enough for that window to close inside the
        run (the run drains DEADLINE_S past the offered load): None for a
        scheme without receipts."""
        if not self.want_receipts:
            return None
        last_ms = self.minutes * 60000 + (DEADLINE_S - RECEIPT_DEADLINE_S) * 1000
        window = sum(1 for t in self.arrival_ms if t <= last_ms)
        if not window:
            return None
        from pen_protocol import records as R
        back = 0
        for rid, (t0, _) in self.submitted.items():
            if t0 <= last_ms:
                t1 = self.receipted.get(R.parse(self.uses_by_rid[rid]).fields[0])
                back += t1 is not None and t1 - t0 <= RECEIPT_DEADLINE_S * 1000
        return round(back / window, 4)

    def held(self):
        """Accepted payments not delivered but still in someone's custody at
        the end (Pen: pending records and a bridge's journal; a baseline:
        packets its origin still retransmits); None for proxies."""
        if not all(hasattr(n, "pending") or hasattr(n, "mine") for n in self.nodes):
            return None
        held = set()
        for n in self.nodes:
            if hasattr(n, "pending"):
                held.update(rid for rid, p in n.pending.items() if p.type == 10)
                if n.is_bridge:
                    held.update(n.journal.live)
            else:
                held.update(pid for pid in n.mine if pid >> 16 == n.addr)
        if self.scheme == "pen":
            return len([rid for rid in self.submitted if rid not in self.delivered and rid in held])
        # a baseline's packet ids are not record ids: an upper bound (one may be delivered, its ACK lost)
        return min(len(held), len(self.submitted) - len(self.delivered))

    def limits(self, dur_ms):
        """Where the airtime and the losses are: the figures that say what
        caps a scheme's capacity."""
        m = self.medium
        hops = self.t.hops_to_bridge()
        busiest = max(range(self.t.n), key=lambda i: self.nodes[i].stats["tx_airtime_us"])

        def total(key):  # None where the nodes do not count it (MicroPython proxies)
            if not any(key in n.stats for n in self.nodes):
                return None
            return sum(n.stats.get(key, 0) for n in self.nodes)

        b = self.t.bridges[0]
        return {
            "busiest_node_hops_to_bridge": hops.get(busiest),
            "busiest_node_duty_cycle": round(self.nodes[busiest].stats["tx_airtime_us"] / 1000.0 / dur_ms, 4),
            "bridge_duty_cycle": round(self.nodes[b].stats["tx_airtime_us"] / 1000.0 / dur_ms, 4),
            "bridge_frames_lost_to_collision": m.lost_collision[b],
            "bridge_frames_lost_to_half_duplex": m.lost_half_duplex[b],
            "frames_lost_to_collision": sum(m.lost_collision),
            "frames_lost_to_half_duplex": sum(m.lost_half_duplex),
            "retries": total("retries"),
            "duty_blocked": total("duty_blocked"),
            "lbt_deferred": total("lbt_deferred"),
            "still_in_custody": sum(len(n.pending) for n in self.nodes) if all(
                hasattr(n, "pending") for n in self.nodes) else None,
        }
