"""Stock Meshtastic radios for tests: each FakeRadio is a TCP server that
speaks the radio's stream API exactly as a device on port 4403 or a serial
line does (0x94 0xC3, 16-bit big-endian length, a ToRadio / FromRadio
protobuf from meshtastic.protobuf), answers want_config_id with its
MyNodeInfo, its NodeInfo and config_complete_id, and hands every MeshPacket
it is given to a FakeMesh, which delivers it to the addressed radio's client
as a FromRadio packet (decoded portnum and payload, from, to, id). The mesh
has fault hooks: drop(packet) -> bool, and hold() to reorder."""
import random
import socket
import struct
import threading

from meshtastic.protobuf import mesh_pb2

START = b"\x94\xc3"


def frame(msg):
    b = msg.SerializeToString()
    return START + struct.pack(">H", len(b)) + b


class FakeMesh:
    def __init__(self, drop=None, seed=1):
        self.radios = {}
        self.drop = drop  # drop(packet) -> True to lose it
        self.reorder = False  # deliver each packet after the next one
        self.held = None
        self.rng = random.Random(seed)
        self.carried = []  # (from, to, payload length) of every packet the mesh carried
        self.payloads = []  # and their payloads
        self.lock = threading.Lock()

    def carry(self, pkt):
        with self.lock:
            self.carried.append((getattr(pkt, "from"), pkt.to, len(pkt.decoded.payload)))
            self.payloads.append(bytes(pkt.decoded.payload))
            if self.drop is not None and self.drop(pkt):
                return
            if self.reorder and self.held is None:
                self.held = pkt
                return
            out = [pkt]
            if self.held is not None:
                out.append(self.held)
                self.held = None
        for p in out:
            r = self.radios.get(p.to)
            if r is not None:
                r.deliver(p)


class FakeRadio:
    """A radio on TCP (like a device's port 4403: .port) or on a pty (like
    its USB serial: .path, for SerialInterface)."""

    def __init__(self, mesh, num, on="tcp"):
        self.mesh = mesh
        self.num = num
        mesh.radios[num] = self
        self.wlock = threading.Lock()
        self.handshakes = 0
        self.write = None
        if on == "pty":
            import os
            import tty
            self.master, slave = os.openpty()
            tty.setraw(slave)
            self.path = os.ttyname(slave)
            self._slave = slave  # kept open: the line stays up between the library's opens
            self.write = lambda b: os.write(self.master, b)
            threading.Thread(target=self._read, args=(lambda: os.read(self.master, 4096),), daemon=True).start()
        else:
            self.srv = socket.create_server(("127.0.0.1", 0))
            self.port = self.srv.getsockname()[1]
            threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.write = c.sendall
            threading.Thread(target=self._read, args=(lambda: c.recv(4096),), daemon=True).start()

    def _send(self, msg):
        if self.write is None:
            return
        with self.wlock:
            try:
                self.write(frame(msg))
            except OSError:
                pass

    def _read(self, recv):
        buf = b""
        while True:
            try:
                d = recv()
            except OSError:
                return
            if not d:
                return
            buf += d
            while True:
                i = buf.find(START)
                if i < 0:
                    buf = buf[-1:]
                    break
                if len(buf) < i + 4:
                    break
                n = struct.unpack(">H", buf[i + 2:i + 4])[0]
                if len(buf) < i + 4 + n:
                    break
                body, buf = buf[i + 4:i + 4 + n], buf[i + 4 + n:]
                tr = mesh_pb2.ToRadio()
                tr.ParseFromString(body)
                self._on(tr)

    def _on(self, tr):
        which = tr.WhichOneof("payload_variant")
        if which == "want_config_id":
            self.handshakes += 1
            self._send(mesh_pb2.FromRadio(my_info=mesh_pb2.MyNodeInfo(my_node_num=self.num)))
            ni = mesh_pb2.NodeInfo(num=self.num)
            ni.user.id = "!%08x" % self.num
            ni.user.long_name = "pen test %d" % self.num
            ni.user.short_name = "p%d" % (self.num % 100)
            self._send(mesh_pb2.FromRadio(node_info=ni))
            self._send(mesh_pb2.FromRadio(config_complete_id=tr.want_config_id))
        elif which == "packet":
            p = mesh_pb2.MeshPacket()
            p.CopyFrom(tr.packet)
            setattr(p, "from", self.num)
            if not p.id:
                p.id = self.mesh.rng.getrandbits(32)
            self.mesh.carry(p)

    def deliver(self, pkt):
        self._send(mesh_pb2.FromRadio(packet=pkt))

    def close(self):
        import os
        if hasattr(self, "srv"):
            self.srv.close()
        else:
            os.close(self.master)
            os.close(self._slave)
