"""LinkService: the node's side of the link to a phone or PC, sans-IO.

Bytes from the link go in (feed), bytes to write back come out; the node
core (mesh.MeshNode) does the work. Framing, kinds and reason codes are
pen_protocol.link's; this module only decides what each request does:

    HELLO          -> CBOR [addr, role (1 bridge / 0 node), firmware version,
                      max payload]
    SUBMIT record  -> OK record id (16) once the record is in the custody
                      journal; ERROR refused when the node will not take it
    SPENT ref(8)   -> CBOR [spent, kind, overflowed]: kind 0 not seen /
                      1 used / 2 accounted; overflowed = the village set has
                      forgotten old refs, so "not seen" means "unknown"
    STATUS         -> CBOR [[name, value]...]: the node's counters and the
                      link's own (Pen's CBOR maps have integer keys only)
    DELIVERED_ACK id(16)  (bridge) the PC has stored that record: the node
                      drops it from its journal. OK b"\\x01" (dropped) or
                      b"\\x00" (not held: acked before; idempotent)
    DOWNLINK record (bridge) broadcast it into the mesh -> OK; ERROR refused
                      while the node's flood or custody queue is full
    PENDING        (bridge) -> OK count, then EV_DELIVERED for every record in
                      the journal (all delivered, not yet acked), a few per poll

Events the node sends on its own: EV_DELIVERED (record) for each record the
bridge node takes in, EV_RECEIPT (record) for an ACCOUNTED receipt that
reached this node as the origin of the payment.

Bad input (corrupt, truncated, oversized frames; a payload of the wrong
size; a request kind the node does not serve) gets an ERROR frame with the
reason code and changes nothing. docs/link.md has it byte by byte.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from pen_protocol import cbor
from pen_protocol import link as L
from pen_protocol.identity import record_id

from . import VERSION
from .downlink import EV_RECEIPT

_REF_LEN = const(8)
_ID_LEN = const(16)
_SIG_LEN = const(64)
# a record is at least its type byte, a one-byte CBOR body and its signature
_MIN_RECORD = const(1 + 1 + _SIG_LEN)
# records re-sent per poll after PENDING: a full journal (48) at once would
# need ~15 KB of frames for a moment; 4 at a time is ~600 B
_RESEND_BATCH = const(4)
_OK_ACKED = b"\x01"
_OK_NOT_HELD = b"\x00"


class LinkService:
    def __init__(self, node, auth=None):
        self.node = node
        # auth (pen_node.pairing.LinkAuth): when set, the link serves only
        # HELLO and pairing in the clear, everything else inside sealed frames
        self.auth = auth
        self.dec = L.Decoder()
        self.ev_seq = 0
        self.trace = None  # trace(kind, payload) for each request served (tests: what reached the node)
        self.resend = []  # ids still to re-send after PENDING, a few per poll
        self.stats = {"link_frames": 0, "link_errors": 0, "link_submits": 0, "link_downlinks": 0,
                      "link_acks": 0, "link_events": 0}

    # -- the I/O boundary -------------------------------------------------

    def feed(self, data, now_ms):
        """Bytes from the link; returns the bytes to write back (answers,
        then any events the requests caused)."""
        out = []
        for item in self.dec.feed(data):
            if isinstance(item, L.LinkError):
                self.stats["link_errors"] += 1
                out.append(L.error(0, item.reason, L.REASONS.get(item.reason, "")))
                continue
            self.stats["link_frames"] += 1
            if self.auth is not None:
                out.append(self.auth.serve(item, now_ms, self._request))
                continue
            out.append(self._request(item, now_ms, out))
        out.append(self.poll(now_ms))
        return b"".join(out)

    def poll(self, now_ms):
        """Events the node has for the PC/phone: records delivered to this
        bridge, receipts that came back to this origin. Call after every
        node call (on_frame, next_tx, timers) and write what it returns."""
        out = []
        n = 0
        while self.resend and n < _RESEND_BATCH:
            held = self.node.held(self.resend.pop())
            if held is not None:  # not acked meanwhile
                out.append(self._event(L.EV_DELIVERED, held))
                n += 1
        for rec in self.node.take_delivered():
            out.append(self._event(L.EV_DELIVERED, rec))
        last = None  # a digest naming several of our payments is one event each: sent once
        for ev in self.node.take_events():
            if ev[0] == EV_RECEIPT and ev[2] is not last:  # (EV_RECEIPT, ref, record, verified): the store checks
                last = ev[2]
                out.append(self._event(L.EV_RECEIPT, ev[2]))
        if self.auth is not None:
            return self.auth.seal(b"".join(out))
        return b"".join(out)

    def _event(self, kind, payload):
        self.stats["link_events"] += 1
        self.ev_seq = (self.ev_seq + 1) & 0xFF
        return L.encode(kind, self.ev_seq, payload)

    # -- requests -----------------------------------------------------------

    def _request(self, f, now_ms, out=None):
        k = f.kind
        p = f.payload
        if self.trace is not None:
            self.trace(k, p)
        if k == L.HELLO:
            return self._ok(f, cbor.dumps([self.node.addr, 1 if self.node.is_bridge else 0, VERSION, L.MAX_PAYLOAD]))
        if k == L.SUBMIT:
            if len(p) < _MIN_RECORD:
                return self._err(f, L.E_BAD_PAYLOAD, "not a record")
            if not self.node.submit(p, now_ms):
                return self._err(f, L.E_REFUSED, "journal full, too large or not an uplink record")
            self.stats["link_submits"] += 1
            return self._ok(f, record_id(p))
        if k == L.SPENT:
            if len(p) != _REF_LEN:
                return self._err(f, L.E_BAD_PAYLOAD, "a token ref is 8 bytes")
            kind = self.node.spent.lookup(p)
            return self._ok(f, cbor.dumps([kind != 0, kind, self.node.spent.dropped > 0]))
        if k == L.STATUS:
            st = self.status()
            return self._ok(f, cbor.dumps([[k, st[k]] for k in st]))
        if k in (L.DELIVERED_ACK, L.DOWNLINK, L.PENDING) and not self.node.is_bridge:
            return self._err(f, L.E_NOT_BRIDGE, "this node is not a bridge")
        if k == L.DELIVERED_ACK:
            if len(p) != _ID_LEN:
                return self._err(f, L.E_BAD_PAYLOAD, "a record id is 16 bytes")
            held = self.node.held(p)
            if held is None:
                return self._ok(f, _OK_NOT_HELD)
            self.node.host_ack(held)
            self.stats["link_acks"] += 1
            return self._ok(f, _OK_ACKED)
        if k == L.DOWNLINK:
            if len(p) < _MIN_RECORD:
                return self._err(f, L.E_BAD_PAYLOAD, "not a record")
            try:
                queued = self.node.broadcast(p, now_ms)
            except ValueError:  # too many fragments for the mesh header
                return self._err(f, L.E_BAD_PAYLOAD, "too large for the mesh")
            if not queued:  # the PC keeps it and offers it again
                return self._err(f, L.E_REFUSED, "downlink queue full")
            self.stats["link_downlinks"] += 1
            return self._ok(f, b"")
        if k == L.PENDING:
            return self._pending(f, out)
        return self._err(f, L.E_UNKNOWN_KIND, "kind 0x%02x" % k)

    def _pending(self, f, out):
        # everything in a bridge node's journal is delivered and not yet
        # acked; what take_delivered still holds is in the journal too, so
        # drop it here rather than send it twice. The records go out a few
        # per poll (busy() says more are waiting)
        self.node.take_delivered()
        self.resend = self.node.held_ids()
        return self._ok(f, cbor.dumps(len(self.resend)))

    def busy(self):
        """More events are waiting: call poll() again soon."""
        return len(self.resend) > 0

    def status(self):
        st = {}
        for k in self.node.stats:
            st[k] = self.node.stats[k]
        for k in self.stats:
            st[k] = self.stats[k]
        st["addr"] = self.node.addr
        st["bridge"] = 1 if self.node.is_bridge else 0
        st["journal_used"], st["journal_max"] = self.node.custody()
        st["spent_refs"] = len(self.node.spent)
        return st

    @staticmethod
    def _ok(f, payload):
        return L.encode(f.kind | L.RESPONSE, f.seq, payload)

    def _err(self, f, reason, text):
        self.stats["link_errors"] += 1
        return L.error(f.seq, reason, text)
