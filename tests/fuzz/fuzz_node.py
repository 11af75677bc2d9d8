"""Coverage-guided fuzzing of a mesh node's two entries from outside: the
air (MeshNode.on_frame) and the link (LinkService.feed). Invariants:

- no exception escapes either entry (nor next_tx / tick after them);
- a frame without the village tag changes nothing in a keyed node (state()
  is equal before and after; only the channel-load and rx counters move,
  since any energy on the air is heard).

Run (atheris, libFuzzer underneath; the corpus grows in place):

    .venv/bin/python tests/fuzz/run_atheris.py tests/fuzz/corpus -max_len=600 -runs=10000000

The suite runs every corpus file and a few thousand seeded random inputs
through one_input() without atheris (tests/fuzz/test_fuzz_smoke.py).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for p in ("protocol", "firmware", "tests/mpy"):
    if os.path.join(ROOT, p) not in sys.path:
        sys.path.insert(0, os.path.join(ROOT, p))

from pen_protocol import frame as F  # noqa: E402
from pen_protocol import link as L  # noqa: E402
from pen_protocol.airtime import PRESETS  # noqa: E402
from pen_node.journal import Journal  # noqa: E402
from pen_node.memstorage import MemStorage  # noqa: E402
from pen_node.mesh import MeshNode  # noqa: E402
from pen_node.service import LinkService  # noqa: E402
from mpykit import Rng  # noqa: E402

P = PRESETS["eu868-sf9"]
SECRET = b"pen/1/fuzz-village-secret"
KEY = F.net_key(SECRET)
ME = 2
SMALL = {"dedup": 16, "reverse": 16, "spent_capacity": 16}
USE = b"\x0a\x83\x48" + bytes((0, 0, 0, 1, 0, 0, 0, 7)) + b"\x44\x12\x34\x56\x78\x44\x12\x34\x56\x79" + bytes(64)
BEACON = F.pack(F.Header(F.T_BEACON, 1, F.BROADCAST, 1, 0, 0), bytes((0, 1, 0, 0)))


def fresh(bridge=False):
    """A keyed node in an interesting state: a parent, a payment in custody
    (so acks, receipts and implicit acks have something to act on)."""
    n = MeshNode(ME, P, Journal(MemStorage(2048), max_live=4), Rng(7), is_bridge=bridge, net_key=SECRET, **SMALL)
    n.on_frame(F.seal(BEACON, KEY), -80, 20, 0)
    n.submit(USE, 10)
    return n


_MOVING = ("rx_frames", "frames_handled", "bad_mac")  # any energy heard moves these


def state(n):
    st = dict(n.stats)
    for k in _MOVING:
        st.pop(k, None)
    return (sorted(n.pending), sorted(n.journal.live), bytes(n.spent.ring.ids), bytes(n.spent.ring.vals),
            n.spent.dropped, list(n.acks), [f[1] for f in n.floods], sorted([(a, tuple(v)) for a, v in n.nbr.items()]),
            n.parent, len(n.events), bytes(n.seen.ids), bytes(n.rev.ids), bytes(n.handled.ids), n.beacon_due,
            n.lbt_until, n.last_uplink_ms, sorted(n.by_fid), n.inflight, n.metric, len(n.delivered), st)


class Bytes:
    """Carves an input into small decisions and frames (atheris's
    FuzzedDataProvider does the same; this keeps one_input free of atheris)."""

    def __init__(self, data):
        self.d = data
        self.i = 0

    def byte(self):
        if self.i >= len(self.d):
            return 0
        self.i += 1
        return self.d[self.i - 1]

    def chunk(self):
        n = self.byte()
        out = self.d[self.i:self.i + n]
        self.i += n
        return out

    def more(self):
        return self.i < len(self.d)


def one_input(data):
    """One fuzz input: frames for the air (each sent as it is, or sealed
    with the village key as an insider would), and link bytes."""
    b = Bytes(data)
    mode = b.byte()
    n = fresh(bridge=bool(mode & 1))
    t = 100
    while b.more():
        op = b.byte() % 4
        frame = b.chunk()
        t += 1 + b.byte() * 50
        if op == 0:  # as heard: almost never a right tag
            if F.unseal(frame, KEY) < 0:
                before = state(n)
                n.on_frame(frame, -80, 20, t)
                after = state(n)
                if after != before:
                    raise AssertionError("an unauthentic frame changed the node: %s" % frame.hex())
            else:
                n.on_frame(frame, -80, 20, t)
        elif op == 1 or op == 2:  # sealed by an insider: parsed all the way
            if len(frame) + F.TAG_LEN <= 255:
                n.on_frame(F.seal(frame, KEY), -80, b.byte() - 128, t)
        else:  # the link: raw bytes, then the same payload framed as a request
            svc = LinkService(n)
            svc.feed(frame, t)
            if frame:
                svc.feed(L.encode(frame[0] % 16, 1, frame[1:]), t)
        f = n.next_tx(t)
        if f is not None:
            n.on_tx_done(t + 1)
        n.tick(t)
        n.next_wakeup_ms(t)
        n.take_events()
        n.take_delivered()
