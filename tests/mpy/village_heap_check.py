"""Several MeshNodes in one MicroPython process under a small heap (run by
tests/firmware/test_village_heap.py): a bridge, relays and stores on a small
in-memory medium with virtual time.
The stores submit signed payments (USE records made on CPython, one hex
line each with its ACCOUNTED receipt in the file argv[2]); the bridge hands
each to its host once and sends the receipt back down; the stores must see
every receipt. Journals are files (on a board they live on flash, not in
the heap).

    micropython -X heapsize=80k -m village_heap_check JOURNAL_DIR RECORDS_FILE [3|5]

Prints:  delivered D unique U receipts R late L minutes M
         heap MODULES NODES PEAK FREE     (bytes)
"""
import gc
import sys

from pen_node.journal import Journal, FileStorage
# argv[3] picks the village: "3" = bridge 1 - relay 2 - store 3, "5" =
# bridge 1 - relays 2, 3 - stores 4 and 5. One node (a board's whole loop)
# fits 64 KB (tests/firmware/node_loop_mpy.py); several in one process need
# more on this 64-bit unix port: each MeshNode is ~6 KB of heap even with
# the small rings below (its attributes, the duty cycle's 60 buckets, stats),
# and pointers here are twice an ESP32's. test_village_heap.py runs 3 nodes
# in 80 KB and 5 in 96 KB.
if len(sys.argv) > 3 and sys.argv[3] == "5":
    ADDRS = (1, 2, 3, 4, 5)
    LINKS = ((1, 2), (2, 3), (3, 4), (3, 5), (4, 5))  # undirected
    STORES = (4, 5)
else:
    ADDRS = (1, 2, 3)
    LINKS = ((1, 2), (2, 3))
    STORES = (3,)
JOURNAL_BYTES = 4096  # per node: a few payments in custody at a time
SUBMIT_EVERY_MS = 30000
LIMIT_MS = 90 * 60000
SNR_X4 = 24  # 6 dB: a good link at SF9

storage = {}
for a in ADDRS:
    storage[a] = FileStorage("%s/j%d.bin" % (sys.argv[1], a), JOURNAL_BYTES)
gc.collect()
base = gc.mem_alloc()

from binascii import unhexlify  # noqa: E402
from pen_protocol.airtime import PRESETS  # noqa: E402
from pen_node.mesh import MeshNode  # noqa: E402
from pen_node.downlink import EV_RECEIPT  # noqa: E402

P = PRESETS["eu868-sf9"]
gc.collect()
mods = gc.mem_alloc() - base


class Lcg:
    """getrandbits from a small LCG (medium_node's XorShift costs heap to import)."""

    def __init__(self, seed):
        self.s = seed * 7919 + 1

    def getrandbits(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 7) & ((1 << n) - 1)


def hears(a, b):
    return (a, b) in LINKS or (b, a) in LINKS


class Medium:
    """Frames on air: [src, frame, start_ms, end_ms]. A receiver hears a
    frame when it is linked to the sender, is not sending itself, and no
    other frame it hears overlaps (no capture: harsher than the air)."""

    def __init__(self):
        self.air = []
        self.ended = []

    def busy_fn(self, a):
        def busy(now_ms):
            for x in self.air:
                if hears(x[0], a):
                    return True
            return False
        return busy

    def deliver(self, x, nodes):
        for r in ADDRS:
            if r == x[0] or not hears(x[0], r):
                continue
            lost = False
            for o in self.air + self.ended:
                if o is not x and o[3] > x[2] and o[2] < x[3] and (o[0] == r or hears(o[0], r)):
                    lost = True
                    break
            if not lost:
                nodes[r].on_frame(x[1], -100, SNR_X4, x[3])


def main():
    medium = Medium()
    nodes = {}
    for a in ADDRS:
        # small rings: a board with ~100 KB free runs the defaults
        nodes[a] = MeshNode(a, P, Journal(storage[a]), Lcg(a), is_bridge=a == 1, dedup=8, reverse=8,
                            spent_capacity=16, channel_busy=medium.busy_fn(a))
    gc.collect()
    built = gc.mem_alloc() - base
    peak = built
    records = open(sys.argv[2])
    receipts_due = {}  # token ref -> ACCOUNTED hex, until the bridge has the payment
    delivered = []  # token refs the bridge's host took, in order
    receipts = 0
    submitted = 0
    total = int(records.readline())
    late = 0
    t = 0
    next_submit = 120000  # let routes form first
    while t < LIMIT_MS and (len(delivered) < total or receipts < total):
        if t >= next_submit and submitted < total:
            use_hex, acc_hex = records.readline().split()
            use = unhexlify(use_hex)
            if nodes[STORES[submitted % len(STORES)]].submit(use, t):
                receipts_due[use[3:11]] = acc_hex
                submitted += 1
            next_submit = t + SUBMIT_EVERY_MS
        # transmissions that end now
        i = 0
        while i < len(medium.air):
            x = medium.air[i]
            if x[3] <= t:
                medium.air.pop(i)
                medium.ended.append(x)
                medium.deliver(x, nodes)
                nodes[x[0]].on_tx_done(t)
            else:
                i += 1
        medium.ended = [x for x in medium.ended if x[3] > t - 3000]
        for a in ADDRS:
            n = nodes[a]
            f = n.next_tx(t)
            if f is not None:
                medium.air.append([a, f, t, t + P.airtime_us(len(f)) // 1000 + 1])
            if n.is_bridge:
                for rec in n.take_delivered():
                    ref = bytes(rec[3:11])
                    delivered.append(ref)
                    n.host_ack(rec)
                    acc = receipts_due.pop(ref, None)
                    if acc is not None:
                        n.broadcast(unhexlify(acc), t)
            for ev in n.take_events():
                if ev[0] == EV_RECEIPT:
                    receipts += 1
        gc.collect()
        used = gc.mem_alloc() - base
        if used > peak:
            peak = used
        # next event: a node's timer, a frame's end, or the next submission
        nxt = t + 60000
        for a in ADDRS:
            w = nodes[a].next_wakeup_ms(t)
            if w < nxt:
                nxt = w
        for x in medium.air:
            if x[3] < nxt:
                nxt = x[3]
        if submitted < total and next_submit < nxt:
            nxt = next_submit
        t = nxt if nxt > t else t + 1
    for a in STORES:
        late += len(nodes[a].journal.live)
    unique = len(set(delivered))
    print("delivered", len(delivered), "unique", unique, "receipts", receipts, "late", late,
          "minutes", t // 60000)
    print("heap", mods, built - mods, peak, gc.mem_free())


main()
