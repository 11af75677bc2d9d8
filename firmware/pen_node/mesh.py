"""MeshNode: routing, custody and the law for one LoRa node, sans-IO.

Pen's traffic is mostly convergecast (payments and votes to bridges) plus
broadcasts from bridges, so routing is built for that instead of flooding:

- Bridges send beacons (T_BEACON: bridge, sequence, metric). Each node keeps
  its neighbours' advertised metric and the quality of the link it heard them
  on, picks as parent the neighbour with the lowest metric + link cost, and
  advertises its own metric once per beacon sequence. Beacons are rare
  (trickle: 15 s doubling to 20 min).
- Uplink goes hop by hop: a node sends a record to its parent, which journals
  it, then acks (T_ACK with the 4-byte frame id; several ids per ack). The
  sender deletes it only then. No ack: retries with random backoff; repeated
  failures re-route away from a parent that is gone, deaf to us, or losing
  frames on a calm channel (not from one that is merely busy); with no route
  at all the record is offered to any node with a route (dst ANY_ROUTE),
  which takes custody. Neighbours keep quiet through the ack of a frame
  they overheard.
- Receipts (ACCOUNTED) go back down the path the payment came up: each relay
  remembers which child handed it the payment's token, hop by hop with acks;
  a node that lost that memory keeps the receipt (the store can ask SPENT);
  a receipt is never flooded.
- Other downlink (openings, publications, digests) is managed flooding:
  duplicate suppression and a contention window scaled by SNR (far nodes,
  with low SNR, relay first), cancelled when a neighbour is heard relaying.

Time, randomness, radio and storage come from outside: the caller passes
now_ms to every call, an rng with getrandbits(), and a journal.Journal.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

import hashlib

from pen_protocol import frame as F

from . import duty as D
from .ring import IdRing
from .spent import SpentSet, USED, ACCOUNTED

BROADCAST = const(0xFFFF)
ANY_ROUTE = const(0xFFFE)  # uplink offered to any node that has a route
# Several custody records in one frame (frame.T_BUNDLE), for one next hop:
# entries of origin (2) | length (1) | record. Two payments (85 B each) share
# one preamble, one header, one contention and one ack: 0.8 s on air at SF9
# instead of 2 x 0.53 s plus a second ack. Only when records queue up.
T_BUNDLE = F.T_BUNDLE
_BUNDLE_ENTRY = const(3)
MAX_HOPS = const(7)

_USE = const(10)
_ACCOUNTED = const(11)
_VOTE_TYPES = (5, 6, 7)  # votation open, vote, close
_UPLINK_TYPES = (6, 8, 9, 10)  # vote, issue, set-user, use: what stores hand in

# Timing. Frames arrive whole (on_frame at their end); an ack is due within
# ACK_JITTER_MS of a frame's end, so a sender waits that plus the ack's own
# airtime and a margin before it retries.
ACK_JITTER_MS = const(60)
ACK_MARGIN_MS = const(700)  # the receiver may be mid-frame (533 ms at SF9) when its ack comes due
TX_JITTER_MS = const(400)  # spread first transmissions of records that came due together
BACKOFF_SLOT_MS = const(1500)
# Consecutive unacked tries before the parent is penalised. On a calm
# channel a loss is the link's fault, and PARENT_FAILS of them are enough.
# On a busy one (the node heard at least CONGESTED_PERMILLE of the last
# minute) they are congestion at a busy bridge, and a parent still heard on
# air is alive: penalising it would send its children over two hops, both in
# the bridge's hearing, twice the airtime where it is scarcest, more
# collisions, more failures (measured: 1,190 reroutes and the village's
# goodput falling at 1,600 payments/h). Then only one heard but failing
# DEAF_FAILS times in a row (a one-way link) is penalised. On either, a
# parent failing PARENT_FAILS times and not heard for PARENT_QUIET_MS is gone.
PARENT_FAILS = const(4)
CONGESTED_PERMILLE = const(100)
PARENT_QUIET_MS = const(30000)
DEAF_FAILS = const(16)
BEACON_MIN_MS = const(15000)
# A node with no route that hears a neighbour offer a record to ANY_ROUTE
# asks for routes itself, at most this often: it sends a beacon with metric
# 255 and any neighbour with a route (a bridge too) answers with its own
# beacon soon, instead of the routeless pair waiting for the bridge's next
# round (up to BEACON_MAX_MS; a rebooted relay and its rebooted child once
# waited 90 min when the round's beacons were lost)
SOLICIT_MS = const(60000)
BEACON_MAX_MS = const(1200000)
ROUTE_TTL_MS = const(3600000)  # a neighbour not heard for an hour is forgotten
DEDUP = const(128)  # frame ids remembered (duplicate suppression)
REVERSE = const(256)  # token ref -> child that handed us the payment
CONTENTION_MS = const(600)
# managed-flood relays waiting for their slot; floods are best effort and wait
# behind custody traffic, so under load the oldest is dropped rather than let
# the queue (a frame each, ~110 B) eat the heap
MAX_FLOODS = const(8)  # managed-flood window at the weakest SNR
SF_FLOOR_X4 = {7: -30, 8: -40, 9: -50, 10: -60, 11: -70, 12: -80}  # demodulation floor, dB x4


def link_cost(snr_x4, sf):
    """ETX-like cost of a link from its SNR margin above the SF's floor, in
    quarters of a transmission: 4 for a link that carries a frame at the first
    try, more as fading starts to cost retries. Quarters, so that a direct
    link a few dB above the floor still beats two strong hops: near a bridge
    every hop is in the bridge's hearing, and a second hop there costs the
    bridge's own airtime (measured: routing round weak direct links through
    neighbours halved the village's capacity)."""
    margin = (snr_x4 - SF_FLOOR_X4.get(sf, -50)) // 4
    if margin >= 6:
        return 4
    if margin >= 3:
        return 5
    if margin >= 1:
        return 6
    if margin >= 0:
        return 8
    return 16


