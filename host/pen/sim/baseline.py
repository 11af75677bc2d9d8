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

    @staticmethod
    def _fields(frame):
        """relay, dst, packet id, hop limit, kind (0 data, 1 ack)."""
        return (frame[0] << 8) | frame[1], (frame[2] << 8) | frame[3], int.from_bytes(frame[4:8], "big"), \
            frame[8], frame[9]

    def _contention_ms(self, snr_x4):
        """SNR-scaled contention window: weaker (farther) receivers wait less."""
        snr = min(max(snr_x4, SNR_MIN_X4), SNR_MAX_X4)
        cw = CW_MIN + (snr - SNR_MIN_X4) * (CW_MAX - CW_MIN) // (SNR_MAX_X4 - SNR_MIN_X4)
        return (2 * CW_MAX + self.rng.getrandbits(16) % (1 << cw)) * self.slot_ms

    def on_frame(self, frame, rssi, snr_x4, now_ms):
        self.stats["rx_frames"] += 1
        self.stats["frames_handled"] += 1
        src, dst, pid, hops, kind = self._fields(frame)
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
            self.queue.append([now_ms + self._contention_ms(snr_x4), bytes(relay), key])

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


# -- Meshtastic 2.6+ ----------------------------------------------------------

PKI_OVERHEAD = 12  # a PKI direct message's nonce and authentication tag (REFERENCE.md)
NO_HOP = 0  # next_hop unset: flood (NextHopRouter falls back to FloodingRouter)
TRIES = 3  # ReliableRouter: 3 transmissions; the last one floods again
MAX_TX_QUEUE = 16  # Meshtastic's transmit queue (MAX_TX_QUEUE): a relay that finds it full is dropped
DUTY_HOLD_MS = 1000  # a node its duty cycle stops waits this long before trying anything again


