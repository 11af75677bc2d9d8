"""What the link tests share: a unix-port node on a raw pty with pairing,
and an "air" bridge that plays the village's bridge node and its CTB node.

AirBridge is the firmware's own MeshNode (CPython) as a bridge on a UDP
socket, which the unix node's --air option treats as its radio; every USE
delivered to it is checked against the token's user key (as a CTB would)
and answered by an ACCOUNTED receipt signed with the CTB node key, sent back
down the payment's path. So a receipt a store gets has crossed the mesh
code both ways."""
import os
import random
import select
import socket
import sys
import threading
import time
from pathlib import Path

from conftest import MICROPYPATH, ROOT, build_mpy, micropython_bin

for sub in ("firmware", "tests/mpy", "tests/firmware"):
    if str(ROOT / sub) not in sys.path:
        sys.path.insert(0, str(ROOT / sub))

from pen import build as B  # noqa: E402
from pen.bridge.serial import spawn  # noqa: E402
from pen.keys import Signer  # noqa: E402
from pen_protocol import records as R, sign  # noqa: E402
from pen_protocol.airtime import PRESETS  # noqa: E402
from pen_node.journal import Journal  # noqa: E402
from pen_node.memstorage import MemStorage  # noqa: E402
from pen_node.mesh import MeshNode  # noqa: E402

T0 = 1795000000
CTB_KEY = Signer.from_phrase("link-test ctb node")
USER = Signer.from_phrase("link-test carlos")
ISSUER = Signer.from_phrase("link-test issuer")
NODE_HEAP = "192k"  # as tests/e2e: the heap is not what these tests measure


def token(serial):
    return R.make_ref(ISSUER.kid, serial)


def use(serial, user=USER):
    return B.use(user, token(serial), "50100000", "50100000")


class AirBridge:
    """A bridge node + CTB signer on UDP, run in a thread (real time)."""

    def __init__(self, users=None, sign_receipts=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.node = MeshNode(100, PRESETS["eu868-sf9"], Journal(MemStorage(16384)), random.Random(5),
                             is_bridge=True)
        self.users = users if users is not None else {}  # token ref -> user public key
        self.sign_receipts = sign_receipts
        self.peer = None
        self.delivered = []
        self.receipts = []
        self.down = []
        self.stop = False
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _ms(self):
        return int((time.monotonic() - self.t0) * 1000)

    def _run(self):
        while not self.stop:
            now = self._ms()
            wait = min(0.05, max(0, (self.node.next_wakeup_ms(now) - now) / 1000))
            r, _, _ = select.select([self.sock], [], [], wait)
            now = self._ms()
            if r:
                d, addr = self.sock.recvfrom(512)
                if d[:1] == b"H":
                    self.peer = addr
                elif d[:1] == b"T":
                    self.node.on_frame(d[1:], -60, 40, now)
            f = self.node.next_tx(now)
            while f is not None:
                if self.peer is not None:
                    self.sock.sendto(bytes(((-60) & 255, 40)) + f, self.peer)
                self.node.on_tx_done(now)
                f = self.node.next_tx(now)
            for rec in self.node.take_delivered():
                self.delivered.append(rec)
                self.down.extend(self.ctb(rec))
                self.node.host_ack(rec)
            self.down = [rc for rc in self.down if not self.node.broadcast(rc, now)]

    def ctb(self, raw):
        """What a CTB node would sign back: a receipt for a valid USE."""
        rec = R.parse(raw)
        pk = self.users.get(rec.fields[0])
        if rec.type != R.USE or pk is None or not sign.verify(pk, rec.signed_message(), rec.sig):
            return []
        if not self.sign_receipts:
            return []
        rc = B.accounted(CTB_KEY, rec.fields[0], rec.id, T0).raw
        self.receipts.append(rc)
        return [rc]

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def node_command(tmp, *extra, heap=NODE_HEAP):
    build_mpy()
    return "%s -X heapsize=%s -m unix_node --link stdio --addr 7 --journal %s %s" % (
        micropython_bin(), heap, Path(tmp) / "node.journal", " ".join(extra))


def start_node(tmp, *extra):
    """A unix-port node on a raw pty -> (FdPort, Popen, console path)."""
    console = Path(tmp) / "console.txt"
    err = open(console, "ab")
    port, proc = spawn(node_command(tmp, *extra), env=dict(os.environ, MICROPYPATH=MICROPYPATH), stderr=err)
    err.close()
    return port, proc, console


def pairing_code(console, timeout_s=20):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for line in Path(console).read_text().splitlines()[::-1]:
            if line.startswith("pairing code: "):
                return line.split(": ")[1].strip()
        time.sleep(0.05)
    raise AssertionError("no pairing code on the console: %r" % Path(console).read_text())


def stop(proc):
    proc.kill()
    proc.wait(5)


class AirNode:
    """The store's own node, in process: the firmware's MeshNode (CPython)
    and LinkService on the same UDP air as an AirBridge (the protocol
    unix_node --air speaks), for transports whose far end runs in this
    process (BLE over bumble). feed() is the link side; events the node
    has for the phone go to on_events(bytes)."""

    def __init__(self, air_port, auth=None, addr=8):
        from pen_node.service import LinkService
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.dest = ("127.0.0.1", air_port)
        self.node = MeshNode(addr, PRESETS["eu868-sf9"], Journal(MemStorage(16384)), random.Random(addr))
        self.svc = LinkService(self.node, auth)
        self.lock = threading.Lock()
        self.on_events = None
        self.stop = False
        self.t0 = time.monotonic()
        self.sock.sendto(b"H", self.dest)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _ms(self):
        return int((time.monotonic() - self.t0) * 1000)

    def feed(self, data):
        with self.lock:
            return self.svc.feed(data, self._ms())

    def _run(self):
        while not self.stop:
            r, _, _ = select.select([self.sock], [], [], 0.02)
            with self.lock:
                now = self._ms()
                if r:
                    d = self.sock.recv(512)
                    self.node.on_frame(d[2:], d[0] - 256 if d[0] > 127 else d[0], d[1], now)
                f = self.node.next_tx(now)
                while f is not None:
                    self.sock.sendto(b"T" + f, self.dest)
                    self.node.on_tx_done(now)
                    f = self.node.next_tx(now)
                ev = self.svc.poll(now)
            if ev and self.on_events is not None:
                self.on_events(ev)

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def receipt_event(record):
    """The node's event for a receipt that reached it as the payment's
    origin, in the form its MeshNode emits (pen_node.downlink)."""
    from pen_node.downlink import EV_RECEIPT
    return (EV_RECEIPT, bytes(record[3:11]), record, False)
