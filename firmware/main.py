"""Board entry: a Pen mesh node on an ESP32 / ESP32-S3 with an SX1262 or SX1276.

Reads /pen.json, e.g. {"board": "heltec-v3", "preset": "eu868-sf9", "addr": 17, "bridge": false}
(board: the name of a profile in hardware/boards/, installed as
/hardware/boards/<name>.json; addr: optional, else the low 16 bits of
machine.unique_id()), builds the radio (pen_node.radio.make_radio over
micropython-lib's async drivers),
opens the custody journal on the flash filesystem (/pen_journal.bin, a
fixed-size file: littlefs on ESP32; not an esp32.Partition, whose blocks
need erasing before a rewrite, which the log does not do), and runs asyncio
tasks around the sans-IO core:

- rx: the modem's recv_continuous(); every good frame to MeshNode.on_frame;
- tx: MeshNode.next_tx; send it (the driver pauses RX, then resumes it);
  otherwise sleep until next_wakeup_ms, a frame's arrival or the link poll;
- link: USB serial (stdin/stdout) bytes into pen_node.service.LinkService
  and its answers and events back out (docs/link.md); a build without
  service.py runs the mesh alone.

Time for the core is a millisecond count that never wraps (built from
time.ticks_ms with ticks_diff); randomness comes from the hardware RNG.
"""
import asyncio
import gc
import json
import os
import sys
import time

from pen_protocol.airtime import PRESETS
from pen_node.dutyrecord import DutyRecord, RECORD_BYTES
from pen_node.journal import Journal, FileStorage
from pen_node.mesh import MeshNode, custody_room
from pen_node.radio import make_radio

try:
    from pen_node.service import LinkService
except ImportError:  # a build without the link service: the node still relays
    LinkService = None

CONFIG = "/pen.json"
BOARDS = "/hardware/boards/%s.json"
JOURNAL = "/pen_journal.bin"
JOURNAL_BYTES = 32768  # two 16 KB regions: MAX_LIVE records of ~150 B in half of one
DUTY = "/pen_duty.bin"  # the last hour's airtime, so a reboot does not reset the law's budget
LINK_POLL_MS = 50  # longest a link byte waits while the radio listens
READ_BYTES = 256
REPL_GRACE_MS = 3000  # after a reset, before the link takes the REPL's UART (Ctrl-C ignored from then on)


class Clock:
    """ms since boot that never wraps (ticks_ms wraps after ~12 days on a board)."""

    def __init__(self):
        self.last = time.ticks_ms()
        self.now = 0

    def __call__(self):
        t = time.ticks_ms()
        self.now += time.ticks_diff(t, self.last)
        self.last = t
        return self.now


class HwRandom:
    """getrandbits from the ESP32's hardware RNG (os.urandom)."""

    def getrandbits(self, n):
        nbytes = (n + 7) // 8
        v = 0
        for b in os.urandom(nbytes):
            v = (v << 8) | b
        return v & ((1 << n) - 1)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def node_address(cfg):
    if "addr" in cfg:
        return cfg["addr"]
    import machine
    uid = machine.unique_id()
    addr = (uid[-2] << 8) | uid[-1]
    return addr if addr < 0xFFFE else addr - 2  # 0xFFFE / 0xFFFF are mesh group addresses


async def rx_task(node, modem, clock, wake):
    """Listen all the time (the driver resumes RX by itself after each send)
    and hand every good frame to the node; wake the tx loop, since an ack
    may now be due within tens of ms."""
    async for rx in modem.recv_continuous():
        if rx.valid_crc:
            node.on_frame(rx, rx.rssi, rx.snr, clock())
            wake.set()


async def tx_task(node, modem, clock, wake, emit=None, duty_record=None):
    """Send what the node has for the air; otherwise sleep until its next
    timer, a frame arriving, or LINK_POLL_MS (events for the link)."""
    while True:
        now = clock()
        frame = node.next_tx(now)
        if frame is not None:
            await modem.send(frame)
            done = clock()
            node.on_tx_done(done)
            if duty_record is not None:
                duty_record.maybe_save(node.duty, done)
            continue
        if emit is not None:
            emit(now)
        wait_ms = max(1, min(node.next_wakeup_ms(now) - now, LINK_POLL_MS))
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), wait_ms / 1000)
        except asyncio.TimeoutError:
            pass
        gc.collect()  # between frames: a long-running heap must not fragment


def repl_uart_link():
    """The link's stream: the REPL's own UART (USB serial). On ESP32 that
    UART's driver turns every 0x03 byte into KeyboardInterrupt, and 0x03 is
    the SPENT request's kind and common in signatures: one such byte would
    kill the node. kbd_intr(-1) makes it a plain byte. The REPL stays
    reachable for REPL_GRACE_MS after a reset (docs/deploy.md)."""
    import micropython
    micropython.kbd_intr(-1)
    return sys.stdin.buffer


async def link_task(link, clock, write, grace_ms=REPL_GRACE_MS):
    await asyncio.sleep(grace_ms / 1000)  # Ctrl-C still stops the node: `pen board` can take the REPL
    reader = asyncio.StreamReader(repl_uart_link())
    while True:
        data = await reader.read(READ_BYTES)
        if data:
            write(link.feed(data, clock()))


def stdout_write(data):
    if data:
        sys.stdout.buffer.write(data)


async def serve(node, modem, clock, link=None, link_reader=link_task, write=stdout_write, duty_record=None):
    """The node's tasks around the sans-IO core (a host test runs them over
    an async radio double)."""
    wake = asyncio.Event()
    tasks = [rx_task(node, modem, clock, wake)]
    if link is None:
        tasks.append(tx_task(node, modem, clock, wake, duty_record=duty_record))
    else:
        tasks.append(tx_task(node, modem, clock, wake, lambda now: write(link.poll(now)), duty_record))
        tasks.append(link_reader(link, clock, write))
    await asyncio.gather(*tasks)


async def run():
    cfg = load_json(CONFIG)
    board = load_json(BOARDS % cfg["board"])
    preset = PRESETS[cfg.get("preset", "eu868-sf9")]
    clock = Clock()
    modem = make_radio(board, preset)
    journal = Journal(FileStorage(JOURNAL, JOURNAL_BYTES))
    node = MeshNode(node_address(cfg), preset, journal, HwRandom(), is_bridge=cfg.get("bridge", False))
    gc.collect()
    journal.max_live = custody_room(gc.mem_free(), journal.max_live)  # refuse work before the heap runs out
    duty_record = DutyRecord(FileStorage(DUTY, RECORD_BYTES))
    duty_record.restore(node.duty, clock())
    await serve(node, modem, clock, LinkService(node) if LinkService is not None else None,
                duty_record=duty_record)


if __name__ == "__main__":
    asyncio.run(run())
