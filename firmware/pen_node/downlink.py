"""Downlink for MeshNode: what a bridge sends into the mesh.

- Receipts (ACCOUNTED) go back down the path the payment came up: each relay
  remembers which child handed it the payment's token, hop by hop with acks
  (custody, not journalled); a node that lost that memory keeps the receipt
  (the store can ask SPENT); a receipt is never flooded.
- Receipt digests (T_DIGEST, pen_protocol/digest.py: up to 14 accounted
  payments under one CTB node signature) are broadcast and relayed only by
  nodes that passed one of the named payments up (their reverse ring): the
  payments' paths as one tree. Every node that hears one adds the refs to
  its spent set; an origin tells its store (EV_RECEIPT with the digest's
  bytes; the store verifies the signature).
- Everything else (openings, publications) is managed flooding:
  duplicate suppression and a contention window scaled by SNR (far nodes,
  with low SNR, relay first), cancelled when a neighbour is heard relaying.

A mixin of mesh.MeshNode (the facade, whose constructor sets up its state).
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from pen_protocol import frame as F
from pen_protocol.identity import record_id, token_ref, ACCOUNTED

from .custody import _Pending, TX_JITTER_MS
from .routing import SF_FLOOR_X4
from .spent import ACCOUNTED as SPENT_ACCOUNTED

REVERSE = const(256)  # token ref -> child that handed us the payment
# Events: what a MeshNode tells its driver (take_events): const-tagged tuples, the
# tag first, as micropython-lib's drivers report events (no classes to load,
# no strings to compare).
#
#     (EV_RECEIPT, token ref, record, verified)
#         an ACCOUNTED receipt for a payment submitted at this node came back,
#         or a digest naming it (record: the digest's bytes, first byte T_DIGEST).
#         verified is always False from a node: it cannot check Ed25519 in
#         time (0.5-1.3 s an ESP32), so the store side verifies the record
#         against the CTB node's key before it believes it (docs/mesh.md).
#     (EV_BROADCAST, record)
#         a flooded record (opening, publication...) reached this node.
EV_RECEIPT = const(1)
EV_BROADCAST = const(2)
_MAX_EVENTS = const(16)  # events waiting for take_events at most (_event)
_CONTENTION_MS = const(600)
# managed-flood relays waiting for their slot; floods are best effort and wait
# behind custody traffic, so under load the oldest is dropped rather than let
# the queue (a frame each, ~110 B) eat the heap
MAX_FLOODS = const(8)  # managed-flood window at the weakest SNR
# a receipt goes down only when no payment went up through here for this
# long: under load, receipts wait (the bridge PC and the CTB keep them) and
# the air is left to payments
RECEIPT_QUIET_MS = const(3000)
# and only while the channel sounded less busy than this over the last
# minute: at the bridge, where every payment converges, a 0.6 s receipt per
# payment doubles the airtime; under load receipts wait (a store that needs
# the answer now asks SPENT) and payments get the air
RECEIPT_MAX_LOAD_PERMILLE = const(120)
# but a receipt held this long at one hop goes at the next quiet moment
# (RECEIPT_QUIET_MS) whatever the channel load: near a bridge the channel
# sounds 15-35 % busy even at 200 payments/h, and receipts waited there for
# one calm minute past their 10 minutes (seeds 7-8 at 200/h: 6 receipts late).
# One such receipt per RECEIPT_FORCE_GAP_MS at most: every held receipt
# going after its minute took a loaded village's air (400 payments/h, seeds
# 1-10: 298 payments late, the worst village 58 % on time; 59 and 96 % with
# one per 20 s)
RECEIPT_PATIENCE_MS = const(60000)
RECEIPT_FORCE_GAP_MS = const(20000)
# A digest's relay waits for a quiet moment as a custody receipt does, and
# goes when overdue as one does (dropped at once, 444 of 781 relays were lost
# at 400 payments/h, seed 1), in the bounded flood queue (MAX_FLOODS)


class Downlink:
    def broadcast(self, record, now_ms):
        """Bridge: send a record into the mesh. Receipts go back along the
        payment's path (custody), never flooded; a receipt digest (T_DIGEST)
        and everything else by managed flooding.
        False, and nothing queued, while the flood or custody queue is full:
        the air (duty cycle) is slower than the PC, which keeps the record
        and offers it again, instead of the node's heap filling up."""
        if len(self.floods) >= MAX_FLOODS or len(self.pending) >= self.journal.max_live:
            return False
        record = bytes(record)
        # a digest is overdue at once at the bridge (its first due is a
        # patience ago), where receipts waited past their 10 minutes for a
        # calm that never came
        since = now_ms - RECEIPT_PATIENCE_MS
        if record[0] == F.T_DIGEST and not (self._receipts_may_go(now_ms) or self._receipt_overdue(since, now_ms)):
            # receipts yield to payments here, where every payment converges
            # (RECEIPT_QUIET_MS, RECEIPT_MAX_LOAD_PERMILLE): the PC keeps the
            # digest's receipts and offers them again
            return False
        if record[0] == ACCOUNTED:
            ref = token_ref(record)
            child = self.rev.get(ref) if ref is not None else None
            if child is not None:
                # not journalled: the bridge PC keeps the receipt until the CTB
                # has it, so the bridge node's small journal stays for payments
                rid = record_id(record)
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
        for f in F.fragment(record, self.addr, F.BROADCAST, self.addr, self.group, self.hop_limit):
            self._remember(F.frame_id(f))
            # a digest has no fid to cancel it by: its third field is when it
            # was first due (_flood_tx)
            self.floods.append([now_ms + self.rng.getrandbits(16) % 200, f, since if record[0] == F.T_DIGEST else None])
        return True

    def _remember(self, fid):
        if fid in self.seen:
            return False
        self.seen.put(fid)
        return True

    def _remember_child(self, ref, child):
        self.rev.put(ref, child)

    def _on_receipt(self, record, rid, hdr, fid, now_ms):
        ref = token_ref(record)
        if ref is not None and ref in self.originated:
            self.originated.remove(ref)
            self._event((EV_RECEIPT, ref, record, False))
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
        record = None
        if hdr.type == F.T_DIGEST:
            # a receipt digest, authenticated by the village tag, not by the
            # CTB node's signature (0.5-1.3 s of Ed25519 an ESP32): only its
            # shape is read; a malformed one is neither believed nor relayed
            n = F.digest_entries(payload) if hdr.frag_count == 1 else "fragmented"
            if type(n) is str:
                self.stats["rx_bad"] += 1
                return
        if not self._remember(fid):
            self.stats["dup_dropped"] += 1
            return
        if hdr.type == F.T_DIGEST:
            if not self._digest_in(payload, n, now_ms):
                return
        elif hdr.frag_count > 1:
            record = self.reasm.add(hdr, payload)  # None until every fragment is in
        else:
            record = F.record_of(hdr, payload)
            if record is None:  # a malformed compact USE: not relayed either
                self.stats["rx_bad"] += 1
                return
        if record is not None:
            self._observe(record, now_ms, False)
            if record[0] == ACCOUNTED:
                ref = token_ref(record)
                if ref is not None and ref in self.originated:
                    self.originated.remove(ref)
                    self._event((EV_RECEIPT, ref, record, False))
                    return  # it was for us: relaying it further helps no one
                child = self.rev.get(ref) if ref is not None else None
                if child is not None:
                    # a receipt is flooded (one hop and its neighbours' relays)
                    # only past a hop that never acked it (custody.
                    # _RECEIPT_FLOOD_AFTER): a node that passed its payment up
                    # carries it on down its path by custody, as if handed it
                    rid = record_id(record)
                    if rid not in self.pending and rid not in self.handled and \
                            len(self.pending) < self.journal.max_live:
                        self.pending[rid] = _Pending(rid, ACCOUNTED, record[1:], hdr.origin,
                                                     now_ms + self.rng.getrandbits(16) % TX_JITTER_MS, child)
                    return
            else:
                self._event((EV_BROADCAST, record))
        if hdr.hop_limit > 0 and not self.is_bridge:
            if len(self.floods) >= MAX_FLOODS:
                del self.floods[0]
                self.stats["floods_dropped"] += 1
            relay = F.relay(frame, self.addr, F.BROADCAST)
            # SNR-scaled contention: the weaker we heard it, the farther we are, the sooner we go
            margin = max(0, min(40, (snr_x4 - SF_FLOOR_X4.get(self.preset.sf, -50)) // 4))
            wait = 50 + margin * _CONTENTION_MS // 40 + self.rng.getrandbits(16) % 200
            # a digest's relay is not cancelled by a neighbour's (no fid kept): only
            # nodes with the named payments' children relay one, and a sibling
            # relaying it for its own children does not reach ours
            self.floods.append([now_ms + wait, relay, now_ms + wait if hdr.type == F.T_DIGEST else fid])

    def _digest_in(self, payload, n, now_ms):
        """A receipt digest heard for the first time, its n entries read in
        place. Each ref goes into the spent set; a payment submitted here
        raises EV_RECEIPT with the whole digest for the store to verify. The
        ref stays in `originated`: a sealed forgery (an insider) must not
        stop the real receipt that may follow. True when it is to be
        relayed: only by nodes on the named payments' paths (their reverse
        ring), since a flood through every node cost the village's air at
        load. (A unicast digest never gets here: record_of refuses a
        control type, rx_bad.)"""
        below = False
        raw = None  # the whole digest for the store, made once if one is ours
        for i in range(n):
            ref = bytes(payload[8 + 12 * i:16 + 12 * i])  # kid, time, then (ref 8, USE id prefix 4) each
            self.spent.add(ref, SPENT_ACCOUNTED, now_ms)
            if ref in self.originated:
                if raw is None:  # one allocation: a 64 KB heap fragments on the pair a concatenation makes
                    raw = bytearray(len(payload) + 1)
                    raw[0] = F.T_DIGEST
                    raw[1:] = payload
                self._event((EV_RECEIPT, ref, raw, False))
            if not below and self.rev.get(ref) is not None:
                below = True
        return below

    def _event(self, ev):
        """Queue an event for the driver (take_events). Bounded: a driver that
        does not take them (a flood of broadcasts no one asked for) costs at
        most _MAX_EVENTS of heap; the oldest go first, counted."""
        if len(self.events) >= _MAX_EVENTS:
            del self.events[0]
            self.stats["events_dropped"] += 1
        self.events.append(ev)

    def _receipt_overdue(self, since_ms, now_ms):
        """A receipt (a custody one, or a digest) held here since since_ms
        has waited RECEIPT_PATIENCE_MS: it goes once no payment went up
        through here for RECEIPT_QUIET_MS, busy or not (one per
        RECEIPT_FORCE_GAP_MS: custody._send_custody and _flood_tx note when)."""
        return now_ms - since_ms >= RECEIPT_PATIENCE_MS and now_ms - self.last_uplink_ms >= RECEIPT_QUIET_MS and \
            now_ms - self.receipt_forced_ms >= RECEIPT_FORCE_GAP_MS

    def _receipts_may_go(self, now_ms):
        return now_ms - self.last_uplink_ms >= RECEIPT_QUIET_MS and \
            self.heard.permille(now_ms) < RECEIPT_MAX_LOAD_PERMILLE

    def _flood_tx(self, now_ms):
        """The first managed-flood relay whose slot has come, if the law and
        the channel let it go."""
        for i in range(len(self.floods)):
            due, frame, since = self.floods[i]  # since: a digest's first due (broadcast, _on_broadcast)
            if due > now_ms:
                continue
            digest = frame[0] == F.T_DIGEST
            if digest and not (self._receipts_may_go(now_ms) or self._receipt_overdue(since, now_ms)):
                # receipts yield to payments going up through here: the relay
                # waits in the bounded flood queue, whose oldest goes when a
                # new one finds it full (_on_broadcast)
                self.floods[i][0] = now_ms + 1000
                continue
            # a digest is receipts: their share of the budget (90 %)
            f = self._try_send(frame, self._priority(ACCOUNTED if digest else frame[0]), now_ms)
            if f is None:
                self.floods[i][0] = now_ms + 1000
                break
            del self.floods[i]
            self.stats["floods_relayed"] += 1
            if digest and not self._receipts_may_go(now_ms):
                self.receipt_forced_ms = now_ms  # an overdue receipt (_receipt_overdue)
            return f
        return None
