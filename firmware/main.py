"""Board entry: a Pen mesh node on an ESP32 / ESP32-S3 with an SX1262 or SX1276.

Reads /pen.json, e.g. {"board": "heltec-v3", "preset": "eu868-sf9", "addr": 17, "bridge": false,
"net_key": "<32+ hex digits, the village network secret>"}
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
  service.py runs the mesh alone. A store-node's link needs pairing
  (pen_node.linkconf: its code printed on the console at boot, show_code)
  and, with aioble, is served over BLE too.

Time for the core is a millisecond count that never wraps (built from
time.ticks_ms with ticks_diff); randomness comes from the hardware RNG.
"""
import asyncio
import gc
import json
import os
import sys
import time

try:
    from micropython import const
except ImportError:  # CPython, for the host tests
    def const(x):
        return x

from pen_node.mesh import MeshNode

try:
    from pen_node.service import LinkService
except ImportError:  # a build without the link service: the node still relays
    LinkService = None

# Only what the running node needs is imported above; the boot path (config,
# radio construction, journal recovery, pairing) imports its modules inside
# run() and lets the ones nothing refers to afterwards go (boot_only): with
# the node installed by mip as .mpy, their bytecode would sit in the heap
# for the node's whole life.
CONFIG = "/pen.json"
BOARDS = "/hardware/boards/%s.json"
POWER = "/hardware/power.json"  # pen_node.power's figures: the leaves' RX duty cycle, the pins that wake the MCU
JOURNAL = "/pen_journal.bin"
JOURNAL_BYTES = const(32768)  # two 16 KB regions: MAX_LIVE records of ~150 B in half of one
DUTY = "/pen_duty.bin"  # the last hour's airtime, so a reboot does not reset the law's budget
_LINK_POLL_MS = const(50)  # longest a link byte waits while the radio listens
_READ_BYTES = const(256)
REPL_GRACE_MS = const(3000)  # after a reset, before the link takes the REPL's UART (Ctrl-C ignored from then on)


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


def net_secret(cfg):
    """The village network secret (hex in /pen.json, the same on every node of
    the village, set at provisioning): without it a node would take any
    frame anyone puts on air, so it does not start."""
    s = cfg.get("net_key")
    if not isinstance(s, str) or len(s) < 32:
        raise ValueError("/pen.json needs net_key: the village network secret, 16 bytes or more in hex")
    import binascii
    return binascii.unhexlify(s)


def node_address(cfg):
    if "addr" in cfg:
        return cfg["addr"]
    import machine
    uid = machine.unique_id()
    addr = (uid[-2] << 8) | uid[-1]
    return addr if addr < 0xFFFE else addr - 2  # 0xFFFE / 0xFFFF are mesh group addresses


_ERROR_PAUSE_MS = const(100)  # after a task's step failed: never spin on a fault that repeats
last_error = None  # (task, repr of the exception) of the last step that failed, for a debugger


def survived(node, task, e):
    """A step of a task raised: no frame and no bug may stop the node (one
    12-byte broadcast once did, issue 10 item 8). Count it (STATUS shows
    task_errors), keep it for a debugger, and go on. The link is the USB
    serial stdout, so nothing is printed there."""
    global last_error
    node.stats["task_errors"] = node.stats.get("task_errors", 0) + 1
    last_error = (task, repr(e))
    gc.collect()  # a MemoryError leaves garbage behind


async def rx_task(node, modem, clock, wake, power=None):
    """Listen all the time (the driver resumes RX by itself after each send)
    and hand every good frame to the node; wake the tx loop, since an ack
    may now be due within tens of ms. A driver fault ends one listening
    stream, not the task: it listens again."""
    while True:
        try:
            async for rx in modem.recv_continuous():
                if rx.valid_crc and (power is None or not power.ignores(rx)):
                    now = clock()
                    try:
                        node.on_frame(rx, rx.rssi, rx.snr, now)
                        if power is not None:
                            power.heard(rx, now)
                    except Exception as e:
                        survived(node, "rx", e)
                    wake.set()
            return  # the stream ended (a test's radio double): nothing more to hear
        except Exception as e:
            survived(node, "radio", e)
            await asyncio.sleep(_ERROR_PAUSE_MS / 1000)


async def tx_task(node, modem, clock, wake, emit=None, duty_record=None, power=None):
    """Send what the node has for the air; otherwise sleep until its next
    timer, a frame arriving, or _LINK_POLL_MS (events for the link). A board
    on battery (power.sleeper) light-sleeps instead (pen_node/sleep.py): the
    wake sources are DIO1, the link pin and the timer, so no poll is needed."""
    while True:
        now = clock()
        try:
            frame = node.next_tx(now)
            if frame is not None:
                if power is not None:
                    frame = power.before_send(frame, now, node.key)
                    if frame is None:
                        node.on_tx_done(now)  # kept off the air (a leaf's beacon)
                        continue
                await modem.send(frame)
                done = clock()
                node.on_tx_done(done)
                if power is not None:
                    power.sent(now, done)
                if duty_record is not None:
                    duty_record.maybe_save(node.duty, done)
                continue
            if emit is not None:
                emit(now)
            if power is not None and power.sleeper is not None:
                gc.collect()  # before sleeping, as after each wait below: the heap must not fragment
                power.nap(clock(), node.next_wakeup_ms(now))
                await asyncio.sleep(0)  # what a wake source readied (the rx task, the link) runs now
                continue
            wait_ms = max(1, min(node.next_wakeup_ms(now) - now, _LINK_POLL_MS))
        except Exception as e:
            survived(node, "tx", e)
            node.tx_busy = False  # a send that failed is over
            wait_ms = _ERROR_PAUSE_MS
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
        data = await reader.read(_READ_BYTES)
        if data:
            try:
                write(link.feed(data, clock()))
            except Exception as e:
                survived(link.node, "link", e)


