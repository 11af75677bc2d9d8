"""The bridge PC's engine: the link to the bridge node on one side, the CTB
peers on the other, the durable queue (pen.bridge.queue) between them.

Link thread (Bridge.step): every EV_DELIVERED record is stored in the queue
(committed, synchronous=FULL) *before* DELIVERED_ACK goes to the node, so the
node deletes it from its journal only once the PC has it; receipts and other
downlink records go down with DOWNLINK, each marked sent only when the node
answered OK. Upload thread (UploadWorker): Uploader.step for each peer, with
backoff while a peer cannot be reached; the receipts a peer returns are
queued for the downlink in the same transaction that marks the upload.

Killed at any instant: a record the node delivered is either in the queue or
still in the node's journal (the node re-sends it when the bridge asks
PENDING at start); an upload the peer committed but the queue did not
record is sent again and taken as a duplicate, and its receipts are fetched
back from the peer; a receipt marked sent is never sent again.
"""
import threading
import time

from pen.bridge.queue import BridgeQueue
from pen.bridge.serial import LinkClient
from pen.bridge.uploader import PeerUnavailable, Uploader
from pen_protocol import cbor, identity, link as L, records as R
from pen_protocol import digest as G

RESEND_S = 2.0  # an answer not back in this long was lost on the wire: send the request again
DOWN_WINDOW = 4  # DOWNLINK requests in flight; the node answers each in ms, more would only fill the pty
DOWN_PAUSE_S = 0.5  # after the node refused a downlink (its air queue is full: a few frames), wait this long
# receipts waiting for the village before they go down as one signed digest
# (pen.bridge.digests) instead of one ACCOUNTED frame each. A lone receipt
# goes by custody, acked and retried 8 times a hop; a digest is a flood with
# no ack. Under load the bridge's duty budget caps receipts, and a digest of
# 14 costs it 88 ms a receipt against 615 ms. Measured (50 nodes, seeds 1-3,
# docs/mesh.md): from 1 on, receipts back within 10 min at 400 / 800
# payments/h were 64-75 / 29-42 % (from 2: 49-61 / 10-28 %, before digests
# 42-54 / 3-5 %), but at light load fewer came back (200/h: 81-93 % against
# 83-99 %; a 15-node village at 120/h lost one of 29), so from 2
DIGEST_MIN = 2
# a digest is a flood, best effort and never acked: each receipt is named in
# this many digests in a busy village (QUIET_REPEAT in a quiet one, below), the next no
# sooner than REPEAT_GAP after the one before (60 s: 30 s apart, a store's bad
# moment, a burst of collisions near it, often lasted through both)
# (in the caller's time units, as pause). Named once, 1 receipt in 7 never came
# back at 200 payments/h (lost to collisions with nobody to retry); three
# namings took the air payments needed at 400/h (on time 93 -> 87 %).
# Fresh receipts go first, so under load the second naming takes only the room left
DIGEST_REPEAT = 2
REPEAT_GAP_S = 60.0
# a receipt ready to be named waits at the PC up to this long for others to
# share its digest (a digest of 14 costs the bridge 88 ms a receipt, a lone
# ACCOUNTED 615 ms and its retries, and each relay on the way one frame a
# digest); a full digest goes at once. At 400 payments/h (seeds 1-5, 50
# nodes) the bridge spent 6.8 % of its hour on lone ACCOUNTED frames without
# a hold; with 20 s holds 96-99 % of receipts came back in 10 min, with 40 s
# 98-100 % (docs/sim.md)
HOLD_S = 40.0
# Namings by load, from the fresh receipts of the last HOLD_WINDOW holds
# (400 s at the simulator's 40 s): at most HOLD_BUSY (270 receipts/h), a quiet
# village, QUIET_REPEAT namings (air is cheap there: named twice, 1-4 receipts
# of ~200 a village missed their 10 minutes at 200 payments/h, seeds 1-5;
# three times, 30 s apart, one on two seeds of five; five, 60 s apart, none on
# seeds 1-5, one on seeds 6-10: a digest's last hop to a store one way only); at
# most HOLD_OVERLOAD (450/h), DIGEST_REPEAT (three namings took the air
# payments needed at 400/h: 93-99.5 % on time); above, once: past its service
# level a village keeps its air for payments (every relay on the way sends a
# whole digest for its share of it: named twice at 600/h, seeds 1 and 3 had
# 75 and 74 % of payments on time, named once 96 and 99 %)
# In a quiet village a receipt is not held for company: a lone one goes at
# once as an ACCOUNTED frame, acked hop by hop, and digests form only when two
# or more wait at once. Holding there cost every relay and leaf the air of
# five namings of small digests (seed 1, 200/h: relays' mean 6.69 mA against
# 5.88 without the quiet hold, 881 long preambles to leaves against < 640),
# and no receipt came back later for it (seeds 1-5, 200/h: all back either way)
HOLD_BUSY = 30
HOLD_OVERLOAD = 50
HOLD_WINDOW = 10
QUIET_REPEAT = 5
UPLOAD_IDLE_S = 5.0  # an upload round at least this often, even with nothing new from the node
RETRY_MAX_S = 60.0  # longest wait between tries of an unreachable peer (doubling from 1 s)


