"""Every transport, set up the same way for the conformance suite: a client
port (what a store or bridge PC holds) and, at the far end, the firmware's
LinkService (CPython) behind FrameFaults. Rig(port, svc, faults, clock)."""
import os
import select
import socket
import sys
import threading
import time

from conftest import ROOT

for sub in ("firmware", "tests/mpy", "tests/transport", "tests/firmware", "tests/link"):
    if str(ROOT / sub) not in sys.path:
        sys.path.insert(0, str(ROOT / sub))

from pen.bridge.serial import FdPort, open_pty  # noqa: E402
from pen.transport.testing import FrameFaults, VirtualClock, served_port  # noqa: E402
from pen_protocol.airtime import PRESETS  # noqa: E402
from pen_node.journal import Journal  # noqa: E402
from kit import MemStorage  # noqa: E402
from pen_node.mesh import MeshNode  # noqa: E402
from pen_node.service import LinkService  # noqa: E402
from medium_node import XorShift  # noqa: E402

TRANSPORTS = ["memory", "pty", "tcp", "ble", "meshtastic"]


class Rig:
    def __init__(self, port, svc, faults, clock, resend_s, closers=()):
        self.port, self.svc, self.faults, self.clock, self.resend_s = port, svc, faults, clock, resend_s
        self.closers = list(closers)

    def close(self):
        for c in self.closers:
            try:
                c()
            except Exception:
                pass


def service():
    return LinkService(MeshNode(4, PRESETS["eu868-sf9"], Journal(MemStorage(8192)), XorShift(4), is_bridge=False))


def _ms():
    return int(time.monotonic() * 1000)


def _serve_thread(read, write, svc, faults, stop):
    def loop():
        while not stop.is_set():
            try:
                data = read()
            except (OSError, EOFError):
                return
            out = svc.feed(faults(data), _ms()) if data else svc.poll(_ms())
            if out:
                write(out)
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def make(kind):
    svc, faults, stop = service(), FrameFaults(), threading.Event()
    if kind == "memory":
        clock = VirtualClock()
        return Rig(served_port(clock, lambda d: svc.feed(d, clock.ms()), faults), svc, faults, clock, 2.0)
    if kind == "pty":
        master, slave = open_pty()

        def read():
            r, _, _ = select.select([slave], [], [], 0.05)
            return os.read(slave, 4096) if r else b""
        _serve_thread(read, lambda b: os.write(slave, b), svc, faults, stop)
        port = FdPort(master, "pty")
        return Rig(port, svc, faults, time.monotonic, 0.5, [stop.set, port.close, lambda: os.close(slave)])
    if kind == "tcp":
        from pen.transport.tcp import TcpPort
        srv = socket.create_server(("127.0.0.1", 0))
        port = TcpPort("127.0.0.1", srv.getsockname()[1])
        conn, _ = srv.accept()

        def read():
            r, _, _ = select.select([conn], [], [], 0.05)
            if not r:
                return b""
            d = conn.recv(4096)
            if not d:
                raise EOFError
            return d
        _serve_thread(read, conn.sendall, svc, faults, stop)
        return Rig(port, svc, faults, time.monotonic, 0.5, [stop.set, port.close, conn.close, srv.close])
    if kind == "ble":
        from bumble_gatt import BumbleAdapter
        from pen.transport.ble import GattLink
        port = GattLink(BumbleAdapter(lambda d: svc.feed(faults(d), _ms())), "ble:bumble")
        return Rig(port, svc, faults, time.monotonic, 0.5, [port.close])
    if kind == "meshtastic":
        from mtradio import FakeMesh, FakeRadio
        from pen.transport.meshtastic import MeshtasticPort, interface
        mesh = FakeMesh()
        a, b = FakeRadio(mesh, 0x1001), FakeRadio(mesh, 0x2002)
        port = MeshtasticPort(interface("tcp:127.0.0.1:%d" % a.port), 0x2002, retry_ms=400)
        far = MeshtasticPort(interface("tcp:127.0.0.1:%d" % b.port), 0x1001, retry_ms=400)
        _serve_thread(lambda: far.read(0.05), far.write, svc, faults, stop)
        rig = Rig(port, svc, faults, time.monotonic, 1.0, [stop.set, port.close, far.close, a.close, b.close])
        rig.mesh = mesh
        return rig
    raise ValueError(kind)
