"""Pen's link over stock Meshtastic radios: link frames cut into Meshtastic
Data payloads on a private app port, reassembled at the far end, with Pen's
own end-to-end acks (Meshtastic's implicit ack only says a neighbour
rebroadcast the packet, not that the far end has it).

    MeshLink           sans-IO: bytes and time in, payloads out (tests drive it directly)
    MeshtasticPort     the link transport (read/write) to one far node, over the
                       meshtastic library's SerialInterface or TCPInterface
    open_meshtastic("serial:/dev/ttyACM0@!a1b2c3d4" | "tcp:HOST[:PORT]@!a1b2c3d4")

A fragment (one Meshtastic payload, at most MAX_PAYLOAD = 233 bytes):

    0x50 | msg (2) | index (1) | count (1) | up to 228 bytes of the message
    ack: 0x41 | msg (2) | bitmap of fragments held (2, bit i = index i)

A message is one write: whole link frames, at most MAX_FRAGS fragments (a
longer write becomes several messages). The receiver acks every fragment of
a message it has completed, and a partial bitmap when the last index
arrives, so the sender resends only what is missing; after TRIES rounds the
sender gives the message up (Pen's requests are re-sent by the store, with
a new seq, and are idempotent at the node). Completed message ids are
remembered per peer (DEDUP of them), so a resent message whose ack was
lost is acked again, never delivered twice.
"""
import queue
import threading
import time

from pen_protocol import link as L

PORTNUM = 256  # PRIVATE_APP: Meshtastic's port for private applications
MAX_PAYLOAD = 233  # mesh_pb2.Constants.DATA_PAYLOAD_LEN: the library refuses more
T_DATA = 0x50
T_ACK = 0x41
HEADER = 5
CHUNK = MAX_PAYLOAD - HEADER  # 228
MAX_FRAGS = 16  # the ack bitmap's width: 3,648 bytes a message, more than any link frame
RETRY_MS = 8000  # LongFast: a 233 B fragment is ~1.8 s on air, an ack comes back over the same hops
TRIES = 4
REASM_MS = 120000  # a partial message older than this is dropped
DEDUP = 64


