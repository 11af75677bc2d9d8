"""Only authentic frames change a node's state (issue 10, items 9-11), as an
attacker would try it, on either runtime: tests/firmware/test_authentic_frames.py
calls run() on CPython and runs this file under MicroPython, where it prints
the same figures.

    micropython -X heapsize=512k -m forgery_check
"""
import gc

from pen_protocol import frame as F
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from pen_node.downlink import EV_RECEIPT
from pen_node.spent import KEEP_MS, UNKNOWN
from mpykit import Rng

P = PRESETS["eu868-sf9"]
SECRET = b"pen/1/test-village-secret"
KEY = F.net_key(SECRET)
OTHER = F.net_key(b"pen/1/another-village-secret")
SMALL = {"dedup": 32, "reverse": 32, "spent_capacity": 64}  # rings sized as the 64 KB node loop's
ME = 2


def ref(i):
    return bytes((0, 0, 0, 1, 0, 0, (i >> 8) & 255, i & 255))


def use(i):
    # canonical CBOR by hand (the node never decodes CBOR): array(3), bstr 8
    # token, bstr 4 product, bstr 4 account, then a signature nobody checks
    return b"\x0a\x83\x48" + ref(i) + b"\x44\x12\x34\x56\x78\x44\x12\x34\x56\x79" + bytes(64)


def accounted(i):
    return b"\x0b\x84\x48" + ref(i) + b"\x50" + bytes(16) + b"\x44\x01\x02\x03\x04\x1a\x65\x53\xf1\x00" + bytes(64)


def node(max_live=48):
    gc.collect()  # the last scenario's node is garbage now
    return MeshNode(ME, P, Journal(MemStorage(16384), max_live=max_live), Rng(ME), net_key=SECRET, **SMALL)


def heard(n, frame, key, now_ms):
    n.on_frame(F.seal(frame, key) if key is not None else frame, -80, 20, now_ms)


def state(n):
    """Everything a frame could change, as comparable values."""
    return (sorted(n.pending), sorted(n.journal.live), bytes(n.spent.ring.ids), bytes(n.spent.ring.vals),
            n.spent.dropped, list(n.acks), len(n.floods), sorted(n.nbr), n.parent, len(n.events),
            bytes(n.seen.ids), bytes(n.rev.ids), n.beacon_due, n.lbt_until)


def unauthentic_frames_change_nothing():
    """Forged frames of every kind (no tag, another village's tag, a tag
    cut off): the node's state is the same after them."""
    n = node()
    heard(n, F.pack(F.Header(F.T_BEACON, 1, F.BROADCAST, 1, 0, 0), bytes((0, 1, 0, 0))), KEY, 0)
    before = state(n)
    frames = [F.record_frame(use(1), 3, ME, 3), F.record_frame(use(2), 3, F.BROADCAST, 3),
              F.record_frame(accounted(3), 1, ME, 1), F.ack_frame([b"abcd"], 1, ME),
              F.pack(F.Header(F.T_BEACON, 9, F.BROADCAST, 9, 0, 0), bytes((0, 2, 0, 0)))]
    for f in frames:
        heard(n, f, None, 1000)
        heard(n, f, OTHER, 1000)
        heard(n, F.seal(f, KEY)[:-1], None, 1000)
    return state(n) == before, n.stats["bad_mac"], n.spent.lookup(ref(2))


def junk_cannot_flush_a_real_spend():
    """A real spend heard, then a flood of sealed junk spends (an insider):
    the real one stays KEEP_MS, the junk is refused once the set is full."""
    n = node()
    heard(n, F.record_frame(use(0), 3, 1, 3), KEY, 0)  # overheard on its way up
    for i in range(1, 600):
        heard(n, F.record_frame(use(i), 5, F.BROADCAST, 5), KEY, 1000 + i)
    kept = n.spent.lookup(ref(0))
    refused = n.spent.refused
    # a day later the oldest may go
    heard(n, F.record_frame(use(1000), 5, F.BROADCAST, 5), KEY, KEEP_MS + 2000)
    return kept, refused > 0, n.spent.lookup(ref(1000)), n.spent.lookup(ref(0)) == UNKNOWN


def flood_of_unsigned_uses_cannot_block_the_store():
    """48 unsigned USE frames sealed by an insider, addressed to this node
    (one origin, then a new origin for each), and the store's submit."""
    out = []
    for vary in (False, True):
        n = node()
        heard(n, F.pack(F.Header(F.T_BEACON, 1, F.BROADCAST, 1, 0, 0), bytes((0, 1, 0, 0))), KEY, 0)
        for i in range(48):
            origin = 100 + i if vary else 7
            heard(n, F.record_frame(use(i + 1), 7, ME, origin), KEY, 1000 + i)
        out.append(len(n.journal.live))
        out.append(n.submit(use(999), 5000))
    return out


def forged_receipts():
    """A receipt for a payment this store submitted: without the village
    tag it is nothing; sealed by an insider it reaches the store marked
    unverified, whole, for the store to check the CTB node's signature."""
    n = node()
    heard(n, F.pack(F.Header(F.T_BEACON, 1, F.BROADCAST, 1, 0, 0), bytes((0, 1, 0, 0))), KEY, 0)
    n.submit(use(5), 100)
    heard(n, F.record_frame(accounted(5), 1, ME, 1), None, 1000)
    outsider = len(n.take_events())
    heard(n, F.record_frame(accounted(5), 1, ME, 1), KEY, 2000)
    ev = n.take_events()
    insider = [(e[0] == EV_RECEIPT, e[1] == ref(5), e[2] == accounted(5), e[3]) for e in ev]
    return outsider, insider


def run():
    return {"unauthentic": unauthentic_frames_change_nothing(), "junk": junk_cannot_flush_a_real_spend(),
            "custody": flood_of_unsigned_uses_cannot_block_the_store(), "receipts": forged_receipts()}


if __name__ == "__main__":
    r = run()
    for k in ("unauthentic", "junk", "custody", "receipts"):
        print(k, r[k])