class LinkFailed(Exception):
    def __init__(self, reason, text=""):
        Exception.__init__(self, "%s%s" % (L.REASONS.get(reason, reason), (": " + text) if text else ""))
        self.reason = reason


# the id the node files a record under (records.Record.id, computed without
# parsing: a malformed record has one too): the one definition
record_id = identity.record_id


class MemQueue:
    """BridgeQueue's contract (accept, queue_down, next_down, mark_sent) in
    memory, for the simulator's bridge PC: the same decisions without a
    SQLite file per simulated hour. Not durable: a simulated PC never dies."""

    def __init__(self):
        self.uplink = {}  # id -> raw, in arrival order
        self.down = {}  # id -> raw, unsent, in queued order (dicts keep insertion order)
        self.sent = set()

    def accept(self, raw):
        rec = R.parse(raw)  # as BridgeQueue: malformed bytes raise RecordError and store nothing
        self.uplink.setdefault(rec.id, rec.raw)
        return rec.id

    def queue_down(self, raw):
        rid = record_id(raw)
        if rid not in self.sent and rid not in self.down:
            self.down[rid] = bytes(raw)
        return rid

    def next_down(self, limit=16):
        out = []
        for rid in self.down:
            if len(out) >= limit:
                break
            out.append((rid, self.down[rid]))
        return out

    def mark_sent(self, rid):
        if self.down.pop(rid, None) is not None:
            self.sent.add(rid)

    def down_backlog(self):
        return len(self.down)