# Heap that one record in custody holds: the journal's copy and its index
# entry, the pending state (486 B measured under the unix port; ~half on an
# ESP32's 32-bit objects). And heap kept free for what a node allocates in
# passing: a received frame and its parse, a bundle being built, a receive
# buffer, a journal compaction.
CUSTODY_RECORD_HEAP = const(520)
HEAP_RESERVE = const(12288)


def custody_room(free_heap, most):
    """How many records a node may take into custody with free_heap bytes
    left after boot (at most `most`, the journal's own bound): past that it
    refuses new work, the overflow policy, rather than run out of memory
    with payments it has acknowledged (a MemoryError is a reboot loop)."""
    return max(2, min(most, (free_heap - HEAP_RESERVE) // CUSTODY_RECORD_HEAP))


LBT_MIN_MS = const(60)
MAX_ACK_IDS = const(8)
# tries per hop for a receipt (not journaled; the bridge PC and the CTB keep
# it): with a quarter of frames lost, 4 tries lost ~4 % of receipts per hop,
# 8 lose ~0.1 %; they cost airtime only when frames are lost, and a busy
# channel holds receipts back anyway (RECEIPT_MAX_LOAD_PERMILLE)
RECEIPT_TRIES = const(8)
# a receipt goes down only when no payment went up through here for this
# long: under load, receipts wait (the bridge PC and the CTB keep them) and
# the air is left to payments
RECEIPT_QUIET_MS = const(3000)
# and only while the channel sounded less busy than this over the last
# minute: at the bridge, where every payment converges, a 0.6 s receipt per
# payment doubles the airtime; under load receipts wait (a store that needs
# the answer now asks SPENT) and payments get the air
RECEIPT_MAX_LOAD_PERMILLE = const(120)
LBT_SPREAD_MS = const(500)


class _Deferred(Exception):
    """The channel was busy: nothing was sent, try again after lbt_until."""


class _Pending:
    __slots__ = ("rid", "frame_body", "type", "origin", "tries", "due_ms", "fid", "via", "waiting_until", "to")

    def __init__(self, rid, rtype, body, origin, due_ms, to=None):
        self.rid = rid
        self.type = rtype
        self.frame_body = body  # record without its type byte
        self.origin = origin
        self.tries = 0
        self.due_ms = due_ms
        self.fid = None
        self.via = None
        self.waiting_until = 0
        # a receipt: the child it goes down to, fixed when it is taken (the
        # path memory is a ring, and a receipt held back under load can
        # outlive its entry there)
        self.to = to


class MeshNode:
    def __init__(self, addr, preset, journal, rng, is_bridge=False, hop_limit=MAX_HOPS, reverse=REVERSE,
                 dedup=DEDUP, channel_busy=None, spent_capacity=None):
        self.addr = addr
        self.preset = preset
        self.journal = journal
        self.rng = rng
        self.is_bridge = is_bridge
        self.hop_limit = hop_limit
        self.duty = D.DutyCycle(preset.duty_permille, preset.dwell_ms)
        # longest frame payload the law lets one transmission carry (US915 dwell)
        self.max_payload = min(F.MAX_PAYLOAD, preset.max_frame() - F.HEADER_LEN)
        # an ack naming up to MAX_ACK_IDS frames: its airtime bounds the wait for it
        self._ack_air_ms = preset.airtime_us(F.HEADER_LEN + MAX_ACK_IDS * F.FRAME_ID_LEN) // 1000
        self._short_ack_air_ms = preset.airtime_us(F.HEADER_LEN + 2 * F.FRAME_ID_LEN) // 1000
        self.heard = D.ChannelLoad()
        self.spent = SpentSet(spent_capacity) if spent_capacity else SpentSet()
        self.reasm = F.Reassembler()
        self.nbr = {}  # addr -> [metric, snr_x4, heard_ms, fails]
        self.metric = 0 if is_bridge else 255
        self.adv_metric = 0 if is_bridge else 255  # the metric we last advertised
        self.parent = None
        self.beacon_seq = 0  # highest sequence seen (or sent, on a bridge)
        self.beacon_sent_seq = -1
        self.beacon_due = 0 if is_bridge else -1
        self.beacon_interval = BEACON_MIN_MS
        self.solicit_after = 0
        self.pending = {}  # rid -> _Pending (custody, waiting to go on)
        self.came_from = {}  # receipt rid -> neighbour that handed it to us (for handled)
        self.by_fid = {}  # frame id -> [rid, ...] it carried (several for a bundle), for acks
        self.acks = []  # frame ids to ack, sent together
        self.ack_due = -1
        self.ack_dst = BROADCAST
        self.floods = []  # [due_ms, frame, fid]: managed-flood relays waiting
        # bounded memories, fixed size from boot (ring.IdRing)
        self.seen = IdRing(dedup, F.FRAME_ID_LEN)  # broadcast frame ids heard
        self.dedup = dedup
        # receipts taken and passed on, with the neighbour that handed them
        # to us: a late retry from it (our ack was lost) is acked, not taken
        # again. Not payments: a payment we no longer hold is taken again
        # whoever offers it (at least once; the bridge drops the duplicate),
        # because a retry whose ack was lost and the same record come back
        # round a routing loop look alike, and dropping the second lost
        # payments (seen in overloaded villages with loops through ANY_ROUTE)
        self.handled = IdRing(dedup, 16, 2)
        self.rev = IdRing(reverse, 8, 2)  # token ref -> child that handed us the payment
        self.originated = IdRing(reverse, 8)  # token refs of payments submitted here, for receipts
        self.delivered = []  # bridge: records for the host
        # bridge: ids handed to the host (a relay never delivers: one slot, not 4 KB)
        self.delivered_ids = IdRing(dedup * 2 if is_bridge else 1, 16)
        self.events = []
        self.tx_busy = False
        # listen before talk: channel_busy(now_ms) -> bool, the radio's channel
        # activity detection (SX126x CAD, command 0x94); None = always clear
        self.channel_busy = channel_busy
        self.lbt_until = 0
        self.inflight = None  # id of the one custody frame awaiting its ack
        self.last_uplink_ms = -RECEIPT_QUIET_MS
        self.node_fails = 0
        self.node_backoff_until = 0
        self.group = 0
        self.stats = {"tx_frames": 0, "tx_airtime_us": 0, "rx_frames": 0, "rx_bad": 0, "dup_dropped": 0,
                      "acks_sent": 0, "acks_heard": 0, "retries": 0, "refused": 0, "duty_blocked": 0,
                      "floods_relayed": 0, "floods_cancelled": 0, "delivered": 0, "custody_in": 0,
                      "reroutes": 0, "frames_handled": 0, "lbt_deferred": 0, "receipts_dropped": 0,
                      "floods_dropped": 0, "bundled": 0, "implicit_acks": 0}
        self._recover()

    # -- custody --------------------------------------------------------------

    def _recover(self):
        """After a reboot: everything in the journal is still ours to deliver."""
        for rid in self.journal.live:
            meta, data = self.journal.live[rid]
            origin = (data[0] << 8) | data[1]
            rec = data[2:]
            if self.is_bridge:
                self.delivered.append(rec)
            else:
                self.pending[rid] = _Pending(rid, rec[0], memoryview(data)[3:], origin, 0)

    def _rid(self, record):
        return hashlib.sha256(bytes(record[:len(record) - 64])).digest()[:16]

    def submit(self, record, now_ms):
        """A store hands in a signed record. True once it is in custody."""
        record = bytes(record)
        if not record or record[0] not in _UPLINK_TYPES or len(record) - 1 + F.HEADER_LEN > self.preset.max_frame():
            self.stats["refused"] += 1
            return False
        rid = self._rid(record)
        if rid in self.pending:
            return True
        if not self._take(rid, record, self.addr, now_ms):
            return False
        if record[0] == _USE:
            ref = self._token_ref(record)
            if ref is not None:
                self.originated.put(ref)
                self.spent.add(ref, USED)
        return True

    def _take(self, rid, record, origin, now_ms):
        data = bytes(((origin >> 8) & 255, origin & 255)) + record
        if not self.journal.put(rid, data, 1):
            self.stats["refused"] += 1
            return False
        if self.is_bridge:
            self._deliver(rid, record)
        else:
            # the body is a view of the journal's copy, not a second copy:
            # 48 records in custody would otherwise cost 5 KB twice
            body = memoryview(self.journal.live[rid][1])[3:]
            self.pending[rid] = _Pending(rid, record[0], body, origin,
                                         now_ms + self.rng.getrandbits(16) % TX_JITTER_MS)
        return True

    def _deliver(self, rid, record):
        if rid in self.delivered_ids:
            return
        self.delivered.append(record)
        self.delivered_ids.put(rid)
        self.stats["delivered"] += 1

    def take_delivered(self):
        """Bridge: records that reached this bridge, each once. The host
        confirms with host_ack(record) after storing them (until then they
        stay in the journal and come back after a reboot)."""
        out = self.delivered
        self.delivered = []
        return out

    def host_ack(self, record):
        self.journal.delete(self._rid(record))

    def take_events(self):
        out = self.events
        self.events = []
        return out

    @staticmethod
    def _token_ref(record):
        # every record that names a token starts its body with [token ref (bstr 8), ...]
        if len(record) > 11 and record[1] & 0xE0 == 0x80 and record[2] == 0x48:
            return bytes(record[3:11])
        return None

    # -- routing --------------------------------------------------------------

    def _choose_parent(self, now_ms):
        """Lowest metric + link cost among feasible neighbours: those that
        advertised a metric below the one we last advertised (Babel's
        feasibility condition), so a node never picks one of its own
        descendants and no routing loop forms, even with stale metrics."""
        if self.is_bridge:
            return
        best = None
        best_cost = 255
        calm = None
        for a in self.nbr:
            n = self.nbr[a]
            if now_ms - n[2] > ROUTE_TTL_MS or n[0] >= 255 or n[0] >= self.adv_metric:
                continue
            cost = n[0] + link_cost(n[1], self.preset.sf)
            if n[3] >= PARENT_FAILS:
                if now_ms - n[2] > PARENT_QUIET_MS:
                    # neither acking nor heard: gone (rebooting, moved, dead). If
                    # no one else is feasible, records go to ANY_ROUTE, where a
                    # neighbour with an equal route takes them at once, rather
                    # than wait for the bridge's next beacon round (20 min)
                    continue
                if calm is None:
                    calm = self.heard.permille(now_ms) < CONGESTED_PERMILLE
                if calm or n[3] >= DEAF_FAILS:
                    cost += 8 * (n[3] // PARENT_FAILS)
            if cost < best_cost:
                best, best_cost = a, cost
        old = self.parent
        self.parent = best
        self.metric = min(best_cost, 255) if best is not None else 255
        if old is not None and best != old:
            self.stats["reroutes"] += 1

    def _on_beacon(self, hdr, payload, snr_x4, now_ms):
        if len(payload) != 4:
            self.stats["rx_bad"] += 1
            return
        seq = (payload[0] << 8) | payload[1]
        metric = payload[2]
        if metric and payload[3] == self.addr & 0xFF:
            # its parent is (probably) us: taking it as ours would make a
            # two-node loop (seen after a reboot, when our metric is unknown)
            metric = 255
        n = self.nbr.get(hdr.src)
        if n is None:
            n = [metric, snr_x4, now_ms, 0]
            self.nbr[hdr.src] = n
        else:
            n[0] = metric  # (on_frame has already smoothed its SNR and heard time)
            n[2] = now_ms
        if payload[2] == 255 and (self.is_bridge or self.metric < 255):
            self._beacon_soon(now_ms)  # a routeless neighbour asks for routes (SOLICIT_MS)
        if self.is_bridge:
            return
        before = self.metric
        newer = ((seq - self.beacon_seq) & 0xFFFF) < 0x8000 and seq != self.beacon_seq
        if newer:
            # a new round from the bridge: every metric may be recomputed
            self.beacon_seq = seq
            self.adv_metric = 255
        self._choose_parent(now_ms)
        if (newer or self.metric + 2 < before) and self.metric < 255 and self.beacon_sent_seq != seq:
            # advertise our own metric once per sequence, after a short random wait
            self.beacon_due = now_ms + 200 + self.rng.getrandbits(16) % 2000

    def _beacon_soon(self, now_ms):
        """Our beacon within ~2 s, unless one is due sooner anyway."""
        if self.beacon_due < 0 or self.beacon_due > now_ms + 3000:
            self.beacon_due = now_ms + 200 + self.rng.getrandbits(16) % 2000

    def _beacon_frame(self):
        parent = self.parent & 0xFF if self.parent is not None else 0
        payload = bytes((self.beacon_seq >> 8, self.beacon_seq & 255, min(self.metric, 255), parent))
        self.beacon_sent_seq = self.beacon_seq
        self.adv_metric = min(self.metric, 255)
        return F.pack(F.Header(F.T_BEACON, self.addr, BROADCAST, self.addr, 0, 0), payload)

    # -- receiving ------------------------------------------------------------

    def on_frame(self, frame, rssi_dbm, snr_x4, now_ms):
        self.stats["rx_frames"] += 1
        self.heard.add(self.preset.airtime_us(len(frame)), now_ms)
        self.stats["frames_handled"] += 1
        try:
            hdr, payload = F.parse(frame)
        except F.FrameError:
            self.stats["rx_bad"] += 1
            return
        if hdr.src == self.addr:
            return
        n = self.nbr.get(hdr.src)
        if n is not None:
            n[1] = (n[1] * 3 + snr_x4) // 4
            n[2] = now_ms
        t = hdr.type
        if t == F.T_BEACON:
            self._on_beacon(hdr, payload, snr_x4, now_ms)
        elif t == F.T_ACK:
            if hdr.dst == self.addr or hdr.dst == BROADCAST:
                try:
                    ids = F.ack_ids(payload)
                except F.FrameError:
                    self.stats["rx_bad"] += 1
                    return
                for fid in ids:
                    self._acked(fid, hdr.src)
        elif t < F.T_ACK or t == T_BUNDLE:
            self._on_record_frame(frame, hdr, payload, snr_x4, now_ms)

    def _acked(self, fid, by):
        rids = self.by_fid.pop(fid, None)
        if rids is None:
            return
        for rid in rids:
            self._acked_one(rid, by)

    def _acked_one(self, rid, by):
        p = self.pending.pop(rid, None)
        if p is None:
            return
        self.stats["acks_heard"] += 1
        self.node_fails = 0
        self.node_backoff_until = 0
        if self.inflight == rid:
            self.inflight = None
        self.journal.delete(rid)
        came = self.came_from.pop(rid, None)
        if came is not None and came != by:  # a receipt handed back where it came from: not handled
            self.handled.put(rid, came)
        n = self.nbr.get(by)
        if n is not None:
            n[3] = 0

    def _remember(self, fid):
        if fid in self.seen:
            return False
        self.seen.put(fid)
        return True

    def _on_record_frame(self, frame, hdr, payload, snr_x4, now_ms):
        fid = F.frame_id(frame)
        # a neighbour relaying a flood we were about to relay: ours is not needed
        for i in range(len(self.floods)):
            if self.floods[i][2] == fid:
                del self.floods[i]
                self.stats["floods_cancelled"] += 1
                break
        # an offer to any node with a route is not for the sender's own child
        for_us = hdr.dst == self.addr or (hdr.dst == ANY_ROUTE and (
            self.is_bridge or (self.parent is not None and self.parent != hdr.src)))
        if hdr.dst == ANY_ROUTE:
            if for_us:
                # the sender has no route (rebooted, or new): advertise ours
                # soon rather than leave it offering to anyone until the next round
                self._beacon_soon(now_ms)
            elif self.parent is None and not self.is_bridge and now_ms >= self.solicit_after:
                # neither of us has a route: ask our other neighbours (SOLICIT_MS)
                self.solicit_after = now_ms + SOLICIT_MS
                self.beacon_due = now_ms + 200 + self.rng.getrandbits(16) % 2000
        if hdr.dst == BROADCAST:
            self._on_broadcast(frame, fid, hdr, payload, snr_x4, now_ms)
            return
        if not for_us:
            # its receiver acks within ACK_JITTER_MS without listening first:
            # keep the air clear for that ack (802.11's SIFS before DIFS). Else
            # a neighbour that heard the frame end talks over the ack at its sender
            self.lbt_until = max(self.lbt_until, now_ms + 20 + ACK_JITTER_MS + self._short_ack_air_ms + LBT_MIN_MS)
        if hdr.frag_count > 1:
            return  # custody frames are never fragmented (submit refuses what does not fit)
        if hdr.type == T_BUNDLE:
            self._on_bundle(fid, hdr, payload, for_us, now_ms)
            return
        record = F.record_of(hdr, payload)
        self._observe(record, hdr, now_ms)
        self._passed_on(record, hdr.src)
        if not for_us:
            return
        if record[0] == _ACCOUNTED:
            rid = self._rid(record)
            if rid in self.pending or self.handled.get(rid) == hdr.src:
                self.stats["dup_dropped"] += 1
                self._queue_ack(fid, hdr.src, now_ms)  # our earlier ack was lost
                return
            self._on_receipt(record, rid, hdr, fid, now_ms)
            return
        if self._take_in(record, hdr.origin, hdr.src, now_ms):
            self._queue_ack(fid, hdr.src, now_ms)

    def _take_in(self, record, origin, src, now_ms):
        """Custody of an uplink record a neighbour handed us: True once it is
        held (now, or already: a copy is still in our custody, or, at a
        bridge, delivered). One we handled before and passed on is taken
        again (see handled)."""
        rid = self._rid(record)
        if rid in self.pending or rid in self.delivered_ids or (self.is_bridge and rid in self.journal.live):
            self.stats["dup_dropped"] += 1
            return True
        if not self._take(rid, record, origin, now_ms):
            return False
        self.stats["custody_in"] += 1
        ref = self._token_ref(record)
        if ref is not None and record[0] == _USE:
            self._remember_child(ref, src)
        return True

    def _on_bundle(self, fid, hdr, payload, for_us, now_ms):
        """Several uplink records in one frame: acked (as one frame id) only
        when every one of them is held, so a partial take is retried whole
        and the part already held is acked as a duplicate next time."""
        records = []
        i = 0
        n = len(payload)
        while i < n:
            if i + _BUNDLE_ENTRY > n:
                self.stats["rx_bad"] += 1
                return
            ln = payload[i + 2]
            if ln < 2 or i + _BUNDLE_ENTRY + ln > n or payload[i + 3] not in _UPLINK_TYPES:
                self.stats["rx_bad"] += 1
                return
            records.append(((payload[i] << 8) | payload[i + 1], bytes(payload[i + 3:i + 3 + ln])))
            i += _BUNDLE_ENTRY + ln
        held = True
        for origin, record in records:
            self._observe(record, hdr, now_ms)
            self._passed_on(record, hdr.src)
            if for_us and not self._take_in(record, origin, hdr.src, now_ms):
                held = False
        if for_us and held:
            self._queue_ack(fid, hdr.src, now_ms)

    def _observe(self, record, hdr, now_ms=None):
        """Everything heard feeds the village spent set."""
        if record[0] == _USE and now_ms is not None:
            self.last_uplink_ms = now_ms
        if record[0] == _USE or record[0] == _ACCOUNTED:
            ref = self._token_ref(record)
            if ref is not None:
                self.spent.add(ref, ACCOUNTED if record[0] == _ACCOUNTED else USED)

    def _passed_on(self, record, src):
        """An implicit ack: the neighbour we wait on for the ack of a record
        is heard passing that record on, so it holds it (a node sends only
        from custody) and our ack was lost. Letting go now saves the retry,
        and with it a second copy going up (a node takes a record it passed
        on again: see handled)."""
        q = self.pending.get(self.inflight) if self.inflight is not None else None
        if q is None or q.via != src:
            return  # stop-and-wait: only the frame in flight waits for an ack, from one node
        rid = self._rid(record)
        p = self.pending.get(rid)
        if p is None or p.fid is None or p.via != src or p.type == _ACCOUNTED:
            return
        rids = self.by_fid.get(p.fid)
        if rids is not None and rid in rids:
            rids.remove(rid)
            if not rids:
                del self.by_fid[p.fid]
        self.stats["implicit_acks"] += 1
        self._acked_one(rid, src)

    def _remember_child(self, ref, child):
        self.rev.put(ref, child)

    def _on_receipt(self, record, rid, hdr, fid, now_ms):
        ref = self._token_ref(record)
        if ref is not None and ref in self.originated:
            self.originated.remove(ref)
            self.events.append(("receipt", ref))
            self.events.append(("receipt-record", record))
            self._queue_ack(fid, hdr.src, now_ms)
            return
        # pass it on towards the child that sent the payment up (best effort,
        # bounded tries, not journalled: payments keep the journal). With no
        # child on record (we are the origin and already have it, or forgot
        # the path) it stops here: a flood of every receipt would cost the
        # whole mesh more than the store gains (it can ask: link SPENT)
        child = self.rev.get(ref) if ref is not None else None
        if child is None:
            self._queue_ack(fid, hdr.src, now_ms)
            return
        if len(self.pending) < self.journal.max_live:
            self.pending[rid] = _Pending(rid, record[0], record[1:], hdr.origin,
                                         now_ms + self.rng.getrandbits(16) % TX_JITTER_MS, child)
            self.came_from[rid] = hdr.src  # so a late retry from it is a duplicate
            self._queue_ack(fid, hdr.src, now_ms)

    def _on_broadcast(self, frame, fid, hdr, payload, snr_x4, now_ms):
        if not self._remember(fid):
            self.stats["dup_dropped"] += 1
            return
        record = self.reasm.add(hdr, payload) if hdr.frag_count > 1 else F.record_of(hdr, payload)
        if record is not None:
            self._observe(record, hdr)
            if record[0] == _ACCOUNTED:
                ref = self._token_ref(record)
                if ref is not None and ref in self.originated:
                    self.originated.remove(ref)
                    self.events.append(("receipt", ref))
                    self.events.append(("receipt-record", record))
                    return  # it was for us: relaying it further helps no one
            else:
                self.events.append(("broadcast", record))
        if hdr.hop_limit > 0 and not self.is_bridge:
            if len(self.floods) >= MAX_FLOODS:
                del self.floods[0]
                self.stats["floods_dropped"] += 1
            relay = F.relay(frame, self.addr, BROADCAST)
            # SNR-scaled contention: the weaker we heard it, the farther we are, the sooner we go
            margin = max(0, min(40, (snr_x4 - SF_FLOOR_X4.get(self.preset.sf, -50)) // 4))
            wait = 50 + margin * CONTENTION_MS // 40 + self.rng.getrandbits(16) % 200
            self.floods.append([now_ms + wait, relay, fid])

    def _queue_ack(self, fid, to, now_ms):
        if fid not in self.acks:
            self.acks.append(fid)
        self.ack_dst = to if len(self.acks) == 1 else BROADCAST
        if self.ack_due < 0:
            self.ack_due = now_ms + 20 + self.rng.getrandbits(16) % ACK_JITTER_MS

    # -- downlink from a bridge -------------------------------------------------

    def broadcast(self, record, now_ms):
        """Bridge: send a record into the mesh. Receipts go back along the
        payment's path (custody), never flooded; everything else by managed
        flooding.
        False, and nothing queued, while the flood or custody queue is full:
        the air (duty cycle) is slower than the PC, which keeps the record
        and offers it again, instead of the node's heap filling up."""
        if len(self.floods) >= MAX_FLOODS or len(self.pending) >= self.journal.max_live:
            return False
        record = bytes(record)
        if record[0] == _ACCOUNTED:
            ref = self._token_ref(record)
            child = self.rev.get(ref) if ref is not None else None
            if child is not None:
                # not journalled: the bridge PC keeps the receipt until the CTB
                # has it, so the bridge node's small journal stays for payments
                rid = self._rid(record)
                if rid not in self.pending:
                    self.pending[rid] = _Pending(rid, record[0], record[1:], self.addr, now_ms, child)
                return True
            # no path on record (forgotten while the PC held the receipt back
            # under load, or lost in a reboot): a flood would cost every node
            # airtime for one store (hundreds of them after a busy hour, in a
            # storm that took the village's air), so it stops here, like a
            # relay's: the PC and the CTB keep it, the store can ask SPENT
            self.stats["receipts_dropped"] += 1
            return True
        self.group = (self.group + 1) & 255
        for f in F.fragment(record, self.addr, BROADCAST, self.addr, self.group, self.hop_limit):
            self._remember(F.frame_id(f))
            self.floods.append([now_ms + self.rng.getrandbits(16) % 200, f, None])
        return True

    # -- transmitting ---------------------------------------------------------

    def _next_hop(self, p):
        if p.type == _ACCOUNTED:
            return p.to  # fixed when the receipt was taken; receipts are never flooded
        if self.parent is not None:
            return self.parent
        return ANY_ROUTE

    def _priority(self, rtype):
        # payments first; a receipt can wait (the store still holds the
        # payment and its state is "sent"), and must never starve the acks
        # that move payments on
        if rtype == _USE:
            return D.P_PAYMENT
        if rtype == _ACCOUNTED:
            # receipts before publications (90 % of the duty budget, with
            # votes and beacons): a bridge's receipts are capped by its budget
            # (0.59 s each at SF9), and at 70 % they were ~255 of 392 back at
            # 400 payments/h, at 90 % ~340. Acks keep the last 10 %, and as
            # receipts yield to payments on a busy channel their spending is
            # spread over the hour, so the budget frees faster than acks need
            # it (measured: the same capacity). Before receipts waited for a
            # calm channel, 90 % had capped the village at 495/h
            return D.P_VOTE
        if rtype in _VOTE_TYPES:
            return D.P_VOTE
        return D.P_BULK

    def _try_send(self, frame, priority, now_ms, lbt=True):
        air = self.preset.airtime_us(len(frame))
        if not self.duty.allows(air, now_ms, priority):
            self.stats["duty_blocked"] += 1
            return None
        if lbt and self.channel_busy is not None and self.channel_busy(now_ms):
            # someone is on air: back off a random few slots, then look again
            self.lbt_until = now_ms + LBT_MIN_MS + self.rng.getrandbits(16) % LBT_SPREAD_MS
            self.stats["lbt_deferred"] += 1
            raise _Deferred()
        self.duty.spend(air, now_ms)
        self.tx_busy = True
        self.stats["tx_frames"] += 1
        self.stats["tx_airtime_us"] += air
        return frame

    def next_tx(self, now_ms):
        """The frame to put on air now, or None."""
        try:
            return self._next_tx(now_ms)
        except _Deferred:
            return None

    def _next_tx(self, now_ms):
        if self.tx_busy or (now_ms < self.lbt_until and not (self.acks and now_ms >= self.ack_due)):
            return None
        self.tick(now_ms)
        # 1. acks: custody moves on only when they arrive
        if self.acks and now_ms >= self.ack_due:
            ids = self.acks[:F.MAX_PAYLOAD // F.FRAME_ID_LEN]
            # no listen-before-talk for acks: they follow the frame they answer
            # within ACK_JITTER_MS, while its sender listens for them
            f = self._try_send(F.ack_frame(ids, self.addr, self.ack_dst), D.P_PAYMENT, now_ms, False)
            if f is not None:
                self.acks = self.acks[len(ids):]
                self.ack_due = now_ms + 30 if self.acks else -1
                self.stats["acks_sent"] += 1
                return f
            self.ack_due = now_ms + 1000
        # 2. custody records, payments first; stop-and-wait: one frame awaiting
        # its ack at a time, and after failures the whole node backs off
        # (binary exponential, reset by the next ack), so a loss never turns
        # into a storm of parallel retries
        best = None
        if self.inflight is not None and self.inflight in self.pending and \
                self.pending[self.inflight].fid is not None:
            pass
        elif now_ms >= self.node_backoff_until:
            best = self._due_custody(now_ms)
        if best is not None:
            f = self._send_custody(best, now_ms)
            if f is not None:
                self.inflight = best.rid
                return f
        # 3. beacon
        if self.beacon_due >= 0 and now_ms >= self.beacon_due:
            if self.is_bridge:
                self.beacon_seq = (self.beacon_seq + 1) & 0xFFFF
            f = self._try_send(self._beacon_frame(), D.P_VOTE, now_ms)
            if f is not None:
                if self.is_bridge:
                    self.beacon_due = now_ms + self.beacon_interval
                    self.beacon_interval = min(self.beacon_interval * 2, BEACON_MAX_MS)
                else:
                    self.beacon_due = -1
                return f
            self.beacon_due = now_ms + 5000
        # 4. managed-flood relays
        for i in range(len(self.floods)):
            due, frame, fid = self.floods[i]
            if due <= now_ms:
                f = self._try_send(frame, self._priority(frame[0]), now_ms)
                if f is not None:
                    del self.floods[i]
                    self.stats["floods_relayed"] += 1
                    return f
                self.floods[i][0] = now_ms + 1000
                break
        return None

    def _due_custody(self, now_ms):
        best = None
        quiet = self._receipts_may_go(now_ms)
        for rid in self.pending:
            p = self.pending[rid]
            if p.due_ms > now_ms or p.waiting_until > now_ms:
                continue
            if p.type == _ACCOUNTED and not quiet:
                continue  # receipts yield to payments moving up through here
            if best is None or self._priority(p.type) < self._priority(best.type) or (
                    self._priority(p.type) == self._priority(best.type) and p.due_ms < best.due_ms):
                best = p
        return best

    def _receipts_may_go(self, now_ms):
        return now_ms - self.last_uplink_ms >= RECEIPT_QUIET_MS and \
            self.heard.permille(now_ms) < RECEIPT_MAX_LOAD_PERMILLE

    def _companions(self, p, dst, now_ms):
        """Other uplink records due now for the same next hop that fit one
        bundle with p (payments first, as _due_custody ranks them)."""
        if p.type == _ACCOUNTED:
            return None
        room = self.max_payload - _BUNDLE_ENTRY - 1 - len(p.frame_body)
        out = None
        for rid in self.pending:
            q = self.pending[rid]
            if q is p or q.type == _ACCOUNTED or q.fid is not None or q.due_ms > now_ms or \
                    q.waiting_until > now_ms:
                continue
            need = _BUNDLE_ENTRY + 1 + len(q.frame_body)
            if need <= room:
                out = out or [p]
                out.append(q)
                room -= need
        return out

    def _bundle_frame(self, group, dst):
        # written in place in the frame's own buffer, which is the frame (any
        # buffer is): on a 64 KB heap, parts, their join and a copy were
        # allocations too many while records wait in custody
        n = 0
        for q in group:
            n += _BUNDLE_ENTRY + 1 + len(q.frame_body)
        out, i = F.frame_buffer(F.Header(T_BUNDLE, self.addr, dst, self.addr, self.hop_limit), n)
        for q in group:
            ln = len(q.frame_body)
            out[i:i + 4] = bytes(((q.origin >> 8) & 255, q.origin & 255, 1 + ln, q.type))
            out[i + 4:i + 4 + ln] = q.frame_body
            i += _BUNDLE_ENTRY + 1 + ln
        return out

    def _send_custody(self, p, now_ms):
        dst = self._next_hop(p)
        group = self._companions(p, dst, now_ms)
        if group is not None:
            frame = self._bundle_frame(group, dst)
        else:
            group = [p]
            frame = F.pack(F.Header(p.type, self.addr, dst, p.origin, self.hop_limit), p.frame_body)
        f = self._try_send(frame, self._priority(p.type), now_ms)
        if f is None:
            p.due_ms = now_ms + 5000
            return None
        fid = F.frame_id(frame)
        waiting_until = now_ms + self.preset.airtime_us(len(frame)) // 1000 + self._ack_air_ms + ACK_JITTER_MS + \
            ACK_MARGIN_MS
        if len(group) > 1:
            self.stats["bundled"] += len(group)
        self.by_fid[fid] = [q.rid for q in group]
        for q in group:
            if q.type == _USE:
                self.last_uplink_ms = now_ms
            if q.tries:
                self.stats["retries"] += 1
            q.tries += 1
            q.fid = fid
            q.via = dst
            q.waiting_until = waiting_until
            # when the wait is over with no ack, back off (more, the more tries)
            slots = 1 << min(q.tries, 5)
            q.due_ms = waiting_until + (self.rng.getrandbits(16) % slots) * BACKOFF_SLOT_MS // 2
        return f

    def on_tx_done(self, now_ms):
        self.tx_busy = False

    def tick(self, now_ms):
        """Timers: routes that failed, beacons to start. Called by the driver
        before next_tx (next_tx calls it too)."""
        drop = None
        for rid in self.pending:
            p = self.pending[rid]
            if p.via is None or p.waiting_until > now_ms or p.fid is None:
                continue
            if p.type == _ACCOUNTED and p.tries >= RECEIPT_TRIES:
                # a receipt is best effort on air: the CTB and the bridge PC
                # keep it, and the store can ask again (link SPENT / STATUS)
                drop = drop or []
                drop.append(rid)
            # waited for an ack in vain (a bundle's members share one frame:
            # one failure, counted at the first of them)
            first = self.by_fid.pop(p.fid, None) is not None
            p.fid = None
            if self.inflight == rid:
                self.inflight = None
            if first:
                self.node_fails += 1
                slots = 1 << min(self.node_fails, 6)
                self.node_backoff_until = now_ms + (self.rng.getrandbits(16) % slots) * BACKOFF_SLOT_MS // 2
                n = self.nbr.get(p.via)
                if n is not None:
                    n[3] += 1
                    if n[3] % PARENT_FAILS == 0:
                        self._choose_parent(now_ms)
            p.via = None
        if drop:
            for rid in drop:
                p = self.pending.pop(rid)
                self.by_fid.pop(p.fid, None)
                self.came_from.pop(rid, None)
                self.journal.delete(rid)
                self.stats["receipts_dropped"] += 1

    def next_wakeup_ms(self, now_ms):
        """When next_tx or a timer needs this node again (never in the past,
        so a driver never spins)."""
        t = now_ms + 3600000
        floor = self.lbt_until if self.lbt_until > now_ms else now_ms + 1
        busy = None  # the channel load, looked up once and only if a receipt waits
        for rid in self.pending:
            p = self.pending[rid]
            if p.fid is not None:
                t = min(t, p.waiting_until)  # the ack timeout runs regardless
            elif self.inflight is None:
                due = max(p.due_ms, self.node_backoff_until)
                if p.type == _ACCOUNTED:
                    due = max(due, self.last_uplink_ms + RECEIPT_QUIET_MS)
                    if busy is None:
                        busy = self.heard.permille(now_ms) >= RECEIPT_MAX_LOAD_PERMILLE
                    if busy:
                        due = max(due, now_ms + 10000)  # when a load bucket expires
                t = min(t, due)
        if self.beacon_due >= 0:
            t = min(t, self.beacon_due)
        for fl in self.floods:
            t = min(t, fl[0])
        t = max(t, floor)
        if self.acks and self.ack_due >= 0:  # acks do not wait for listen-before-talk
            t = min(t, max(self.ack_due, now_ms + 1))
        return t

    def average_current_ma(self, elapsed_ms):
        from .power import average_ma
        return average_ma(self.stats["tx_airtime_us"], self.stats["frames_handled"], elapsed_ms, self.preset.power_dbm)
