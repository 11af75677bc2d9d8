"""The preamble toward leaves in RX duty cycle, per destination: only a
node whose /pen.json names "sleepy" leaves loads this (pen_node.boardsleep);
a leaf or a plain relay never does."""
from .sx126x import LISTEN_MARGIN_MS
from .sleep import wakes_leaves


class PreambleByDestination:
    """Sends with a long preamble to the addresses in `sleepy` (leaves in RX
    duty cycle) unless the leaf was heard within its listen window (window_ms
    after its own frame), the preset's preamble to everyone else: switches
    the packet's preamble through the driver's configure() (SetPacketParams,
    DS 13.4.6) only when it changes."""

    def __init__(self, modem, preamble, long_preamble, sleepy, window_ms):
        self.modem = modem
        self.preamble = preamble
        self.long_preamble = long_preamble
        self.sleepy = sleepy
        self.window_ms = window_ms
        self.heard_at = {}  # leaf address -> ms its last frame was heard
        self.current = preamble

    def heard(self, frame, now_ms):
        src = (frame[2] << 8) | frame[3]  # pen_protocol.frame header: type, ctl, src, dst, origin
        if src in self.sleepy:
            self.heard_at[src] = now_ms

    def preamble_for(self, frame, now_ms):
        dst = (frame[4] << 8) | frame[5]
        if wakes_leaves(frame):
            return self.long_preamble  # a flood for leaves' payments: whoever is asleep must catch it
        if dst not in self.sleepy:
            return self.preamble
        t = self.heard_at.get(dst)
        if t is not None and now_ms <= t + self.window_ms - LISTEN_MARGIN_MS:
            return self.preamble  # it is still in the window after its own frame
        return self.long_preamble

    def set_for(self, frame, now_ms):
        want = self.preamble_for(frame, now_ms)
        if want != self.current:
            self.modem.configure({"preamble_len": want})
            self.current = want
        return want
