"""A node on the MicroPython unix port whose link (docs/link.md) is on
stdin/stdout, so a PC bridge or a store drives it through a pty exactly as it
would drive a board over USB serial.

    micropython unix_node.py --link stdio [--bridge] [--addr N] [--journal FILE]
                             [--journal-size BYTES] [--preset NAME] [--trace FILE]
                             [--pair FILE [--new-code]] [--air UDP_PORT]

--link stdio: the link is stdin/stdout (binary). Under a pty the other side
must be in raw mode (no echo, no line editing): with --link pty the node
puts its own terminal in raw mode (termios.setraw), with --link stdio the
other side must (pipes need nothing).

There is no radio here: with --bridge it is a one-node village whose
payments arrive by SUBMIT on the link (the store and the bridge on one node),
its downlink goes on air to nobody. The custody journal is a file
(FileStorage), so what the node accepted survives a restart. Time is
time.ticks_ms(). The simulator's radio medium over UDP is medium_node.py.

--pair FILE: the link needs pairing (pen_node.pairing; its state in FILE).
The node prints its open pairing code on stderr (its console): a new one
when no phone is paired and none is open, or with --new-code.
--air UDP_PORT: a radio stand-in: every frame the node sends goes as a
datagram b"T" + frame to 127.0.0.1:UDP_PORT (first a b"H" so the other side
knows where we are); datagrams rssi (1, signed) | snr x4 (1) | frame come
back as frames heard. Tests put a bridge node there (tests/link).
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
                     "[--journal-size BYTES] [--preset NAME] [--trace FILE] [--pair FILE [--new-code]] "
                     "[--air UDP_PORT]\n")
    sys.exit(2)


def parse(argv):
    opts = {"link": None, "bridge": False, "addr": 1, "journal": None, "size": JOURNAL_BYTES,
            "preset": "eu868-sf9", "trace": None, "pair": None, "new_code": False, "air": None}
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--bridge" or a == "--new-code":
            opts["bridge" if a == "--bridge" else "new_code"] = True
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
        elif a == "--pair":
            opts["pair"] = v
        elif a == "--air":
            opts["air"] = int(v)
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


def pairing(o):
    """--pair FILE: a LinkAuth whose state lives in FILE; the code goes to
    the console (stderr: stdout is the link)."""
    if not o["pair"]:
        return None
    import os
    from pen_node.pairing import LinkAuth, FileStore
    auth = LinkAuth(FileStore(o["pair"]), os.urandom)
    if o["new_code"] or (not auth.paired() and auth.code is None):
        auth.new_code()
    if auth.code is not None:  # still open (its attempts left are in FILE)
        sys.stderr.write("pairing code: %s\n" % auth.code)
    return auth


def open_air(port, poller):
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
    dest = socket.getaddrinfo("127.0.0.1", port)[0][-1]
    sock.sendto(b"H", dest)
    poller.register(sock, select.POLLIN)
    return sock, dest


def s8(b):
    return b - 256 if b > 127 else b


def main(argv):
    o = parse(argv)
    path = o["journal"] or "/tmp/pen-unix-node-%d.journal" % o["addr"]
    random.seed(o["addr"] ^ time.ticks_ms())
    rng = random  # getrandbits(n <= 32), all MeshNode asks for; no PRNG module to load
    node = MeshNode(o["addr"], PRESETS[o["preset"]], Journal(FileStorage(path, o["size"])),
                    rng, is_bridge=o["bridge"])
    svc = LinkService(node, pairing(o))
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
    # the air gets a poller of its own with stdin: read_ready's poller must
    # answer for stdin alone
    waiter = poller
    air = None
    if o["air"]:
        waiter = select.poll()
        waiter.register(sys.stdin, select.POLLIN)
        air = open_air(o["air"], waiter)
    t0 = time.ticks_ms()
    while True:
        now = time.ticks_diff(time.ticks_ms(), t0)
        wait = 0 if svc.busy() else min(max(node.next_wakeup_ms(now) - now, 0), IDLE_MS)
        ready = waiter.poll(wait)
        now = time.ticks_diff(time.ticks_ms(), t0)
        out = b""
        if air is not None:
            if [r for r in ready if r[0] is air[0]]:
                d = air[0].recv(300)
                node.on_frame(d[2:], s8(d[0]), s8(d[1]), now)
            ready = poller.poll(0)
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
        # no radio: every frame due on air goes to nobody (or --air), at
        # once (the duty cycle is still charged)
        f = node.next_tx(now)
        while f is not None:
            if air is not None:
                air[0].sendto(b"T" + f, air[1])
            node.on_tx_done(now)
            f = node.next_tx(now)
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
