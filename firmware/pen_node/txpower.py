"""Transmit power control: a unicast frame to a neighbour goes at the lowest
power step that keeps a safe margin over that link, as LoRaWAN's ADR does;
broadcasts (beacons, floods, offers to any route) always at full power.

The margin is measured on what comes back: the SNR at which this node hears
the neighbour's broadcasts. Those are always sent at full power, so the
estimate is never pulled down by the neighbour's own reduced frames (its acks
and records to us may be). Links are not symmetric (shadowing differs each
way, sigma 3 dB: the two directions differ by ~4.2 dB, REFERENCE.md), so
MARGIN over the demodulation floor is kept on top of the estimate, and a
reduced try that goes unanswered puts that neighbour back at full power for
HOLD_MS: the node notices it when the same frame is sent again (a retry of
a record whose ack did not come, or our ack sent again because its sender,
not having heard it, sent the record again).

Only frames that pass the village MAC teach (pen_protocol.frame.unseal):
a forged frame cannot make a node drop its power toward anyone. A replayed
authentic frame heard loud can, once: its first unanswered try restores
full power. Power is never above top_dbm (the preset's, the chip's, the
board's and the region's cap, whichever is least: TxPower.cap) nor below
the lowest step the board's figures price (hardware/power.json tx_ma).

Sans-IO: the caller passes the SNR and the time; nothing here touches the
radio (sleep.NodePower sets the chip's output power through the driver's
configure() only when it changes)."""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

import hashlib

from pen_protocol.frame import unseal, HEADER_LEN, TAG_LEN, BROADCAST

_ANY_ROUTE = const(0xFFFE)  # pen_node.mesh.ANY_ROUTE: an offer to every neighbour with a route
# dB x4 over the demodulation floor kept on top of the SNR heard back: the
# per-direction difference (sigma ~4.2 dB) at ~2 sigma plus a frame's fading
MARGIN_X4 = const(40)
# after an unanswered reduced try, that neighbour gets full power this long
HOLD_MS = const(1800000)
_MAX_NEIGHBOURS = const(32)  # as routing's table: a village node hears a dozen or two
_RECENT = const(8)  # reduced frames remembered, to notice their retries
_ID_LEN = const(4)
# SX126x demodulation floor by SF, dB x4 (routing.SF_FLOOR_X4, the datasheet's)
_FLOOR_X4 = {7: -30, 8: -40, 9: -50, 10: -60, 11: -70, 12: -80}


def cap(preset_dbm, steps, board_max=None, region_max=None):
    """The highest output power this node may use: the preset's, capped by
    the chip's top step, the board's and the region's limits."""
    top = min(preset_dbm, max(steps))
    for m in (board_max, region_max):
        if m is not None and m < top:
            top = m
    return top


def _payload_id(frame, n):
    """What stays the same when a frame is sent again to the same neighbour:
    type, origin and the payload (not the tag, which covers link fields)."""
    m = memoryview(frame)
    h = hashlib.sha256(m[0:1])
    h.update(m[6:8])
    h.update(m[HEADER_LEN:n])
    return h.digest()[:_ID_LEN]


class TxPower:
    def __init__(self, sf, steps, top_dbm, key=None, margin_x4=MARGIN_X4, hold_ms=HOLD_MS):
        if sf not in _FLOOR_X4:
            raise ValueError("no demodulation floor for SF%d" % sf)
        low = min(steps)
        if top_dbm < low:
            raise ValueError("cap %d dBm is below the lowest step %d dBm" % (top_dbm, low))
        self.levels = sorted(set([s for s in steps if s < top_dbm] + [top_dbm]))
        self.top = top_dbm
        self.floor_x4 = _FLOOR_X4[sf]
        self.set_key(key)
        self.margin_x4 = margin_x4
        self.hold_ms = hold_ms
        self.snr = {}  # neighbour -> [SNR x4 of its broadcasts (smoothed), ms last heard]
        self.full_until = {}  # neighbour -> ms until which frames to it go at full power
        self.recent = []  # [(payload id, dst)] of frames sent at reduced power, newest last
        self.stats = {"reduced": 0, "full": 0, "fallbacks": 0, "forged": 0}
        self.current = top_dbm  # what the radio is set to (the driver starts at the preset's power)

    def set_key(self, key):
        """The village's frame key (MeshNode.key, built after this object on
        a board): from then on only sealed broadcasts teach."""
        self.key = key
        self.tag = TAG_LEN if key is not None else 0

    def set_for(self, modem, frame, now_ms):
        """power_for, told to the radio (the driver's configure(), DS 13.4.4
        SetTxParams) only when it changes; returns the dBm."""
        dbm = self.power_for(frame, now_ms)
        if dbm != self.current:
            modem.configure({"output_power": dbm})
            self.current = dbm
        return dbm

    def heard(self, frame, snr_x4, now_ms):
        """A frame received at snr_x4 (dB x4, the radio's). Only an
        authentic broadcast teaches the neighbour's SNR."""
        if len(frame) < HEADER_LEN + self.tag or ((frame[4] << 8) | frame[5]) != BROADCAST:
            return
        if self.key is not None and unseal(frame, self.key) < 0:
            self.stats["forged"] += 1
            return
        src = (frame[2] << 8) | frame[3]
        e = self.snr.get(src)
        if e is None:
            if len(self.snr) >= _MAX_NEIGHBOURS:
                self._forget()
            self.snr[src] = [snr_x4, now_ms]
            return
        # down fast (a link that got worse is believed at once), up slowly
        d = snr_x4 - e[0]
        e[0] += (d >> 1) if d < 0 else (d >> 3)
        e[1] = now_ms

    def _forget(self):
        old = None
        for a in self.snr:
            if old is None or self.snr[a][1] < self.snr[old][1]:
                old = a
        del self.snr[old]
        self.full_until.pop(old, None)

    def power_for(self, frame, now_ms):
        """The output power (dBm) for this frame."""
        dst = (frame[4] << 8) | frame[5]
        if dst == BROADCAST or dst == _ANY_ROUTE:
            return self.top
        pid = _payload_id(frame, len(frame) - self.tag)
        for k in range(len(self.recent)):
            if self.recent[k][0] == pid:  # sent before at reduced power, and again: unanswered
                self.full_until[self.recent[k][1]] = now_ms + self.hold_ms
                self.full_until[dst] = now_ms + self.hold_ms
                del self.recent[k]
                self.stats["fallbacks"] += 1
                return self._full()
        t = self.full_until.get(dst)
        if t is not None:
            if now_ms < t:
                return self._full()
            del self.full_until[dst]
        e = self.snr.get(dst)
        if e is None:
            return self._full()
        spare_db = (e[0] - self.floor_x4 - self.margin_x4) >> 2
        want = self.top - spare_db
        level = self.top
        for s in self.levels:
            if s >= want:
                level = s
                break
        if level >= self.top:
            return self._full()
        self.recent.append((pid, dst))
        if len(self.recent) > _RECENT:
            del self.recent[0]
        self.stats["reduced"] += 1
        return level

    def _full(self):
        self.stats["full"] += 1
        return self.top