def stdout_write(data):
    if data:
        sys.stdout.buffer.write(data)


def events_to(ble, write):
    """Where the link's events (delivered records, receipts) go: to the BLE
    phone while one is connected (BleLink.send says so), else to the serial
    link. Answers go back the way their request came."""
    if ble is None:
        return write
    return lambda data: ble.send(data) or write(data)


async def serve(node, modem, clock, link=None, link_reader=link_task, write=stdout_write, duty_record=None,
                power=None, ble=None):
    """The node's tasks around the sans-IO core (a host test runs them over
    an async radio double). With ble (pen_node.ble.BleLink) a phone may also
    reach the link over BLE: the link's events go to it while it is
    connected, else to the serial link."""
    wake = asyncio.Event()
    if power is not None:  # long preambles to sleeping leaves are on air: the duty cycle counts them
        node.air_extra = power.air_extra_for(node.preset)
    tasks = [rx_task(node, modem, clock, wake, power)]
    if link is None:
        tasks.append(tx_task(node, modem, clock, wake, duty_record=duty_record, power=power))
    else:
        emit = events_to(ble, write)
        if ble is not None:
            tasks.append(ble.serve(clock))
        tasks.append(tx_task(node, modem, clock, wake, lambda now: emit(link.poll(now)), duty_record, power))
        tasks.append(link_reader(link, clock, write))
    await asyncio.gather(*tasks)


def boot_only(*names):
    """Let modules go that only the boot path used (nothing refers to them
    once the node runs): their bytecode and globals return to the heap."""
    for name in names:
        sys.modules.pop(name, None)
    gc.collect()


def show_code(code):
    """An open pairing code on the node's console: the USB serial, before the
    link takes it (REPL_GRACE_MS; `pen board console` shows it). The 0x00
    ends it as the link's frames end, so a host already listening drops it
    as one damaged frame and reads the next frame whole."""
    sys.stdout.write("\npairing code: %s\n" % code)
    sys.stdout.buffer.write(b"\x00")


def open_link(cfg, node, rand):
    """The link service with pairing (/pen.json "pair", on by default on a
    store-node: issue 11) and, on a store-node whose build has aioble, BLE.
    None on a build without the service (a relay)."""
    if LinkService is None:
        return None, None
    try:  # optional for roles.py: only the roles with the service carry it
        from pen_node.linkconf import link_auth, ble_link
    except ImportError:  # a build with the service but without pairing: the link stays open
        return LinkService(node), None
    link = LinkService(node, link_auth(cfg, rand, show_code))
    ble = ble_link(cfg, link, "pen-%d" % node.addr)
    boot_only("pen_node.linkconf")
    return link, ble


async def run():
    cfg = load_json(CONFIG)
    board = load_json(BOARDS % cfg["board"])
    from pen_protocol.airtime import PRESETS
    preset = PRESETS[cfg.get("preset", "eu868-sf9")]
    clock = Clock()
    from pen_node.radio import make_radio, channel_busy_for
    modem = make_radio(board, preset)
    lbt = channel_busy_for(board, preset, modem)
    from pen_node.boardsleep import board_power  # board-only: not in the unix port's import
    power = board_power(cfg, board, preset, modem, clock, LinkService is not None, load_json(POWER))
    del board, make_radio, channel_busy_for, board_power
    boot_only("pen_node.radio", "pen_node.boardsleep")  # before the node takes its rings from the heap
    from pen_node.journal import Journal, FileStorage
    journal = Journal(FileStorage(JOURNAL, JOURNAL_BYTES))
    node = MeshNode(node_address(cfg), preset, journal, HwRandom(), is_bridge=cfg.get("bridge", False),
                    net_key=net_secret(cfg), channel_busy=power.lbt(lbt))
    node.leaf = power.leaf  # routing: a leaf says it is there and never becomes a parent
    if power.txpower is not None:
        power.txpower.set_key(node.key)  # only sealed frames teach it a neighbour's SNR
    from pen_node.dutyrecord import DutyRecord, RECORD_BYTES
    duty_record = DutyRecord(FileStorage(DUTY, RECORD_BYTES))
    duty_record.restore(node.duty, clock())
    link, ble = open_link(cfg, node, os.urandom)
    from pen_node.custody import custody_room
    gc.collect()
    journal.max_live = custody_room(gc.mem_free(), journal.max_live)  # refuse work before the heap runs out
    await serve(node, modem, clock, link, duty_record=duty_record, power=power, ble=ble)


if __name__ == "__main__":
    asyncio.run(run())
