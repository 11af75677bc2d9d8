"""One node's whole loop under the node's MicroPython heap (run by
test_heap.py): learn a route from a bridge beacon, take payments in custody,
send them hop by hop, take acks, hear a receipt flood, answer "is it
spent?". The peer (the bridge) is played by hand-made frames. Prints
figures the test checks."""
import gc
import sys
from pen_node.journal import Journal, FileStorage
# the journal is a file, as on a board's flash filesystem: not on the heap
PATH = sys.argv[1] if len(sys.argv) > 1 else "/tmp/pen-node-loop.journal"
STORAGE = FileStorage(PATH, 8192)
BOARD_RINGS = len(sys.argv) > 2 and sys.argv[2] == "board"
gc.collect()
base = gc.mem_alloc()

from pen_protocol import frame as F
from pen_protocol.airtime import PRESETS
from pen_node.mesh import MeshNode, T_BUNDLE
from pen_node.downlink import EV_RECEIPT
from pen_node.ring import IdRing


class Lcg:
    """A tiny PRNG with getrandbits (medium_node's XorShift costs 2 KB of heap
    to import; the node only needs some bits)."""

    def __init__(self, seed):
        self.s = seed

    def getrandbits(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 7) & ((1 << n) - 1)

P = PRESETS["eu868-sf9"]
N = 40  # payments: more than the journal holds at once, so custody turns over


def ref(i):
    return bytes((0, 0, 0, 1, 0, 0, i >> 8, i & 255))


# canonical CBOR written out by hand (the cbor module costs 4 KB of heap to
# import, and the node itself never decodes CBOR)
def use(i):
    # 0x83 array(3), 0x48 bstr(8) ref, 0x44 bstr(4) product, 0x44 bstr(4) account
    return b"\x0a\x83\x48" + ref(i) + b"\x44\x12\x34\x56\x78\x44\x12\x34\x56\x79" + bytes(64)


def accounted(token_ref):
    # array(4): ref, use id bstr(16), node kid bstr(4), time uint32 (0x1a)
    return b"\x0b\x84\x48" + token_ref + b"\x50" + bytes(16) + b"\x44\x01\x02\x03\x04\x1a\x65\x53\xf1\x00" + bytes(64)


def main():
    # a function, not module level: its names live on the stack, not in a
    # globals dict that would grow (and want a big block) mid-run
    gc.collect()
    mods = gc.mem_alloc() - base
    # "board": the node's default rings (main.py's); otherwise the simulator's
    # smaller ones (medium_node.py). 8 records in custody at most (a board
    # caps custody by its free heap, custody.custody_room: ~480 B each)
    if BOARD_RINGS:
        node = MeshNode(2, P, Journal(STORAGE, max_live=8), Lcg(5))
    else:
        node = MeshNode(2, P, Journal(STORAGE, max_live=8), Lcg(5), dedup=32, reverse=32, spent_capacity=64)
    gc.collect()
    built = gc.mem_alloc() - base
    t = 1000
    node.on_frame(F.pack(F.Header(F.T_BEACON, 1, F.BROADCAST, 1, 0, 0), bytes((0, 1, 0, 0))), -80, 20, t)
    assert node.parent == 1
    submitted = 0
    sent = IdRing(N, 8)  # token refs the bridge took: preallocated, no list growing in a tight heap
    peak = built
    receipts = 0
    while len(sent) < N and t < 24 * 3600000:
        while submitted < N and node.submit(use(submitted), t):
            submitted += 1
        f = node.next_tx(t)
        if f is None:
            t = node.next_wakeup_ms(t)
            continue
        t += P.airtime_us(len(f)) // 1000 + 1
        node.on_tx_done(t)
        hdr, payload = F.parse(f)
        if hdr.dst == 1 and hdr.type in (10, T_BUNDLE):
            fid = F.frame_id(f)
            t += 50
            node.on_frame(F.ack_frame([fid], 1, 2), -80, 20, t)  # the bridge takes it
            for record in ([F.record_of(hdr, payload)] if hdr.type == 10 else
                           [e[1] for e in F.bundle_records(payload)]):
                token = record[3:11]  # USE: type, [token ref (bstr 8), ...]
                if token not in sent:
                    sent.put(token)
                    # and its receipt comes back by flood, for every other payment
                    if len(sent) % 2:
                        rec = accounted(token)
                        node.on_frame(F.record_frame(rec, 1, F.BROADCAST, 1, 7), -80, 20, t + 300)
        for ev in node.take_events():
            if ev[0] == EV_RECEIPT:
                receipts += 1
        gc.collect()
        a = gc.mem_alloc() - base
        if a > peak:
            peak = a
    spent = sum(1 for i in range(N) if node.spent.lookup(ref(i)))
    print("sent", len(sent), "receipts", receipts, "spent", spent, "journal", len(node.journal.live))
    print("heap", mods, built - mods, peak, gc.mem_free())


main()
