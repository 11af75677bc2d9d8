"""A tiny in-process radio medium for firmware tests, on CPython and under
MicroPython: nodes are real MeshNodes; frames reach the neighbours a link
table names (SNR per directed link, loss per mille); two frames overlapping
at a receiver both die (no capture: harsher than the air), and a node
cannot hear while it transmits. Virtual time jumps to the next event, so an
hour of mesh time runs in well under a second."""

from pen_node.journal import Journal
from pen_node.memstorage import MemStorage, PowerCut
from pen_node.mesh import MeshNode
from pen_node.downlink import EV_RECEIPT
from medium_node import XorShift


class Village:
    def __init__(self, preset, links, bridges=(1,), seed=1, journal_bytes=32768, cls=MeshNode, **tunables):
        """links: {(a, b): (snr_x4, loss_permille)}, symmetric unless both given;
        cls: the node class (MeshNode, or lasthop.ScheduledNode)."""
        self.cls = cls
        self.preset = preset
        self.rng = XorShift(seed + 7)
        self.links = {}
        addrs = set()
        for (a, b) in links:
            self.links[(a, b)] = links[(a, b)]
            if (b, a) not in links:
                self.links[(b, a)] = links[(a, b)]
            addrs.add(a)
            addrs.add(b)
        self.nodes = {}
        self.storage = {}
        for a in sorted(addrs):
            self.storage[a] = MemStorage(journal_bytes)
            self.nodes[a] = cls(a, preset, Journal(self.storage[a]), XorShift(seed * 100 + a),
                                     is_bridge=a in bridges, channel_busy=self._busy_fn(a), **tunables)
        self.now = 0
        self.air = []  # [sender, frame, start_ms, end_ms]
        self.ended = []
        self.delivered = {}  # bridge addr -> list of records
        self.events = {}
        self.down = set()  # nodes switched off
        self.sent = 0
        self.cuts = 0

    def _busy_fn(self, a):
        def busy(now_ms):
            for t in self.air:
                if (t[0], a) in self.links:
                    return True
            return False
        return busy

    def _hear(self, s, r):
        return (s, r) in self.links and s not in self.down and r not in self.down

    def _deliver(self, t):
        s, frame, start, end = t
        for r in self.nodes:
            if r == s or not self._hear(s, r):
                continue
            lost = False
            for o in self.air + self.ended:
                if o is t or o[3] <= start or o[2] >= end:
                    continue
                if o[0] == r or (o[0], r) in self.links:
                    lost = True
                    break
            snr, loss = self.links[(s, r)]
            if lost or self.rng.getrandbits(10) % 1000 < loss:
                continue
            self._guard_node(r, "on_frame", frame, -100, snr, end)

    def step(self, until):
        """Advance to the next event (at most `until`); returns False at until."""
        t = until
        for a in self.nodes:
            if a not in self.down:
                w = self.nodes[a].next_wakeup_ms(self.now)
                if w < t:
                    t = w
        for x in self.air:
            if x[3] < t:
                t = x[3]
        if t < self.now:
            t = self.now
        self.now = t
        # transmissions that end now
        done = [x for x in self.air if x[3] <= t]
        for x in done:
            self.air.remove(x)
            self.ended.append(x)
            self._guard(self._deliver, x)
            if x[0] in self.nodes:
                self._guard_node(x[0], "on_tx_done", t)
        self.ended = [x for x in self.ended if x[3] > t - 3000]
        for a in self.nodes:
            if a in self.down:
                continue
            n = self.nodes[a]
            f = self._guard_node(a, "next_tx", t)
            if f is not None:
                self.sent += 1
                self.air.append([a, f, t, t + self.preset.airtime_us(len(f)) // 1000 + 1])
            if n.is_bridge:
                got = n.take_delivered()
                if got:
                    self.delivered.setdefault(a, []).extend(got)
                    for rec in got:
                        self._guard_node(a, "host_ack", rec)
            ev = n.take_events()
            if ev:
                self.events.setdefault(a, []).extend(ev)
        return t < until

    def receipts(self, a):
        """Token refs of the receipts node a reported (events.EV_RECEIPT)."""
        return [e[1] for e in self.events.get(a, []) if e[0] == EV_RECEIPT]

    def _guard(self, fn, *args):
        return fn(*args)

    def _guard_node(self, a, method, *args):
        """Call a node; a power cut in its journal (MemStorage.cut_after)
        reboots it, as the board would."""
        try:
            return getattr(self.nodes[a], method)(*args)
        except PowerCut:
            self.storage[a].cut_after = None
            self.cuts += 1
            self.reboot(a)
            return None

    def run(self, ms):
        end = self.now + ms
        while self.step(end):
            pass

    def submit(self, a, record):
        """True only when the node acknowledged it (a cut mid-submit is not an ack)."""
        return self._guard_node(a, "submit", record, self.now) is True

    def reboot(self, a):
        """Power cut and restart: RAM is gone, the journal survives."""
        old = self.nodes[a]
        self.nodes[a] = self.cls(a, self.preset, Journal(self.storage[a]), XorShift(self.now + a),
                                 is_bridge=old.is_bridge, channel_busy=self._busy_fn(a))
        self.air = [x for x in self.air if x[0] != a]

    def all_delivered(self):
        out = []
        for a in self.delivered:
            out.extend(self.delivered[a])
        return out


def use_record(i):
    """A USE record of the shape records.py gives (signature zeroed: the
    mesh never verifies, the bridge's CTB does)."""
    from pen_protocol import cbor
    ref = bytes((0, 0, 0, 1, (i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255))
    return bytes([10]) + cbor.dumps([ref, b"\x12\x34\x56\x78", b"\x12\x34\x56\x79"]) + bytes(64)


def accounted_record(i):
    from pen_protocol import cbor
    ref = bytes((0, 0, 0, 1, (i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255))
    return bytes([11]) + cbor.dumps([ref, bytes(16), b"\x01\x02\x03\x04", 1700000000]) + bytes(64)


def publication_record(i):
    """A publication (flooded downlink, unlike a receipt)."""
    from pen_protocol import cbor
    return bytes([12]) + cbor.dumps([b"\x00\x00\x00\x01", "notice %d" % i]) + bytes(64)


def line(n, snr_x4=20, loss=0):
    """1 - 2 - ... - n, each only hearing its neighbours."""
    links = {}
    for a in range(1, n):
        links[(a, a + 1)] = (snr_x4, loss)
    return links


def beacon(src, seq, metric, parent=0):
    """A route advertisement from src: beacon sequence, its metric, the low
    byte of its parent."""
    from pen_protocol import frame as F
    return F.pack(F.Header(F.T_BEACON, src, 0xFFFF, src, 0, 0), bytes((seq >> 8, seq & 255, metric, parent)))
