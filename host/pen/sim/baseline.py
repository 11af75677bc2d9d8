"""A Meshtastic-style node, the baseline Pen is measured against.

What Meshtastic does for a direct message with want_ack (firmware
src/mesh/FloodingRouter, ReliableRouter), modelled fairly:
- 16-byte header; the payment rides in a Data payload (4 bytes of protobuf
  framing around the same 89-byte record);
- managed flooding: every node rebroadcasts a packet it has not seen, after
  a contention window scaled by SNR (weak links, i.e. far nodes, go first),
  and cancels its rebroadcast when it hears a neighbour relay it first;
- the destination answers with a routing ACK, itself flooded back;
- the sender retransmits until that ACK comes, or until it hears a neighbour
  relay its packet (implicit ack), 3 transmissions in all;
- hop limit high enough to reach every node from the bridge;
- the same duty-cycle law as Pen (firmware/pen_node/duty.py).
Same API as MeshNode, so the engine drives both alike.
"""
from pen_node import duty as D

HEADER = 16
DATA_OVERHEAD = 4
ACK_PAYLOAD = 6  # routing ACK: request id + error reason
SLOT_MS = 120  # listen-before-talk back-off unit
# Meshtastic's contention window (RadioInterface.h / getTxDelayMsecWeighted):
# CW size mapped from the SNR of the copy heard, -20..+10 dB onto 3..8; a
# client (every node here) waits 2*CW_MAX slots (routers' turn) and then
# random(0, 2^CW) slots, so low-SNR (far) nodes relay first.
CW_MIN = 3
CW_MAX = 8
SNR_MIN_X4 = -80
SNR_MAX_X4 = 40


