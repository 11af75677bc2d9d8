"""The transport test kit (as trio.testing is trio's): a virtual clock, an
in-memory link pair, and frame-level fault hooks any transport's far end
can apply, so one conformance suite (tests/transport) runs every transport
through the same cases.

    clock = VirtualClock()                 time that jumps when a reader waits
    a, b = memory_pair(clock)              two ports: what a writes, b reads
    faults = FrameFaults()                 drop / corrupt / swap / cut the next frames
    faults.drop(1); data = faults(data)    apply to bytes on their way to a node
"""
import collections


class VirtualClock:
    """Seconds that advance only when told (or when a memory port waits on
    an empty link: it jumps to the end of the wait at once)."""

    def __init__(self, start=1000.0):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, s):
        self.now += s

    def ms(self):
        return int(self.now * 1000)


class MemoryPort:
    """One end of an in-memory link: read(timeout_s) / write / close, the
    shape of every transport. `on_write` lets a test serve the far end
    synchronously (a node's feed) instead of a second port."""

    def __init__(self, clock, name="memory"):
        self.clock = clock
        self.name = name
        self.inbox = collections.deque()
        self.peer = None
        self.closed = False
        self.on_write = None
        self.on_poll = None  # the far end's own output (a node's poll: events)

    def write(self, data):
        if self.closed:
            raise EOFError("%s is closed" % self.name)
        if self.on_write is not None:
            out = self.on_write(bytes(data))
            if out:
                self.inbox.append(out)
        elif self.peer is not None:
            self.peer.inbox.append(bytes(data))

    def read(self, timeout_s):
        if not self.inbox and self.on_poll is not None:
            out = self.on_poll()
            if out:
                self.inbox.append(out)
        if self.inbox:
            out = b"".join(self.inbox)
            self.inbox.clear()
            return out
        if self.closed:
            raise EOFError("%s is closed" % self.name)
        self.clock.advance(timeout_s)  # nothing will come on its own: the wait passes at once
        return b""

    def close(self):
        self.closed = True


def memory_pair(clock, names=("a", "b")):
    a, b = MemoryPort(clock, names[0]), MemoryPort(clock, names[1])
    a.peer, b.peer = b, a
    return a, b


def served_port(clock, feed, faults=None, name="memory", poll=None):
    """A port whose far end is feed(bytes) -> bytes (a node's LinkService
    with its clock), through optional fault hooks; poll() -> bytes, if
    given, is asked on every read (the node's events)."""
    p = MemoryPort(clock, name)
    p.on_write = (lambda data: feed(faults(data))) if faults is not None else feed
    p.on_poll = poll
    return p


class FrameFaults:
    """Faults applied to whole link frames (cut at their 0x00 delimiters)
    on their way to the far end, whatever pieces the transport delivered
    them in: drop(n), corrupt(n) (one byte flipped mid-frame), swap() (the
    next two frames change places), cut() (the next frame stops halfway:
    its first half arrives, the rest never does — a disconnect mid-frame)."""

    def __init__(self):
        self.plan = collections.deque()
        self.tail = b""
        self.held = None
        self.seen = 0
        self.applied = collections.Counter()

    def drop(self, n=1):
        self.plan.extend(["drop"] * n)

    def corrupt(self, n=1):
        self.plan.extend(["corrupt"] * n)

    def swap(self):
        self.plan.append("swap")

    def cut(self):
        self.plan.append("cut")

    def __call__(self, data):
        buf = self.tail + bytes(data)
        *frames, self.tail = buf.split(b"\x00")
        out = []
        for f in frames:
            if not f:
                continue
            self.seen += 1
            out.append(self._one(f + b"\x00"))
        return b"".join(out)

    def _one(self, frame):
        if self.held is not None:
            held, self.held = self.held, None
            return frame + held
        if not self.plan:
            return frame
        what = self.plan.popleft()
        self.applied[what] += 1
        if what == "drop":
            return b""
        if what == "corrupt":
            b = bytearray(frame)
            i = max(0, len(b) // 2 - 1)
            b[i] = (b[i] ^ 0x5A) or 0x01  # never a zero: the frame stays one frame
            return bytes(b)
        if what == "swap":
            self.held = frame
            return b""
        return frame[:max(1, (len(frame) - 1) // 2)]  # cut
