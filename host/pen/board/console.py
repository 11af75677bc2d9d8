"""What `pen board console` shows: a node's serial output, where the link's
frames (COBS, each ended by a zero byte; docs/link.md) and plain text (the
boot banner, a traceback, print) share one stream. A segment that decodes as
a frame is shown as one line in words; anything else is shown as text."""
from pen_protocol import link as L

NAMES = {L.EV_DELIVERED: "delivered a record", L.EV_RECEIPT: "got a receipt", L.EV_LOG: "log",
         L.HELLO: "hello", L.SUBMIT: "submit", L.SPENT: "spent?", L.STATUS: "status",
         L.DELIVERED_ACK: "delivered-ack", L.DOWNLINK: "downlink", L.PENDING: "pending"}
MAX_TEXT = 4096  # a line longer than this without a newline is shown in pieces


def describe(frame):
    if frame.kind == L.EV_LOG:
        return "[node] " + frame.payload.decode("utf-8", "replace")
    if frame.kind == L.ERROR:
        reason = frame.payload[0] if frame.payload else 0
        return "[link] error #%d: %s" % (frame.seq, L.REASONS.get(reason, "reason %d" % reason))
    kind = frame.kind & ~L.RESPONSE if frame.kind & L.RESPONSE and frame.kind < 0x80 else frame.kind
    what = NAMES.get(kind, "kind 0x%02x" % frame.kind)
    if kind != frame.kind:
        what = "answer to " + what
    return "[link] %s #%d (%d bytes)" % (what, frame.seq, len(frame.payload))


class Console:
    def __init__(self, emit):
        self.emit = emit
        self.buf = bytearray()

    def feed(self, data):
        for b in data:
            if b == 0:
                self._segment(bytes(self.buf) + b"\x00")
                self.buf = bytearray()
            elif b == 0x0A or len(self.buf) >= MAX_TEXT:
                self._text(bytes(self.buf))
                self.buf = bytearray()
            else:
                self.buf.append(b)

    def _segment(self, seg):
        frames = L.Decoder().feed(seg)
        if len(frames) == 1 and isinstance(frames[0], L.Frame):
            self.emit(describe(frames[0]))
        elif seg[:-1].strip():
            self._text(seg[:-1])

    def _text(self, raw):
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if line.strip():
            self.emit(line)

    def flush(self):
        if self.buf:
            self._text(bytes(self.buf))
            self.buf = bytearray()
