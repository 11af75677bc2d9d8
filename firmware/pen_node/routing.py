"""Routing for MeshNode: which neighbour is this node's parent towards a
bridge, learnt from beacons (T_BEACON: sequence, metric, parent, flags, and
whom the sender hears how well: "I heard you") and from how our own frames
to each neighbour fare (acks both ways).

Bridges send beacons (trickle: 15 s doubling to 20 min). Each node keeps its
neighbours' advertised metric, the SNR it hears them at and, once it has
sent them frames, a delivery estimate from their acks (an ETX both ways:
our frame must reach them and their ack must reach us). It picks as parent
the feasible neighbour with the lowest metric + link cost, and advertises
its own metric once per beacon sequence. A node with no route asks for one
(a metric-255 beacon) instead of waiting for the next round.

Why acks and not only beacons: links are not symmetric (shadowing differs
each way by several dB; Meshtasticator draws it per direction, sigma 3 dB).
A parent chosen by the beacons we hear may not hear us at all. In the
50-node simulated villages 42-46 % of linked pairs work one way only, and
before this estimate 7-20 % of payments at 200/h were late, stuck retrying
a parent that never acked them.

A mixin of mesh.MeshNode (the facade, whose constructor sets up its state)
and told by custody of every frame a neighbour acked (link_acked) or left
unacked (link_failed).
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from pen_protocol import frame as F

from . import duty as D

# A parent failing PARENT_FAILS times in a row and not heard for
# PARENT_QUIET_MS is gone (rebooting, moved, dead) and no candidate until it
# is heard again; one still heard is judged by its delivery estimate below.
PARENT_FAILS = const(4)
PARENT_QUIET_MS = const(30000)
BEACON_MIN_MS = const(15000)
# A node with no route that hears a neighbour offer a record to ANY_ROUTE
# asks for routes itself, at most this often: it sends a beacon with metric
# 255 and any neighbour with a route (a bridge too) answers with its own
# beacon soon, instead of the routeless pair waiting for the bridge's next
# round (up to _BEACON_MAX_MS; a rebooted relay and its rebooted child once
# waited 90 min when the round's beacons were lost)
SOLICIT_MS = const(60000)
_BEACON_MAX_MS = const(1200000)
_MAX_NEIGHBOURS = const(32)  # neighbours remembered (a village node hears a dozen or two)
_ROUTE_TTL_MS = const(3600000)  # a neighbour not heard for an hour is forgotten
SF_FLOOR_X4 = {7: -30, 8: -40, 9: -50, 10: -60, 11: -70, 12: -80}  # demodulation floor, dB x4

# Delivery estimate per neighbour: the share of our unicast frames it acked
# (explicitly, or implicitly by passing the record on), Q_ONE = all of them.
# An exponentially weighted average with gain 1 / 2^_Q_GAIN_SHIFT: a quarter,
# so that one lost ack under load (a collision at a busy bridge, 20-40 % of
# frames there) moves a good link's cost by about one quarter transmission,
# not enough to leave a one-hop route for two hops (+4 at least), while a
# link that never acks costs +3 after 2 tries, +6 after 3, +13 after 4
# (from a strong prior; see test_routing.py). Before any frame was sent
# the beacon's SNR gives the prior (link_cost). A link we stopped using is
# never measured again, so every beacon heard from the neighbour moves its
# estimate 1 / 2^_Q_RELAX_SHIFT of the way back to that prior: a link that
# got better is tried again after a few beacon rounds (hours once the
# trickle has slowed), not never.
Q_ONE = const(256)
_Q_GAIN_SHIFT = const(2)
_Q_RELAX_SHIFT = const(3)
_Q_MIN = const(16)  # floor of the estimate: a link costs at most 4 * Q_ONE / _Q_MIN = 64 (16 tries)
# The fourth field of a neighbour's entry packs four things in one small
# int (no allocation, and entries keep their four fields): the low 5 bits
# are the frames it failed in a row (capped at 31), the 9 bits above them the
# estimate + 1 (0: not measured yet, the prior holds), the 8 bits above those
# the low byte of the sequence its last beacon carried (feasibility), and the
# 7 bits above those how well it hears us, as its beacons report it (below:
# 0 unknown, else the margin in dB + 64, clamped to 1..127). 29 bits: a small
# int on a 32-bit port (30 bits), never a heap object.
_FAILS_MASK = const(0x1F)
_Q_SHIFT = const(5)
_Q_MASK = const(0x1FF)
_SEQ_SHIFT = const(14)
_SEQ_BITS = const(0x3FC000)
_UP_SHIFT = const(22)
_UP_MASK = const(0x7F)
_UP_BITS = const(0x1FC00000)
# "I heard you" (Babel's IHU, in the beacon): after the fifth byte (flags), a
# beacon lists the neighbours it hears that may take it as their parent
# (those that advertised at least its metric), each as the low byte of its
# address and the SNR margin over the demodulation floor it is heard at (dB
# + 64, its smoothed SNR), at most _IHU_MAX of them (_IHU_CUT set when some
# were left out). So a node knows how its frames reach a neighbour before it
# wastes a payment on it: the prior of the link's cost is the worse of the
# two directions, and a neighbour that does not list us, though our beacon
# went out before its own and it lists all it hears, hears us at best at the
# floor (_UP_UNLISTED). In the simulated villages 42-46 % of linked pairs
# work one way only: with only the SNR we hear as the prior, a relay whose
# candidates all heard it below the floor spent minutes trying them in turn
# (seed 3 at 200 payments/h: 18 tries over 5 parents, 148 s).
_IHU_MAX = const(24)
_IHU_CUT = const(2)
_FLAGS = const(7)  # _ASK_ROUND | _IHU_CUT | _LEAF: any other bit is a malformed beacon
_UP_UNLISTED = const(63)  # the field's value for "not listed": under the floor (link_cost 16)
_IHU_AFTER_MS = const(3000)
# Until a neighbour's beacon has said how it hears us (a village's first
# rounds: its beacon went out before ours), the prior takes the margin we
# hear it at less this much: with shadowing drawn per direction (σ 3 dB) a
# link heard 0-2 dB over the floor fails the other way about half the time.
# Measured at 200 payments/h, 60 min, seeds 1-20 (realistic medium): 15 of 20
# villages on target without it (the late payments were the first minutes'),
# 20 of 20 with 2 dB, 19 with 4 dB.
_UP_UNKNOWN_DB = const(2)  # our beacon this long before theirs: they had it when they built theirs
# A beacon's fifth byte, when present: "a node below me has a better route
# that is not feasible (or none), start a new round" (passed on towards the
# bridge, at most once per _ROUND_ASK_MS per node). The bridge starts a
# round on request at most once per _ROUND_GAP_MS: a round costs every node
# a beacon, and under load those bursts cost more than the routes they fix
# (seed 1-2 at 800 payments/h, realistic medium: 53-58 % on time with 60 s,
# 75-80 % with 180 s; at 200/h the same or better, 98-100 %; 300 s was
# worse at both). A routeless node holds its uplink records _ROUND_WAIT_MS
# for that round (a request and the round it starts cross a few hops each
# way, ~1.5 s a hop) before offering them to ANY_ROUTE.
_ASK_ROUND = const(1)
_ROUND_ASK_MS = const(30000)
_ROUND_GAP_MS = const(180000)
_ROUND_WAIT_MS = const(20000)
# A neighbour replaces the parent only when it is cheaper by more than this
# (quarters of a transmission): under load 20-40 % of frames near a bridge
# are lost to collisions, the estimates of equally good parents wander past
# one another, and each switch costs a duplicate when an ack was lost
_KEEP_GAIN = const(4)
# Where a node hears at least this share (per mille) of the last minute on
# air, lost acks are mostly collisions (a loaded bridge's neighbourhood), and
# what acts on them faster than the ETX itself holds back: the fast fallback
# (custody._fall_back) and asking for a new round, each of which costs air
# exactly where it is scarce (measured at 800 payments/h, seed 1: with them
# on a busy channel 60 % on time, 2,079 beacons; without, 85 %, 450)
_CONGESTED_PERMILLE = const(100)
# ask for a round when a route that is not feasible would cost at least this
# much less than the best feasible one (one transmission)
_ROUND_GAIN = const(4)
# A leaf (relays for no one: it sleeps in RX duty cycle, docs/power.md) hears
# few beacons, so it learnt late or never which neighbours hear it, and kept
# retrying a parent that did not (seed 4 at 200/h: leaf 18 sent 40 frames
# over 800 s to the one neighbour it had heard at boot, which never heard it).
# So a leaf says it is there: a beacon with metric 255 and this flag (its
# list names only neighbours that advertise no route either: usually none).
# Every neighbour with a route puts it in its "I heard you" list and
# answers with its own beacon within ~2.2 s (a bridge does not: its answer
# would be a round), inside the window the leaf listens after its own frame:
# one exchange tells the leaf its neighbours' routes and which hear it.
# Never an ask for a round (a leaf has no descendants, so every neighbour is
# feasible for it) and never a parent (metric 255). A leaf says so when it
# first has a route, when it has none, and when its parent failed
# _LEAF_ASK_FAILS frames in a row, at most once per SOLICIT_MS (60 s: seed 1
# at 200/h, four fading draws, pooled p95 12.7 s with 30 s, 10.3 s with 60 s,
# measured while the bridge still answered; docs/power.md).
_LEAF = const(4)
_LEAF_ASK_FAILS = const(2)


def link_cost(snr_x4, sf):
    """ETX-like cost of a link from its SNR margin above the SF's floor, in
    quarters of a transmission: 4 for a link that carries a frame at the first
    try, more as fading starts to cost retries. Quarters, so that a direct
    link a few dB above the floor still beats two strong hops: near a bridge
    every hop is in the bridge's hearing, and a second hop there costs the
    bridge's own airtime (measured: routing round weak direct links through
    neighbours halved the village's capacity). This is the prior, from the
    direction we hear (prior_q adds the other); acks replace it (delivery_q)."""
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


def prior_q(n, sf):
    """The delivery estimate neighbour entry n starts from (and drifts back
    to): from the SNR we hear it at and, once its beacons said, the one it
    hears us at (as SNR x4 over our floor), whichever is worse (a one-way
    link's prior is the dead direction's)."""
    snr = n[1]
    up = (n[3] >> _UP_SHIFT) & _UP_MASK
    if not up:
        snr -= 4 * _UP_UNKNOWN_DB
    else:
        snr = min(snr, SF_FLOOR_X4.get(sf, -50) + 4 * (up - 64))
    return 4 * Q_ONE // link_cost(snr, sf)


def fails_of(n):
    """Frames neighbour entry n failed to ack in a row."""
    return n[3] & _FAILS_MASK


def delivery_q(n, sf):
    """Neighbour entry n's delivery estimate (0..Q_ONE): measured from acks,
    or the prior from its SNR before we sent it anything."""
    q = (n[3] >> _Q_SHIFT) & _Q_MASK
    if q:
        return q - 1
    return prior_q(n, sf)


def etx_cost(q):
    """Link cost in quarters of a transmission for delivery estimate q."""
    return 4 * Q_ONE // max(q, _Q_MIN)


def _with_q(n, q, fails):
    n[3] = (n[3] & (_SEQ_BITS | _UP_BITS)) | ((q + 1) << _Q_SHIFT) | min(fails, _FAILS_MASK)


class Routing:
    leaf = False  # relays for no one (set by the driver: main.py from /pen.json "leaf", pen.sim.power)

    def _feasible(self, n):
        """Babel's feasibility condition against our feasibility distance
        (fd_seq, adv_metric), the sequence and the least metric we
        advertised: a neighbour's route from a newer round is feasible, one
        from our round only below what we advertised, an older one never.
        So a node never takes one of its own descendants (their metrics
        are above ours in our round, or they are in an older one), and no
        routing loop forms however stale the metrics or however a link's
        measured cost changes. Sequences compare by their low byte (a
        neighbour whose beacons we missed for 128 rounds may look new).
        A leaf never advertises a route, so it has no descendants: every
        neighbour is feasible for it."""
        d = ((n[3] >> _SEQ_SHIFT) - self.fd_seq) & 0xFF
        return self.leaf or (d == 0 and n[0] < self.adv_metric) or 0 < d < 0x80

    def _route_seq(self):
        """The sequence of our route: our parent's (16 bits rebuilt from
        the low byte it is kept as)."""
        s = self.nbr[self.parent][3] >> _SEQ_SHIFT
        return (self.beacon_seq - ((self.beacon_seq - s) & 0xFF)) & 0xFFFF

    def _choose_parent(self, now_ms):
        """Lowest metric + link cost among feasible neighbours (_feasible).
        When a neighbour that is not feasible would be clearly better (our
        route got worse since we advertised it), ask for a new round, which
        makes it feasible if it is not our descendant (Babel's seqno
        request). True when the parent changed."""
        if self.is_bridge:
            return False
        best = None
        best_cost = 255
        best_bonus = 0
        better = 255  # the cheapest route that is not feasible
        sf = self.preset.sf
        fresh = self.beacon_seq & 0xFF
        for a in self.nbr:
            n = self.nbr[a]
            if now_ms - n[2] > _ROUTE_TTL_MS or n[0] >= 255:
                continue
            if fails_of(n) >= PARENT_FAILS and now_ms - n[2] > PARENT_QUIET_MS:
                # neither acking nor heard: gone (rebooting, moved, dead).
                # The worst a link can cost, not left out: a node without
                # another feasible parent keeps it and asks for a new round
                # (below) instead of going routeless, where its records
                # would go to ANY_ROUTE and every neighbour with a route
                # would take a copy (seed 5 at 200/h: near-bridge nodes
                # that missed the bridge for 30 s under load did that, and
                # the copies took the village down to 33 % on time)
                cost = n[0] + etx_cost(0)
            else:
                cost = n[0] + etx_cost(delivery_q(n, sf))
            if not self._feasible(n):
                better = min(better, cost)
                continue
            # hysteresis: the parent is left only for a clearly better one,
            # and a route in the newest round is taken over an older one
            # unless clearly worse (a node in an older round sees no
            # neighbour of the newest as feasible but its own parent's)
            bonus = _KEEP_GAIN if a == self.parent or ((n[3] >> _SEQ_SHIFT) & 0xFF) == fresh else 0
            if cost - bonus < best_cost - best_bonus:
                best, best_cost, best_bonus = a, cost, bonus
        old = self.parent
        self.parent = best
        self.metric = min(best_cost, 255)  # 255 when best is None (best_cost never lowered)
        if better + _ROUND_GAIN <= best_cost and self.calm(now_ms):
            self._ask_round(now_ms)
        if old is not None and best != old:
            self.stats["reroutes"] += 1
            if best is None:
                self._lost_route(now_ms)
        return best != old

    def calm(self, now_ms):
        """Less than _CONGESTED_PERMILLE of the last minute heard on air:
        lost acks here are the links', not collisions'."""
        return self.heard.permille(now_ms) < _CONGESTED_PERMILLE

    def link_acked(self, addr):
        """A frame we sent addr was acked (or addr was heard passing its
        record on): the link works both ways."""
        n = self.nbr.get(addr)
        if n is not None:
            q = delivery_q(n, self.preset.sf)
            _with_q(n, q + ((Q_ONE - q) >> _Q_GAIN_SHIFT), 0)

    def link_failed(self, addr, now_ms):
        """A frame we sent addr went unacked: one way or the other failed.
        The parent is chosen again at once, so a parent heard loudly that
        never hears us is left after a few tries (fast fallback); True when
        the parent changed."""
        n = self.nbr.get(addr)
        if n is None:
            return False
        q = delivery_q(n, self.preset.sf)
        _with_q(n, q - (q >> _Q_GAIN_SHIFT), fails_of(n) + 1)
        if self.leaf and addr == self.parent and fails_of(n) >= _LEAF_ASK_FAILS:
            self._lost_route(now_ms)  # not lost, but unheard: say we are here (_LEAF)
        return addr == self.parent and self._choose_parent(now_ms)

    def _on_beacon(self, hdr, payload, snr_x4, now_ms):
        k = len(payload) - 5  # bytes of its "I heard you" list
        if k != -1 and (k < 0 or k & 1 or k > 2 * _IHU_MAX or payload[4] & ~_FLAGS):
            self.stats["rx_bad"] += 1
            return
        ask = k >= 0 and payload[4] & _ASK_ROUND
        seq = (payload[0] << 8) | payload[1]
        metric = payload[2]
        child = payload[3] == self.addr & 0xFF
        if metric and child:
            # its parent is (probably) us: taking it as ours would make a
            # two-node loop (seen after a reboot, when our metric is unknown)
            metric = 255
        if not self.is_bridge and ((seq - self.beacon_seq) & 0xFFFF) < 0x8000:
            self.beacon_seq = seq  # the newest round heard (rebuilds neighbours' sequences)
        n = self.nbr.get(hdr.src)
        newer = True  # not from a round older than the last it told us
        if n is None:
            if len(self.nbr) >= _MAX_NEIGHBOURS:
                self._forget_a_neighbour()
            n = [metric, snr_x4, now_ms, 0]
            self.nbr[hdr.src] = n
        else:
            n[0] = metric  # (on_frame has already smoothed its SNR and heard time)
            n[2] = now_ms
            newer = ((seq - (n[3] >> _SEQ_SHIFT)) & 0xFF) < 0x80
        n[3] = (n[3] & ~_SEQ_BITS) | ((seq & 0xFF) << _SEQ_SHIFT)
        if k >= 0 and newer:
            # how it hears us; from an older round's beacon (a replay, or a
            # very late copy) it would be stale news
            self._heard_us(n, payload, k, metric, now_ms)
        q = (n[3] >> _Q_SHIFT) & _Q_MASK
        if q and fails_of(n) < PARENT_FAILS:
            # measured: drift back towards the prior (_Q_RELAX_SHIFT). Not
            # while it has failed PARENT_FAILS frames in a row: only an ack
            # lifts it then, so a neighbour that beacons often and says it
            # hears us well, but never acks (an insider), cannot pull its
            # cost back down faster than our failures push it up
            q -= 1
            _with_q(n, q + ((prior_q(n, self.preset.sf) - q) >> _Q_RELAX_SHIFT), fails_of(n))
        if not self.leaf and (self.is_bridge or self.metric < 255):
            if payload[2] == 255:
                # a routeless neighbour asks for routes (SOLICIT_MS): answer, and
                # ask for a new round on its behalf (it may have no feasible
                # one). At the bridge the answer is the round (_ROUND_GAP_MS).
                # A leaf (_LEAF) is answered (our list now names it), never
                # with a round: every neighbour is feasible for it, and a
                # bridge's answer would be a round, which costs every node a
                # beacon (the leaf hears the bridge's list at the next one)
                if not self.is_bridge:
                    self._beacon_soon(now_ms)
                if k < 0 or not payload[4] & _LEAF:
                    self._ask_round(now_ms)
            elif ask and (child or metric >= self.metric):
                self._ask_round(now_ms)  # passed on towards the bridge (_ASK_ROUND)
        if self.is_bridge:
            return
        self._choose_parent(now_ms)
        if self.leaf:
            if self.beacon_aired < 0:
                self._lost_route(now_ms)  # the first beacon heard: say we are here, and learn who hears us
            return
        if self.parent is not None and self._route_seq() != self.beacon_sent_seq and self.beacon_due < 0:
            # our route is in a round we have not advertised: advertise it
            # once, after a short random wait (none is due: _beacon_soon sets it)
            self._beacon_soon(now_ms)

    def _heard_us(self, n, payload, k, metric, now_ms):
        """Neighbour entry n's beacon says how well it hears us (its "I
        heard you" list, k bytes after the flags): kept in the entry, the
        latest report only (a replay of it changes nothing). Not listed in
        a whole list, though our beacon went out well before and we
        advertised at least its metric (it lists those): it did not hear
        us, or barely (_UP_UNLISTED)."""
        me = self.addr & 0xFF
        up = 0
        for i in range(5, 5 + k, 2):
            if payload[i] == me:
                up = min(max(payload[i + 1], 1), _UP_MASK)
                break
        if not up:
            if payload[4] & _IHU_CUT or self.beacon_aired < 0 or \
                    now_ms - self.beacon_aired < _IHU_AFTER_MS or self.adv_metric < metric:
                return
            up = _UP_UNLISTED
        n[3] = (n[3] & ~_UP_BITS) | (up << _UP_SHIFT)

    def _ask_round(self, now_ms):
        """Someone (we, or a node further from the bridge) has a better
        route that is not feasible, or none: only a new sequence from the
        bridge makes a neighbour that advertised as much as it did feasible
        (Babel's seqno request). Our next beacon carries the request up,
        at most once per _ROUND_ASK_MS; at the bridge it starts the round
        (every bridge beacon is a new sequence), at most once per
        _ROUND_GAP_MS, since a round costs every node a beacon."""
        if now_ms >= self.round_asked:
            self.round_asked = now_ms + (_ROUND_GAP_MS if self.is_bridge else _ROUND_ASK_MS)
            self.ask_round = not self.is_bridge
            self._beacon_soon(now_ms)

    def _lost_route(self, now_ms):
        """No feasible parent left (the last one gone, or retracted): say
        so (a metric-255 beacon, which also asks neighbours for routes and
        for a new round) and hold uplink records _ROUND_WAIT_MS for that
        round before offering them to ANY_ROUTE, where every neighbour with
        a route takes a copy."""
        self.round_wait_until = now_ms + _ROUND_WAIT_MS
        if now_ms >= self.solicit_after:
            self.solicit_after = now_ms + SOLICIT_MS
            self._beacon_soon(now_ms)

    def _forget_a_neighbour(self):
        """Room for one more: the neighbour heard least recently goes (never
        the parent). Beacons from any number of addresses (an insider can
        seal them) once grew this table until the node ran out of heap."""
        old = None
        for a in self.nbr:
            if a != self.parent and (old is None or self.nbr[a][2] < self.nbr[old][2]):
                old = a
        if old is not None:
            del self.nbr[old]

    def _beacon_soon(self, now_ms):
        """Our beacon within ~2 s, unless one is due sooner anyway."""
        if self.beacon_due < 0 or self.beacon_due > now_ms + 3000:
            self.beacon_due = now_ms + 200 + self.rng.getrandbits(16) % 2000

    def _beacon_tx(self, now_ms):
        """Our beacon if one is due and the law lets it go, else None."""
        if self.beacon_due < 0 or now_ms < self.beacon_due:
            return None
        if self.is_bridge:
            self.beacon_seq = (self.beacon_seq + 1) & 0xFFFF
        f = self._try_send(self._beacon_frame(now_ms), D.P_VOTE, now_ms)
        if f is not None:
            self.beacon_aired = now_ms
            if self.is_bridge:
                self.beacon_due = now_ms + self.beacon_interval
                self.beacon_interval = min(self.beacon_interval * 2, _BEACON_MAX_MS)
            else:
                self.beacon_due = -1
            return f
        self.beacon_due = now_ms + 5000
        return None

    def _beacon_frame(self, now_ms):
        if self.is_bridge:
            seq, m, parent = self.beacon_seq, 0, 0
        elif self.parent is None or self.leaf:
            # a leaf's "I am here, I relay for no one" (_LEAF), or
            # a retraction (no route now), in the round of our feasibility
            # distance, which it keeps: a routeless node still never takes a
            # descendant; it asks for a new round instead (_lost_route)
            seq, m, parent = self.fd_seq, 255, 0
        else:
            seq, m, parent = self._route_seq(), self.metric, self.parent & 0xFF  # (metric <= 255: _choose_parent)
            if seq == self.fd_seq:
                # Within a round the metric we advertise never grows: it is
                # also our feasibility distance, and a child keeps its parent
                # only while the parent advertises less than the child did.
                # Advertising a cost that grew with a worse link (measured by
                # acks) made children's parents infeasible mid-round, left
                # them routeless, and their records, offered to ANY_ROUTE,
                # were taken by several neighbours at once (seed 5 at 200/h:
                # 401 such offers, a record taken 269 times). The next round
                # carries the real cost.
                m = min(m, self.adv_metric)
            self.fd_seq = seq
            self.adv_metric = m
        self.beacon_sent_seq = seq
        # The payload: sequence, metric m, parent's low byte, flags, then "I
        # heard you" entries for the neighbours that may take us as parent
        # (advertised at least m): low address byte, SNR margin + 64
        # (_IHU_MAX of them; _IHU_CUT when more were heard). One function
        # with the above: a board loads this module into its heap, and a
        # function of its own cost a booted bridge bytes it does not have
        # (tests/board/test_provision.py)
        floor = SF_FLOOR_X4.get(self.preset.sf, -50)
        flags = _LEAF if self.leaf else 0
        if self.ask_round:
            self.ask_round = False
            flags = _ASK_ROUND
        out = bytearray(5 + 2 * _IHU_MAX)
        out[0] = seq >> 8
        out[1] = seq & 255
        out[2] = m
        out[3] = parent
        i = 5
        for a in self.nbr:
            n = self.nbr[a]
            if n[0] < m or now_ms - n[2] > _ROUTE_TTL_MS:
                continue
            if i == len(out):
                flags |= _IHU_CUT
                break
            out[i] = a & 0xFF
            out[i + 1] = min(max((n[1] - floor) // 4 + 64, 1), 255)
            i += 2
        out[4] = flags
        return F.pack(F.Header(F.T_BEACON, self.addr, F.BROADCAST, self.addr, 0, 0), bytes(out[:i]))