class BridgeCore:
    """The bridge PC's decisions, sans-IO: records in, decisions out, time
    passed in. Used by the serial bridge (Bridge, below), the demo's bridge PC
    and the simulator's, so the three follow one rule set:

    - uplink: `delivered(raw)` stores the record durably (queue.accept) and
      returns the id to acknowledge; only then may the node forget it. A
      record that can never enter a CTB is kept aside (queue.meta_set when the
      queue has it) and acknowledged too, else the node would offer it forever.
    - downlink: `downlink(now)` names the records to send down now, oldest
      first, at most `window` unanswered; `down_answer(rid, ok, now)` marks one
      sent (never sent again) or, on a refusal (the node's queues are full
      while the duty cycle holds its air back), pauses the downlink for
      `pause` (in the units of `now`: seconds for the serial bridge, ms in the
      simulator);
      `resume()` ends a pause early (new records came, or the caller's retry
      timer fired: the node may have room now).
    - digests: with a `digests` signer (pen.bridge.digests.DigestSigner: the
      CTB node's key), DIGEST_MIN or more receipts waiting go down as one
      T_DIGEST naming up to 14 of them; its key in downlink/down_answer is
      the digest's id. A receipt ready to be named waits up to `hold` for
      others to share its digest (a full one goes at once). It is marked sent
      once the digests the node took have named it `quiet_repeat` times in a
      quiet village, `repeat` in a busy one, once in an overloaded one
      (_namings), each `repeat_gap` after the one before.
    """

    def __init__(self, queue, window=DOWN_WINDOW, pause=DOWN_PAUSE_S, log=None, digests=None,
                 digest_min=DIGEST_MIN, repeat=DIGEST_REPEAT, repeat_gap=REPEAT_GAP_S, hold=HOLD_S,
                 quiet_repeat=QUIET_REPEAT):
        self.queue = queue
        self.window = window
        self.pause = pause
        self.log = log or (lambda *a: None)
        self.digests = digests
        self.digest_min = digest_min
        self.repeat = repeat
        self.repeat_gap = repeat_gap
        self.hold = hold if digests is not None else 0
        self.quiet_repeat = max(repeat, quiet_repeat or 0)
        self.first_seen = {}  # receipt id -> when downlink() first saw it waiting (the hold runs from then)
        self.recent = []  # when the latest fresh receipts were first seen (_namings)
        self.named = {}  # receipt id -> [digests that named it, when it may be named again]
        self.batches = {}  # digest id -> record ids of the receipts it names (in flight)
        self.inflight = set()  # record ids sent down, not yet answered
        self.pause_until = None  # a refusal's pause ends then (same clock as `now`)
        self.stats = {"delivered": 0, "malformed": 0, "downlinked": 0, "down_refused": 0, "digests": 0,
                      "receipts_in_digests": 0}

    def delivered(self, raw):
        """A record the node handed over: store it; returns its id, to ack."""
        try:
            rid = self.queue.accept(raw)  # durable on return: only now may the node forget it
        except R.RecordError as e:
            rid = record_id(raw)
            meta = getattr(self.queue, "meta_set", None)
            if meta is not None:
                meta("malformed:" + rid.hex(), "%s %s" % (e.reason, bytes(raw).hex()))
            self.stats["malformed"] += 1
            self.log("malformed record from the village (%s): kept aside" % e.reason)
        self.stats["delivered"] += 1
        return rid

    def queue_down(self, raw):
        """A record for the village (a receipt the CTB returned): queue it and
        end any pause."""
        self.resume()
        return self.queue.queue_down(raw)

    def resume(self):
        self.pause_until = None

    def paused(self, now):
        return self.pause_until is not None and now < self.pause_until

    def downlink(self, now, limit=None):
        """[(rid, raw)] to send down now (each then counts as in flight)."""
        room = self.window - len(self.inflight)
        if limit is not None:
            room = min(room, limit)
        if room <= 0 or self.paused(now):
            return []
        look = self.window * 2 + (G.MAX_ENTRIES * room + len(self.named) if self.digests is not None else 0)
        waiting = [(rid, raw) for rid, raw in self.queue.next_down(look) if rid not in self.inflight]
        self._seen_waiting(waiting, now)
        out = []
        while self.digests is not None and len(out) < room:
            d = self._digest(waiting, now)
            if d is None:
                break
            out.append(d)
        for rid, raw in waiting:
            if len(out) >= room:
                break
            if rid not in self.inflight and rid not in self.named and not self._held(rid, raw, now):
                # named once: only digests name it again
                self.inflight.add(rid)
                out.append((rid, raw))
        return out

    def _digest(self, waiting, now):
        """(digest id, digest) naming receipts of `waiting` (each then in
        flight), or None when fewer than digest_min wait."""
        receipts = [(rid, raw) for rid, raw in waiting if raw[:1] == bytes((R.ACCOUNTED,)) and rid not in self.inflight
                    and self.named.get(rid, (0, now))[1] <= now]
        # never named first: under load a digest fills with fresh receipts and a
        # second naming takes only the room they leave
        receipts.sort(key=lambda x: x[0] in self.named)
        if len(receipts) < self.digest_min:
            return None
        if len(receipts) < G.MAX_ENTRIES and all(self._held(rid, raw, now) for rid, raw in receipts):
            return None  # not full yet and nobody has waited HOLD: more may come to share it
        made = self.digests.sign([raw for _, raw in receipts[:G.MAX_ENTRIES * 2]])
        if made is None:
            return None
        raw, used = made
        rids = [receipts[i][0] for i in used]
        if len(rids) < self.digest_min:
            return None
        key = G.parse(raw).id()
        self.batches[key] = rids
        self.inflight.update(rids)
        self.inflight.add(key)
        return key, raw

    def _seen_waiting(self, waiting, now):
        if len(self.first_seen) > 4 * len(waiting) + 64:  # bounded: forget what no longer waits
            keep = set(rid for rid, _ in waiting)
            self.first_seen = dict((r, t) for r, t in self.first_seen.items() if r in keep)
        for rid, _ in waiting:
            if rid not in self.first_seen:
                self.first_seen[rid] = now
                if len(self.recent) <= HOLD_OVERLOAD:  # bounded: enough to tell the load
                    self.recent.append(now)

    def _namings(self, now):
        """How many digests name each receipt at this load (HOLD_BUSY,
        HOLD_OVERLOAD); without a hold, always `repeat`."""
        if self.hold <= 0:
            return self.repeat
        load = self._load(now)
        if load > HOLD_OVERLOAD:
            return 1
        return self.repeat if load > HOLD_BUSY else self.quiet_repeat

    def _load(self, now):
        """Fresh receipts of the last HOLD_WINDOW holds."""
        recent = self.recent
        while recent and now - recent[0] > self.hold * HOLD_WINDOW:
            recent.pop(0)
        return len(recent)

    def _held(self, rid, raw, now):
        """A receipt still waiting its hold for company: from when it first
        waited, or for a naming again from when its gap ended."""
        if self.hold <= 0 or raw[:1] != bytes((R.ACCOUNTED,)) or self._load(now) <= HOLD_BUSY:
            return False
        ready = self.named[rid][1] if rid in self.named else self.first_seen.get(rid, now)
        return now - ready < self.hold

    def down_answer(self, rid, ok, now, reason=""):
        """The node's answer to a DOWNLINK: taken (mark it sent) or refused."""
        self.inflight.discard(rid)
        batch = self.batches.pop(rid, None)
        for r in batch or ():
            self.inflight.discard(r)
        if ok:
            for r in batch if batch is not None else (rid,):
                n = self.named.pop(r, [0])[0] + (batch is not None)
                if batch is None or n >= self._namings(now):
                    self.queue.mark_sent(r)
                else:
                    self.named[r] = [n, now + self.repeat_gap]
            if batch is not None:
                self.stats["digests"] += 1
                self.stats["receipts_in_digests"] += len(batch)
            self.stats["downlinked"] += 1
            return
        self.stats["down_refused"] += 1
        self.pause_until = now + self.pause
        if reason:
            self.log("node refused a downlink record (%s); trying again later" % reason)

    def down_forget(self, rid):
        """A DOWNLINK whose answer will never come (the link dropped it): it
        may go again."""
        self.inflight.discard(rid)
        for r in self.batches.pop(rid, ()):
            self.inflight.discard(r)