def slot_ms(preset):
    """Meshtastic's slot time: CAD (8.5 symbols) + propagation, TX/RX
    turnaround and MAC processing (0.2 + 0.4 + 7 ms)."""
    return (17 * (1 << preset.sf) * 1000 // preset.bw_hz) // 2 + 8
PROCESSING_MS = 4500  # Meshtastic's PROCESSING_TIME_MSEC in the retransmission timeout
DEDUP = 256


class FloodNode:
    def __init__(self, addr, preset, rng, is_bridge=False, hop_limit=3, bridge_addr=0, channel_busy=None):
        self.addr = addr
        self.preset = preset
        self.rng = rng
        self.is_bridge = is_bridge
        self.hop_limit = hop_limit
        self.bridge_addr = bridge_addr
        self.duty = D.DutyCycle(preset.duty_permille, preset.dwell_ms)
        self.slot_ms = slot_ms(preset)
        self.seq = 0
        self.seen = {}
        self.seen_order = []
        self.queue = []  # [due_ms, frame, key]  (rebroadcasts and own sends)
        self.mine = {}  # pkt id -> [frame, tries, next_ms]
        self.delivered = []
        self.events = []
        self.tx_busy = False
        self.channel_busy = channel_busy  # CAD, as Meshtastic uses before every transmission
        self.lbt_until = 0
        self.stats = {"tx_frames": 0, "tx_airtime_us": 0, "rx_frames": 0, "dup_dropped": 0, "retries": 0,
                      "duty_blocked": 0, "floods_cancelled": 0, "implicit_acks": 0, "frames_handled": 0, "delivered": 0}

    # frames: from(2) to(2) id(4) flags(1: hop_limit) kind(1: 0 data, 1 ack) + padding to 16, then payload
    def _frame(self, src, dst, pid, hops, kind, payload):
        hdr = bytes((src >> 8, src & 255, dst >> 8, dst & 255)) + pid.to_bytes(4, "big") + bytes((hops, kind))
        return hdr + bytes(HEADER - len(hdr)) + payload

    def submit(self, record, now_ms):
        self.seq += 1
        pid = (self.addr << 16) | (self.seq & 0xFFFF)
        frame = self._frame(self.addr, self.bridge_addr, pid, self.hop_limit, 0, bytes(DATA_OVERHEAD) + bytes(record))
        self.mine[pid] = [frame, 0, now_ms]
        self._remember((self.addr, pid))
        return True

    def _remember(self, key):
        if key in self.seen:
            return False
        self.seen[key] = 1
        self.seen_order.append(key)
        if len(self.seen_order) > DEDUP:
            self.seen.pop(self.seen_order.pop(0), None)
        return True

    def on_frame(self, frame, rssi, snr_x4, now_ms):
        self.stats["rx_frames"] += 1
        self.stats["frames_handled"] += 1
        src = (frame[0] << 8) | frame[1]
        dst = (frame[2] << 8) | frame[3]
        pid = int.from_bytes(frame[4:8], "big")
        hops = frame[8]
        kind = frame[9]
        origin = pid >> 16
        key = (origin, pid)
        # hearing our own packet relayed, or anyone's we were about to relay: cancel ours
        for i, q in enumerate(self.queue):
            if q[2] == key:
                del self.queue[i]
                self.stats["floods_cancelled"] += 1
                break
        if kind == 0 and origin == self.addr and pid in self.mine and self.mine[pid][1] > 0:
            # implicit ack: a neighbour relaying our packet means it left us;
            # Meshtastic stops retransmitting then (ReliableRouter)
            del self.mine[pid]
            self.stats["implicit_acks"] += 1
        if not self._remember(key):
            self.stats["dup_dropped"] += 1
            return
        if kind == 1 and dst == self.addr:
            acked = int.from_bytes(frame[HEADER:HEADER + 4], "big")
            self.mine.pop(acked, None)
            self.events.append(("ack", acked))
            return
        if kind == 0 and dst == self.addr and self.is_bridge:
            self.delivered.append(bytes(frame[HEADER + DATA_OVERHEAD:]))
            self.stats["delivered"] += 1
            self.seq += 1
            aid = (self.addr << 16) | (self.seq & 0xFFFF)
            ack = self._frame(self.addr, origin, aid, self.hop_limit, 1, pid.to_bytes(4, "big") + bytes(2))
            self._remember((self.addr, aid))
            self.queue.append([now_ms + 50 + self.rng.getrandbits(8), ack, (self.addr, aid)])
            return
        if hops > 0:
            relay = bytearray(frame)
            relay[8] = hops - 1
            relay[0], relay[1] = self.addr >> 8, self.addr & 255
            # SNR-scaled contention window: weaker (farther) receivers wait less
            snr = min(max(snr_x4, SNR_MIN_X4), SNR_MAX_X4)
            cw = CW_MIN + (snr - SNR_MIN_X4) * (CW_MAX - CW_MIN) // (SNR_MAX_X4 - SNR_MIN_X4)
            wait = (2 * CW_MAX + self.rng.getrandbits(16) % (1 << cw)) * self.slot_ms
            self.queue.append([now_ms + wait, bytes(relay), key])

    def next_tx(self, now_ms):
        if self.tx_busy or now_ms < self.lbt_until:
            return None
        if self.channel_busy is not None and self.channel_busy(now_ms):
            self.lbt_until = now_ms + SLOT_MS + self.rng.getrandbits(16) % (SLOT_MS * 4)
            return None
        for pid in list(self.mine):
            frame, tries, due = self.mine[pid]
            if due <= now_ms:
                if tries >= 3:
                    del self.mine[pid]  # 3 transmissions, then give up
                    continue
                f = self._send(frame, now_ms)
                if f is None:
                    self.mine[pid][2] = now_ms + 1000
                    return None
                if tries:
                    self.stats["retries"] += 1
                air = self.preset.airtime_us(len(frame)) // 1000
                # Meshtastic's getRetransmissionMsec at low channel use:
                # 2 airtimes + (2^CW_MIN + 2^((CW_MIN+CW_MAX)/2)) slots + processing
                self.mine[pid][1] = tries + 1
                self.mine[pid][2] = now_ms + 2 * air + ((1 << CW_MIN) + (1 << ((CW_MIN + CW_MAX) // 2))) * \
                    self.slot_ms + PROCESSING_MS
                return f
        self.queue.sort(key=lambda q: q[0])
        if self.queue and self.queue[0][0] <= now_ms:
            f = self._send(self.queue[0][1], now_ms)
            if f is not None:
                self.queue.pop(0)
                return f
            self.queue[0][0] = now_ms + 1000
        return None

    def _send(self, frame, now_ms):
        air = self.preset.airtime_us(len(frame))
        if not self.duty.allows(air, now_ms, D.P_PAYMENT):
            self.stats["duty_blocked"] += 1
            return None
        self.duty.spend(air, now_ms)
        self.tx_busy = True
        self.stats["tx_frames"] += 1
        self.stats["tx_airtime_us"] += air
        return frame

    def on_tx_done(self, now_ms):
        self.tx_busy = False

    def next_wakeup_ms(self, now_ms):
        if self.lbt_until > now_ms:
            return self.lbt_until
        t = now_ms + 3600000
        for pid in self.mine:
            t = min(t, self.mine[pid][2])
        for q in self.queue:
            t = min(t, q[0])
        return t if t > now_ms else now_ms + 1

    def take_delivered(self):
        out = self.delivered
        self.delivered = []
        return out

    def host_ack(self, record):
        pass

    def take_events(self):
        out = self.events
        self.events = []
        return out

    def broadcast(self, record, now_ms):
        return True

    def average_current_ma(self, elapsed_ms):
        from pen_node.power import average_ma
        return average_ma(self.stats["tx_airtime_us"], self.stats["frames_handled"], elapsed_ms, self.preset.power_dbm)
