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

With a pairing file (`--pair FILE`), the gateway requires pairing as a node
does (pen_protocol.linkauth.LinkAuth, one per Meshtastic peer over the one
file): stores pair with the code the bridge prints and every frame after is
sealed, so a public channel carries only ciphertext. Without it, anything on
the channel reads who paid whom (receipts are still verified end to end).
"""
import os
import sqlite3
import time

from pen_protocol import cbor
from pen_protocol import link as L
from pen_protocol import records as R
from pen_protocol.linkauth import LinkAuth

from . import meshtastic as M

VERSION = "gateway-0.1"
_PFX_ORIGIN = "mt-origin:"  # token ref hex -> the Meshtastic peer that submitted its USE
_PFX_SENT = "mt-receipt:"  # token ref hex -> its receipt was sent to the peer


class LinkGateway:
    """Sans-IO: feed(peer, bytes) -> bytes for that peer; poll() -> [(peer, bytes)].

    Receipts are found by reading the queue's downlink forward from the last
    row seen (its seq), once: neither SPENT nor poll rescans the table."""

    def __init__(self, queue, addr, on_record=None, auth_store=None, rand=os.urandom):
        self.queue = queue
        self.addr = addr
        self.on_record = on_record or (lambda: None)
        self.auth_store = auth_store  # load()/save(): pairing required when set
        self.rand = rand
        self.auths = {}  # peer -> LinkAuth (its session; the pairings are the file's)
        self.decoders = {}
        self.ev_seq = 0
        self.last_row = 0  # downlink seq read up to
        self.receipt_of = {}  # token ref -> receipt bytes (downlink ACCOUNTED)
        self.unsent = set()  # token refs whose receipt is due to a Meshtastic store
        self.stats = {"frames": 0, "errors": 0, "submits": 0, "receipts_sent": 0}

    def auth(self, peer):
        a = self.auths.get(peer)
        if a is None:
            a = self.auths[peer] = LinkAuth(self.auth_store, self.rand)
        else:
            a.reload()  # another peer's pairing may have changed the file
        return a

    def feed(self, peer, data, now_ms=0):
        out = []
        for f in self.decoders.setdefault(peer, L.Decoder()).feed(data):
            if isinstance(f, L.LinkError):
                self.stats["errors"] += 1
                out.append(L.error(0, f.reason, L.REASONS.get(f.reason, "")))
                continue
            self.stats["frames"] += 1
            if self.auth_store is not None:
                out.append(self.auth(peer).serve(f, now_ms, lambda fr, now: self._request(peer, fr)))
            else:
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
        ref = rec.fields[0]
        self.queue.accept(rec.raw)  # durable on return
        self.queue.meta_set(_PFX_ORIGIN + ref.hex(), str(peer))
        self._scan()
        if ref in self.receipt_of:  # submitted again: its receipt may have been lost on the way
            self.unsent.add(ref)
        self.stats["submits"] += 1
        self.on_record()
        return L.encode(f.kind | L.RESPONSE, f.seq, rec.id)

    def _scan(self):
        rows = self.queue.db.execute("SELECT seq, raw FROM downlink WHERE seq > ? ORDER BY seq",
                                     (self.last_row,)).fetchall()
        for seq, raw in rows:
            self.last_row = seq
            raw = bytes(raw)
            if raw[:1] != bytes((R.ACCOUNTED,)):
                continue
            ref = R.parse(raw).fields[0]
            self.receipt_of[ref] = raw
            sent = self.queue.meta_get(_PFX_SENT + ref.hex()) is not None
            if not sent and self.queue.meta_get(_PFX_ORIGIN + ref.hex()) is not None:
                self.unsent.add(ref)

    def _spent(self, ref):
        self._scan()
        if ref in self.receipt_of:
            return 2
        return 1 if self.queue.meta_get(_PFX_ORIGIN + ref.hex()) is not None else 0

    def poll(self):
        """EV_RECEIPT for each receipt in the downlink whose payment came
        from a Meshtastic store and has not been sent to it yet."""
        self._scan()
        out = []
        for ref in sorted(self.unsent):
            try:
                peer = int(self.queue.meta_get(_PFX_ORIGIN + ref.hex()))
                self.queue.meta_set(_PFX_SENT + ref.hex(), "%.3f" % time.time())
            except sqlite3.OperationalError:
                break  # the queue's file locked past its wait: this one and the rest go at the next poll
            self.unsent.discard(ref)
            self.ev_seq = (self.ev_seq + 1) & 0xFF
            ev = L.encode(L.EV_RECEIPT, self.ev_seq, self.receipt_of[ref])
            if self.auth_store is not None:
                ev = self.auth(peer).seal(ev)  # held for the peer's next session if none is open
            if ev:
                out.append((peer, ev))
            self.stats["receipts_sent"] += 1
        return out

    def _err(self, f, reason, text):
        self.stats["errors"] += 1
        return L.error(f.seq, reason, text)


def pairing_store(path, log, new=False):
    """--pair FILE: the gateway's pairing state; prints the open code (a new
    one when nothing is paired and none is open, or with new=True)."""
    if path is None:
        return None
    from pen.transport.secure import PairingFile
    store = PairingFile(path)
    auth = LinkAuth(store, os.urandom)
    if new or (not auth.paired() and auth.code is None):
        auth.new_code()
    if auth.code is not None:
        log("pairing code for stores: %s (%d attempts)" % (auth.code, auth.attempts))
    return store


def run(spec, queue, log, stop, on_record=None, poll_s=0.5, retry_ms=M.RETRY_MS, auth_store=None):
    """Serve the gateway on a Meshtastic radio until stop is set."""
    import queue as Q
    from pubsub import pub
    iface = M.interface(spec)
    addr = iface.myInfo.my_node_num
    gw = LinkGateway(queue, addr & 0xFFFF, on_record, auth_store)
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
                try:
                    peer, payload = inbox.get(timeout=0.05)
                    data, acks = core.receive(peer, payload, now)
                    tx(acks)
                    if data:
                        answer = gw.feed(peer, data, now)
                        if answer:
                            tx(core.send(peer, answer, now))
                except Q.Empty:
                    pass
                tx(core.poll(now))
                if time.monotonic() - last >= poll_s:
                    last = time.monotonic()
                    for peer, ev in gw.poll():
                        tx(core.send(peer, ev, now))
            except Exception as e:  # noqa: BLE001 -- stores must not lose their node to one fault
                # a request that failed here (the queue's file locked past its wait) was not answered: the
                # store sends it again; a receipt not marked sent goes at the next poll
                gw.stats["faults"] = gw.stats.get("faults", 0) + 1
                log("gateway: %s: %s (serving on)" % (type(e).__name__, e))
                time.sleep(0.1)
    finally:
        pub.unsubscribe(on_receive, "meshtastic.receive.data.PRIVATE_APP")
        iface.close()
    return gw


def serve(spec, db_path, peers, log, stop, auth_store=None):
    """`pen bridge --meshtastic` with no serial node: the gateway and the
    upload worker, until stop is set."""
    from pen.bridge.driver import UploadWorker
    from pen.bridge.queue import BridgeQueue
    worker = UploadWorker(db_path, peers, log)
    worker.start()
    try:
        return run(spec, BridgeQueue(db_path), log, stop, on_record=worker.wake.set, auth_store=auth_store)
    finally:
        worker.stop()


def start_thread(spec, db_path, log, stop, auth_store=None):
    """Beside a serial bridge node: the gateway in a thread of its own (its
    own queue connection; the driver's upload worker finds its records on
    its next round)."""
    import threading
    from pen.bridge.queue import BridgeQueue
    t = threading.Thread(target=lambda: run(spec, BridgeQueue(db_path), log, stop, auth_store=auth_store),
                         name="pen-meshtastic", daemon=True)
    t.start()
    return t
