"""The bridge PC as the Pen node of stores that reach it over stock
Meshtastic radios (`pen bridge --meshtastic serial:PORT|tcp:HOST`).

A store with a Meshtastic radio and no Pen node sends its link requests
(pen.transport.meshtastic carries the frames) to the bridge PC's radio.
The gateway answers as a node would: SUBMIT puts the record into the
bridge's durable queue (pen.bridge.queue, the same custody as records its
serial node delivers; the upload worker takes it to the CTB peers), SPENT
answers from what passed through this bridge, and when a peer's receipt for
a payment lands in the queue's downlink the gateway sends it back to the
store that submitted it as EV_RECEIPT. The store verifies it against its
pinned CTB keys, as over any link.

Not here: pairing. Meshtastic's channel key encrypts and authenticates the
air between radios that share it; the store's receipts are verified end to
end anyway; a record a stranger submits is only as good as its signature.
"""
import time

from pen_protocol import cbor
from pen_protocol import link as L
from pen_protocol import records as R

from . import meshtastic as M

VERSION = "gateway-0.1"
_PFX_ORIGIN = "mt-origin:"  # token ref hex -> the Meshtastic peer that submitted its USE
_PFX_SENT = "mt-receipt:"  # receipt id hex -> sent to the peer


class LinkGateway:
    """Sans-IO: feed(peer, bytes) -> bytes for that peer; poll() -> [(peer, bytes)]."""

    def __init__(self, queue, addr, on_record=None):
        self.queue = queue
        self.addr = addr
        self.on_record = on_record or (lambda: None)
        self.decoders = {}
        self.ev_seq = 0
        self.stats = {"frames": 0, "errors": 0, "submits": 0, "receipts_sent": 0}

    def feed(self, peer, data):
        out = []
        for f in self.decoders.setdefault(peer, L.Decoder()).feed(data):
            if isinstance(f, L.LinkError):
                self.stats["errors"] += 1
                out.append(L.error(0, f.reason, L.REASONS.get(f.reason, "")))
                continue
            self.stats["frames"] += 1
            out.append(self._request(peer, f))
        return b"".join(out)

    def _request(self, peer, f):
        k, p = f.kind, bytes(f.payload)
        if k == L.HELLO:
            return L.encode(k | L.RESPONSE, f.seq, cbor.dumps([self.addr, 1, VERSION, L.MAX_PAYLOAD]))
        if k == L.SUBMIT:
            return self._submit(peer, f, p)
        if k == L.SPENT:
            if len(p) != 8:
                return self._err(f, L.E_BAD_PAYLOAD, "a token ref is 8 bytes")
            kind = self._spent(p)
            # the bridge knows only what passed through it: "not seen" is never proof
            return L.encode(k | L.RESPONSE, f.seq, cbor.dumps([kind != 0, kind, True]))
        if k == L.STATUS:
            return L.encode(k | L.RESPONSE, f.seq, cbor.dumps([[n, v] for n, v in sorted(self.stats.items())]))
        return self._err(f, L.E_UNKNOWN_KIND, "kind 0x%02x" % k)

    def _submit(self, peer, f, p):
        try:
            rec = R.parse(p)
        except R.RecordError as e:
            return self._err(f, L.E_BAD_PAYLOAD, "not a record: %s" % e.reason)
        if rec.type != R.USE:
            return self._err(f, L.E_REFUSED, "stores submit payments (USE) here")
        self.queue.accept(rec.raw)  # durable on return
        self.queue.meta_set(_PFX_ORIGIN + rec.fields[0].hex(), str(peer))
        for rid, raw in self._receipts(rec.fields[0]):  # submitted again: its receipt may have been lost
            self.queue.db.execute("DELETE FROM meta WHERE key=?", (_PFX_SENT + rid.hex(),))
        self.stats["submits"] += 1
        self.on_record()
        return L.encode(f.kind | L.RESPONSE, f.seq, rec.id)

    def _receipts(self, ref=None):
        rows = self.queue.db.execute("SELECT id, raw FROM downlink").fetchall()
        out = []
        for rid, raw in rows:
            raw = bytes(raw)
            if raw[0] == R.ACCOUNTED:
                r = R.parse(raw)
                if ref is None or r.fields[0] == ref:
                    out.append((bytes(rid), raw))
        return out

    def _spent(self, ref):
        if self._receipts(ref):
            return 2
        return 1 if self.queue.meta_get(_PFX_ORIGIN + ref.hex()) is not None else 0

    def poll(self):
        """EV_RECEIPT for each receipt in the downlink whose payment came
        from a Meshtastic peer and has not been sent to it yet."""
        out = []
        for rid, raw in self._receipts():
            if self.queue.meta_get(_PFX_SENT + rid.hex()) is not None:
                continue
            peer = self.queue.meta_get(_PFX_ORIGIN + raw_ref(raw).hex())
            if peer is None:
                continue
            self.ev_seq = (self.ev_seq + 1) & 0xFF
            out.append((int(peer), L.encode(L.EV_RECEIPT, self.ev_seq, raw)))
            self.queue.meta_set(_PFX_SENT + rid.hex(), "%.3f" % time.time())
            self.stats["receipts_sent"] += 1
        return out

    def _err(self, f, reason, text):
        self.stats["errors"] += 1
        return L.error(f.seq, reason, text)