class NextHopNode(FloodNode):
    """What current Meshtastic (2.6+, NextHopRouter) does for a direct
    message with want_ack, on top of FloodNode's managed flooding:
    - next hop after the first exchange: a node that sent or relayed a
      packet learns, from the ACK coming back, which neighbour last relayed
      that ACK to it, and sends later packets for that destination with that
      neighbour as next_hop; only the named next hop relays them (it then
      names its own next hop, or floods when it has none);
    - relayers of a next-hop packet retransmit it like its origin until
      they hear their next hop relay it (implicit ack), and the last try of
      anyone floods again with next_hop reset (the route may be gone);
    - a queued relay is cancelled when the ACK for its packet is overheard
      (the destination has it already);
    - the ACK's hop limit is the number of hops its packet used, so its
      flood reaches no farther than the packet came from;
    - the 16-byte header carries next_hop and relay_node, and PKI direct
      messages (payment and ACK alike) add 12 bytes of nonce and tag.
    Frame layout here: relay(2) dst(2) id(4) hop_limit(1) kind(1)
    next_hop(2), padding to 16, then the payload."""

    PAYLOAD_OVERHEAD = DATA_OVERHEAD + PKI_OVERHEAD

    def __init__(self, addr, preset, rng, **kw):
        FloodNode.__init__(self, addr, preset, rng, **kw)
        self.next_hop = {}  # destination -> neighbour that relayed its ACK to us
        self.relayed_to = {}  # pid -> destination of a packet we sent or relayed (to learn from its ACK)
        self.relayers = {}  # pid -> neighbours heard relaying that packet
        self.stats.update({"next_hop_sends": 0, "ack_cancelled": 0, "fallback_floods": 0, "tx_queue_full": 0})

    def _frame(self, src, dst, pid, hops, kind, payload, nh=NO_HOP):
        hdr = bytes((src >> 8, src & 255, dst >> 8, dst & 255)) + pid.to_bytes(4, "big") + bytes(
            (hops, kind, nh >> 8, nh & 255))
        return hdr + bytes(HEADER - len(hdr)) + payload

    def submit(self, record, now_ms):
        self.seq += 1
        pid = (self.addr << 16) | (self.seq & 0xFFFF)
        nh = self.next_hop.get(self.bridge_addr, NO_HOP)
        if nh:
            self.stats["next_hop_sends"] += 1
        frame = self._frame(self.addr, self.bridge_addr, pid, self.hop_limit, 0,
                            bytes(self.PAYLOAD_OVERHEAD) + bytes(record), nh)
        self.mine[pid] = [frame, 0, now_ms]
        self._sent_or_relayed(pid, self.bridge_addr)
        self._remember((self.addr, pid))
        return True

    def on_frame(self, frame, rssi, snr_x4, now_ms):
        self.stats["rx_frames"] += 1
        self.stats["frames_handled"] += 1
        src, dst, pid, hops, kind = self._fields(frame)
        nh = self._hop_of(frame)
        key = ((pid >> 16), pid)
        self._cancel_queued(key)
        if kind == 1:  # an ACK: cancel the relay of what it acknowledges, learn the way to its sender
            acked = int.from_bytes(frame[HEADER + PKI_OVERHEAD:HEADER + PKI_OVERHEAD + 4], "big")
            if self._cancel_queued(((acked >> 16), acked)):
                self.stats["ack_cancelled"] += 1
            if key not in self.seen and self.relayed_to.get(acked) == (pid >> 16) and (
                    src == pid >> 16 or src in self.relayers.get(acked, ())):
                # the neighbour that relayed us the ACK, if it also relayed the
                # packet (a two-way link on the path) or is the destination itself
                self.next_hop[pid >> 16] = src
            if acked in self.mine and (acked >> 16) != self.addr:
                del self.mine[acked]  # a relayer's retransmissions end with the ACK too
        elif pid in self.relayed_to:
            self.relayers.setdefault(pid, set()).add(src)  # who carried our packet on
        if kind == 0 and pid in self.mine and self.mine[pid][1] > 0:
            own = (pid >> 16) == self.addr
            if own or src == self._hop_of(self.mine[pid][0]):
                # implicit ack: our next hop (or, for a flood, anyone) relayed it on
                del self.mine[pid]
                self.stats["implicit_acks"] += 1
        if not self._remember(key) and not self._relay_again(kind, pid, nh, dst):
            self.stats["dup_dropped"] += 1
            return
        if kind == 1 and dst == self.addr:
            acked = int.from_bytes(frame[HEADER + PKI_OVERHEAD:HEADER + PKI_OVERHEAD + 4], "big")
            self.mine.pop(acked, None)
            self.events.append(("ack", acked))
            return
        if kind == 0 and dst == self.addr and self.is_bridge:
            self.delivered.append(bytes(frame[HEADER + self.PAYLOAD_OVERHEAD:]))
            self.stats["delivered"] += 1
            self.seq += 1
            aid = (self.addr << 16) | (self.seq & 0xFFFF)
            back = self.next_hop.get(pid >> 16, NO_HOP)
            # the ACK goes as far as the packet came (getHopLimitForResponse:
            # a response's hop limit is the hops its request used)
            ack = self._frame(self.addr, pid >> 16, aid, self.hop_limit - hops, 1,
                              bytes(PKI_OVERHEAD) + pid.to_bytes(4, "big") + bytes(2), back)
            self._remember((self.addr, aid))
            self.queue.append([now_ms + 50 + self.rng.getrandbits(8), ack, (self.addr, aid)])
            return
        if hops == 0 or (nh != NO_HOP and nh != self.addr) or dst == self.addr:
            return  # not ours to relay: NextHopRouter relays only as the named next hop
        mine_next = self.next_hop.get(dst, NO_HOP)
        relay = bytearray(frame)
        relay[8] = hops - 1
        relay[0], relay[1] = self.addr >> 8, self.addr & 255
        relay[10], relay[11] = mine_next >> 8, mine_next & 255
        if len(self.queue) + sum(1 for p in self.mine if p >> 16 != self.addr) >= MAX_TX_QUEUE:
            self.stats["tx_queue_full"] += 1
            return
        if kind == 0:
            self._sent_or_relayed(pid, dst)
        if nh == self.addr and mine_next != NO_HOP and kind == 0:
            # a next-hop relay is sent reliably, like the origin's packet
            self.mine[pid] = [bytes(relay), 0, now_ms + 20 + self.rng.getrandbits(16) % (2 * self.slot_ms)]
            return
        self.queue.append([now_ms + self._contention_ms(snr_x4), bytes(relay), key])

    def _relay_again(self, kind, pid, nh, dst):
        """A copy already seen is still relayed when it is a data packet
        and either names us its next hop again (its sender did not hear our
        relay) or comes as the origin's fallback flood and we have not
        relayed it (we were not its next hop), as NextHopRouter does."""
        if kind != 0 or dst == self.addr or pid in self.mine or any(q[2][1] == pid for q in self.queue):
            return False
        return nh == self.addr or (nh == NO_HOP and pid not in self.relayed_to)

    def _sent_or_relayed(self, pid, dst):
        self.relayed_to[pid] = dst
        if len(self.relayed_to) > DEDUP:  # as bounded as the dedup cache
            old = next(iter(self.relayed_to))
            del self.relayed_to[old]
            self.relayers.pop(old, None)

    def _cancel_queued(self, key):
        for i, q in enumerate(self.queue):
            if q[2] == key:
                del self.queue[i]
                self.stats["floods_cancelled"] += 1
                return True
        return False

    @staticmethod
    def _hop_of(frame):
        return (frame[10] << 8) | frame[11]

    def next_tx(self, now_ms):
        # the last try of a next-hop packet floods (NextHopRouter resets next_hop)
        for pid in self.mine:
            frame, tries, due = self.mine[pid]
            if tries == TRIES - 1 and due <= now_ms and self._hop_of(frame) != NO_HOP:
                f = bytearray(frame)
                f[10] = f[11] = 0
                self.mine[pid][0] = bytes(f)
                self.stats["fallback_floods"] += 1
                if (pid >> 16) == self.addr:
                    self.next_hop.pop(self.bridge_addr, None)
        blocked = self.stats["duty_blocked"]
        f = FloodNode.next_tx(self, now_ms)
        if self.stats["duty_blocked"] > blocked:
            # the duty cycle holds the whole node, not one packet: wait before
            # trying anything again (else every due packet is tried each ms)
            self.lbt_until = max(self.lbt_until, now_ms + DUTY_HOLD_MS)
        return f


BASELINES = {"meshtastic-2.6": NextHopNode, "flooding-2.5": FloodNode, "flooding": FloodNode}