class Bridge:
    """The serial bridge: BridgeCore's rules over the link to a bridge node.
    digests: the CTB node's DigestSigner when this PC holds its key (then
    receipts go down batched in signed digests, BridgeCore); repeat_gap and
    hold in seconds (BridgeCore)."""

    def __init__(self, port, queue, log=None, clock=time.monotonic, on_record=None, digests=None,
                 repeat_gap=REPEAT_GAP_S, hold=HOLD_S):
        self.port = port
        self.queue = queue
        self.log = log or (lambda *a: None)
        self.clock = clock
        self.on_record = on_record  # called after each record is stored (wakes the uploader)
        # what to store, ack and send down: the shared rules
        self.core = BridgeCore(queue, log=self.log, digests=digests, repeat_gap=repeat_gap, hold=hold)
        self.link = LinkClient()
        self.waiting = {}  # seq -> [kind, payload, sent_at, key]
        self.answers = {}  # key -> Frame, for request()
        self.hello = None
        self._n = 0
        self.stats = {"delivered": 0, "acked": 0, "downlinked": 0, "receipts_at_node": 0, "link_errors": 0,
                      "malformed": 0, "resent": 0}

    # -- requests -------------------------------------------------------------

    def _send(self, kind, payload=b"", key=None):
        seq, data = self.link.request(kind, payload)
        self.waiting[seq] = [kind, payload, self.clock(), key]
        self.port.write(data)
        return seq

    def request(self, kind, payload=b"", timeout_s=10.0):
        """Send one request and serve the link until its answer; returns
        the answer's payload, raises LinkFailed(reason) for an ERROR."""
        self._n += 1
        key = ("req", self._n)
        self._send(kind, payload, key)
        end = self.clock() + timeout_s
        while key not in self.answers:
            if self.clock() > end:
                raise LinkFailed("timeout", "no answer from the node in %.0f s" % timeout_s)
            self.step(0.02)
        f = self.answers.pop(key)
        if f.kind == L.ERROR:
            raise LinkFailed(f.payload[0] if f.payload else 0, bytes(f.payload[1:]).decode("utf-8", "replace"))
        return f.payload

    def start(self):
        """HELLO, then PENDING: the node re-sends every record still in its
        journal (delivered before, not yet acked: e.g. the bridge was killed)."""
        h = cbor.loads(self.request(L.HELLO))
        self.hello = {"addr": h[0], "bridge": bool(h[1]), "fw": h[2], "max_payload": h[3]}
        if self.hello["bridge"]:
            self.request(L.PENDING)
        return self.hello

    def submit(self, raw):
        """As a store does: hand a record to the node; its id once in custody."""
        return self.request(L.SUBMIT, raw)

    def spent(self, ref):
        """The village spent set's answer: (spent, kind, overflowed)."""
        s, kind, over = cbor.loads(self.request(L.SPENT, ref))
        return s, kind, over

    def status(self):
        return dict((k, v) for k, v in cbor.loads(self.request(L.STATUS)))

    # -- the loop -------------------------------------------------------------

    def step(self, timeout_s=0.05):
        data = self.port.read(timeout_s)
        if data:
            for item in self.link.feed(data):
                self._on(item)
        self._send_downlink()
        self._resend()

    def _on(self, item):
        if isinstance(item, L.LinkError):
            self.stats["link_errors"] += 1
            self.log("link: %s" % L.REASONS.get(item.reason, item.reason))
            return
        k = item.kind
        if k == L.EV_DELIVERED:
            self._delivered(bytes(item.payload))
        elif k == L.EV_RECEIPT:
            self.stats["receipts_at_node"] += 1
        elif k == L.EV_LOG:
            self.log("node: %s" % bytes(item.payload).decode("utf-8", "replace"))
        elif k == L.ERROR or k & L.RESPONSE:
            self._answer(item)

    def _answer(self, f):
        w = self.waiting.pop(f.seq, None)
        if w is None:
            return  # the answer to a request we already sent again
        kind, _, _, key = w
        if kind == L.DOWNLINK:
            refused = f.kind == L.ERROR
            self.core.down_answer(key, not refused, self.clock(), self._reason(f) if refused else "")
            if not refused:
                self.stats["downlinked"] += 1
        elif kind == L.DELIVERED_ACK:
            if f.kind == L.ERROR:
                self.log("node refused an ack (%s)" % self._reason(f))
            else:
                self.stats["acked"] += 1
        elif key is not None:
            self.answers[key] = f

    @staticmethod
    def _reason(f):
        return L.REASONS.get(f.payload[0], f.payload[0]) if f.payload else "?"

    def _delivered(self, raw):
        rid = self.core.delivered(raw)  # stored (or kept aside) before the ack goes
        self.stats["malformed"] = self.core.stats["malformed"]
        self.stats["delivered"] += 1
        self._send(L.DELIVERED_ACK, rid)
        if self.on_record is not None:
            self.on_record()

    def _send_downlink(self):
        for rid, raw in self.core.downlink(self.clock()):
            self._send(L.DOWNLINK, raw, rid)

    def _resend(self):
        now = self.clock()
        for seq in [s for s, w in self.waiting.items() if now - w[2] > RESEND_S]:
            kind, payload, _, key = self.waiting.pop(seq)
            self.stats["resent"] += 1
            self._send(kind, payload, key)  # a DOWNLINK stays in the core's flight under its record id

    def idle(self):
        """Nothing waiting on the link and nothing left to send down."""
        return not self.waiting and not self.queue.next_down(1)