def raw_ref(raw):
    return R.parse(raw).fields[0]


def run(spec, queue, log, stop, on_record=None, poll_s=0.5, retry_ms=M.RETRY_MS):
    """Serve the gateway on a Meshtastic radio until stop is set."""
    import queue as Q
    from pubsub import pub
    iface = M.interface(spec)
    addr = iface.myInfo.my_node_num
    gw = LinkGateway(queue, addr & 0xFFFF, on_record)
    core = M.MeshLink(retry_ms=retry_ms)
    inbox = Q.Queue()

    def on_receive(packet, interface):
        if interface is iface:
            inbox.put((packet["from"], packet["decoded"]["payload"]))

    def tx(items):
        for peer, payload in items:
            iface.sendData(payload, destinationId=peer, portNum=M.PORTNUM, wantAck=False)

    pub.subscribe(on_receive, "meshtastic.receive.data.PRIVATE_APP")
    log("serving Pen stores on Meshtastic radio !%08x (%s), port %d" % (addr, spec, M.PORTNUM))
    last = 0.0
    try:
        while not stop.is_set():
            now = int(time.monotonic() * 1000)
            try:
                peer, payload = inbox.get(timeout=0.05)
                data, acks = core.receive(peer, payload, now)
                tx(acks)
                if data:
                    tx(core.send(peer, gw.feed(peer, data), now))
            except Q.Empty:
                pass
            tx(core.poll(now))
            if time.monotonic() - last >= poll_s:
                last = time.monotonic()
                for peer, ev in gw.poll():
                    tx(core.send(peer, ev, now))
    finally:
        pub.unsubscribe(on_receive, "meshtastic.receive.data.PRIVATE_APP")
        iface.close()
    return gw


def serve(spec, db_path, peers, log, stop):
    """`pen bridge --meshtastic` with no serial node: the gateway and the
    upload worker, until stop is set."""
    from pen.bridge.driver import UploadWorker
    from pen.bridge.queue import BridgeQueue
    worker = UploadWorker(db_path, peers, log)
    worker.start()
    try:
        return run(spec, BridgeQueue(db_path), log, stop, on_record=worker.wake.set)
    finally:
        worker.stop()


def start_thread(spec, db_path, log, stop):
    """Beside a serial bridge node: the gateway in a thread of its own (its
    own queue connection; the driver's upload worker finds its records on
    its next round)."""
    import threading
    from pen.bridge.queue import BridgeQueue
    t = threading.Thread(target=lambda: run(spec, BridgeQueue(db_path), log, stop), name="pen-meshtastic",
                         daemon=True)
    t.start()
    return t
