"""Routing for MeshNode: which neighbour is this node's parent towards a
bridge, learnt from beacons (T_BEACON: sequence, metric, parent).

Bridges send beacons (trickle: 15 s doubling to 20 min). Each node keeps its
neighbours' advertised metric and the quality of the link it heard them on,
picks as parent the feasible neighbour with the lowest metric + link cost,
and advertises its own metric once per beacon sequence. A node with no route
asks for one (a metric-255 beacon) instead of waiting for the next round.

A mixin of mesh.MeshNode (the facade, whose constructor sets up its state)
and read by custody (the parent, the neighbours' failure counts).
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from pen_protocol import frame as F

from . import duty as D

# Consecutive unacked tries before the parent is penalised. On a calm
# channel a loss is the link's fault, and PARENT_FAILS of them are enough.
# On a busy one (the node heard at least _CONGESTED_PERMILLE of the last
# minute) they are congestion at a busy bridge, and a parent still heard on
# air is alive: penalising it would send its children over two hops, both in
# the bridge's hearing, twice the airtime where it is scarcest, more
# collisions, more failures (measured: 1,190 reroutes and the village's
# goodput falling at 1,600 payments/h). Then only one heard but failing
# DEAF_FAILS times in a row (a one-way link) is penalised. On either, a
# parent failing PARENT_FAILS times and not heard for PARENT_QUIET_MS is gone.
PARENT_FAILS = const(4)
_CONGESTED_PERMILLE = const(100)
PARENT_QUIET_MS = const(30000)
DEAF_FAILS = const(16)
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


class Routing:
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
            if now_ms - n[2] > _ROUTE_TTL_MS or n[0] >= 255 or n[0] >= self.adv_metric:
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
                    calm = self.heard.permille(now_ms) < _CONGESTED_PERMILLE
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
            if len(self.nbr) >= _MAX_NEIGHBOURS:
                self._forget_a_neighbour()
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
        f = self._try_send(self._beacon_frame(), D.P_VOTE, now_ms)
        if f is not None:
            if self.is_bridge:
                self.beacon_due = now_ms + self.beacon_interval
                self.beacon_interval = min(self.beacon_interval * 2, _BEACON_MAX_MS)
            else:
                self.beacon_due = -1
            return f
        self.beacon_due = now_ms + 5000
        return None

    def _beacon_frame(self):
        parent = self.parent & 0xFF if self.parent is not None else 0
        payload = bytes((self.beacon_seq >> 8, self.beacon_seq & 255, min(self.metric, 255), parent))
        self.beacon_sent_seq = self.beacon_seq
        self.adv_metric = min(self.metric, 255)
        return F.pack(F.Header(F.T_BEACON, self.addr, F.BROADCAST, self.addr, 0, 0), payload)
