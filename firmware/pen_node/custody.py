"""Custody for MeshNode: records held until the next hop acknowledges them.

Uplink goes hop by hop: a node sends a record to its parent, which journals
it, then acks (T_ACK with the 4-byte frame id; several ids per ack). The
sender deletes it only then. No ack: retries with random backoff, the whole
node backing off after failures (stop-and-wait: one frame in flight). With no
route the record is offered to any node with a route (dst ANY_ROUTE), which
takes custody. Records due together for one next hop share a bundle
(frame.bundle_frame). A node that hears its next hop pass a record on takes
that as its ack (implicit ack).

A mixin of mesh.MeshNode (the facade, whose constructor sets up its state).
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from pen_protocol import frame as F
from pen_protocol.identity import record_id, token_ref, USE, ACCOUNTED, UPLINK_TYPES

from . import duty as D
from .spent import USED

ANY_ROUTE = const(0xFFFE)  # uplink offered to any node that has a route
MAX_ACK_IDS = const(8)
_MAX_ACKS = const(32)  # frame ids waiting to be acked at most
# custody quotas (_room_for): an eighth of the journal is kept for this
# node's own store; one other origin may hold at most a quarter of it
OWN_RESERVE = const(8)
ORIGIN_SHARE = const(4)
_JOURNAL_ENTRY = const(25)  # a journal entry's bytes besides its data (journal.py: overhead, meta, id)
# A receipt's hop goes back down the link its payment came up, and links
# are not symmetric: a child that reached us may not hear us (in the
# simulated villages 42-46 % of linked pairs work one way only; at 200
# payments/h on seed 5, the bridge tried 8 times in 4 minutes a child it
# reached 1.3 dB under the floor, and two receipts never came back). After
# this many unacked tries the receipt goes once as a flood of one relay
# (_RECEIPT_FLOOD_HOPS): our neighbours pass it on, and a node that passed
# the payment up takes it back into custody down its path
# (downlink._on_broadcast), past the one-way hop.
_RECEIPT_FLOOD_AFTER = const(8)
_RECEIPT_FLOOD_HOPS = const(1)

# Timing. Frames arrive whole (on_frame at their end); an ack is due within
# ACK_JITTER_MS of a frame's end, so a sender waits that plus the ack's own
# airtime and a margin before it retries.
ACK_JITTER_MS = const(60)
_ACK_MARGIN_MS = const(700)  # the receiver may be mid-frame (533 ms at SF9) when its ack comes due
TX_JITTER_MS = const(400)  # spread first transmissions of records that came due together
_BACKOFF_SLOT_MS = const(1500)
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


class _Pending:
    __slots__ = ("rid", "frame_body", "type", "origin", "tries", "due_ms", "fid", "via", "waiting_until", "to",
                 "since")

    def __init__(self, rid, rtype, body, origin, due_ms, to=None):
        self.rid = rid
        self.type = rtype
        self.frame_body = body  # record without its type byte
        self.origin = origin
        self.tries = 0
        self.due_ms = due_ms
        self.since = due_ms  # when taken (a receipt's patience runs from here: downlink._receipt_overdue)
        self.fid = None
        self.via = None
        self.waiting_until = 0
        # a receipt: the child it goes down to, fixed when it is taken (the
        # path memory is a ring, and a receipt held back under load can
        # outlive its entry there)
        self.to = to


class Custody:
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

    def submit(self, record, now_ms):
        """A store hands in a signed record. True once it is in custody."""
        record = bytes(record)
        if not record or record[0] not in UPLINK_TYPES or len(record) - 1 > self.max_payload:
            self.stats["refused"] += 1
            return False
        rid = record_id(record)
        if rid in self.pending:
            return True
        if not self._take(rid, record, self.addr, now_ms):
            return False
        if record[0] == USE:
            ref = token_ref(record)
            if ref is not None:
                self.originated.put(ref)
                self.spent.add(ref, USED, now_ms)
        return True

    def _room_for(self, origin, size):
        """Custody quotas: whoever offers records (any holder of the village
        key can seal a frame, with any origin in it) never takes the room
        kept for this node's own store (an OWN_RESERVE-th of the journal's
        slots, and the bytes as many records of this size need), and one
        origin never holds more than an ORIGIN_SHARE-th of it. 48 unsigned
        USE frames addressed to a node once filled it and refused its
        store's honest submit (issue 10, item 10)."""
        if origin == self.addr:
            return True
        most = self.journal.max_live
        keep = most // OWN_RESERVE
        if keep and not self.journal.can_take(size + keep * (size + _JOURNAL_ENTRY)):
            return False
        foreign = 0
        mine = 0
        for e in self.journal.live.values():
            o = (e[1][0] << 8) | e[1][1]
            if o != self.addr:
                foreign += 1
                if o == origin:
                    mine += 1
        return foreign < most - keep and mine < max(2, most // ORIGIN_SHARE)

    def _take(self, rid, record, origin, now_ms):
        if not self._room_for(origin, 2 + len(record)):
            self.stats["quota_refused"] += 1
            return False
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
        self.journal.delete(record_id(record))

    def _acked(self, fid, by):
        rids = self.by_fid.pop(fid, None)
        if rids is None:
            return
        self.link_acked(by)  # routing: the hop works both ways (once a frame, bundle or not)
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

    def _queue_ack(self, fid, to, now_ms):
        if fid not in self.acks:
            if len(self.acks) >= _MAX_ACKS:  # the law holds acks back and frames keep coming:
                del self.acks[0]  # the oldest goes, its sender tries again (bounded heap)
            self.acks.append(fid)
        self.ack_dst = to if len(self.acks) == 1 else F.BROADCAST
        if self.ack_due < 0:
            self.ack_due = now_ms + 20 + self.rng.getrandbits(16) % ACK_JITTER_MS

    def _take_in(self, record, origin, src, now_ms):
        """Custody of an uplink record a neighbour handed us: True once it is
        held (now, or already: a copy is still in our custody, or, at a
        bridge, delivered). One we handled before and passed on is taken
        again (see handled)."""
        rid = record_id(record)
        if rid in self.pending or rid in self.delivered_ids or (self.is_bridge and rid in self.journal.live):
            self.stats["dup_dropped"] += 1
            return True
        if not self._take(rid, record, origin, now_ms):
            return False
        self.stats["custody_in"] += 1
        ref = token_ref(record)
        if ref is not None and record[0] == USE:
            self._remember_child(ref, src)
        return True

    def _on_bundle(self, fid, hdr, payload, for_us, now_ms):
        """Several uplink records in one frame: acked (as one frame id) only
        when every one of them is held, so a partial take is retried whole
        and the part already held is acked as a duplicate next time."""
        records = F.bundle_records(payload)
        if records is None:
            self.stats["rx_bad"] += 1
            return
        for origin, record in records:
            if record[0] not in UPLINK_TYPES:
                self.stats["rx_bad"] += 1
                return
        held = True
        for origin, record in records:
            self._observe(record, now_ms)
            self._passed_on(record, hdr.src)
            if for_us and not self._take_in(record, origin, hdr.src, now_ms):
                held = False
        if for_us and held:
            self._queue_ack(fid, hdr.src, now_ms)

    def _passed_on(self, record, src):
        """An implicit ack: the neighbour we wait on for the ack of a record
        is heard passing that record on, so it holds it (a node sends only
        from custody) and our ack was lost. Letting go now saves the retry,
        and with it a second copy going up (a node takes a record it passed
        on again: see handled)."""
        q = self.pending.get(self.inflight) if self.inflight is not None else None
        if q is None or q.via != src:
            return  # stop-and-wait: only the frame in flight waits for an ack, from one node
        rid = record_id(record)
        p = self.pending.get(rid)
        if p is None or p.fid is None or p.via != src or p.type == ACCOUNTED:
            return
        rids = self.by_fid.get(p.fid)
        if rids is not None and rid in rids:
            rids.remove(rid)
            if not rids:
                del self.by_fid[p.fid]
        self.stats["implicit_acks"] += 1
        self.link_acked(src)
        self._acked_one(rid, src)

    def _next_hop(self, p):
        if p.type == ACCOUNTED:
            return p.to  # fixed when the receipt was taken; receipts are never flooded
        if self.parent is not None:
            return self.parent
        return ANY_ROUTE

    def _due_custody(self, now_ms):
        best = None
        quiet = self._receipts_may_go(now_ms)
        # routeless: uplink waits for the new round it asked for (routing._lost_route)
        hold = (self.parent is None and now_ms < self.round_wait_until) or now_ms < self.lh_hold_until
        for rid in self.pending:
            p = self.pending[rid]
            if p.due_ms > now_ms or p.waiting_until > now_ms or (hold and p.type != ACCOUNTED):
                continue
            if p.type == ACCOUNTED and not (quiet or self._receipt_overdue(p.since, now_ms)):
                continue  # receipts yield to payments moving up through here
            if best is None or self._priority(p.type) < self._priority(best.type) or (
                    self._priority(p.type) == self._priority(best.type) and p.due_ms < best.due_ms):
                best = p
        return best

    def _companions(self, p, dst, now_ms):
        """Other uplink records due now for the same next hop that fit one
        bundle with p (payments first, as _due_custody ranks them)."""
        if p.type == ACCOUNTED:
            return None
        room = self.max_payload - F.BUNDLE_ENTRY - 1 - len(p.frame_body)
        out = None
        for rid in self.pending:
            q = self.pending[rid]
            if q is p or q.type == ACCOUNTED or q.fid is not None or q.due_ms > now_ms or \
                    q.waiting_until > now_ms:
                continue
            need = F.BUNDLE_ENTRY + 1 + len(q.frame_body)
            if need <= room:
                out = out or [p]
                out.append(q)
                room -= need
        return out

    def _bundle_frame(self, group, dst):
        return F.bundle_frame(F.Header(F.T_BUNDLE, self.addr, dst, self.addr, self.hop_limit),
                              [(q.origin, q.type, q.frame_body) for q in group])

    def _send_custody(self, p, now_ms):
        dst = self._next_hop(p)
        if dst == F.BROADCAST:
            return self._flood_receipt(p, now_ms)
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
        if p.type == ACCOUNTED and not self._receipts_may_go(now_ms):
            self.receipt_forced_ms = now_ms  # an overdue receipt (downlink._receipt_overdue)
        self._sent(group, F.frame_id(frame), dst, now_ms + self.preset.airtime_us(len(f)) // 1000 +
                   self._ack_air_ms + ACK_JITTER_MS + _ACK_MARGIN_MS, now_ms)
        return f

    def _sent(self, group, fid, dst, waiting_until, now_ms):
        """A frame with custody of group's records is on air to dst under
        frame id fid: wait for its ack until waiting_until, then back off
        (lasthop's slot frames wait for a grant instead)."""
        if len(group) > 1:
            self.stats["bundled"] += len(group)
        self.by_fid[fid] = [q.rid for q in group]
        for q in group:
            if q.type == USE:
                self.last_uplink_ms = now_ms
            if q.tries:
                self.stats["retries"] += 1
            q.tries += 1
            q.fid = fid
            q.via = dst
            q.waiting_until = waiting_until
            # when the wait is over with no ack, back off (more, the more tries)
            slots = 1 << min(q.tries, 5)
            q.due_ms = waiting_until + (self.rng.getrandbits(16) % slots) * _BACKOFF_SLOT_MS // 2

    def _flood_receipt(self, p, now_ms):
        """A receipt whose hop never acked it (_RECEIPT_FLOOD_AFTER tries)
        goes once as a flood of one relay, under the frame id every
        holder's flood of it shares (its origin is the bridge's): a node
        that passed its payment up takes it back into custody, others pass
        it on once (downlink._on_broadcast). Then it leaves our custody (the
        PC and the CTB keep it, the store can ask SPENT)."""
        frame = F.record_frame(bytes((p.type,)) + bytes(p.frame_body), self.addr, F.BROADCAST, p.origin,
                               _RECEIPT_FLOOD_HOPS)
        f = self._try_send(frame, self._priority(p.type), now_ms)
        if f is None:
            p.due_ms = now_ms + 5000
            return None
        self._remember(F.frame_id(frame))
        del self.pending[p.rid]
        self.stats["receipts_flooded"] += 1
        return f

    def _ack_tx(self, now_ms):
        """Our acks, if due: custody moves on only when they arrive. No
        listen-before-talk for acks: they follow the frame they answer
        within ACK_JITTER_MS, while its sender listens for them."""
        if not self.acks or now_ms < self.ack_due:
            return None
        ids = self.acks[:F.MAX_PAYLOAD // F.FRAME_ID_LEN]
        f = self._try_send(F.ack_frame(ids, self.addr, self.ack_dst), D.P_PAYMENT, now_ms, False)
        if f is not None:
            self.acks = self.acks[len(ids):]
            self.ack_due = now_ms + 30 if self.acks else -1
            self.stats["acks_sent"] += 1
            return f
        self.ack_due = now_ms + 1000
        return None

    def _custody_tx(self, now_ms):
        """Custody records, payments first; stop-and-wait: one frame awaiting
        its ack at a time, and after failures the whole node backs off
        (binary exponential, reset by the next ack), so a loss never turns
        into a storm of parallel retries."""
        if self.inflight is not None and self.inflight in self.pending and \
                self.pending[self.inflight].fid is not None:
            return None
        if now_ms < self.node_backoff_until:
            return None
        best = self._due_custody(now_ms)
        if best is None:
            return None
        f = self._send_custody(best, now_ms)
        if f is not None and best.rid in self.pending:  # (a receipt flooded is gone: no ack to wait for)
            self.inflight = best.rid
        return f

    def _custody_timeouts(self, now_ms):
        """Frames whose ack did not come: back off, count it against the
        next hop; a receipt that used its _RECEIPT_FLOOD_AFTER tries is flooded."""
        drop = None
        rerouted = False
        for rid in self.pending:
            p = self.pending[rid]
            if p.via is None or p.waiting_until > now_ms or p.fid is None:
                continue
            if p.type == ACCOUNTED and p.tries >= _RECEIPT_FLOOD_AFTER:
                # its hop never acked it: a flood along its path instead
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
                self.node_backoff_until = now_ms + (self.rng.getrandbits(16) % slots) * _BACKOFF_SLOT_MS // 2
                # routing: count it against the hop (and maybe choose another)
                rerouted = self.link_failed(p.via, now_ms) or rerouted
            p.via = None
        if rerouted and self.parent is not None and self.calm(now_ms):
            self._fall_back(now_ms)
        if drop:
            for rid in drop:
                # flooded when its turn comes (_send_custody): it waits for a
                # quiet channel in custody, as any receipt
                p = self.pending[rid]
                p.to = F.BROADCAST
                p.due_ms = now_ms

    def _fall_back(self, now_ms):
        """The parent changed after a failure (routing.link_failed) on a
        calm channel: the backoff was for the old hop, not for congestion,
        so the next frame goes to the new one soon (fast fallback), records
        spread over TX_JITTER_MS as when taken."""
        self.node_fails = 0
        self.node_backoff_until = now_ms
        for rid in self.pending:
            p = self.pending[rid]
            if p.type != ACCOUNTED and p.fid is None and p.due_ms > now_ms + TX_JITTER_MS:
                p.due_ms = now_ms + self.rng.getrandbits(16) % TX_JITTER_MS

    # -- what the link service may read (service.py) --------------------------

    def held(self, rid):
        """The record held in custody (or, at a bridge, delivered and not yet
        acked by the host) under id rid, or None."""
        e = self.journal.live.get(bytes(rid))
        return None if e is None else e[1][2:]  # journal data: origin (2) | record

    def held_ids(self):
        """Ids of every record in the journal."""
        return list(self.journal.live)

    def custody(self):
        """(records held, most it may hold)."""
        return len(self.journal.live), self.journal.max_live
