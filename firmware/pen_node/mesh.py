"""MeshNode: one LoRa node of Pen's mesh, sans-IO: the facade the drivers
(main.py, unix_node.py, medium_node.py, the simulator, the tests) use.

Pen's traffic is mostly convergecast (payments and votes to bridges) plus
broadcasts from bridges, so routing is built for that instead of flooding.
The node is four pieces, each its own module, mixed into this one class so
a driver sees one object and a frame costs no extra indirection on a 64 KB
heap:

    routing.py   parent choice from beacons (metric + link cost), route
                 solicitation
    custody.py   records held until the next hop acks them: journal, retries,
                 backoff, bundles, implicit acks
    downlink.py  what a bridge sends down: receipts along the payment's path,
                 managed floods
    lasthop.py   ScheduledNode, a MeshNode whose last hop the bridge
                 schedules (grants sized by children's backlog, acks batched
                 into grants); here only its hooks (lasthop, lh_hold_until)
    mesh.py      (here) the frame entry (on_frame), the spent set, the one
                 transmit decision (next_tx: acks, custody, beacon, floods,
                 under the duty cycle and listen-before-talk) and timers

Time, randomness, radio and storage come from outside: the caller passes
now_ms to every call, an rng with getrandbits(), and a journal.Journal. What
the node tells its driver comes out of take_events() (downlink.py: EV_RECEIPT, EV_BROADCAST).
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from pen_protocol import frame as F
from pen_protocol.identity import record_id, token_ref, USE, ACCOUNTED, VOTE_TYPES

from . import duty as D
from .custody import Custody, ANY_ROUTE, ACK_JITTER_MS, MAX_ACK_IDS
from .downlink import Downlink, REVERSE, RECEIPT_QUIET_MS, RECEIPT_MAX_LOAD_PERMILLE, RECEIPT_PATIENCE_MS, \
    RECEIPT_FORCE_GAP_MS
from .ring import IdRing
from .routing import Routing, SOLICIT_MS, BEACON_MIN_MS
from .spent import SpentSet, USED, ACCOUNTED as SPENT_ACCOUNTED

BROADCAST = F.BROADCAST
T_BUNDLE = F.T_BUNDLE
_MAX_HOPS = const(7)
_T_GRANT = const(0x23)  # lasthop.T_GRANT, T_SBUNDLE (frame.py reserves them)
_T_SBUNDLE = const(0x25)
_DEDUP = const(128)  # frame ids remembered (duplicate suppression)
_LBT_MIN_MS = const(60)
_LBT_SPREAD_MS = const(500)


class _Deferred(Exception):
    """The channel was busy: nothing was sent, try again after lbt_until."""


class MeshNode(Routing, Custody, Downlink):
    lasthop = False  # lasthop.ScheduledNode: True (its frames, T_GRANT and T_SBUNDLE, go to _lh_frame)
    lh_hold_until = 0  # lasthop.ScheduledNode: no random access uplink before this (a slot is coming)

    def __init__(self, addr, preset, journal, rng, is_bridge=False, hop_limit=_MAX_HOPS, reverse=REVERSE,
                 dedup=_DEDUP, channel_busy=None, spent_capacity=None, net_key=None):
        self.addr = addr
        self.preset = preset
        self.journal = journal
        self.rng = rng
        self.is_bridge = is_bridge
        self.hop_limit = hop_limit
        self.duty = D.DutyCycle(preset.duty_permille, preset.dwell_ms)
        # the village network secret (node config): every frame sent is sealed
        # with its tag and every frame heard must carry a right one, or it is
        # dropped before anything in it is read. None: an open mesh, frames
        # without tags (tests and simulations that do not model the key)
        self.key = F.net_key(net_key) if net_key is not None else None
        tag = F.TAG_LEN if net_key is not None else 0
        # longest frame payload the law lets one transmission carry (US915 dwell)
        self.max_payload = min(F.MAX_PAYLOAD, preset.max_frame() - F.HEADER_LEN - tag)
        # an ack naming up to MAX_ACK_IDS frames: its airtime bounds the wait for it
        self._ack_air_ms = preset.airtime_us(F.HEADER_LEN + MAX_ACK_IDS * F.FRAME_ID_LEN + tag) // 1000
        self._short_ack_air_ms = preset.airtime_us(F.HEADER_LEN + 2 * F.FRAME_ID_LEN + tag) // 1000
        self.heard = D.ChannelLoad()
        self.spent = SpentSet(spent_capacity) if spent_capacity else SpentSet()
        self.reasm = F.Reassembler()
        self._rx_hdr = F.Header(0, 0, 0, 0)  # filled by every received frame (frame.read)
        self.dedup = dedup
        # the pieces' state, set up here so the node has one constructor
        # routing.py
        self.nbr = {}  # addr -> [metric, snr_x4, heard_ms, fails | delivery estimate | stale] (routing.py)
        self.metric = 0 if is_bridge else 255
        # feasibility distance (routing._feasible): the round and the least
        # metric we advertised in it
        self.adv_metric = 0 if is_bridge else 255
        self.fd_seq = 0
        self.ask_round = False  # our next beacon asks the bridge for a new round
        self.round_asked = 0  # no new request passed on before this
        self.round_wait_until = 0  # routeless: uplink waits for a new round until this, then ANY_ROUTE
        self.parent = None
        self.beacon_seq = 0  # newest round heard (or sent, on a bridge)
        self.beacon_sent_seq = -1
        self.beacon_aired = -1  # when our last beacon went out (routing._heard_us)
        self.beacon_due = 0 if is_bridge else -1
        self.beacon_interval = BEACON_MIN_MS
        self.solicit_after = 0
        # custody.py
        self.pending = {}  # rid -> _Pending (custody, waiting to go on)
        self.by_fid = {}  # frame id -> [rid, ...] it carried (several for a bundle), for acks
        self.acks = []  # frame ids to ack, sent together
        self.ack_due = -1
        self.ack_dst = BROADCAST
        self.delivered = []  # bridge: records for the host
        # bridge: ids handed to the host (a relay never delivers: one slot, not 4 KB)
        self.delivered_ids = IdRing(dedup * 2 if is_bridge else 1, 16)
        self.inflight = None  # id of the one custody frame awaiting its ack
        self.node_fails = 0
        self.node_backoff_until = 0
        # downlink.py (bounded memories: ring.IdRing, fixed size from boot)
        self.floods = []  # [due_ms, frame, fid or a digest's first due_ms]: managed-flood relays waiting
        self.came_from = {}  # receipt rid -> neighbour that handed it to us (for handled)
        self.seen = IdRing(dedup, F.FRAME_ID_LEN)  # broadcast frame ids heard
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
        self.group = 0
        self.events = []
        self.tx_busy = False
        # listen before talk: channel_busy(now_ms) -> bool, the radio's channel
        # activity detection (SX126x CAD, command 0x94); None = always clear
        self.channel_busy = channel_busy
        # airtime a frame takes beyond the preset's preamble (frame, now_ms) -> us: a long preamble to a
        # sleeping leaf (pen_node.sleep.NodePower); the duty cycle and its dwell limit count all of it
        self.air_extra = None
        self.lbt_until = 0
        self.last_uplink_ms = -RECEIPT_QUIET_MS
        self.receipt_forced_ms = -RECEIPT_PATIENCE_MS  # when an overdue receipt last went (downlink._receipt_overdue)
        self.stats = {"tx_frames": 0, "tx_airtime_us": 0, "rx_frames": 0, "rx_bad": 0, "dup_dropped": 0,
                      "acks_sent": 0, "acks_heard": 0, "retries": 0, "refused": 0, "duty_blocked": 0,
                      "floods_relayed": 0, "floods_cancelled": 0, "delivered": 0, "custody_in": 0,
                      "reroutes": 0, "frames_handled": 0, "lbt_deferred": 0, "receipts_dropped": 0,
                      "floods_dropped": 0, "bundled": 0, "implicit_acks": 0, "bad_mac": 0,
                      "quota_refused": 0, "events_dropped": 0, "receipts_flooded": 0}
        self._recover()

    def take_events(self):
        """What happened since the last call: const-tagged tuples (downlink.py: EV_RECEIPT, EV_BROADCAST)."""
        out = self.events
        self.events = []
        return out

    # -- receiving ------------------------------------------------------------

    def on_frame(self, frame, rssi_dbm, snr_x4, now_ms):
        self.stats["rx_frames"] += 1
        self.heard.add(self.preset.airtime_us(len(frame)), now_ms)
        self.stats["frames_handled"] += 1
        if self.key is not None:
            n = F.unseal(frame, self.key)
            if n < 0:  # not sealed with the village key: nothing in it is read
                self.stats["bad_mac"] += 1
                return
            frame = memoryview(frame)[:n]
        hdr = self._rx_hdr
        i = F.read(frame, hdr)
        if type(i) is str:
            self.stats["rx_bad"] += 1
            return
        payload = memoryview(frame)[i:]
        if hdr.src == self.addr:
            return
        n = self.nbr.get(hdr.src)  # routing's record of the neighbour: SNR and when heard
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
        elif self.lasthop and (t == _T_GRANT or t == _T_SBUNDLE):
            self._lh_frame(frame, hdr, payload, snr_x4, now_ms)
        elif t < F.T_ACK or (t == T_BUNDLE and hdr.dst != BROADCAST) or t == F.T_DIGEST:
            # a bundle is custody for one next hop, never a flood: one
            # broadcast (24000005ffff000500010205) once stopped every node
            # that heard it (issue 10, item 8). A digest is flooded: downlink._on_digest
            self._on_record_frame(frame, hdr, payload, snr_x4, now_ms)
        else:
            self.stats["rx_bad"] += 1

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
            self.lbt_until = max(self.lbt_until, now_ms + 20 + ACK_JITTER_MS + self._short_ack_air_ms + _LBT_MIN_MS)
        if hdr.frag_count > 1:
            return  # custody frames are never fragmented (submit refuses what does not fit)
        if hdr.type == T_BUNDLE:
            self._on_bundle(fid, hdr, payload, for_us, now_ms)
            return
        record = F.record_of(hdr, payload)
        if record is None:  # a malformed compact USE
            self.stats["rx_bad"] += 1
            return
        self._observe(record, now_ms)
        self._passed_on(record, hdr.src)
        if not for_us:
            return
        if record[0] == ACCOUNTED:
            rid = record_id(record)
            if rid in self.pending or self.handled.get(rid) == hdr.src:
                self.stats["dup_dropped"] += 1
                self._queue_ack(fid, hdr.src, now_ms)  # our earlier ack was lost
                return
            self._on_receipt(record, rid, hdr, fid, now_ms)
            return
        if self._take_in(record, hdr.origin, hdr.src, now_ms):
            self._queue_ack(fid, hdr.src, now_ms)

    def _observe(self, record, now_ms, uplink=True):
        """Every authenticated record heard feeds the village spent set
        (spent.py: bounded, a heard spend kept KEEP_MS); a payment heard
        going up holds receipts back (RECEIPT_QUIET_MS)."""
        t = record[0]
        if t == USE and uplink:
            self.last_uplink_ms = now_ms
        if t == USE or t == ACCOUNTED:
            ref = token_ref(record)
            if ref is not None:
                self.spent.add(ref, SPENT_ACCOUNTED if t == ACCOUNTED else USED, now_ms)

    # -- transmitting ---------------------------------------------------------

    def _priority(self, rtype):
        # payments first; a receipt can wait (the store still holds the
        # payment and its state is "sent"), and must never starve the acks
        # that move payments on
        if rtype == USE:
            return D.P_PAYMENT
        if rtype == ACCOUNTED:
            # receipts before publications (90 % of the duty budget, with
            # votes and beacons): a bridge's receipts are capped by its budget
            # (0.59 s each at SF9), and at 70 % they were ~255 of 392 back at
            # 400 payments/h, at 90 % ~340. Acks keep the last 10 %, and as
            # receipts yield to payments on a busy channel their spending is
            # spread over the hour, so the budget frees faster than acks need
            # it (measured: the same capacity). Before receipts waited for a
            # calm channel, 90 % had capped the village at 495/h
            return D.P_VOTE
        if rtype in VOTE_TYPES:
            return D.P_VOTE
        return D.P_BULK

    def _try_send(self, frame, priority, now_ms, lbt=True):
        if self.key is not None:
            frame = F.seal(frame, self.key)
        air = self.preset.airtime_us(len(frame))
        if self.air_extra is not None:
            air += self.air_extra(frame, now_ms)
        if not self.duty.allows(air, now_ms, priority):
            self.stats["duty_blocked"] += 1
            return None
        if lbt and self.channel_busy is not None and self.channel_busy(now_ms):
            # someone is on air: back off a random few slots, then look again
            self.lbt_until = now_ms + _LBT_MIN_MS + self.rng.getrandbits(16) % _LBT_SPREAD_MS
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
        # acks first (custody moves on only when they arrive), then custody
        # records, our beacon, managed-flood relays
        f = self._ack_tx(now_ms)
        if f is None:
            f = self._custody_tx(now_ms)
        if f is None:
            f = self._beacon_tx(now_ms)
        if f is None:
            f = self._flood_tx(now_ms)
        return f

    def on_tx_done(self, now_ms):
        self.tx_busy = False

    def tick(self, now_ms):
        """Timers: routes that failed, beacons to start. Called by the driver
        before next_tx (next_tx calls it too)."""
        self._custody_timeouts(now_ms)

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
                if self.parent is None and p.type != ACCOUNTED:
                    due = max(due, self.round_wait_until)  # routeless: waiting for a new round
                if p.type == ACCOUNTED:
                    due = max(due, self.last_uplink_ms + RECEIPT_QUIET_MS)
                    if busy is None:
                        busy = self.heard.permille(now_ms) >= RECEIPT_MAX_LOAD_PERMILLE
                    if busy:
                        # when a load bucket expires, or its patience ends (downlink._receipt_overdue)
                        due = max(due, min(now_ms + 10000, max(p.since + RECEIPT_PATIENCE_MS,
                                                               self.receipt_forced_ms + RECEIPT_FORCE_GAP_MS)))
                else:
                    due = max(due, self.lh_hold_until)  # a slot is coming (lasthop.py)
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
