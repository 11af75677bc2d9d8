"""A last hop the bridge schedules (issue 15, item 4), for MeshNode.

Near a bridge every payment converges, and random access there loses to
hidden terminals (two children that cannot hear each other both hear the
bridge) and to the bridge's own duty cycle (one ack frame per payment:
3,600 s x 10 % / 0.144 s = 2,493 payments/h at SF9). So a bridge that
schedules (MeshNode(..., lasthop=True)) works in cycles:

    GRANT | slot | slot | ... | contention window | GRANT | ...

- Children say their backlog in what they send anyway: a child whose parent
  is a bridge (it advertises metric 0) and that holds more than it sends
  sends its custody frame as a T_SBUNDLE, a bundle whose first byte is the
  records it still holds for that parent after this frame (frame.T_SBUNDLE);
  with nothing more to tell, the plain frame.
- The bridge grants transmit slots sized by that backlog (in units of one
  payment frame's airtime: a child granted k units sends as many frames as
  fit, bundles of two payments in two units), round robin by when each
  child was served last, at most MAX_GRANT_UNITS a cycle, and in the same grant
  acks every frame it took in the last cycle's slots (one frame for many
  fids instead of one ack frame each), naming them again in the next grant
  (a grant lost at a child is repaired by the next one).
- A grant is a reservation for everyone who hears it: until its last slot
  ends, no node that heard it starts a frame but the slot's owner, in its
  slot (acks excepted, as always): the hidden terminals at the bridge vanish
  for as far as the grant is heard.
- Robustness: custody is released only by an ack naming the frame's id, from
  the node it was sent to (a grant from anyone else, or without the village
  MAC, changes nothing). A child that has told its backlog waits for a slot
  at most GRANT_WAIT_MS after its last grant, then falls back to random
  access; a bridge whose grant went unused (the child missed it) forgets
  that child's backlog until it reports again. A slot frame the next grant
  does not ack was lost: it goes again at once (at least once, never a
  guess that releases). Random access stays for joins, stragglers and
  children of a bridge that does not schedule.
- Children busy with their own children are not starved: a relay's backlog
  includes its children's records, and its acks to them are never held back.

Bounded: MAX_KIDS children (the least recently heard forgotten), at most
_MAX_GRANT_ACKS frame ids batched and as many repeated, a grant at most
1 + 8 x 3 + 16 x 4 = 89 bytes of payload.

ScheduledNode is a MeshNode that does all this (a bridge schedules, a child
is scheduled); MeshNode itself keeps only the hooks (a few lines), so a node
that does not schedule carries none of this module's bytecode on its heap
(main.py's import is held under 72 KB: tests/firmware/test_board.py).
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from pen_protocol import frame as F
from pen_protocol.identity import ACCOUNTED

from . import duty as D
from .custody import Custody
from .mesh import MeshNode

GUARD_MS = const(40)  # between a grant's end and the first slot, and in every slot: radio turnaround
CW_MS = const(2000)  # after the slots, before the next grant: random access (joins, stragglers, beacons)
MAX_GRANT_UNITS = const(12)  # slot units a cycle: a cycle is at most ~10 s at SF9 (p95 target 30 s)
_MAX_KID_UNITS = const(8)  # units one child gets a cycle
_UNIT_RECORD = const(89)  # a slot unit carries the longest USE record (12-digit ids) as a T_SBUNDLE
MAX_KIDS = const(16)  # children whose backlog the bridge keeps
_MAX_GRANT_ACKS = const(12)  # frame ids a grant acks (a cycle's slot frames at most)
_MAX_REPEATS = const(6)  # and ids of the grant before, named once more
_MAX_SLOT_FIDS = const(8)
_SKIPS = const(3)  # grants that leave a waiting child out before it stops waiting for them
_BACKLOG_MAX = const(127)
GRANT_WAIT_MS = const(15000)  # a child that told its backlog waits this long for a slot, then random access
T_GRANT = const(0x23)  # frame.py reserves the types and says their layout
T_SBUNDLE = const(0x25)
_GRANT_ENTRY = const(3)  # child addr (2) | units (1)
_SLOT_FLAG = const(0x80)  # a T_SBUNDLE's flags: sent in its slot (frame.py has the layout)
_GRANT_MAX_PAYLOAD = const(109)  # 1 + MAX_GRANT_UNITS x GRANT_ENTRY + (12 + 6) x FRAME_ID_LEN


def grant_frame(entries, ids, src):
    """A bridge's grant (T_GRANT, broadcast, one hop): entries [(child addr,
    units), ...] in slot order, then the frame ids it acks (batched: every
    frame it took in the slots since its last grant)."""
    n = len(entries)
    if n > 255 or 1 + n * _GRANT_ENTRY + len(ids) * F.FRAME_ID_LEN > F.MAX_PAYLOAD:
        raise F.FrameError("bad-grant")
    out, i = F.frame_buffer(F.Header(T_GRANT, src, F.BROADCAST, src, 0, 0), 1 + n * _GRANT_ENTRY + len(ids) * F.FRAME_ID_LEN)
    out[i] = n
    i += 1
    for a, k in entries:
        if not 1 <= k <= 255:
            raise F.FrameError("bad-grant")
        out[i] = a >> 8
        out[i + 1] = a & 255
        out[i + 2] = k
        i += _GRANT_ENTRY
    for fid in ids:
        out[i:i + F.FRAME_ID_LEN] = fid
        i += F.FRAME_ID_LEN
    return bytes(out)


def grant_acks_at(payload):
    """Where a grant's acked frame ids start (entry j is at 1 + 3 j, the
    ids from the returned index, 4 bytes each), or the reason it is not a
    grant (a str: the bytes came from the air). Read in place, no copy."""
    n = len(payload)
    if n < 1:
        return "truncated"
    i = 1 + payload[0] * _GRANT_ENTRY
    if i > n:
        return "truncated"
    if (n - i) % F.FRAME_ID_LEN or (i == 1 and n == 1):
        return "bad-grant"
    for j in range(1, i, _GRANT_ENTRY):
        if payload[j + 2] == 0:
            return "bad-grant"
    return i



def sbundle(frame, flags):
    """A T_SBUNDLE from a T_BUNDLE frame: the same header with its type, then
    the flags byte (_SLOT_FLAG | backlog), then the bundle's entries. A copy,
    once a custody frame to a scheduling bridge: bundle_frame itself stays
    the only writer of entries (and MeshNode's heap keeps none of this)."""
    out = bytearray(len(frame) + 1)
    out[0:F.HEADER_LEN] = frame[0:F.HEADER_LEN]
    out[0] = T_SBUNDLE
    out[F.HEADER_LEN] = flags
    out[F.HEADER_LEN + 1:] = frame[F.HEADER_LEN:]
    return out


class ScheduledNode(MeshNode):
    """A MeshNode whose last hop is scheduled: as a bridge it grants slots,
    as a bridge's child it uses them. Same arguments as MeshNode."""

    lasthop = True

    def __init__(self, *args, **kw):
        MeshNode.__init__(self, *args, **kw)
        tag = F.TAG_LEN if self.key is not None else 0
        self.stats["grants"] = 0
        self.stats["slot_frames"] = 0
        self.stats["batched_acks"] = 0
        self.lh_kids = {}  # scheduler: child addr -> [backlog, heard_ms, served_ms, granted and unused]
        self.lh_acks = []  # scheduler: frame ids taken in slots since the last grant
        self.lh_prev = []  # scheduler: the last grant's ids, named once more
        self.lh_open = False  # scheduler: our last grant had slots (a grant closes them)
        self.lh_flags = -1  # the T_SBUNDLE being taken: its flags byte (its ack may wait for our grant)
        self.lh_sched_end = 0  # when the last schedule heard (or sent) ends
        self.lh_slot_from = 0
        self.lh_slot_until = 0
        self.lh_slot_left = 0  # nonzero while our slot is open
        self.lh_slot_fids = []  # child: frames sent in our last slot (the next grant acks them)
        self.lh_skips = 0
        self.lh_told = 0  # the backlog the random-access frame being built tells (_companions)
        self.lh_hold_until = 0
        p = self.preset
        self.lh_slot_ms = p.airtime_us(F.HEADER_LEN + 1 + F.BUNDLE_ENTRY + _UNIT_RECORD + tag) // 1000 + GUARD_MS
        # a whole cycle at its longest: the wait for the grant that acks a slot frame
        self.lh_cycle_ms = p.airtime_us(F.HEADER_LEN + _GRANT_MAX_PAYLOAD + tag) // 1000 + GUARD_MS + \
            MAX_GRANT_UNITS * self.lh_slot_ms + CW_MS
        self.lh_tag = tag

    # -- MeshNode's hooks ----------------------------------------------------

    def _lh_frame(self, frame, hdr, payload, snr_x4, now_ms):
        """A T_GRANT or a T_SBUNDLE (authenticated: on_frame checked its tag)."""
        if hdr.type == T_GRANT:
            self._on_grant(hdr, payload, now_ms)
            return
        if hdr.dst == F.BROADCAST or len(payload) < 2:
            self.stats["rx_bad"] += 1
            return
        flags = payload[0]
        if self.is_bridge and hdr.dst == self.addr:
            self._lh_kid(hdr.src, flags, now_ms)
        # a bundle after its flags byte (the frame id is the whole frame's)
        hdr.type = F.T_BUNDLE
        self.lh_flags = flags
        try:
            self._on_record_frame(frame, hdr, payload[1:], snr_x4, now_ms)
        finally:
            self.lh_flags = -1

    def _queue_ack(self, fid, to, now_ms):
        """Inside our own schedule no ack goes out of turn (it would talk
        over a slot at our own receiver: the sender offers it again and the
        duplicate is acked); a frame sent in its slot is acked in our next grant."""
        if self.is_bridge:
            if self.lh_flags >= 0 and self.lh_flags & _SLOT_FLAG and self._lh_batch(fid):
                return
            if now_ms < self.lh_sched_end:
                return
        Custody._queue_ack(self, fid, to, now_ms)

    def _companions(self, p, dst, now_ms):
        """Random access to a scheduling bridge: when we hold more than this
        frame carries, it goes as a T_SBUNDLE telling our backlog (a bundle,
        even of one; _bundle_frame below). With nothing to tell, the plain
        frame (a payment alone in compact form, 96 B, not 104 as a bundle of
        one; at 200 payments/h this made seeds 1, 4, 5 the same as random
        access, 99.5, 100, 98.1 % on time, where the bundle of one had 100,
        96.6, 89.4 %)."""
        group = Custody._companions(self, p, dst, now_ms)
        self.lh_told = 0
        if p.type != ACCOUNTED and self._lh_sched_parent(dst):
            self.lh_told = self._lh_backlog(len(group) if group else 1)
            if self.lh_told:
                return group or [p]
        return group

    def _bundle_frame(self, group, dst):
        f = Custody._bundle_frame(self, group, dst)
        if not self.lh_told:
            return f
        sb = sbundle(f, self.lh_told)
        if len(sb) > self.max_payload + F.HEADER_LEN:  # its byte would pass the dwell limit
            self.lh_told = 0
            return f
        return sb

    def _send_custody(self, p, now_ms):
        f = Custody._send_custody(self, p, now_ms)
        if f is not None and self.lh_told:  # a slot is coming: no random access for uplink until then (or a bound)
            self.lh_hold_until = now_ms + GRANT_WAIT_MS
        self.lh_told = 0
        return f

    def _next_tx(self, now_ms):
        if self.tx_busy:
            return None
        acks = self.acks and now_ms >= self.ack_due
        if self.lh_slot_left and now_ms >= self.lh_slot_from:
            self.tick(now_ms)
            f = self._ack_tx(now_ms) if acks else None
            return f if f is not None else self._slot_tx(now_ms)  # the frame that goes inside a reservation
        if now_ms >= self.lbt_until or acks:
            self.tick(now_ms)
            f = self._ack_tx(now_ms)
            if f is None and now_ms >= self.lbt_until:
                f = self._grant_tx(now_ms)
            if f is not None:
                return f
        return MeshNode._next_tx(self, now_ms)

    def next_wakeup_ms(self, now_ms):
        t = MeshNode.next_wakeup_ms(self, now_ms)
        g = self._grant_due()
        if g >= 0:
            t = min(t, max(g, self.lbt_until, now_ms + 1))
        if self.lh_slot_left:  # our slot comes through any reservation
            t = min(t, max(self.lh_slot_from, now_ms + 1))
        return t

    def _lh_sched_parent(self, dst):
        """True when custody frames to dst go as T_SBUNDLE: we schedule, and
        dst is our parent and a bridge (it advertises metric 0)."""
        if dst != self.parent:
            return False
        n = self.nbr.get(dst)
        return n is not None and n[0] == 0

    def _lh_backlog(self, sending):
        """Uplink records we hold and are not sending now or awaiting an ack for."""
        k = 0
        for rid in self.pending:
            q = self.pending[rid]
            if q.type != ACCOUNTED and q.fid is None:
                k += 1
        return min(max(k - sending, 0), _BACKLOG_MAX)

    # -- the scheduler (a bridge) --------------------------------------------

    def _lh_kid(self, src, flags, now_ms):
        """A T_SBUNDLE from child src: its backlog (bounded table: MAX_KIDS)."""
        k = self.lh_kids.get(src)
        if k is None:
            if len(self.lh_kids) >= MAX_KIDS:
                self._lh_forget()
            k = [0, now_ms, 0, 0]
            self.lh_kids[src] = k
        k[0] = flags & _BACKLOG_MAX
        k[1] = now_ms
        if flags & _SLOT_FLAG:
            k[3] = 0  # it used its slot

    def _lh_batch(self, fid):
        """A slot frame we hold whole: its ack waits for our next grant
        (True), unless a cycle's worth are batched already (an insider's
        frames: acked now, the list stays bounded)."""
        if fid in self.lh_acks:
            return True
        if len(self.lh_acks) >= _MAX_GRANT_ACKS:
            return False
        self.lh_acks.append(fid)
        self.stats["batched_acks"] += 1
        return True

    def _lh_forget(self):
        old = None
        for a in self.lh_kids:
            if old is None or self.lh_kids[a][1] < self.lh_kids[old][1]:
                old = a
        del self.lh_kids[old]

    def _grant_due(self):
        """When our next grant goes: a contention window after the last
        schedule, if a child has told us a backlog, a slot frame awaits its
        ack, or the last schedule had slots (a closing grant: children learn
        at once which slot frames were lost, instead of waiting out a cycle)."""
        if not self.is_bridge:
            return -1
        if not self.lh_acks and not self.lh_open:
            for a in self.lh_kids:
                if self.lh_kids[a][0]:
                    break
            else:
                return -1
        return self.lh_sched_end + CW_MS

    def _grant_tx(self, now_ms):
        due = self._grant_due()
        if due < 0 or now_ms < due:
            return None
        kids = self.lh_kids
        for a in kids:  # granted last cycle and silent: it missed the grant, it reports again
            if kids[a][3]:
                kids[a][0] = 0
                kids[a][3] = 0
        want = [a for a in kids if kids[a][0] > 0]
        want.sort(key=lambda a: kids[a][2])  # round robin: served longest ago first
        entries = []
        left = MAX_GRANT_UNITS
        for a in want:
            k = min(kids[a][0], _MAX_KID_UNITS, left)
            if k <= 0:
                break
            entries.append((a, k))
            left -= k
        ids = self.lh_acks + [i for i in self.lh_prev if i not in self.lh_acks][:_MAX_REPEATS]
        frame = grant_frame(entries, ids, self.addr)
        f = self._try_send(frame, D.P_PAYMENT, now_ms)  # listens first (raises mesh._Deferred when busy)
        if f is None:  # the law holds it back: try again after a contention window
            self.lh_sched_end = now_ms
            return None
        slots = MAX_GRANT_UNITS - left
        self.lh_sched_end = now_ms + self.preset.airtime_us(len(f)) // 1000 + GUARD_MS + slots * self.lh_slot_ms
        self.lbt_until = max(self.lbt_until, self.lh_sched_end)
        for a, k in entries:
            e = kids[a]
            e[0] -= k
            e[2] = now_ms
            e[3] = 1
        self.lh_prev = self.lh_acks
        self.lh_acks = []
        self.lh_open = bool(entries)
        self.stats["grants"] += 1
        return f

    # -- a child -------------------------------------------------------------

    def _on_grant(self, hdr, payload, now_ms):
        """A grant heard: its air is reserved (everyone); from our parent,
        its acks and our slot."""
        i = grant_acks_at(payload) if hdr.dst == F.BROADCAST else "not-broadcast"
        if type(i) is str:
            self.stats["rx_bad"] += 1
            return
        off = GUARD_MS
        at = 0
        mine = 0
        for j in range(1, i, _GRANT_ENTRY):
            k = payload[j + 2]
            if (payload[j] << 8) | payload[j + 1] == self.addr:
                at = off
                mine = k
            off += k * self.lh_slot_ms
        end = now_ms + off
        self.lbt_until = max(self.lbt_until, end)  # the scheduler's air, until its last slot ends
        if hdr.src != self.parent or self.is_bridge:
            return
        self.lh_sched_end = end
        src = hdr.src
        for j in range(i, len(payload), F.FRAME_ID_LEN):
            fid = bytes(payload[j:j + F.FRAME_ID_LEN])
            rids = self.by_fid.get(fid)
            if rids:
                p = self.pending.get(rids[0])
                if p is not None and p.via == src:  # acked by the node we sent it to, only
                    self._acked(fid, src)
        for fid in self.lh_slot_fids:  # sent in our last slot, not acked by the grant after it: lost
            rids = self.by_fid.get(fid)
            if rids:
                for rid in rids:
                    p = self.pending.get(rid)
                    if p is not None:
                        p.waiting_until = now_ms
        self.lh_slot_fids = []
        if mine:
            self.lh_slot_from = now_ms + at
            self.lh_slot_until = self.lh_slot_from + mine * self.lh_slot_ms
            self.lh_slot_left = mine
            self.lh_skips = 0
            self.lh_hold_until = max(self.lh_hold_until, end + CW_MS + self.lh_cycle_ms)
        elif now_ms < self.lh_hold_until and self.lh_skips < _SKIPS:
            self.lh_skips += 1  # left out this cycle (others first): keep waiting, a bounded number of times
            self.lh_hold_until = max(self.lh_hold_until, end + CW_MS + self.lh_cycle_ms)

    def _slot_tx(self, now_ms):
        """In our slot: the records for our parent, payments first, in
        T_SBUNDLEs that fit the slot's time left, acked by the next grant;
        no listening first (the slot is ours)."""
        dst = self.parent
        left_ms = self.lh_slot_until - now_ms - GUARD_MS
        if left_ms <= 0 or dst is None:
            self.lh_slot_left = 0
            return None
        group = None
        room = self.max_payload - 1
        p = self.preset
        for pri in (D.P_PAYMENT, D.P_VOTE, D.P_BULK):
            for rid in self.pending:
                q = self.pending[rid]
                if q.type == ACCOUNTED or q.fid is not None or self._priority(q.type) != pri:
                    continue
                need = F.BUNDLE_ENTRY + 1 + len(q.frame_body)
                if need <= room and p.airtime_us(F.HEADER_LEN + self.max_payload - room + need + self.lh_tag) \
                        // 1000 <= left_ms:
                    group = group or []
                    group.append(q)
                    room -= need
        if group is None:
            self.lh_slot_left = 0
            return None
        backlog = self._lh_backlog(len(group))
        self.lh_told = 0
        frame = sbundle(self._bundle_frame(group, dst), _SLOT_FLAG | backlog)
        f = self._try_send(frame, D.P_PAYMENT, now_ms, False)
        if f is None:
            self.lh_slot_left = 0
            return None
        self.stats["slot_frames"] += 1
        # acked by the grant after this schedule, or (that one lost) by the next
        fid = F.frame_id(frame)
        self._sent(group, fid, dst, self.lh_sched_end + CW_MS + 2 * self.lh_cycle_ms, now_ms)
        self.inflight = group[0].rid
        if len(self.lh_slot_fids) < _MAX_SLOT_FIDS:
            self.lh_slot_fids.append(fid)
        if backlog:
            self.lh_hold_until = max(self.lh_hold_until, self.lh_sched_end + CW_MS + self.lh_cycle_ms)
        return f
