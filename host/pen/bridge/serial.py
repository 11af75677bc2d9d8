"""The PC's side of the link to a node (docs/link.md): a sans-IO client
(LinkClient: requests out, frames in) and the transports it rides on, a
serial port (pyserial: USB serial, UART, or a pty's device path) or a pty
whose other side is a node process this bridge started (--pty-command).

Every transport has read(timeout_s) -> bytes (b"" when nothing came) and
write(data); the driver (pen.bridge.driver) wraps them all the same way.
TCP, BLE and Meshtastic transports, pairing and sealed sessions are in
pen.transport (open_link opens any of them from a link string).
"""
import os
import select
import shlex
import subprocess
import tty

from pen_protocol import link as L

BAUD = 115200  # what a board's USB-serial bridge runs at; a pty ignores it
READ_BYTES = 4096


class LinkClient:
    """Numbers requests, decodes what the node sends. Sans-IO."""

    def __init__(self):
        self.dec = L.Decoder()
        self.seq = 0

    def request(self, kind, payload=b""):
        """-> (seq, bytes to write). Seqs run 1..255: 0 is what the node puts
        on an error about a frame too broken to have a seq, never an answer."""
        self.seq = self.seq % 255 + 1
        return self.seq, L.encode(kind, self.seq, payload)

    def feed(self, data):
        """-> Frames and LinkErrors, in order."""
        return self.dec.feed(data)


class SerialPort:
    """A serial device by path (/dev/ttyUSB0, /dev/ttyACM0, /dev/pts/N)."""

    def __init__(self, path, baud=BAUD):
        import serial  # pyserial
        try:
            self.s = serial.Serial(path, baud, timeout=0)
        except serial.SerialException as e:
            raise OSError("cannot open %s: %s" % (path, e))
        self.name = path

    def read(self, timeout_s):
        r, _, _ = select.select([self.s.fileno()], [], [], timeout_s)
        if not r:
            return b""
        return self.s.read(max(1, self.s.in_waiting))

    def write(self, data):
        self.s.write(data)
        self.s.flush()

    def close(self):
        self.s.close()


class FdPort:
    """Our end of a pty (raw) whose other end is a child node's stdin and
    stdout, as a board's USB serial would be."""

    def __init__(self, fd, name="pty"):
        self.fd = fd
        self.name = name

    def read(self, timeout_s):
        r, _, _ = select.select([self.fd], [], [], timeout_s)
        if not r:
            return b""
        try:
            return os.read(self.fd, READ_BYTES)
        except OSError:  # the child closed its end
            raise EOFError("the node closed the link")

    def write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def close(self):
        os.close(self.fd)


def open_pty():
    """A raw pty pair: (master fd, slave fd). Raw on the slave side, so the
    line discipline neither echoes nor edits the binary link."""
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave


def spawn(command, env=None, stderr=None):
    """Start a node process (e.g. 'micropython firmware/unix_node.py --link
    stdio --bridge') with its stdin/stdout on a raw pty; returns (FdPort,
    Popen)."""
    master, slave = open_pty()
    proc = subprocess.Popen(shlex.split(command), stdin=slave, stdout=slave, stderr=stderr, env=env,
                            close_fds=True, start_new_session=True)
    os.close(slave)
    return FdPort(master, "pty:" + command.split()[0]), proc


def ask(port, kind, payload=b"", timeout_s=5.0, client=None):
    """One request on a link no bridge is serving (a store device): the
    answer frame (OK or ERROR); events that arrive meanwhile are skipped."""
    import time
    client = client or LinkClient()
    seq, data = client.request(kind, payload)
    port.write(data)
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for f in client.feed(port.read(0.05)):
            if isinstance(f, L.Frame) and f.seq == seq and f.kind in (L.ERROR, kind | L.RESPONSE):
                return f
    raise TimeoutError("no answer from the node on %s" % port.name)


def village_spent(path, ref, timeout_s=5.0):
    """Ask the node on a serial port whether a token is spent in its village:
    (spent, kind 0 not seen / 1 used / 2 accounted, overflowed)."""
    from pen_protocol import cbor
    port = SerialPort(path)
    try:
        f = ask(port, L.SPENT, ref, timeout_s)
    finally:
        port.close()
    if f.kind == L.ERROR:
        raise OSError("the node refused: %s" % L.REASONS.get(f.payload[0], f.payload[0]))
    spent, kind, over = cbor.loads(f.payload)
    return spent, kind, over