class MeshLink:
    """Fragmentation, reassembly and end-to-end acks, sans-IO. Peers are
    whatever the carrier names them by (Meshtastic node numbers)."""

    def __init__(self, retry_ms=RETRY_MS, tries=TRIES, first_msg=None):
        self.retry_ms = retry_ms
        self.tries = tries
        # a random first id: a sender that restarts (a new `pen store` run)
        # must not reuse the ids the far end remembers as done, or its first
        # messages would be acked and dropped as duplicates. 64 remembered of
        # 65,536: one restart in ~1,000 loses its first message, and the
        # store's request goes again as a new one
        if first_msg is None:
            import os
            first_msg = int.from_bytes(os.urandom(2), "big")
        self.msg = first_msg & 0xFFFF
        self.out = {}  # (peer, msg) -> [fragments, acked bitmap, next try ms, tries left]
        self.reasm = {}  # (peer, msg) -> [count, {index: chunk}, first seen ms]
        self.done = {}  # peer -> [msg ids completed, oldest first]
        self.stats = {"fragments_out": 0, "fragments_in": 0, "resent": 0, "given_up": 0, "acks_out": 0,
                      "dups": 0, "bad": 0}

    def send(self, peer, data, now_ms):
        """-> [(peer, payload)] to transmit now."""
        out = []
        # a message holds whole frames where they fit: messages may complete
        # out of order, and a frame cut across two would then be garbled
        for part in L.pieces(bytes(data), CHUNK * MAX_FRAGS):
            self.msg = (self.msg + 1) & 0xFFFF
            frags = [bytes((T_DATA, self.msg >> 8, self.msg & 255, i, (len(part) + CHUNK - 1) // CHUNK))
                     + part[i * CHUNK:(i + 1) * CHUNK] for i in range((len(part) + CHUNK - 1) // CHUNK)]
            self.out[(peer, self.msg)] = [frags, 0, now_ms + self.retry_ms, self.tries - 1]
            out += [(peer, f) for f in frags]
        self.stats["fragments_out"] += len(out)
        return out

    def receive(self, peer, payload, now_ms):
        """-> (bytes delivered, [(peer, payload)] to transmit)."""
        p = bytes(payload)
        if len(p) == HEADER and p[0] == T_ACK:
            self._acked(peer, (p[1] << 8) | p[2], (p[3] << 8) | p[4])
            return b"", []
        if len(p) <= HEADER or p[0] != T_DATA or not 0 < p[4] <= MAX_FRAGS or p[3] >= p[4]:
            self.stats["bad"] += 1
            return b"", []
        self.stats["fragments_in"] += 1
        msg = (p[1] << 8) | p[2]
        count = p[4]
        if msg in self.done.get(peer, ()):
            self.stats["dups"] += 1
            return b"", [self._ack(peer, msg, (1 << count) - 1)]
        r = self.reasm.setdefault((peer, msg), [count, {}, now_ms])
        if r[0] != count:
            self.stats["bad"] += 1
            return b"", []
        r[1][p[3]] = p[HEADER:]
        held = 0
        for i in r[1]:
            held |= 1 << i
        if len(r[1]) == count:
            del self.reasm[(peer, msg)]
            d = self.done.setdefault(peer, [])
            d.append(msg)
            del d[:-DEDUP]
            return b"".join(r[1][i] for i in range(count)), [self._ack(peer, msg, held)]
        if p[3] == count - 1:  # the last one: say what is missing
            return b"", [self._ack(peer, msg, held)]
        return b"", []

    def _ack(self, peer, msg, bitmap):
        self.stats["acks_out"] += 1
        return peer, bytes((T_ACK, msg >> 8, msg & 255, bitmap >> 8, bitmap & 255))

    def _acked(self, peer, msg, bitmap):
        o = self.out.get((peer, msg))
        if o is None:
            return
        o[1] |= bitmap
        if o[1] == (1 << len(o[0])) - 1:
            del self.out[(peer, msg)]

    def poll(self, now_ms):
        """-> [(peer, payload)]: fragments due again (not acked in time)."""
        out = []
        for key in list(self.out):
            frags, acked, due, left = self.out[key]
            if now_ms < due:
                continue
            if left <= 0:
                del self.out[key]
                self.stats["given_up"] += 1
                continue
            self.out[key][2] = now_ms + self.retry_ms
            self.out[key][3] = left - 1
            for i in range(len(frags)):
                if not acked & (1 << i):
                    out.append((key[0], frags[i]))
                    self.stats["resent"] += 1
        for key in [k for k, r in self.reasm.items() if now_ms - r[2] > REASM_MS]:
            del self.reasm[key]
        return out

    def busy(self):
        return bool(self.out)


class MeshtasticPort:
    """The link to one far node over a Meshtastic interface (the meshtastic
    library's SerialInterface / TCPInterface, or anything with sendData)."""

    def __init__(self, iface, dest, name="meshtastic", clock=time.monotonic, retry_ms=RETRY_MS):
        from pubsub import pub
        self.iface = iface
        self.dest = dest  # node number
        self.name = name
        self.clock = clock
        self.core = MeshLink(retry_ms=retry_ms)
        self.inbox = queue.Queue()
        self.lock = threading.Lock()
        self.bytes_on_air = 0  # Meshtastic payload bytes this side sent (Pen's share of the air)
        pub.subscribe(self._on_receive, "meshtastic.receive.data.PRIVATE_APP")

    def _on_receive(self, packet, interface):
        if interface is self.iface and packet.get("from") == self.dest:
            self.inbox.put(packet["decoded"]["payload"])

    def _now(self):
        return int(self.clock() * 1000)

    def _tx(self, items):
        for peer, payload in items:
            self.bytes_on_air += len(payload)
            self.iface.sendData(payload, destinationId=peer, portNum=PORTNUM, wantAck=False)

    def read(self, timeout_s):
        end = self.clock() + timeout_s
        got = b""
        while True:
            with self.lock:
                self._tx(self.core.poll(self._now()))
            try:
                payload = self.inbox.get(timeout=max(0.0, min(0.05, end - self.clock())))
            except queue.Empty:
                payload = None
            if payload is not None:
                with self.lock:
                    data, tx = self.core.receive(self.dest, payload, self._now())
                    self._tx(tx)
                got += data
            if got or self.clock() >= end:
                return got

    def write(self, data):
        with self.lock:
            self._tx(self.core.send(self.dest, bytes(data), self._now()))

    def close(self):
        from pubsub import pub
        pub.unsubscribe(self._on_receive, "meshtastic.receive.data.PRIVATE_APP")
        self.iface.close()


def interface(spec):
    """serial:PATH or tcp:HOST[:PORT] -> a connected meshtastic interface
    (it completes the want_config handshake before returning)."""
    kind, _, where = spec.partition(":")
    if kind == "serial":
        from meshtastic.serial_interface import SerialInterface
        return SerialInterface(where)
    if kind == "tcp":
        from meshtastic.tcp_interface import TCPInterface
        host, _, port = where.partition(":")
        return TCPInterface(host, portNumber=int(port) if port else 4403)
    raise ValueError("a Meshtastic radio is serial:PATH or tcp:HOST[:PORT], not %r" % spec)


def node_num(text):
    """!a1b2c3d4 (Meshtastic's node id) or a decimal node number."""
    text = text.strip()
    return int(text[1:], 16) if text.startswith("!") else int(text)


def open_meshtastic(spec, **kw):
    where, at, dest = spec.rpartition("@")
    if not at:
        raise ValueError("say which node serves Pen: meshtastic:%s@!NODEID" % spec)
    return MeshtasticPort(interface(where), node_num(dest), name="meshtastic:" + spec, **kw)