class UploadWorker:
    """Uploads the queue to every peer, in a thread of its own (HTTP blocks;
    the link must not). peers: [(name, client)], client with submit(raws)
    and optionally receipts(uses) (pen.bridge.peers)."""

    def __init__(self, db_path, peers, log=None, clock=time.monotonic, idle_s=UPLOAD_IDLE_S, on_batch=None):
        self.on_batch = on_batch  # Uploader progress: on_batch(peer, sent this round, backlog left)
        self.db_path = db_path
        self.peers = peers
        self.log = log or (lambda *a: None)
        self.clock = clock
        self.idle_s = idle_s
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.queue = None
        self.uploaders = {}
        self.retry = {name: [0.0, 0] for name, _ in peers}  # name -> [next try, failures]
        self.thread = None
        self.uploaded = 0
        self.faults = 0  # rounds that failed outside a peer's own errors (logged)

    def run_once(self):
        """One round over the peers that are due; returns records uploaded."""
        if self.queue is None:
            self.queue = BridgeQueue(self.db_path, clock=time.time)  # a connection of this thread's own
        total = 0
        for name, client in self.peers:
            r = self.retry[name]
            if self.clock() < r[0]:
                continue
            up = self.uploaders.setdefault(name, Uploader(self.queue, name, on_batch=self.on_batch))
            try:
                sent, receipts = up.step(client)
            except PeerUnavailable as e:
                r[1] += 1
                r[0] = self.clock() + min(2.0 ** (r[1] - 1), RETRY_MAX_S)
                if r[1] == 1:
                    self.log("peer %s unreachable (%s): keeping the village's records, retrying" % (name, e))
                continue
            except Exception as e:  # a refusal of the whole request: log, retry later
                r[1] += 1
                r[0] = self.clock() + min(2.0 ** (r[1] - 1), RETRY_MAX_S)
                self.log("peer %s: %s" % (name, e))
                continue
            if r[1]:
                self.log("peer %s reachable again" % name)
            r[0], r[1] = 0.0, 0
            self.queue.meta_set("last_upload:" + name, "%.3f" % time.time())
            if sent:
                self.log("uploaded %d records to %s, %d receipts for the village (backlog %d)" % (
                    sent, name, len(receipts), self.queue.backlog(name)))
            total += sent
        self.uploaded += total
        return total

    def _loop(self):
        while not self.stopping.is_set():
            try:
                self.run_once()
            except Exception as e:  # noqa: BLE001 -- the worker must outlive any fault
                # a fault outside a peer's round (the queue's file locked past its busy wait, a full disk):
                # the records stay queued and the next round tries again; a dead worker would hold every
                # receipt back while the bridge still took custody
                self.faults += 1
                self.log("upload round failed (%s: %s); the records stay queued, next round in %.0f s"
                         % (type(e).__name__, e, self.idle_s))
            self.wake.wait(self.idle_s)
            self.wake.clear()

    def start(self):
        self.thread = threading.Thread(target=self._loop, name="pen-bridge-upload", daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join()


def run(port, db_path, peers, log=None, stop=None, status_every_s=10.0, on_status=None, on_batch=None,
        digests=None):
    """`pen bridge`: serve the link and upload until stop is set (or the
    node closes the link). digests: as for Bridge."""
    log = log or (lambda *a: None)
    queue = BridgeQueue(db_path)
    queue.meta_set("peers", " ".join(name for name, _ in peers))
    worker = UploadWorker(db_path, peers, log, on_batch=on_batch)
    bridge = Bridge(port, queue, log, on_record=worker.wake.set, digests=digests)
    hello = bridge.start()
    log("bridge node %d (firmware %s) on %s; peers: %s" % (hello["addr"], hello["fw"], port.name,
                                                           ", ".join(name for name, _ in peers) or "none"))
    worker.start()
    last = time.monotonic()
    try:
        while stop is None or not stop.is_set():
            bridge.step(0.05)
            if on_status is not None and time.monotonic() - last >= status_every_s:
                last = time.monotonic()
                on_status(bridge, queue)
    finally:
        worker.stop()
    return bridge
