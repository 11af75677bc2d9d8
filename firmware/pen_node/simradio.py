"""SimAir + SimRadio: the radio's host test double, with the driver's API
(sync send/recv; RxPacket packets) and a time on air that is
pen_protocol.airtime's Semtech formula, the same numbers the driver computes,
plus channel_busy(), the listen-before-talk hook MeshNode takes (what CAD
would report). Out of radio.py so that a board never loads it."""
from pen_protocol.airtime import time_on_air_us

from .radio import RxPacket


class SimAir:
    """What several SimRadios share: a clock and a link table
    {(src, dst): (rssi_dbm, snr_x4)}. A frame is heard by every radio the
    table links to the sender; `on_air` keeps the recent transmissions
    [(src, start_ms, end_ms)] so a radio can sense a neighbour's carrier."""

    def __init__(self, links):
        self.links = links
        self.now_ms = 0
        self.radios = {}
        self.on_air = []

    def attach(self, radio):
        self.radios[radio.addr] = radio


class SimRadio:
    def __init__(self, air, addr, preset):
        self.air = air
        self.addr = addr
        self.preset = preset
        self.inbox = []
        self.sent = []
        self.state = "standby"
        air.attach(self)

    def get_time_on_air_us(self, plen):
        p = self.preset
        return time_on_air_us(plen, p.sf, p.bw_hz, p.cr, p.preamble)

    def send(self, packet, tx_at_ms=None):
        """Transmit (the driver's sync API: it returns when the frame is
        out); returns the ticks it ended at."""
        if len(packet) > 255:
            raise ValueError("a LoRa frame carries at most 255 bytes")
        start = self.air.now_ms if tx_at_ms is None else max(self.air.now_ms, tx_at_ms)
        end = start + self.get_time_on_air_us(len(packet)) // 1000
        self.sent.append(bytes(packet))
        self.state = "tx"
        # what is still on air, or ended within the last minute (bounded)
        self.air.on_air = [x for x in self.air.on_air if x[2] > start - 60000]
        self.air.on_air.append((self.addr, start, end))
        for addr in self.air.radios:
            link = self.air.links.get((self.addr, addr))
            if link is not None and addr != self.addr:
                self.air.radios[addr].inbox.append(RxPacket(packet, end, link[1], link[0]))
        self.air.now_ms = end
        self.state = "standby"
        return end

    def channel_busy(self, now_ms=None):
        """Listen before talk: is a neighbour this radio hears on air at
        now_ms (default: the air's clock)? The shape MeshNode's channel_busy
        takes."""
        t = self.air.now_ms if now_ms is None else now_ms
        for (src, start, end) in self.air.on_air:
            if start <= t < end and src != self.addr and (src, self.addr) in self.air.links:
                return True
        return False

    def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        self.state = "rx"
        if self.inbox:
            return self.inbox.pop(0)
        if timeout_ms:
            self.air.now_ms += timeout_ms
        return None

    def standby(self):
        self.state = "standby"

    def sleep(self):
        self.state = "sleep"
