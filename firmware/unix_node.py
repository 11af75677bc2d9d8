"""A node on the MicroPython unix port whose link (docs/link.md) is on
stdin/stdout, so a PC bridge or a store drives it through a pty exactly as it
would drive a board over USB serial.

    micropython unix_node.py --link stdio [--bridge] [--addr N] [--journal FILE]
                             [--journal-size BYTES] [--preset NAME] [--trace FILE]

--link stdio: the link is stdin/stdout (binary). Under a pty the other side
must be in raw mode (no echo, no line editing): with --link pty the node
puts its own terminal in raw mode (termios.setraw), with --link stdio the
other side must (pipes need nothing).

There is no radio here: with --bridge it is a one-node village whose
payments arrive by SUBMIT on the link (the store and the bridge on one node),
its downlink goes on air to nobody. The custody journal is a file
(FileStorage), so what the node accepted survives a restart. Time is
time.ticks_ms(). The simulator's radio medium over UDP is medium_node.py.
"""
import random
import select
import sys
import time

from pen_protocol.airtime import PRESETS
from pen_protocol.identity import record_id
from pen_node.journal import Journal, FileStorage
from pen_node.mesh import MeshNode
from pen_node.service import LinkService

READ_BYTES = 512  # one read from the link; the decoder keeps at most one frame
HANGUP_MS = 100  # pause while a pty has no one on its other side
IDLE_MS = 1000  # longest sleep between node timers with nothing on the link
JOURNAL_BYTES = 32768  # two regions of 16 KB: MAX_LIVE records of ~150 B fit in half a region


def usage():
    sys.stderr.write("usage: micropython unix_node.py --link stdio|pty [--bridge] [--addr N] [--journal FILE] "
                     "[--journal-size BYTES] [--preset NAME] [--trace FILE]\n")
    sys.exit(2)


def parse(argv):
    opts = {"link": None, "bridge": False, "addr": 1, "journal": None, "size": JOURNAL_BYTES,
            "preset": "eu868-sf9", "trace": None}
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--bridge":
            opts["bridge"] = True
            i += 1
            continue
        if i + 1 >= len(argv):
            usage()
        v = argv[i + 1]
        if a == "--link":
            opts["link"] = v
        elif a == "--addr":
            opts["addr"] = int(v)
        elif a == "--journal":
            opts["journal"] = v
        elif a == "--journal-size":
            opts["size"] = int(v)
        elif a == "--preset":
            opts["preset"] = v
        elif a == "--trace":
            opts["trace"] = v
        else:
            usage()
        i += 2
    if opts["link"] not in ("stdio", "pty") or opts["preset"] not in PRESETS:
        usage()
    return opts


def read_ready(poller, rx, buf, one):
    """Read what the link has now into buf; 0 at end of input. A stream's
    readinto on the unix port waits until the buffer is full, so bytes
    are taken one at a time while poll says more are there."""
    n = 0
    while n < len(buf):
        if rx.readinto(one) != 1:
            return n
        buf[n] = one[0]
        n += 1
        if not poller.poll(0):
            break
    return n


def tracer(path, node):
    """--trace FILE: a line "kind record-id" for each SUBMIT and DOWNLINK the
    node serves (the kill tests count what reached it)."""
    import binascii

    def trace(kind, payload):
        if kind == 0x02 or kind == 0x06:
            f = open(path, "a")
            f.write("%d %s\n" % (kind, binascii.hexlify(record_id(payload)).decode()))
            f.close()
    return trace


def main(argv):
    o = parse(argv)
    path = o["journal"] or "/tmp/pen-unix-node-%d.journal" % o["addr"]
    random.seed(o["addr"] ^ time.ticks_ms())
    rng = random  # getrandbits(n <= 32), all MeshNode asks for; no PRNG module to load
    node = MeshNode(o["addr"], PRESETS[o["preset"]], Journal(FileStorage(path, o["size"])),
                    rng, is_bridge=o["bridge"])
    svc = LinkService(node)
    if o["trace"]:
        svc.trace = tracer(o["trace"], node)
    rx = sys.stdin.buffer
    tx = sys.stdout.buffer
    buf = bytearray(READ_BYTES)  # reused for every read: overwritten by the next read_ready
    one = bytearray(1)
    if o["link"] == "pty":
        import termios
        termios.setraw(0)  # no echo, no line editing: the link is binary
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    t0 = time.ticks_ms()
    while True:
        now = time.ticks_diff(time.ticks_ms(), t0)
        wait = 0 if svc.busy() else min(max(node.next_wakeup_ms(now) - now, 0), IDLE_MS)
        ready = poller.poll(wait)
        now = time.ticks_diff(time.ticks_ms(), t0)
        out = b""
        if ready:
            try:
                n = read_ready(poller, rx, buf, one)
            except OSError:  # a pty with no one on its other side for now
                n = -1
                time.sleep_ms(HANGUP_MS)
            if n == 0:
                break  # end of the link (stdin closed)
            if n > 0:
                out = svc.feed(memoryview(buf)[:n], now)
        # no radio: every frame due on air goes to nobody, at once (the duty
        # cycle is still charged)
        while node.next_tx(now) is not None:
            node.on_tx_done(now)
        out += svc.poll(now)
        if out:
            tx.write(out)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except KeyboardInterrupt:
        pass
    except Exception as e:  # say why on stderr: stdout is the link
        sys.print_exception(e, sys.stderr)
        sys.exit(1)
